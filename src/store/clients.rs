//! Applications (OAuth clients) and their grants to APIs.

use serde_json::{Map, Value};
use sqlx::{Any, FromRow, Transaction};

use super::tenants::{Generation, bump_generation};
use super::{Flag, JsonText, OrConflict, Store, StoreResult, json_text};
use crate::domain::GrantType;

/// An application (OAuth client) as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ClientRecord {
    /// Public identifier.
    pub client_id: String,
    pub tenant_id: String,
    /// Display name shown on login and consent pages.
    pub name: String,
    /// sha256 of the client secret; `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    /// Registered callback URLs.
    pub redirect_uris: JsonText<Vec<String>>,
    pub grant_types: JsonText<Vec<GrantType>>,
    /// Tenant-defined metadata.
    pub metadata: JsonText<Map<String, Value>>,
    pub created_at: i64,
    /// URLs the browser may be sent to after an RP-initiated logout.
    pub logout_urls: JsonText<Vec<String>>,
    /// Auth0's `app_type`.
    pub app_type: Option<crate::domain::AppType>,
    /// Auth0's `is_first_party`.
    pub is_first_party: Flag,
    pub description: String,
    pub logo_uri: Option<String>,
    /// ID token lifetime for this client, seconds (`None`: the default).
    pub id_token_lifetime: Option<i64>,
}

impl ClientRecord {
    /// The registered callback URLs.
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    /// The registered post-logout redirect URLs.
    pub fn logout_urls(&self) -> &[String] {
        &self.logout_urls
    }

    /// Whether the client is public (no secret, PKCE mandatory).
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Whether the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }
}

/// What creating a client needs.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Public identifier.
    pub client_id: String,
    pub tenant_id: String,
    pub name: String,
    /// sha256 of the secret, `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    /// Exact callback URLs.
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Exact post-logout redirect URLs.
    pub logout_urls: Vec<String>,
    /// Tenant-defined metadata.
    pub metadata: Map<String, Value>,
    /// Auth0's `app_type`.
    pub app_type: Option<crate::domain::AppType>,
    /// Auth0's `is_first_party`.
    pub is_first_party: bool,
    pub description: String,
    pub logo_uri: Option<String>,
    /// ID token lifetime, seconds.
    pub id_token_lifetime: Option<i64>,
    pub created_at: i64,
}

pub(super) const CLIENT_COLUMNS: &str = "client_id, tenant_id, name, secret_hash, redirect_uris, grant_types, metadata, created_at, logout_urls, \
    app_type, is_first_party, description, logo_uri, id_token_lifetime";

/// A client's permission to get tokens for an API with some scopes.
#[derive(Debug, Clone, FromRow)]
pub struct ClientGrantRecord {
    /// `cgr_...` id.
    pub id: String,
    pub tenant_id: String,
    pub client_id: String,
    /// API identifier, or `urn:wardstone:management` for the tenant's Management API.
    pub audience: String,
    pub scopes: JsonText<Vec<String>>,
    pub created_at: i64,
}

impl Store {
    /// Inserts a client with its metadata (a JSON object).
    pub async fn insert_client(&self, c: &NewClient) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        Self::insert_client_in(&mut tx, c).await?;
        bump_generation(&mut tx, &c.tenant_id, Generation::Clients).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn insert_client_in(
        tx: &mut Transaction<'_, Any>,
        c: &NewClient,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO client (client_id, tenant_id, name, secret_hash, redirect_uris, grant_types, metadata, created_at, logout_urls, \
             app_type, is_first_party, description, logo_uri, id_token_lifetime) \
             VALUES ($1, $2, $3, $4, $5, $6, $8, $7, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&c.client_id)
        .bind(&c.tenant_id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(json_text(&c.redirect_uris))
        .bind(json_text(&c.grant_types))
        .bind(c.created_at)
        .bind(json_text(&c.metadata))
        .bind(json_text(&c.logout_urls))
        .bind(c.app_type.map(|t| t.as_str()))
        .bind(i64::from(c.is_first_party))
        .bind(&c.description)
        .bind(&c.logo_uri)
        .bind(c.id_token_lifetime)
        .execute(&mut **tx)
        .await
        .or_conflict()?;
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
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE client SET secret_hash = $1 WHERE tenant_id = $2 AND client_id = $3",
        )
        .bind(secret_hash)
        .bind(tenant_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        bump_generation(&mut tx, tenant_id, Generation::Clients).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `client_id` is used by a client of any tenant (ids are unique server-wide).
    pub async fn client_id_taken(&self, client_id: &str) -> StoreResult<bool> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT client_id FROM client WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(found.is_some())
    }

    /// Clients of a tenant, oldest first.
    pub async fn list_clients(
        &self,
        tenant_id: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClientRecord>> {
        Ok(sqlx::query_as::<_, ClientRecord>(&format!(
            "SELECT {CLIENT_COLUMNS} FROM client WHERE tenant_id = $1 ORDER BY created_at, client_id LIMIT $2 OFFSET $3"
        ))
        .bind(tenant_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Replaces a client's mutable fields; false when it does not exist.
    pub async fn update_client(&self, c: &ClientRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE client SET name = $1, redirect_uris = $2, grant_types = $3, metadata = $4, \
             logout_urls = $7, app_type = $8, is_first_party = $9, description = $10, logo_uri = $11, \
             id_token_lifetime = $12 WHERE tenant_id = $5 AND client_id = $6",
        )
        .bind(&c.name)
        .bind(&c.redirect_uris)
        .bind(&c.grant_types)
        .bind(&c.metadata)
        .bind(&c.tenant_id)
        .bind(&c.client_id)
        .bind(&c.logout_urls)
        .bind(c.app_type.map(|t| t.as_str()))
        .bind(c.is_first_party)
        .bind(&c.description)
        .bind(&c.logo_uri)
        .bind(c.id_token_lifetime)
        .execute(&mut *tx)
        .await?;
        bump_generation(&mut tx, &c.tenant_id, Generation::Clients).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a client with its grants, consents and tokens; false when it does not exist.
    pub async fn delete_client(&self, tenant_id: &str, client_id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        for table in ["refresh_token", "token_grant", "login_transaction"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND client_id = $2"
            ))
            .bind(tenant_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM client WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        bump_generation(&mut tx, tenant_id, Generation::Clients).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a client grant; a second grant for the same client and API is a conflict.
    pub async fn insert_client_grant(&self, g: &ClientGrantRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO client_grant (id, tenant_id, client_id, audience, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&g.id)
        .bind(&g.tenant_id)
        .bind(&g.client_id)
        .bind(&g.audience)
        .bind(&g.scopes)
        .bind(g.created_at)
        .execute(&self.writer)
        .await
        .or_conflict()?;
        Ok(())
    }

    /// The grant of `client_id` for `audience`.
    pub async fn client_grant_for(
        &self,
        tenant_id: &str,
        client_id: &str,
        audience: &str,
    ) -> StoreResult<Option<ClientGrantRecord>> {
        Ok(sqlx::query_as::<_, ClientGrantRecord>(
            "SELECT id, tenant_id, client_id, audience, scopes, created_at FROM client_grant \
             WHERE tenant_id = $1 AND client_id = $2 AND audience = $3",
        )
        .bind(tenant_id)
        .bind(client_id)
        .bind(audience)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Client grants of a tenant.
    pub async fn list_client_grants(&self, tenant_id: &str) -> StoreResult<Vec<ClientGrantRecord>> {
        Ok(sqlx::query_as::<_, ClientGrantRecord>(
            "SELECT id, tenant_id, client_id, audience, scopes, created_at FROM client_grant \
             WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Deletes a client grant (never the Management API's); false when it does not exist.
    pub async fn delete_client_grant(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM client_grant WHERE tenant_id = $1 AND id = $2 AND audience <> 'urn:wardstone:management'",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
