//! The reads on every request's path, run on the caller's thread (SQLite only).
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is a round trip
//! to that thread: a wake-up and two context switches, which cost more CPU than a point read by
//! key does. Profiled on the login bench, sqlx's SQLite threads took about half the server's
//! CPU of a login without rules, a third of it in the scheduler. The reads every request makes
//! — its tenant, a login's session with its user, an exchange's user, the user behind an access token at userinfo — run here instead, on a
//! read-only connection taken from a small pool, on the thread that asks.
//!
//! A direct read does not wait on locks: its connections have no busy timeout (only SQLite's
//! own few retries while a WAL is being recovered or restarted remain), and any error (the
//! database busy or locked by a checkpoint, a file that cannot be opened, a row that does not
//! decode) answers `None`. The caller then takes the sqlx path, which waits on its own thread
//! and reports the error in the store's terms. So the two paths answer the same, and this one
//! is only ever a shortcut.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row};

use super::{Flag, JsonText, UserRecord};
use crate::domain::Profile;

/// Statements each connection keeps prepared.
const STATEMENTS: usize = 16;

/// Read-only connections to one SQLite file, used one caller at a time.
pub(crate) struct DirectReads {
    path: PathBuf,
    /// `None` once the store is closed: reads then go through sqlx, which says so.
    idle: Mutex<Option<Vec<Connection>>>,
    /// Connections kept idle: one per thread that reads at once (the async workers).
    keep: usize,
    /// The file could not be opened once: every read goes through sqlx from then on.
    off: AtomicBool,
    /// Reads answered by sqlx instead (what the tests watch).
    fallbacks: AtomicU64,
}

impl DirectReads {
    /// For the database sqlx opens at `url` (its own parsing of the file name); `None` for an
    /// in-memory database, which other connections cannot see.
    pub(crate) fn for_url(url: &str) -> Option<Self> {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let in_memory = crate::config::sqlite_path(url).is_none()
            || url::form_urlencoded::parse(query.as_bytes())
                .any(|(k, v)| k == "mode" && v == "memory");
        (!in_memory).then(|| DirectReads::new(options.get_filename().to_path_buf()))
    }

    fn new(path: PathBuf) -> Self {
        DirectReads {
            path,
            idle: Mutex::new(Some(Vec::new())),
            keep: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .max(8),
            off: AtomicBool::new(false),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Reads the direct path could not answer.
    #[cfg(test)]
    pub(crate) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// The first row of `sql` mapped by `map` (`Some(None)`: no row), or `None` when the read
    /// could not be made here and must go through sqlx.
    pub(crate) fn row<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        let Some(connection) = self.take() else {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let result = connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row(params, map).optional());
        match result {
            Ok(row) => {
                self.give_back(connection);
                Some(row)
            }
            Err(e) => {
                tracing::debug!(error = %e, "direct SQLite read failed; reading through sqlx");
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                if !connection_broken(&e) {
                    self.give_back(connection);
                }
                None
            }
        }
    }

    /// Closes the idle connections; later reads go through sqlx.
    pub(crate) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = None;
        }
    }

    fn take(&self) -> Option<Connection> {
        if let Some(c) = self.idle.lock().ok()?.as_mut()?.pop() {
            return Some(c);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let connection = match Connection::open_with_flags(&self.path, flags) {
            Ok(c) => c,
            Err(e) => {
                if !self.off.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, path = %self.path.display(), "cannot open a direct SQLite reader; every read goes through sqlx");
                }
                return None;
            }
        };
        connection.busy_timeout(Duration::ZERO).ok()?;
        connection.set_prepared_statement_cache_capacity(STATEMENTS);
        Some(connection)
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && let Some(idle) = idle.as_mut()
            && idle.len() < self.keep
        {
            idle.push(connection);
        }
    }
}

/// An error of SQLite itself other than busy or locked: the connection may be unusable. A
/// value that did not decode, or a busy database, leaves it fine.
fn connection_broken(e: &rusqlite::Error) -> bool {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => false,
        Some(_) => true,
        None => false,
    }
}

/// A user row (the columns of [`super::users::USER_COLUMNS`], by name), decoded as sqlx decodes
/// it.
pub(crate) fn user_of(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        user_id: row.get("user_id")?,
        tenant_id: row.get("tenant_id")?,
        email: row.get("email")?,
        email_verified: row.get::<_, Flag>("email_verified")?,
        password_hash: row.get("password_hash")?,
        profile: Profile {
            name: row.get("name")?,
            given_name: row.get("given_name")?,
            family_name: row.get("family_name")?,
            nickname: row.get("nickname")?,
            picture: row.get("picture")?,
            username: row.get("username")?,
        },
        app_metadata: row.get::<_, JsonText<_>>("app_metadata")?,
        user_metadata: row.get::<_, JsonText<_>>("user_metadata")?,
        logins_count: row.get("logins_count")?,
        last_login: row.get("last_login")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        blocked: row.get::<_, Flag>("blocked")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewUser, SessionRecord, Store};

    /// A migrated store with one tenant, one user (metadata, roles, a consent, a session), and
    /// a copy of it that reads everything through sqlx.
    async fn stores(dir: &tempfile::TempDir) -> (Store, Store) {
        let url = format!("sqlite://{}/x.db", dir.path().display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        assert!(store.direct.is_some());
        // The consent's client and the rest of a tenant are beside the point here.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&store.writer)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tenant (id, name, created_at, signing_alg) VALUES ('t1', 'acme', 5, 'ES256')")
            .execute(&store.writer)
            .await
            .unwrap();
        store
            .insert_user(
                &NewUser {
                    user_id: "auth0|u1".into(),
                    tenant_id: "t1".into(),
                    email: "ada@example.com".into(),
                    email_verified: true,
                    password_hash: "$argon2id$x".into(),
                    name: Some("Ada".into()),
                    created_at: 7,
                },
                r#"{"plan":"gold","n":[1,2]}"#,
                r#"{"lang":"fr"}"#,
            )
            .await
            .unwrap();
        for (id, name) in [("r1", "editor"), ("r2", "admin")] {
            sqlx::query("INSERT INTO role (id, tenant_id, name, description, created_at) VALUES ($1, 't1', $2, '', 1)")
                .bind(id)
                .bind(name)
                .execute(&store.writer)
                .await
                .unwrap();
            sqlx::query("INSERT INTO user_role (tenant_id, user_id, role_id, created_at) VALUES ('t1', 'auth0|u1', $1, 1)")
                .bind(id)
                .execute(&store.writer)
                .await
                .unwrap();
        }
        store
            .save_consent("t1", "auth0|u1", "app", "", "openid profile", 9)
            .await
            .unwrap();
        store
            .insert_session(&SessionRecord {
                id_hash: vec![1, 2, 3],
                tenant_id: "t1".into(),
                user_id: "auth0|u1".into(),
                auth_time: 10,
                created_at: 10,
                expires_at: 1_000,
            })
            .await
            .unwrap();
        let through_sqlx = Store {
            direct: None,
            ..store.clone()
        };
        (store, through_sqlx)
    }

    #[tokio::test]
    async fn direct_reads_answer_what_sqlx_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (direct, sqlx) = stores(&dir).await;
        for name in ["acme", "nope"] {
            assert_eq!(
                format!("{:?}", direct.tenant_by_name(name).await.unwrap()),
                format!("{:?}", sqlx.tenant_by_name(name).await.unwrap()),
            );
        }
        assert!(direct.tenant_by_name("acme").await.unwrap().is_some());
        sqlx::query("INSERT INTO token_grant (id, tenant_id, client_id, user_id, scope, created_at, expires_at) VALUES ('g1', 't1', 'app', 'auth0|u1', 'openid', 1, 2)")
            .execute(&direct.writer)
            .await
            .unwrap();
        for grant in ["g1", "g2"] {
            assert_eq!(
                format!(
                    "{:?}",
                    direct
                        .user_of_live_grant("t1", grant, "auth0|u1")
                        .await
                        .unwrap()
                ),
                format!(
                    "{:?}",
                    sqlx.user_of_live_grant("t1", grant, "auth0|u1")
                        .await
                        .unwrap()
                ),
            );
        }
        assert!(
            direct
                .user_of_live_grant("t1", "g1", "auth0|u1")
                .await
                .unwrap()
                .is_some()
        );
        for user in ["auth0|u1", "auth0|nobody"] {
            assert_eq!(
                format!("{:?}", direct.user("t1", user).await.unwrap()),
                format!("{:?}", sqlx.user("t1", user).await.unwrap()),
            );
        }
        // Found, with and without the consent asked about; expired; another tenant's; unknown.
        type Case<'a> = (&'a str, &'a [u8], i64, Option<(&'a str, &'a str)>);
        let cases: [Case<'_>; 5] = [
            ("t1", &[1, 2, 3], 20, Some(("app", ""))),
            ("t1", &[1, 2, 3], 20, None),
            ("t1", &[1, 2, 3], 1_000, Some(("app", ""))),
            ("t2", &[1, 2, 3], 20, None),
            ("t1", &[9], 20, None),
        ];
        for (tenant, id_hash, now, consent) in cases {
            let a = direct
                .session_with_user(tenant, id_hash, now, consent)
                .await
                .unwrap();
            let b = sqlx
                .session_with_user(tenant, id_hash, now, consent)
                .await
                .unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        let found = direct
            .session_with_user("t1", &[1, 2, 3], 20, Some(("app", "")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.roles, ["admin", "editor"]);
        assert_eq!(found.granted.unwrap().to_string(), "openid profile");
        assert_eq!(found.user.app_metadata.0["plan"], "gold");
        // What a write commits, the next direct read sees (no stale page cache).
        sqlx::query("UPDATE tenant SET rules_generation = rules_generation + 1 WHERE id = 't1'")
            .execute(&direct.writer)
            .await
            .unwrap();
        let tenant = direct.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!(tenant.rules_generation, 1);
        // Every one of these was answered on the direct path, not by the sqlx fallback.
        assert_eq!(direct.direct.as_ref().unwrap().fallbacks(), 0);
    }

    /// A row the direct path cannot decode is read again through sqlx, which reports it as
    /// corrupt: never a default, never a different answer.
    #[tokio::test]
    async fn a_row_that_does_not_decode_is_an_error_as_through_sqlx() {
        let dir = tempfile::tempdir().unwrap();
        let (direct, _) = stores(&dir).await;
        sqlx::query("UPDATE app_user SET email_verified = 2")
            .execute(&direct.writer)
            .await
            .unwrap();
        assert!(direct.user("t1", "auth0|u1").await.is_err());
        assert_eq!(direct.direct.as_ref().unwrap().fallbacks(), 1);
        assert!(
            direct
                .session_with_user("t1", &[1, 2, 3], 20, None)
                .await
                .is_err()
        );
        sqlx::query("UPDATE tenant SET signing_alg = 'XS999'")
            .execute(&direct.writer)
            .await
            .unwrap();
        assert!(direct.tenant_by_name("acme").await.is_err());
    }

    #[test]
    fn a_file_that_cannot_be_opened_or_a_closed_store_reads_through_sqlx() {
        let missing = DirectReads::new("/nonexistent/dir/x.db".into());
        assert!(
            missing
                .row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .is_none()
        );
        assert!(missing.off.load(Ordering::Relaxed));
        // In-memory databases are not shared with other connections; a percent-encoded name
        // is the file sqlx opens.
        assert!(DirectReads::for_url("sqlite::memory:").is_none());
        assert!(DirectReads::for_url("sqlite://x.db?mode=memory").is_none());
        assert_eq!(
            DirectReads::for_url("sqlite://a%20b.db?mode=rwc")
                .unwrap()
                .path,
            PathBuf::from("a b.db")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.db");
        Connection::open(&path).unwrap();
        let reads = DirectReads::new(path);
        assert_eq!(
            reads.row("SELECT 1", [], |r| r.get::<_, i64>(0)),
            Some(Some(1))
        );
        reads.close();
        assert!(reads.row("SELECT 1", [], |r| r.get::<_, i64>(0)).is_none());
    }
}
