use sqlx::FromRow;

use super::{Store, StoreResult};

/// A pending authorization request waiting for login and consent.
#[derive(Debug, Clone, FromRow)]
pub struct LoginTransactionRecord {
    /// sha256 of the transaction id carried in page URLs.
    pub id_hash: Vec<u8>,
    pub tenant_id: String,
    pub client_id: String,
    /// JSON of the validated authorization request.
    pub request: String,
    /// sha256 of the browser cookie that started the transaction.
    pub browser_hash: Vec<u8>,
    /// When the user logged in during this transaction.
    pub logged_in_at: Option<i64>,
    /// When the user consented during this transaction.
    pub consented_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    /// A post-login run an action paused with a redirect, sealed: the transaction then waits
    /// at `/continue` and is good for nothing else.
    pub resume: Option<Vec<u8>>,
}

/// An SSO session.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    /// sha256 of the cookie value.
    pub id_hash: Vec<u8>,
    pub tenant_id: String,
    /// Who logged in.
    pub user_id: String,
    /// When the user last entered credentials.
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A live SSO session read with its user ([`Store::session_with_user`]).
#[derive(Debug)]
pub struct SessionWithUser {
    pub session: SessionRecord,
    pub user: super::UserRecord,
    /// The user's role names, in name order.
    pub roles: Vec<String>,
    /// The scopes the user granted the client asked about (`None`: none, or not asked).
    pub granted: Option<crate::domain::ScopeSet>,
}

const TX_COLUMNS: &str = "id_hash, tenant_id, client_id, request, browser_hash, \
    logged_in_at, consented_at, created_at, expires_at, resume";

impl Store {
    /// Stores a new login transaction; the browser's oldest beyond `keep_per_browser` go.
    pub async fn insert_login_transaction(
        &self,
        t: &LoginTransactionRecord,
        keep_per_browser: i64,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO login_transaction ({TX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&t.id_hash)
        .bind(&t.tenant_id)
        .bind(&t.client_id)
        .bind(&t.request)
        .bind(&t.browser_hash)
        .bind(t.logged_in_at)
        .bind(t.consented_at)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(&t.resume)
        .execute(&mut *tx)
        .await?;
        // The new one always stays; of the others, the newest `keep - 1` do.
        sqlx::query(
            "DELETE FROM login_transaction WHERE browser_hash = $1 AND id_hash <> $2 AND id_hash NOT IN \
             (SELECT id_hash FROM login_transaction WHERE browser_hash = $1 AND id_hash <> $2 \
              ORDER BY created_at DESC, id_hash LIMIT $3)",
        )
        .bind(&t.browser_hash)
        .bind(&t.id_hash)
        .bind(keep_per_browser - 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live (unexpired) login transaction of `tenant_id`.
    pub async fn login_transaction(
        &self,
        tenant_id: &str,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<LoginTransactionRecord>> {
        Ok(sqlx::query_as::<_, LoginTransactionRecord>(&format!(
            "SELECT {TX_COLUMNS} FROM login_transaction WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3"
        ))
        .bind(tenant_id)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Records that the user authenticated during the transaction.
    pub async fn mark_transaction_logged_in(&self, id_hash: &[u8], now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE login_transaction SET logged_in_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records that the user consented during the transaction.
    pub async fn mark_transaction_consented(&self, id_hash: &[u8], now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE login_transaction SET consented_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends a transaction. Returns false when it was already gone, so that two concurrent
    /// completions of one transaction cannot both issue a code.
    pub async fn delete_login_transaction(&self, id_hash: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM login_transaction WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Drops expired transactions and sessions, and grants that can no longer matter: a grant
    /// whose code was never redeemed once the code expired, a redeemed one once every token
    /// of it has expired (until then a late replay of its code still revokes them).
    pub async fn prune_expired(&self, now: i64, grant_lifetime: i64) -> StoreResult<()> {
        for table in ["login_transaction", "sso_session"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE expires_at < $1"))
                .bind(now - 3600)
                .execute(&self.writer)
                .await?;
        }
        // Expired refresh tokens first: a grant goes only when none of its tokens can live.
        sqlx::query("DELETE FROM refresh_token WHERE expires_at < $1")
            .bind(now - 3600)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "DELETE FROM token_grant WHERE ((consumed_at IS NULL AND expires_at < $1) OR expires_at < $2) \
             AND NOT EXISTS (SELECT 1 FROM refresh_token r WHERE r.grant_id = token_grant.id)",
        )
        .bind(now - 3600)
        .bind(now - grant_lifetime)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Stores a new SSO session.
    pub async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sso_session (id_hash, tenant_id, user_id, auth_time, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.tenant_id)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A live session of `tenant_id`.
    pub async fn session(
        &self,
        tenant_id: &str,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(sqlx::query_as::<_, SessionRecord>(
            "SELECT id_hash, tenant_id, user_id, auth_time, created_at, expires_at FROM sso_session \
             WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3",
        )
        .bind(tenant_id)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// A live session of `tenant_id` and its user, in one read: every login through the SSO
    /// session needs both. With `consent_for` (client id, audience or ''), the scopes the user
    /// granted that client come with them: a login through the session checks them next, and
    /// the subquery is an index probe where a separate read was a round trip to a reader.
    pub async fn session_with_user(
        &self,
        tenant_id: &str,
        id_hash: &[u8],
        now: i64,
        consent_for: Option<(&str, &str)>,
    ) -> StoreResult<Option<SessionWithUser>> {
        use sqlx::Row;
        use std::sync::LazyLock;
        // Written once per dialect: this read is on every login with a session. The user's
        // role names come with it as one JSON array, ordered like `user_role_names`: rules and
        // actions read them on the same login, and the subquery is an index probe where a
        // separate read was a round trip to a reader.
        fn sql(roles: &str) -> String {
            let user_columns: Vec<String> = super::users::USER_COLUMNS
                .split(',')
                .map(|c| format!("u.{}", c.trim()))
                .collect();
            format!(
                "SELECT s.id_hash AS s_id_hash, s.auth_time AS s_auth_time, \
                 s.created_at AS s_created_at, s.expires_at AS s_expires_at, \
                 (SELECT {roles} FROM user_role ur \
                  JOIN role r ON r.id = ur.role_id AND r.tenant_id = ur.tenant_id \
                  WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id) AS roles_json, \
                 (SELECT c.scopes FROM consent c WHERE c.tenant_id = u.tenant_id \
                  AND c.user_id = u.user_id AND c.client_id = $4 AND c.audience = $5) AS granted, {} \
                 FROM sso_session s JOIN app_user u ON u.tenant_id = s.tenant_id AND u.user_id = s.user_id \
                 WHERE s.tenant_id = $1 AND s.id_hash = $2 AND s.expires_at > $3",
                user_columns.join(", ")
            )
        }
        static SQLITE: LazyLock<String> =
            LazyLock::new(|| sql("json_group_array(r.name ORDER BY r.name)"));
        static POSTGRES: LazyLock<String> =
            LazyLock::new(|| sql("COALESCE(json_agg(r.name ORDER BY r.name), '[]'::json)::text"));
        let statement = match self.backend() {
            super::Backend::Sqlite => SQLITE.as_str(),
            super::Backend::Postgres => POSTGRES.as_str(),
        };
        if let Some(direct) = &self.direct {
            let client_id = consent_for.map(|(client_id, _)| client_id);
            let audience = consent_for.map(|(_, audience)| audience);
            let params = rusqlite::named_params! {
                "$1": tenant_id, "$2": id_hash, "$3": now, "$4": client_id, "$5": audience,
            };
            let read = direct.row(statement, params, |row| {
                let user = super::direct::user_of(row)?;
                Ok(SessionWithUser {
                    session: SessionRecord {
                        id_hash: row.get("s_id_hash")?,
                        tenant_id: user.tenant_id.clone(),
                        user_id: user.user_id.clone(),
                        auth_time: row.get("s_auth_time")?,
                        created_at: row.get("s_created_at")?,
                        expires_at: row.get("s_expires_at")?,
                    },
                    roles: row.get::<_, super::JsonText<Vec<String>>>("roles_json")?.0,
                    granted: row.get("granted")?,
                    user,
                })
            });
            if let Some(found) = read {
                return Ok(found);
            }
        }
        let row = sqlx::query(statement)
            .bind(tenant_id)
            .bind(id_hash)
            .bind(now)
            // NULL matches no consent row.
            .bind(consent_for.map(|(client_id, _)| client_id))
            .bind(consent_for.map(|(_, audience)| audience))
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let roles: super::JsonText<Vec<String>> = row.try_get("roles_json")?;
        let granted: Option<crate::domain::ScopeSet> = row.try_get("granted")?;
        let user = super::UserRecord::from_row(&row)?;
        let session = SessionRecord {
            id_hash: row.try_get("s_id_hash")?,
            tenant_id: user.tenant_id.clone(),
            user_id: user.user_id.clone(),
            auth_time: row.try_get("s_auth_time")?,
            created_at: row.try_get("s_created_at")?,
            expires_at: row.try_get("s_expires_at")?,
        };
        Ok(Some(SessionWithUser {
            session,
            user,
            roles: roles.0,
            granted,
        }))
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sso_session WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The scopes a user has granted a client for `audience` ('' for none), space-separated.
    pub async fn consent(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
        audience: &str,
    ) -> StoreResult<Option<crate::domain::ScopeSet>> {
        Ok(sqlx::query_scalar(
            "SELECT scopes FROM consent WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3 AND audience = $4",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(client_id)
        .bind(audience)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Remembers granted scopes (the caller passes the union with what was granted before).
    pub async fn save_consent(
        &self,
        tenant_id: &str,
        user_id: &str,
        client_id: &str,
        audience: &str,
        scopes: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consent (tenant_id, user_id, client_id, audience, scopes, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, user_id, client_id, audience) DO UPDATE SET scopes = $5, updated_at = $6",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(client_id)
        .bind(audience)
        .bind(scopes)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
