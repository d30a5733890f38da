use sqlx::FromRow;

use super::{Store, StoreResult, map_unique};

/// A user as stored. `password_hash` is an argon2id PHC string.
#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    /// `auth0|<hex>`-style id, stable for the user's life.
    pub user_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Lowercased email, unique per tenant.
    pub email: String,
    /// 1 when verified.
    pub email_verified: i64,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// JSON object, writable by rules and the Management API.
    pub app_metadata: String,
    /// JSON object, writable by rules and the Management API.
    pub user_metadata: String,
    /// Successful logins so far.
    pub logins_count: i64,
    /// Last successful login.
    pub last_login: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last profile change.
    pub updated_at: i64,
    /// 1 when the user may not log in (and their tokens stop working).
    pub blocked: i64,
}

/// What creating a user needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Id.
    pub user_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Lowercased email.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Full name.
    pub name: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

pub(super) const USER_COLUMNS: &str = "user_id, tenant_id, email, email_verified, password_hash, name, \
    given_name, family_name, nickname, picture, username, app_metadata, user_metadata, \
    logins_count, last_login, created_at, updated_at, blocked";

impl Store {
    /// Inserts a user with its metadata (JSON objects); a duplicate email in the tenant is a
    /// conflict.
    pub async fn insert_user(
        &self,
        u: &NewUser,
        app_metadata: &str,
        user_metadata: &str,
    ) -> StoreResult<()> {
        let nickname = u.email.split('@').next().unwrap_or_default().to_string();
        sqlx::query(
            "INSERT INTO app_user (user_id, tenant_id, email, email_verified, password_hash, name, nickname, \
             app_metadata, user_metadata, logins_count, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $10, 0, $8, $8)",
        )
        .bind(&u.user_id)
        .bind(&u.tenant_id)
        .bind(&u.email)
        .bind(i64::from(u.email_verified))
        .bind(&u.password_hash)
        .bind(&u.name)
        .bind(nickname)
        .bind(u.created_at)
        .bind(app_metadata)
        .bind(user_metadata)
        .execute(&self.writer)
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    /// A user of `tenant_id` by id.
    pub async fn user(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as::<_, UserRecord>(&format!(
            "SELECT {USER_COLUMNS} FROM app_user WHERE tenant_id = $1 AND user_id = $2"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// The user a grant was made for, if the grant stands (exists, not revoked) and the user
    /// may still use it (not blocked): what every check of an access token needs, in one query.
    pub async fn user_of_live_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let columns: Vec<String> = USER_COLUMNS
            .split(',')
            .map(|c| format!("u.{}", c.trim()))
            .collect();
        Ok(sqlx::query_as::<_, UserRecord>(&format!(
            "SELECT {} FROM app_user u JOIN token_grant g ON g.tenant_id = u.tenant_id AND g.user_id = u.user_id \
             WHERE u.tenant_id = $1 AND u.user_id = $2 AND g.id = $3 AND g.revoked_at IS NULL AND u.blocked = 0",
            columns.join(", ")
        ))
        .bind(tenant_id)
        .bind(user_id)
        .bind(grant_id)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// A user of `tenant_id` by (lowercased) email.
    pub async fn user_by_email(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> StoreResult<Option<UserRecord>> {
        Ok(sqlx::query_as::<_, UserRecord>(&format!(
            "SELECT {USER_COLUMNS} FROM app_user WHERE tenant_id = $1 AND email = $2"
        ))
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Counts a successful login.
    pub async fn record_login(&self, tenant_id: &str, user_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE app_user SET logins_count = logins_count + 1, last_login = $1 \
             WHERE tenant_id = $2 AND user_id = $3",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Counts one login attempt for `key` (before its password is checked) and returns the
    /// attempts in the current window, this one included. One statement: concurrent attempts
    /// each see their own count. A window older than `window_start_after` starts over.
    pub async fn count_login_attempt(
        &self,
        tenant_id: &str,
        key: &str,
        now: i64,
        window_start_after: i64,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO login_failure (tenant_id, throttle_key, failures, window_start) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant_id, throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_failure.window_start > $4 THEN login_failure.failures + 1 ELSE 1 END, \
               window_start = CASE WHEN login_failure.window_start > $4 THEN login_failure.window_start ELSE $3 END \
             RETURNING failures",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(now)
        .bind(window_start_after)
        .fetch_one(&self.writer)
        .await?)
    }

    /// Takes back one counted attempt of `key` (it succeeded, or was never checked).
    pub async fn forgive_login_attempt(&self, tenant_id: &str, key: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_failure SET failures = failures - 1 \
             WHERE tenant_id = $1 AND throttle_key = $2 AND failures > 0",
        )
        .bind(tenant_id)
        .bind(key)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Drops attempt counts whose window has passed.
    pub async fn prune_login_failures(&self, window_start_before: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failure WHERE window_start < $1")
            .bind(window_start_before)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Forgets failed logins for `key` after a success.
    pub async fn clear_login_failures(&self, tenant_id: &str, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failure WHERE tenant_id = $1 AND throttle_key = $2")
            .bind(tenant_id)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
