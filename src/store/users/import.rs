//! An Auth0 user import's rows, written in one transaction in multi-row statements.

use super::*;
use crate::store::{Backend, values_placeholders};

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
    pub profile: Profile,
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
    backend: Backend,
    rows_per_statement: usize,
}

/// Users handed to [`UserImport::insert`] at a time.
pub const IMPORT_BATCH: usize = 400;

/// Rows per statement on SQLite. With numbered parameters sqlx's SQLite binding looked each
/// parameter's name up among all of the statement's (`sqlite3_bind_parameter_name`), so a
/// statement's cost grew with the square of its parameters: 400 rows of 15 took 81 % of an
/// import's CPU there (11.9 s for 100,000 users); 32 rows (480 parameters) kept that small
/// (3.0 s) and still save most round trips. The placeholders are plain `?` now (see
/// `values_placeholders`): 2.4 s at 32 rows; larger statements not measured since. PostgreSQL has no such cost and pays per round trip instead: 400 rows there (4.0 s with
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
        let sql = format!(
            "INSERT INTO app_user (user_id, tenant_id, email, email_verified, password_hash, name, \
             given_name, family_name, nickname, picture, username, app_metadata, user_metadata, \
             logins_count, created_at, updated_at, blocked) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING user_id",
            values_placeholders(self.backend, users.len(), 17)
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for u in users {
            query = query
                .bind(&u.user_id)
                .bind(&self.tenant_id)
                .bind(&u.email)
                .bind(i64::from(u.email_verified))
                .bind(&u.password_hash);
            for (_, value) in u.profile.fields() {
                query = query.bind(value);
            }
            query = query
                .bind(&u.app_metadata)
                .bind(&u.user_metadata)
                .bind(0i64)
                .bind(u.created_at)
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
            let sql = format!(
                "INSERT INTO user_role (tenant_id, user_id, role_id, created_at) VALUES {} \
                 ON CONFLICT DO NOTHING",
                values_placeholders(self.backend, chunk.len(), 4)
            );
            let mut query = sqlx::query(&sql);
            for (user, role, at) in chunk {
                query = query
                    .bind(&self.tenant_id)
                    .bind(*user)
                    .bind(*role)
                    .bind(*at);
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
            backend: self.backend,
            rows_per_statement: match self.backend {
                Backend::Sqlite => SQLITE_ROWS_PER_STATEMENT,
                Backend::Postgres => POSTGRES_ROWS_PER_STATEMENT,
            },
        })
    }
}
