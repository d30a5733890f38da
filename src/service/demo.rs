//! `wardstone serve --demo`: a ready tenant, application and user for a first login.

use serde::Serialize;

use super::{Admin, AdminError};
use crate::store::Store;

/// Demo tenant name.
pub const TENANT: &str = "demo";
/// Demo user email.
pub const EMAIL: &str = "demo@example.com";
/// Demo user password (it is a demo).
pub const PASSWORD: &str = "wardstone-demo";
const CLIENT_NAME: &str = "Demo App";

/// What the demo prints.
#[derive(Debug, Serialize)]
pub struct Demo {
    /// Issuer.
    pub issuer: String,
    /// Demo client id.
    pub client_id: String,
    /// Demo client secret (rotated at every start so it can be shown).
    pub client_secret: String,
    /// Callback of the demo client (a page of this server that shows the code).
    pub redirect_uri: String,
    /// Demo user's email.
    pub email: String,
    /// Demo user's password.
    pub password: String,
    /// A URL to open in a browser.
    pub authorize_url: String,
}

/// Creates what is missing of the demo and returns how to use it.
pub async fn ensure(admin: &Admin, store: &Store) -> Result<Demo, AdminError> {
    let issuer = admin.public_url.issuer(TENANT);
    let redirect_uri = format!("{}/demo/callback", admin.public_url.as_str());
    let tenant = match store
        .tenant_by_name(TENANT)
        .await
        .map_err(super::internal)?
    {
        Some(t) => t,
        None => {
            admin.create_tenant(TENANT).await?;
            store
                .tenant_by_name(TENANT)
                .await
                .map_err(super::internal)?
                .ok_or_else(|| {
                    AdminError::Internal(anyhow::anyhow!("demo tenant vanished after creation"))
                })?
        }
    };
    let resolved = admin.resolve(TENANT).await?;
    if store
        .user_by_email(&tenant.id, EMAIL)
        .await
        .map_err(super::internal)?
        .is_none()
    {
        admin
            .create_user(&resolved, EMAIL, PASSWORD, Some("Demo User"), true)
            .await?;
    }
    let existing = store
        .clients_named(&tenant.id, CLIENT_NAME)
        .await
        .map_err(super::internal)?
        .into_iter()
        .find(|c| c.redirect_uris().contains(&redirect_uri) && !c.is_public());
    let (client_id, client_secret) = match existing {
        Some(c) => {
            let rotated = admin.rotate_client_secret(&resolved, &c.client_id).await?;
            (c.client_id, rotated.client_secret.unwrap_or_default())
        }
        None => {
            let c = admin
                .create_client(
                    &resolved,
                    CLIENT_NAME,
                    std::slice::from_ref(&redirect_uri),
                    false,
                )
                .await?;
            (c.client_id, c.client_secret.unwrap_or_default())
        }
    };
    let authorize_url = crate::oauth::registrar::with_params(
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid profile email offline_access"),
            ("state", "demo-state"),
            ("nonce", "demo-nonce"),
        ],
    );
    Ok(Demo {
        issuer,
        client_id,
        client_secret,
        redirect_uri,
        email: EMAIL.into(),
        password: PASSWORD.into(),
        authorize_url,
    })
}
