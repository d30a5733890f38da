//! Users, their profile changes and metadata merges, and login-attempt counting.

use serde_json::{Map, Value};
use sqlx::FromRow;

use super::{JsonText, Store, StoreError, StoreResult, map_unique};

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
    /// 1 when verified.
    pub email_verified: i64,
    /// argon2id PHC string.
    pub password_hash: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub username: Option<String>,
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
    /// 1 when the user may not log in (and their tokens stop working).
    pub blocked: i64,
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

/// A throttle key's counts in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCounts {
    /// Attempts whose password was wrong.
    pub failures: i64,
    /// Attempts whose password is being checked now (this one included).
    pub pending: i64,
}

/// A user read from an Auth0 export, checked, as one row.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    /// Kept from the export: `sub` does not change for any app.
    pub user_id: String,
    /// Lowercased email.
    pub email: String,
    /// Verified flag.
    pub email_verified: bool,
    /// The imported hash as stored (see [`UserRecord::password_hash`]), or empty.
    pub password_hash: String,
    /// Profile fields.
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub username: Option<String>,
    /// JSON object text.
    pub app_metadata: String,
    /// JSON object text.
    pub user_metadata: String,
    /// Blocked flag.
    pub blocked: bool,
    /// Creation time (from the export when it has one).
    pub created_at: i64,
    /// Role ids to assign.
    pub role_ids: Vec<String>,
}

/// One import's users, written in one transaction: all of them or, if anything fails or the
/// import is dropped before [`UserImport::commit`], none.
pub struct UserImport {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    tenant_id: String,
    rows_per_statement: usize,
}

/// Users handed to [`UserImport::insert`] at a time.
pub const IMPORT_BATCH: usize = 400;

/// Rows per statement on SQLite. sqlx's SQLite binding looks each parameter's name up among all
/// of the statement's (`sqlite3_bind_parameter_name`), so a statement's cost grows with the
/// square of its parameters: 400 rows of 15 took 81 % of an import's CPU there (11.9 s for
/// 100,000 users); 32 rows (480 parameters) keep that small (3.0 s) and still save most round
/// trips. PostgreSQL has no such cost and pays per round trip instead: 400 rows there (4.0 s with
/// 32, 2.9 s with 400).
const SQLITE_ROWS_PER_STATEMENT: usize = 32;
const POSTGRES_ROWS_PER_STATEMENT: usize = 400;

impl UserImport {
    /// Inserts a batch; users whose id or email already exists are left as they are. Returns
    /// the ids inserted.
    pub async fn insert(&mut self, users: &[ImportedUser]) -> StoreResult<Vec<String>> {
        let mut inserted = Vec::with_capacity(users.len());
        for chunk in users.chunks(self.rows_per_statement) {
            inserted.extend(self.insert_rows(chunk).await?);
        }
        Ok(inserted)
    }

    async fn insert_rows(&mut self, users: &[ImportedUser]) -> StoreResult<Vec<String>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "INSERT INTO app_user (user_id, tenant_id, email, email_verified, password_hash, name, \
             given_name, family_name, nickname, picture, username, app_metadata, user_metadata, \
             logins_count, created_at, updated_at, blocked) VALUES ",
        );
        for i in 0..users.len() {
            let b = i * 15;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${},${},${},${},${},0,${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11,
                b + 12,
                b + 13,
                b + 14,
                b + 14,
                b + 15
            ));
        }
        sql.push_str(" ON CONFLICT DO NOTHING RETURNING user_id");
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for u in users {
            query = query
                .bind(&u.user_id)
                .bind(&self.tenant_id)
                .bind(&u.email)
                .bind(i64::from(u.email_verified))
                .bind(&u.password_hash)
                .bind(&u.name)
                .bind(&u.given_name)
                .bind(&u.family_name)
                .bind(&u.nickname)
                .bind(&u.picture)
                .bind(&u.username)
                .bind(&u.app_metadata)
                .bind(&u.user_metadata)
                .bind(u.created_at)
                .bind(i64::from(u.blocked));
        }
        let inserted: Vec<String> = query.fetch_all(&mut *self.tx).await?;
        let fresh: std::collections::HashSet<&str> = inserted.iter().map(String::as_str).collect();
        let roles: Vec<(&str, &str, i64)> = users
            .iter()
            .filter(|u| fresh.contains(u.user_id.as_str()))
            .flat_map(|u| {
                u.role_ids
                    .iter()
                    .map(move |r| (u.user_id.as_str(), r.as_str(), u.created_at))
            })
            .collect();
        for chunk in roles.chunks(self.rows_per_statement * 4) {
            let mut sql = String::from(
                "INSERT INTO user_role (tenant_id, user_id, role_id, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 3;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("($1,${},${},${})", b + 2, b + 3, b + 4));
            }
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut query = sqlx::query(&sql).bind(&self.tenant_id);
            for (user, role, at) in chunk {
                query = query.bind(*user).bind(*role).bind(*at);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(inserted)
    }

    /// Of `user_ids`, those that already belong to this tenant (the rest belong to another).
    pub async fn existing(&mut self, user_ids: &[String], emails: &[String]) -> StoreResult<usize> {
        let mut found = 0usize;
        for (ids, mails) in user_ids
            .chunks(IMPORT_BATCH)
            .zip(emails.chunks(IMPORT_BATCH))
        {
            let marks = |from: usize, n: usize| {
                (0..n)
                    .map(|i| format!("${}", from + i))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            // Two index lookups (the primary key, and the tenant's unique email), not one OR
            // that the planner may answer with a scan.
            let sql = format!(
                "SELECT COUNT(*) FROM (SELECT user_id FROM app_user WHERE tenant_id = $1 AND user_id IN ({}) \
                 UNION SELECT user_id FROM app_user WHERE tenant_id = $1 AND email IN ({})) AS found",
                marks(2, ids.len()),
                marks(2 + ids.len(), mails.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(&self.tenant_id);
            for id in ids {
                query = query.bind(id);
            }
            for mail in mails {
                query = query.bind(mail);
            }
            found += query.fetch_one(&mut *self.tx).await? as usize;
        }
        Ok(found)
    }

    /// Makes the import's writes visible.
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Starts writing one import's users (see [`UserImport`]).
    pub async fn begin_user_import(&self, tenant_id: &str) -> StoreResult<UserImport> {
        Ok(UserImport {
            tx: self.writer.begin().await?,
            tenant_id: tenant_id.to_string(),
            rows_per_statement: match self.backend {
                super::Backend::Sqlite => SQLITE_ROWS_PER_STATEMENT,
                super::Backend::Postgres => POSTGRES_ROWS_PER_STATEMENT,
            },
        })
    }

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

    /// Counts one login attempt for `key` as pending (before its password is checked) and
    /// returns the key's failures and pending attempts in the current window, this one
    /// included. One statement: concurrent attempts each see their own count. A window that
    /// began before `window_start_after` starts over.
    pub async fn begin_login_attempt(
        &self,
        tenant_id: &str,
        key: &str,
        now: i64,
        window_start_after: i64,
    ) -> StoreResult<AttemptCounts> {
        let (failures, pending): (i64, i64) = sqlx::query_as(
            "INSERT INTO login_failure (tenant_id, throttle_key, failures, pending, window_start) VALUES ($1, $2, 0, 1, $3) \
             ON CONFLICT (tenant_id, throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_failure.window_start > $4 THEN login_failure.failures ELSE 0 END, \
               pending = CASE WHEN login_failure.window_start > $4 THEN login_failure.pending + 1 ELSE 1 END, \
               window_start = CASE WHEN login_failure.window_start > $4 THEN login_failure.window_start ELSE $3 END \
             RETURNING failures, pending",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(now)
        .bind(window_start_after)
        .fetch_one(&self.writer)
        .await?;
        Ok(AttemptCounts { failures, pending })
    }

    /// Ends a pending attempt of `key`: `failed` adds it to the failures, `reset` forgets the
    /// key's failures (a success of the pair), neither just takes the attempt back.
    pub async fn end_login_attempt(
        &self,
        tenant_id: &str,
        key: &str,
        failed: bool,
        reset: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_failure SET \
               pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END, \
               failures = CASE WHEN $3 = 1 THEN 0 ELSE failures + $4 END \
             WHERE tenant_id = $1 AND throttle_key = $2",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(i64::from(reset))
        .bind(i64::from(failed))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Drops attempt counts whose window has passed, and places not used since
    /// `places_used_before`.
    pub async fn prune_login_failures(
        &self,
        window_start_before: i64,
        places_used_before: i64,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failure WHERE window_start < $1")
            .bind(window_start_before)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM login_place WHERE last_success < $1")
            .bind(places_used_before)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Remembers that an account signed in from a place (`place_hash`: see
    /// `oauth/authorize/throttle.rs`).
    pub async fn record_login_place(
        &self,
        tenant_id: &str,
        place_hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_place (tenant_id, place_hash, last_success) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, place_hash) DO UPDATE SET last_success = $3",
        )
        .bind(tenant_id)
        .bind(place_hash)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Whether an account signed in from a place since `since`.
    pub async fn login_place_known(
        &self,
        tenant_id: &str,
        place_hash: &str,
        since: i64,
    ) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT last_success FROM login_place WHERE tenant_id = $1 AND place_hash = $2 AND last_success >= $3",
        )
        .bind(tenant_id)
        .bind(place_hash)
        .bind(since)
        .fetch_optional(&self.reader)
        .await?;
        Ok(found.is_some())
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
