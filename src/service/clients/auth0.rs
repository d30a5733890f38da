//! The Auth0 compatibility policy for client bodies: what Auth0's tools send that Wardstone
//! accepts and ignores, what it accepts only when off, and the Auth0 fields it stores.

use serde_json::{Map, Value};

use super::JwtConfiguration;
use crate::domain::{AppType, Tenant};
use crate::service::AdminError;
use crate::store::ClientRecord;

/// Auth0 client fields Wardstone accepts and ignores: read-only fields Auth0's own tools send
/// back, and settings of features Wardstone does not have. Any other unknown field is a 400,
/// so a typo is never silently dropped. `docs/management-api.md` lists what each field does.
pub const IGNORED_AUTH0_CLIENT_FIELDS: &[&str] = &[
    "client_id",
    "tenant",
    "global",
    "signing_keys",
    "callback_url_template",
    "is_heroku_app",
    "owners",
    "initiate_login_uri",
    "web_origins",
    "allowed_origins",
    "allowed_clients",
    "client_aliases",
    "sso",
    "sso_disabled",
    "cross_origin_authentication",
    "cross_origin_auth",
    "cross_origin_loc",
    "custom_login_page_on",
    "custom_login_page",
    "custom_login_page_preview",
    "form_template",
    "is_token_endpoint_ip_header_trusted",
    "refresh_token",
    "organization_usage",
    "organization_require_behavior",
    "native_social_login",
    "mobile",
    "addons",
    "encryption_key",
    "oidc_backchannel_logout",
    "oidc_logout",
    "token_quota",
    "default_organization",
];

/// Auth0 client settings that would make a client stricter than Wardstone can enforce: accepted
/// only when off (`false` or `null`).
pub const HARDENING_AUTH0_CLIENT_FIELDS: &[&str] = &[
    "require_pushed_authorization_requests",
    "require_proof_of_possession",
    "client_authentication_methods",
    "signed_request_object",
    "compliance_level",
];

/// Parses a create or update body sent in Auth0's shape: documented ignored fields are
/// dropped, then the rest must match `T` exactly.
pub fn parse_auth0_body<T: serde::de::DeserializeOwned>(
    mut body: Map<String, Value>,
) -> Result<T, AdminError> {
    // A secret is never set by a body: rotation makes one and shows it once.
    if body.contains_key("client_secret") {
        return Err(AdminError::Invalid(
            "client_secret cannot be set; POST /clients/{id}/rotate-secret makes a new one".into(),
        ));
    }
    // Protections Wardstone does not offer are refused when asked for, never silently dropped:
    // an administrator must not believe they are on.
    for field in HARDENING_AUTH0_CLIENT_FIELDS {
        if let Some(v) = body.remove(*field)
            && !matches!(v, Value::Null | Value::Bool(false))
        {
            return Err(AdminError::Invalid(format!(
                "{field} is not supported by Wardstone; leave it out (or false/null)"
            )));
        }
    }
    for field in IGNORED_AUTH0_CLIENT_FIELDS {
        body.remove(*field);
    }
    serde_json::from_value(Value::Object(body)).map_err(|e| AdminError::Invalid(e.to_string()))
}

/// The Auth0 client fields Wardstone stores, checked.
#[derive(Debug, Clone)]
pub(super) struct Auth0Settings {
    pub(super) app_type: Option<AppType>,
    pub(super) is_first_party: bool,
    pub(super) description: String,
    pub(super) logo_uri: Option<String>,
    pub(super) id_token_lifetime: Option<i64>,
}

impl Default for Auth0Settings {
    fn default() -> Self {
        Auth0Settings {
            app_type: None,
            is_first_party: true,
            description: String::new(),
            logo_uri: None,
            id_token_lifetime: None,
        }
    }
}

impl Auth0Settings {
    pub(super) fn of(c: &ClientRecord) -> Self {
        Auth0Settings {
            app_type: c.app_type,
            is_first_party: *c.is_first_party,
            description: c.description.clone(),
            logo_uri: c.logo_uri.clone(),
            id_token_lifetime: c.id_token_lifetime,
        }
    }

    /// `base` with the given fields applied, each checked.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check(
        tenant: &Tenant,
        base: &Self,
        app_type: Option<AppType>,
        is_first_party: Option<bool>,
        oidc_conformant: Option<bool>,
        description: Option<&str>,
        logo_uri: Option<&str>,
        jwt: Option<&JwtConfiguration>,
    ) -> Result<Self, AdminError> {
        let mut out = base.clone();
        if oidc_conformant == Some(false) {
            return Err(AdminError::Invalid(
                "oidc_conformant cannot be false: Wardstone only speaks OIDC-conformant flows"
                    .into(),
            ));
        }
        if let Some(t) = app_type {
            out.app_type = Some(t);
        }
        if let Some(f) = is_first_party {
            out.is_first_party = f;
        }
        if let Some(d) = description {
            if d.chars().count() > 140 || d.chars().any(char::is_control) {
                return Err(AdminError::Invalid(
                    "description must be at most 140 characters without control characters".into(),
                ));
            }
            out.description = d.to_string();
        }
        if let Some(u) = logo_uri {
            let parsed = url::Url::parse(u)
                .ok()
                .filter(|p| p.scheme() == "https" && u.len() <= 2048);
            if parsed.is_none() {
                return Err(AdminError::Invalid(format!(
                    "logo_uri must be an https URL, not {u:?}"
                )));
            }
            out.logo_uri = Some(u.to_string());
        }
        if let Some(jwt) = jwt {
            if let Some(alg) = &jwt.alg
                && alg != tenant.signing_alg.as_str()
            {
                return Err(AdminError::Invalid(format!(
                    "jwt_configuration.alg {alg:?} is not this tenant's algorithm {}: tokens are signed per tenant",
                    tenant.signing_alg
                )));
            }
            if let Some(seconds) = jwt.lifetime_in_seconds {
                if !(60..=2_592_000).contains(&seconds) {
                    return Err(AdminError::Invalid(format!(
                        "jwt_configuration.lifetime_in_seconds must be 60 to 2592000, not {seconds}"
                    )));
                }
                out.id_token_lifetime = Some(seconds);
            }
        }
        Ok(out)
    }
}
