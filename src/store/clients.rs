use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{Store, StoreResult, json_text, map_unique};

/// An application (OAuth client) as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ClientRecord {
    /// Public identifier.
    pub client_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Display name shown on login and consent pages.
    pub name: String,
    /// sha256 of the client secret; `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    /// JSON array of registered callback URLs.
    pub redirect_uris: String,
    /// JSON array of allowed grant types.
    pub grant_types: String,
    /// JSON object of tenant-defined metadata.
    pub metadata: String,
    /// Creation time.
    pub created_at: i64,
    /// JSON array of URLs the browser may be sent to after an RP-initiated logout.
    pub logout_urls: String,
}

impl ClientRecord {
    /// The registered callback URLs.
    pub fn redirect_uris(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }

    /// The registered post-logout redirect URLs.
    pub fn logout_urls(&self) -> Vec<String> {
        serde_json::from_str(&self.logout_urls).unwrap_or_default()
    }

    /// Whether the client is public (no secret, PKCE mandatory).
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Whether the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        serde_json::from_str::<Vec<String>>(&self.grant_types)
            .unwrap_or_default()
            .iter()
            .any(|g| g == grant_type)
    }
}

/// What creating a client needs.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Public identifier.
    pub client_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Display name.
    pub name: String,
    /// sha256 of the secret, `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    /// Exact callback URLs.
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Exact post-logout redirect URLs.
    pub logout_urls: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

/// One scope an API defines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScopeDefinition {
    /// The scope token, e.g. `read:messages`.
    pub value: String,
    /// What granting it allows, shown on the consent page.
    pub description: String,
}

/// An API (resource server) as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ResourceServerRecord {
    /// Internal id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The audience value.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// JSON array of [`ScopeDefinition`].
    pub scopes: String,
    /// Creation time.
    pub created_at: i64,
    /// Lifetime of access tokens for this API, seconds.
    pub token_lifetime: i64,
}

impl ResourceServerRecord {
    /// The scopes this API defines.
    pub fn scopes(&self) -> Vec<ScopeDefinition> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }
}

pub(super) const RS_COLUMNS: &str =
    "id, tenant_id, identifier, name, scopes, created_at, token_lifetime";

pub(super) const CLIENT_COLUMNS: &str = "client_id, tenant_id, name, secret_hash, redirect_uris, grant_types, metadata, created_at, logout_urls";

impl Store {
    /// Inserts a client with its metadata (a JSON object).
    pub async fn insert_client(&self, c: &NewClient, metadata: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO client (client_id, tenant_id, name, secret_hash, redirect_uris, grant_types, metadata, created_at, logout_urls) \
             VALUES ($1, $2, $3, $4, $5, $6, $8, $7, $9)",
        )
        .bind(&c.client_id)
        .bind(&c.tenant_id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(json_text(&c.redirect_uris))
        .bind(json_text(&c.grant_types))
        .bind(c.created_at)
        .bind(metadata)
        .bind(json_text(&c.logout_urls))
        .execute(&self.writer)
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    /// A client of `tenant_id`; clients of other tenants are invisible.
    pub async fn client(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ClientRecord>> {
        Ok(sqlx::query_as::<_, ClientRecord>(&format!(
            "SELECT {CLIENT_COLUMNS} FROM client WHERE tenant_id = $1 AND client_id = $2"
        ))
        .bind(tenant_id)
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Clients of a tenant whose name is `name`.
    pub async fn clients_named(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> StoreResult<Vec<ClientRecord>> {
        Ok(sqlx::query_as::<_, ClientRecord>(&format!(
            "SELECT {CLIENT_COLUMNS} FROM client WHERE tenant_id = $1 AND name = $2 ORDER BY created_at"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Replaces a client's secret hash.
    pub async fn set_client_secret(
        &self,
        tenant_id: &str,
        client_id: &str,
        secret_hash: &[u8],
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE client SET secret_hash = $1 WHERE tenant_id = $2 AND client_id = $3",
        )
        .bind(secret_hash)
        .bind(tenant_id)
        .bind(client_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts an API.
    pub async fn insert_resource_server(&self, r: &ResourceServerRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resource_server (id, tenant_id, identifier, name, scopes, created_at, token_lifetime) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(&r.tenant_id)
        .bind(&r.identifier)
        .bind(&r.name)
        .bind(&r.scopes)
        .bind(r.created_at)
        .bind(r.token_lifetime)
        .execute(&self.writer)
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    /// The API of a tenant whose identifier is `identifier`.
    pub async fn resource_server_by_identifier(
        &self,
        tenant_id: &str,
        identifier: &str,
    ) -> StoreResult<Option<ResourceServerRecord>> {
        Ok(sqlx::query_as::<_, ResourceServerRecord>(&format!(
            "SELECT {RS_COLUMNS} FROM resource_server WHERE tenant_id = $1 AND identifier = $2"
        ))
        .bind(tenant_id)
        .bind(identifier)
        .fetch_optional(&self.reader)
        .await?)
    }
}
