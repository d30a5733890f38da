//! Queries of the Management API: listing, updating and deleting clients, users, APIs and
//! rules, and client grants.

use serde_json::{Map, Value};
use sqlx::FromRow;

use super::{
    ClientRecord, ResourceServerRecord, Store, StoreError, StoreResult, UserRecord, map_unique,
};

/// A client's permission to get tokens for an API with some scopes.
#[derive(Debug, Clone, FromRow)]
pub struct ClientGrantRecord {
    /// `cgr_...` id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The client.
    pub client_id: String,
    /// API identifier, or `urn:wardstone:management` for the tenant's Management API.
    pub audience: String,
    /// JSON array of scopes.
    pub scopes: String,
    /// Creation time.
    pub created_at: i64,
}

/// A user's profile fields the Management API may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New email (lowercased).
    pub email: Option<String>,
    /// New verification flag.
    pub email_verified: Option<bool>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// `Some(None)` clears the field.
    pub name: Option<Option<String>>,
    /// Given name.
    pub given_name: Option<Option<String>>,
    /// Family name.
    pub family_name: Option<Option<String>>,
    /// Nickname.
    pub nickname: Option<Option<String>>,
    /// Picture.
    pub picture: Option<Option<String>>,
    /// Username.
    pub username: Option<Option<String>>,
    /// First-level merge patch of app_metadata (`null` removes a key), applied under the
    /// row's lock so concurrent writers on any node never lose each other's keys.
    pub app_metadata_patch: Option<Map<String, Value>>,
    /// First-level merge patch of user_metadata.
    pub user_metadata_patch: Option<Map<String, Value>>,
    /// Block or unblock.
    pub blocked: Option<bool>,
    /// Largest metadata object allowed after the merge, bytes of JSON (checked inside the
    /// transaction, so a merge never stores more than that).
    pub max_metadata_bytes: Option<usize>,
}

use super::clients::{CLIENT_COLUMNS, RS_COLUMNS};
use super::users::USER_COLUMNS;

impl Store {
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
        let done = sqlx::query(
            "UPDATE client SET name = $1, redirect_uris = $2, grant_types = $3, metadata = $4, \
             logout_urls = $7 WHERE tenant_id = $5 AND client_id = $6",
        )
        .bind(&c.name)
        .bind(&c.redirect_uris)
        .bind(&c.grant_types)
        .bind(&c.metadata)
        .bind(&c.tenant_id)
        .bind(&c.client_id)
        .bind(&c.logout_urls)
        .execute(&self.writer)
        .await?;
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
        .map_err(map_unique)?;
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

    /// Users of a tenant, oldest first, optionally only the one with `email`.
    pub async fn list_users(
        &self,
        tenant_id: &str,
        email: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<UserRecord>> {
        let filter = if email.is_some() {
            "AND email = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM app_user WHERE tenant_id = $1 {filter} ORDER BY created_at, user_id LIMIT $2 OFFSET $3"
        );
        let mut q = sqlx::query_as::<_, UserRecord>(&sql)
            .bind(tenant_id)
            .bind(limit)
            .bind(offset);
        if let Some(e) = email {
            q = q.bind(e);
        }
        Ok(q.fetch_all(&self.reader).await?)
    }

    /// Applies profile changes; false when the user does not exist; a taken email conflicts.
    pub async fn update_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        c: &UserChanges,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Writing first takes the row lock (PostgreSQL) or the write lock (SQLite) before the
        // metadata is read, so the read-merge-write below cannot interleave with another node's.
        let locked = sqlx::query(
            "UPDATE app_user SET updated_at = $1 WHERE tenant_id = $2 AND user_id = $3",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut sets: Vec<String> = vec!["updated_at = $1".into()];
        let mut values: Vec<Option<String>> = Vec::new();
        let mut push = |col: &str, v: Option<String>| {
            values.push(v);
            sets.push(format!("{col} = ${}", values.len() + 3));
        };
        if let Some(v) = &c.email {
            push("email", Some(v.clone()));
        }
        if let Some(v) = &c.password_hash {
            push("password_hash", Some(v.clone()));
        }
        for (col, v) in [
            ("name", &c.name),
            ("given_name", &c.given_name),
            ("family_name", &c.family_name),
            ("nickname", &c.nickname),
            ("picture", &c.picture),
            ("username", &c.username),
        ] {
            if let Some(v) = v {
                push(col, v.clone());
            }
        }
        if c.app_metadata_patch.is_some() || c.user_metadata_patch.is_some() {
            let (app, user): (String, String) =
                sqlx::query_as("SELECT app_metadata, user_metadata FROM app_user WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant_id)
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            for (col, current, patch) in [
                ("app_metadata", app, &c.app_metadata_patch),
                ("user_metadata", user, &c.user_metadata_patch),
            ] {
                if let Some(patch) = patch {
                    let mut merged: Map<String, Value> =
                        serde_json::from_str(&current).map_err(|e| {
                            StoreError::Corrupt(format!("app_user {user_id} {col}: {e}"))
                        })?;
                    merge_first_level(&mut merged, patch);
                    let text = Value::Object(merged).to_string();
                    if let Some(max) = c.max_metadata_bytes
                        && text.len() > max
                    {
                        tx.rollback().await?;
                        return Err(StoreError::TooLarge(format!(
                            "{col} would be {} bytes after the merge; at most {max} are allowed",
                            text.len()
                        )));
                    }
                    push(col, Some(text));
                }
            }
        }
        if let Some(v) = c.email_verified {
            sets.push(format!("email_verified = {}", i64::from(v)));
        }
        if let Some(v) = c.blocked {
            sets.push(format!("blocked = {}", i64::from(v)));
        }
        let sql = format!(
            "UPDATE app_user SET {} WHERE tenant_id = $2 AND user_id = $3",
            sets.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now).bind(tenant_id).bind(user_id);
        for v in values {
            q = q.bind(v);
        }
        let done = q.execute(&mut *tx).await.map_err(map_unique)?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a user and revokes every grant (so their refresh tokens stop
    /// working and their access tokens are inactive).
    pub async fn end_user_access(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM sso_session WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE token_grant SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a user with their sessions, consents, codes and tokens.
    pub async fn delete_user(&self, tenant_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        for table in ["refresh_token", "token_grant", "sso_session", "consent"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2"
            ))
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM app_user WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// APIs of a tenant.
    pub async fn list_resource_servers(
        &self,
        tenant_id: &str,
    ) -> StoreResult<Vec<ResourceServerRecord>> {
        Ok(sqlx::query_as::<_, ResourceServerRecord>(&format!(
            "SELECT {RS_COLUMNS} FROM resource_server WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// One API by id.
    pub async fn resource_server(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<Option<ResourceServerRecord>> {
        Ok(sqlx::query_as::<_, ResourceServerRecord>(&format!(
            "SELECT {RS_COLUMNS} FROM resource_server WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Renames an API or replaces its scopes.
    pub async fn update_resource_server(&self, r: &ResourceServerRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE resource_server SET name = $1, scopes = $2, token_lifetime = $5 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(&r.name)
        .bind(&r.scopes)
        .bind(&r.tenant_id)
        .bind(&r.id)
        .bind(r.token_lifetime)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an API and the client grants for it.
    pub async fn delete_resource_server(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Never the Management API's grants, whatever identifier the API has.
        sqlx::query(
            "DELETE FROM client_grant WHERE tenant_id = $1 AND audience <> 'urn:wardstone:management' \
             AND audience IN (SELECT identifier FROM resource_server WHERE tenant_id = $1 AND id = $2)",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM resource_server WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Merges `patch` into `target` at the first level, as Auth0 does for metadata: `null` removes
/// a key, anything else replaces it.
pub fn merge_first_level(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}
