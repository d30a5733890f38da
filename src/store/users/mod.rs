//! Users, their profile changes and metadata merges; login-attempt counting in `attempts`, an
//! import's bulk rows in `import`.

mod attempts;
mod import;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::{Flag, JsonText, OrConflict, Store, StoreError, StoreResult};
use crate::domain::Profile;
pub use attempts::AttemptCounts;
pub use import::{IMPORT_BATCH, ImportedUser, UserImport};

/// A user as stored. `password_hash` is an argon2id PHC string — or, for a user imported from
/// Auth0 until their first login, the imported bcrypt/argon2/PBKDF2 hash, or empty (no password
/// here: lazy migration or a reset).
#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    /// `auth0|<hex>`-style id, stable for the user's life.
    pub user_id: String,
    pub tenant_id: String,
    /// Lowercased email, unique per tenant.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: Flag,
    /// argon2id PHC string.
    pub password_hash: String,
    #[sqlx(flatten)]
    pub profile: Profile,
    /// Writable by rules and the Management API.
    pub app_metadata: JsonText<Map<String, Value>>,
    /// Writable by rules and the Management API.
    pub user_metadata: JsonText<Map<String, Value>>,
    /// Successful logins so far.
    pub logins_count: i64,
    /// Last successful login.
    pub last_login: Option<i64>,
    pub created_at: i64,
    /// Last profile change.
    pub updated_at: i64,
    /// The user may not log in, and their tokens stop working.
    pub blocked: Flag,
}

impl<'r> FromRow<'r, AnyRow> for Profile {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Profile {
            name: row.try_get("name")?,
            given_name: row.try_get("given_name")?,
            family_name: row.try_get("family_name")?,
            nickname: row.try_get("nickname")?,
            picture: row.try_get("picture")?,
            username: row.try_get("username")?,
        })
    }
}

/// What creating a user needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub tenant_id: String,
    /// Lowercased email.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// argon2id PHC string.
    pub password_hash: String,
    pub name: Option<String>,
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
    pub given_name: Option<Option<String>>,
    pub family_name: Option<Option<String>>,
    pub nickname: Option<Option<String>>,
    pub picture: Option<Option<String>>,
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
        .or_conflict()?;
        Ok(())
    }

    /// Replaces a verified imported password hash by its argon2id successor, only while the
    /// row still holds `old` (a password set meanwhile wins). True when it was replaced.
    pub async fn replace_password_hash(
        &self,
        tenant_id: &str,
        user_id: &str,
        old: &str,
        new: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE app_user SET password_hash = $1 \
             WHERE tenant_id = $2 AND user_id = $3 AND password_hash = $4",
        )
        .bind(new)
        .bind(tenant_id)
        .bind(user_id)
        .bind(old)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A user of `tenant_id` by id.
    pub async fn user(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("SELECT {USER_COLUMNS} FROM app_user WHERE tenant_id = $1 AND user_id = $2")
        });
        // Every code exchange and refresh reads it.
        if let Some(direct) = &self.direct
            && let Some(row) = direct.row(
                &SQL,
                rusqlite::named_params! {"$1": tenant_id, "$2": user_id},
                super::direct::user_of,
            )
        {
            return Ok(row);
        }
        Ok(sqlx::query_as::<_, UserRecord>(&SQL)
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
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let columns: Vec<String> = USER_COLUMNS
                .split(',')
                .map(|c| format!("u.{}", c.trim()))
                .collect();
            format!(
                "SELECT {} FROM app_user u JOIN token_grant g ON g.tenant_id = u.tenant_id AND g.user_id = u.user_id \
                 WHERE u.tenant_id = $1 AND u.user_id = $2 AND g.id = $3 AND g.revoked_at IS NULL AND u.blocked = 0",
                columns.join(", ")
            )
        });
        // Every userinfo call and introspection reads it.
        if let Some(direct) = &self.direct
            && let Some(row) = direct.row(
                &SQL,
                rusqlite::named_params! {"$1": tenant_id, "$2": user_id, "$3": grant_id},
                super::direct::user_of,
            )
        {
            return Ok(row);
        }
        Ok(sqlx::query_as::<_, UserRecord>(&SQL)
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
        let done = q.execute(&mut *tx).await.or_conflict()?;
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
        for table in [
            "refresh_token",
            "token_grant",
            "sso_session",
            "consent",
            "user_role",
            "recording",
        ] {
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
