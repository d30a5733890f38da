//! APIs (resource servers), including the tenant's built-in Management API.

use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, MANAGEMENT_SCOPES, internal};
use crate::domain::{ApiIdentifier, DisplayName, ScopeSet, Tenant, TokenDialect};
use crate::store::{JsonText, ResourceServerRecord, ScopeDefinition, StoreError};

/// An API as the Management API shows it.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiView {
    /// Id (`system` for the Management API).
    pub id: String,
    /// Identifier: the access token's `aud`.
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Scopes it defines.
    #[schema(value_type = Vec<Object>)]
    pub scopes: Vec<ScopeDefinition>,
    /// True for the built-in Management API (read only).
    pub is_system: bool,
    /// Lifetime of access tokens for this API, seconds.
    pub token_lifetime: i64,
    /// Only scopes the user's roles permit are granted (RBAC).
    pub enforce_policies: bool,
    /// `access_token`, or `access_token_authz` to add `permissions` to its access tokens.
    #[schema(value_type = String)]
    pub token_dialect: TokenDialect,
}

impl From<ResourceServerRecord> for ApiView {
    fn from(r: ResourceServerRecord) -> Self {
        ApiView {
            scopes: r.scopes.0.clone(),
            id: r.id,
            identifier: r.identifier,
            name: r.name,
            is_system: false,
            token_lifetime: r.token_lifetime,
            enforce_policies: r.enforce_policies != 0,
            token_dialect: r.token_dialect,
        }
    }
}

/// What creating an API takes.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiInput {
    /// Absolute URL used as `aud`.
    pub identifier: String,
    /// Name (default: the identifier).
    pub name: Option<String>,
    /// Scopes `[{value, description}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub scopes: Vec<ScopeDefinition>,
    /// Lifetime of its access tokens, seconds (60 to 86400; default 3600). Short lifetimes are
    /// how an API that does not call introspection learns of a revocation.
    pub token_lifetime: Option<i64>,
    /// Grant only the scopes the user's roles permit (default false).
    #[serde(default)]
    pub enforce_policies: bool,
    /// `access_token` (default) or `access_token_authz`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub token_dialect: TokenDialect,
}

/// What updating an API may change (the identifier never changes: tokens carry it).
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    /// New name.
    pub name: Option<String>,
    /// New scope list.
    #[schema(value_type = Option<Vec<Object>>)]
    pub scopes: Option<Vec<ScopeDefinition>>,
    /// New access-token lifetime, seconds.
    pub token_lifetime: Option<i64>,
    /// Turn RBAC on or off.
    pub enforce_policies: Option<bool>,
    /// New token dialect.
    #[schema(value_type = Option<String>)]
    pub token_dialect: Option<TokenDialect>,
}

/// The default access-token lifetime of an API, seconds (Auth0's default).
pub const DEFAULT_TOKEN_LIFETIME: i64 = 3600;

pub(crate) fn check_token_lifetime(seconds: i64) -> Result<i64, AdminError> {
    if (60..=86_400).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(AdminError::Invalid(format!(
            "token_lifetime must be 60 to 86400 seconds, not {seconds}"
        )))
    }
}

pub(crate) fn check_scopes(scopes: &[ScopeDefinition]) -> Result<Vec<ScopeDefinition>, AdminError> {
    let mut out: Vec<ScopeDefinition> = Vec::new();
    if scopes.len() > 200 {
        return Err(AdminError::Invalid("at most 200 scopes per API".into()));
    }
    for d in scopes {
        if ScopeSet::parse(&d.value)?.iter().count() != 1 {
            return Err(AdminError::Invalid(format!("invalid scope {:?}", d.value)));
        }
        if out.iter().any(|o| o.value == d.value) {
            return Err(AdminError::Invalid(format!(
                "scope {:?} is listed twice",
                d.value
            )));
        }
        if d.description.chars().count() > 500 || d.description.chars().any(char::is_control) {
            return Err(AdminError::Invalid(format!(
                "invalid description for scope {:?}",
                d.value
            )));
        }
        let description = d.description.trim();
        out.push(ScopeDefinition {
            value: d.value.clone(),
            description: if description.is_empty() {
                d.value.clone()
            } else {
                description.to_string()
            },
        });
    }
    Ok(out)
}

/// The CLI's `VALUE=DESCRIPTION` scope arguments.
pub fn scope_args(scopes: &[String]) -> Vec<ScopeDefinition> {
    scopes
        .iter()
        .map(|s| {
            let (value, description) = s.split_once('=').unwrap_or((s.as_str(), ""));
            ScopeDefinition {
                value: value.to_string(),
                description: description.to_string(),
            }
        })
        .collect()
}

impl Admin {
    /// Registers an API with the CLI's `VALUE=DESCRIPTION` scopes.
    pub async fn create_api(
        &self,
        tenant: &Tenant,
        identifier: &str,
        name: Option<&str>,
        scopes: &[String],
    ) -> Result<ApiView, AdminError> {
        let scopes = scope_args(scopes);
        self.create_api_with(
            tenant,
            NewApiInput {
                identifier: identifier.into(),
                name: name.map(String::from),
                scopes,
                token_lifetime: None,
                enforce_policies: false,
                token_dialect: Default::default(),
            },
        )
        .await
    }

    pub async fn create_api_with(
        &self,
        tenant: &Tenant,
        input: NewApiInput,
    ) -> Result<ApiView, AdminError> {
        let identifier = ApiIdentifier::parse(&input.identifier)?;
        if identifier.as_str() == crate::domain::management::url(tenant) {
            return Err(AdminError::Conflict(
                "this identifier belongs to the Management API".into(),
            ));
        }
        if identifier
            .as_str()
            .to_ascii_lowercase()
            .starts_with(crate::domain::management::RESERVED_PREFIX)
        {
            return Err(AdminError::Invalid(format!(
                "identifiers starting with {} are reserved",
                crate::domain::management::RESERVED_PREFIX
            )));
        }
        let name = DisplayName::parse(
            "API name",
            input.name.as_deref().unwrap_or(identifier.as_str()),
        )?;
        let scopes = check_scopes(&input.scopes)?;
        let token_lifetime =
            check_token_lifetime(input.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME))?;
        let record = ResourceServerRecord {
            id: format!("api_{}", crate::crypto::random_token(12)),
            tenant_id: tenant.id.clone(),
            identifier: identifier.as_str().to_string(),
            name: name.as_str().to_string(),
            scopes: JsonText(scopes),
            created_at: self.clock.now(),
            token_lifetime,
            enforce_policies: i64::from(input.enforce_policies),
            token_dialect: input.token_dialect,
        };
        match self.store.insert_resource_server(&record).await {
            Ok(()) => Ok(record.into()),
            Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
                "an API with identifier {} already exists",
                identifier.as_str()
            ))),
            Err(e) => Err(internal(e)),
        }
    }

    fn management_api_view(&self, tenant: &Tenant) -> ApiView {
        ApiView {
            id: "system".into(),
            identifier: crate::domain::management::url(tenant),
            name: "Wardstone Management API".into(),
            scopes: MANAGEMENT_SCOPES
                .iter()
                .map(|s| ScopeDefinition {
                    value: s.to_string(),
                    description: s.replace([':', '_'], " "),
                })
                .collect(),
            is_system: true,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            enforce_policies: false,
            token_dialect: TokenDialect::AccessToken,
        }
    }

    /// APIs of a tenant, the Management API first.
    pub async fn list_apis(&self, tenant: &Tenant) -> Result<Vec<ApiView>, AdminError> {
        let mut out = vec![self.management_api_view(tenant)];
        out.extend(
            self.store
                .list_resource_servers(&tenant.id)
                .await
                .map_err(internal)?
                .into_iter()
                .map(ApiView::from),
        );
        Ok(out)
    }

    async fn api_record(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<ResourceServerRecord, AdminError> {
        self.store
            .resource_server(tenant_id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("API {id:?} does not exist")))
    }

    /// One API by id.
    pub async fn get_api(&self, tenant: &Tenant, id: &str) -> Result<ApiView, AdminError> {
        if id == "system" {
            return Ok(self.management_api_view(tenant));
        }
        Ok(self.api_record(&tenant.id, id).await?.into())
    }

    /// Renames an API or replaces its scopes.
    pub async fn update_api(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: ApiPatch,
    ) -> Result<ApiView, AdminError> {
        if id == "system" {
            return Err(AdminError::Invalid(
                "the Management API cannot be changed".into(),
            ));
        }
        let mut record = self.api_record(&tenant.id, id).await?;
        if let Some(name) = &patch.name {
            record.name = DisplayName::parse("API name", name)?.as_str().to_string();
        }
        let mut removed: Vec<String> = Vec::new();
        if let Some(scopes) = &patch.scopes {
            let scopes = check_scopes(scopes)?;
            removed = record
                .scopes
                .iter()
                .filter(|old| !scopes.iter().any(|s| s.value == old.value))
                .map(|old| old.value.clone())
                .collect();
            record.scopes = JsonText(scopes);
        }
        if let Some(seconds) = patch.token_lifetime {
            record.token_lifetime = check_token_lifetime(seconds)?;
        }
        if let Some(on) = patch.enforce_policies {
            record.enforce_policies = i64::from(on);
        }
        if let Some(dialect) = patch.token_dialect {
            record.token_dialect = dialect;
        }
        if !self
            .store
            .update_resource_server(&record)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("API {id:?} does not exist")));
        }
        // Roles lose permissions for scopes the API no longer has (RBAC ignores them already;
        // this keeps a re-added scope from reviving old grants).
        if !removed.is_empty() {
            self.store
                .drop_permissions_of_scopes(&tenant.id, &record.identifier, &removed)
                .await
                .map_err(internal)?;
        }
        Ok(record.into())
    }

    /// Deletes an API and the client grants for it.
    pub async fn delete_api(&self, tenant: &Tenant, id: &str) -> Result<(), AdminError> {
        if id == "system" {
            return Err(AdminError::Invalid(
                "the Management API cannot be deleted".into(),
            ));
        }
        if !self
            .store
            .delete_resource_server(&tenant.id, id)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("API {id:?} does not exist")));
        }
        Ok(())
    }
}
