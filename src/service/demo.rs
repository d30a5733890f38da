//! `wardstone serve --demo`: a ready tenant, application and user for a first login.

use serde::Serialize;

use super::{Admin, AdminError};
use crate::store::Store;

pub const TENANT: &str = "demo";
/// Demo user email.
pub const EMAIL: &str = "demo@example.com";
/// Demo user password (it is a demo).
pub const PASSWORD: &str = "wardstone-demo";
const CLIENT_NAME: &str = "Demo App";

/// The demo API's identifier (the access tokens' `aud`) and the scope it requires.
pub const API_IDENTIFIER: &str = "https://api.demo.wardstone.dev/";
/// The scope the demo API requires.
pub const API_SCOPE: &str = "read:demo";
const RULE_NAME: &str = "demo-protocol";
const RULE: &[u8] = include_bytes!("../../sample-rules/wat/demo-protocol.wat");

/// What the demo prints.
#[derive(Debug, Serialize)]
pub struct Demo {
    pub issuer: String,
    pub client_id: String,
    /// Demo client secret (rotated at every start so it can be shown).
    pub client_secret: String,
    /// Callback of the demo client on this server (a page that shows the code).
    pub redirect_uri: String,
    /// Demo user's email.
    pub email: String,
    /// Demo user's password.
    pub password: String,
    /// A URL to open in a browser.
    pub authorize_url: String,
    /// The sample web app's URL (with a trailing slash).
    pub webapp_url: String,
    /// The sample API's URL (with a trailing slash).
    pub api_url: String,
}

/// Creates what is missing of the demo — tenant, user, API, application (registered for the
/// sample web app at `webapp_base`, without a trailing slash) and the demo rule — and returns
/// how to use it.
pub async fn ensure(
    admin: &Admin,
    store: &Store,
    webapp_base: &str,
    api_url: &str,
) -> Result<Demo, AdminError> {
    let issuer = admin.public_url.issuer(TENANT);
    let redirect_uri = format!("{}/demo/callback", admin.public_url.as_str());
    let webapp_callback = format!("{webapp_base}/callback");
    let webapp_url = format!("{webapp_base}/");
    let tenant = match store
        .tenant_by_name(TENANT)
        .await
        .map_err(super::internal)?
    {
        Some(t) => t,
        None => {
            admin.create_tenant(TENANT, Default::default()).await?;
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
            .create_user_with(
                &resolved,
                super::users::NewUserInput {
                    email: EMAIL.into(),
                    password: PASSWORD.into(),
                    name: Some("Demo User".into()),
                    email_verified: true,
                    // The demo rule copies these into the tokens.
                    app_metadata: Some(serde_json::json!({"roles": ["demo-user", "reader"]})),
                    user_metadata: None,
                },
            )
            .await?;
    }
    if !admin
        .list_apis(&resolved)
        .await?
        .iter()
        .any(|a| a.identifier == API_IDENTIFIER)
    {
        admin
            .create_api_with(
                &resolved,
                super::apis::NewApiInput {
                    identifier: API_IDENTIFIER.into(),
                    name: Some("Demo API".into()),
                    scopes: vec![crate::store::ScopeDefinition {
                        value: API_SCOPE.into(),
                        description: "Read the demo API".into(),
                    }],
                    token_lifetime: None,
                    enforce_policies: false,
                    token_dialect: Default::default(),
                },
            )
            .await?;
    }
    if !admin
        .list_rules(&resolved)
        .await?
        .iter()
        .any(|r| r.name == RULE_NAME)
    {
        admin
            .add_rule(&resolved, RULE_NAME, RULE, None, true)
            .await?;
    }
    let existing = store
        .clients_named(&tenant.id, CLIENT_NAME)
        .await
        .map_err(super::internal)?
        .into_iter()
        .find(|c| !c.is_public());
    let client_id = match existing {
        Some(c) => c.client_id,
        None => {
            admin
                .create_client(
                    &resolved,
                    CLIENT_NAME,
                    std::slice::from_ref(&redirect_uri),
                    false,
                )
                .await?
                .client_id
        }
    };
    // The web app's port may differ from the last start: register where it is now.
    admin
        .update_client(
            &resolved,
            &client_id,
            super::clients::ClientPatch {
                callbacks: Some(vec![redirect_uri.clone(), webapp_callback]),
                allowed_logout_urls: Some(vec![webapp_url.clone()]),
                ..Default::default()
            },
        )
        .await?;
    let client_secret = admin
        .rotate_client_secret(&resolved, &client_id)
        .await?
        .client_secret
        .unwrap_or_default();
    let authorize_url = url::Url::parse_with_params(
        &format!("{issuer}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid profile email offline_access"),
            ("state", "demo-state"),
            ("nonce", "demo-nonce"),
        ],
    )
    .map_err(|e| AdminError::Internal(e.into()))?
    .to_string();
    Ok(Demo {
        issuer,
        client_id,
        client_secret,
        redirect_uri,
        email: EMAIL.into(),
        password: PASSWORD.into(),
        authorize_url,
        webapp_url,
        api_url: api_url.to_string(),
    })
}
