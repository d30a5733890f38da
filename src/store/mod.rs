//! Every SQL query lives here, one submodule per aggregate. The rest of the server sees typed
//! records and never which database it talks to: queries are written once in the SQL that both
//! SQLite and PostgreSQL accept and run through sqlx's `Any` driver.

mod actions;
mod artifacts;
mod batch;
mod clients;
mod direct;
mod executions;
mod flow;
mod json;
mod keys;
mod recordings;
mod resource_servers;
mod roles;
mod rule_configs;
mod rules;
mod tenants;
mod tokens;
mod usage;
mod users;

pub use actions::{
    ActionRecord, ActionVersionRecord, ActionWriteError, BindingRecord, BoundActionRow,
};
pub use artifacts::ArtifactRecord;
pub use clients::{ClientGrantRecord, ClientRecord, NewClient};
pub use flow::{LoginTransactionRecord, SessionRecord, SessionWithUser};
pub use json::{Flag, JsonText};
pub use keys::{Revoked, SigningKeyRecord};
pub use recordings::{MAX_RECORDING_KEEP, RecordingRow};
pub use resource_servers::{ResourceServerRecord, ScopeDefinition};
pub use roles::{AssignError, PermissionRecord, RoleRecord};
pub use rules::{RuleRecord, RuleSetRows, RuleVersionRecord, RuleWriteError};
pub use tenants::TenantRecord;
pub use tokens::{CodeRecord, NewCode, NewRefreshToken, RedeemOutcome, RefreshTokenRecord};
pub use users::{
    AttemptCounts, IMPORT_BATCH, ImportedUser, NewUser, UserChanges, UserImport, UserRecord,
    merge_first_level,
};

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// A database failure, or a write refused because it would break a uniqueness rule.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (duplicate name, email, identifier...).
    #[error("already exists")]
    Conflict,
    /// A stored value does not parse: corruption is reported, never read as a default.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The write would make a value larger than its cap; nothing was written.
    #[error("{0}")]
    TooLarge(String),
    /// Anything else: the cause goes to the log, never to a client. `at` is the store
    /// statement that failed (its `?` or `or_conflict`), so a log line says which operation it
    /// was. (`cause`, not `source`: the message already carries it, once.)
    #[error("database error at {at}: {cause}")]
    Database {
        cause: sqlx::Error,
        at: &'static std::panic::Location<'static>,
    },
}

impl From<sqlx::Error> for StoreError {
    #[track_caller]
    fn from(cause: sqlx::Error) -> Self {
        StoreError::Database {
            cause,
            at: std::panic::Location::caller(),
        }
    }
}

/// A write's result with a unique-constraint refusal as [`StoreError::Conflict`].
pub(crate) trait OrConflict<T> {
    /// `Conflict` for a unique violation, otherwise the error at the caller's statement.
    fn or_conflict(self) -> StoreResult<T>;
}

impl<T> OrConflict<T> for Result<T, sqlx::Error> {
    #[track_caller]
    fn or_conflict(self) -> StoreResult<T> {
        match self {
            Ok(v) => Ok(v),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(StoreError::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// `(?, ?), (?, ?)` or `($1, $2), ($3, $4)`: the placeholders of a multi-row `VALUES`.
pub(crate) fn values_placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let row = |i: usize| {
        let p: Vec<String> = (1..=columns)
            .map(|c| match backend {
                Backend::Sqlite => "?".to_string(),
                Backend::Postgres => format!("${}", i * columns + c),
            })
            .collect();
        format!("({})", p.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// Which SQL dialect the pool speaks (only migrations differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL).
    Sqlite,
    Postgres,
}

/// The handle every part of the server uses to reach the database.
///
/// Reads and writes go through separate pools. On PostgreSQL they are the same pool. On SQLite,
/// which allows one writer at a time, every write goes through one connection: writers then
/// queue in order inside the process instead of spinning in SQLite's busy handler (whose
/// sleeps of up to 100 ms made the tail of every write-heavy request), and the read
/// connections are `query_only`, so a write sent down the wrong pool fails loudly.
#[derive(Clone)]
pub struct Store {
    reader: AnyPool,
    writer: AnyPool,
    backend: Backend,
    /// Group commit of refresh-token inserts on SQLite (`tokens.rs`, `batch.rs`).
    refresh_inserts: std::sync::Arc<batch::Batcher<tokens::NewRefreshToken>>,
    code_redemptions: std::sync::Arc<batch::Batcher<tokens::Redemption, Option<CodeRecord>>>,
    code_inserts: std::sync::Arc<batch::Batcher<tokens::NewCode>>,
    /// The reads on every request's path, on the caller's thread (a SQLite file only).
    direct: Option<std::sync::Arc<direct::DirectReads>>,
}

impl Store {
    /// Connects to `database_url`, creating a SQLite file and its folders when needed.
    pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://PATH or postgres://...");
        };
        let mut url = database_url.to_string();
        if backend == Backend::Sqlite {
            if let Some(path) = crate::config::sqlite_path(database_url)
                && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create directory {}", parent.display()))?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options = AnyConnectOptions::from_str(&url).context("invalid database URL")?;
        let pool = |connections: u32, read_only: bool| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                // A local file does not drop connections, and a ping is one more round trip to
                // the connection's worker thread for every query.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            if read_only {
                                conn.execute("PRAGMA query_only = ON;").await?;
                            }
                        }
                        Ok(())
                    })
                })
        };
        let store = match backend {
            Backend::Sqlite => {
                // The writer first: it creates the file and switches it to WAL.
                let writer = pool(1, false)
                    .connect_with(options.clone())
                    .await
                    .context("cannot connect to the database")?;
                let reader = pool(max_connections, true)
                    .connect_with(options)
                    .await
                    .context("cannot connect to the database")?;
                Store {
                    reader,
                    writer,
                    backend,
                    refresh_inserts: std::sync::Arc::new(batch::Batcher::new(
                        tokens::REFRESH_ROWS_PER_STATEMENT,
                    )),
                    code_redemptions: std::sync::Arc::new(batch::Batcher::new(
                        tokens::REDEMPTIONS_PER_STATEMENT,
                    )),
                    code_inserts: std::sync::Arc::new(batch::Batcher::new(
                        tokens::CODE_ROWS_PER_STATEMENT,
                    )),
                    direct: direct::DirectReads::for_url(&url)
                        .filter(|_| std::env::var_os("WARDSTONE_NO_DIRECT_READS").is_none())
                        .map(std::sync::Arc::new),
                }
            }
            Backend::Postgres => {
                let shared = pool(max_connections, false)
                    .connect_with(options)
                    .await
                    .context("cannot connect to the database")?;
                Store {
                    reader: shared.clone(),
                    writer: shared,
                    backend,
                    // No batcher is used on PostgreSQL (writes run in parallel on its
                    // pool); a batcher starts its task only at its first write.
                    refresh_inserts: std::sync::Arc::new(batch::Batcher::new(
                        tokens::REFRESH_ROWS_PER_STATEMENT,
                    )),
                    code_redemptions: std::sync::Arc::new(batch::Batcher::new(
                        tokens::REDEMPTIONS_PER_STATEMENT,
                    )),
                    code_inserts: std::sync::Arc::new(batch::Batcher::new(
                        tokens::CODE_ROWS_PER_STATEMENT,
                    )),
                    direct: None,
                }
            }
        };
        Ok(store)
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.writer).await,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.writer)
                    .await
            }
        }
        .context("failed to apply database migrations")
    }

    /// The `VALUES` placeholders of a multi-row insert: `rows` tuples of `columns`. SQLite
    /// looks a numbered parameter (`$N`) up by walking the statement's parameter list, which
    /// makes binding quadratic in the parameters of a statement, so it gets plain `?` (bound
    /// in order); PostgreSQL needs `$N`.
    fn values_placeholders(&self, rows: usize, columns: usize) -> String {
        values_placeholders(self.backend, rows, columns)
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers (for readiness probes).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}

pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializing plain data cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing_statement() -> StoreResult<()> {
        Err(sqlx::Error::RowNotFound)?;
        Ok(())
    }

    #[test]
    fn a_database_error_names_the_statement_that_failed() {
        let err = failing_statement().unwrap_err();
        let StoreError::Database { at, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(at.file().ends_with("store/mod.rs"), "{at}");
        let message = err.to_string();
        assert!(
            message.starts_with("database error at src/store/mod.rs:"),
            "{message}"
        );
        assert!(message.contains("no rows returned"), "{message}");
        assert_eq!(message.matches("no rows returned").count(), 1, "{message}");
    }

    #[test]
    fn a_write_error_names_its_statement() {
        let line = line!() + 1;
        let err = Err::<(), _>(sqlx::Error::RowNotFound)
            .or_conflict()
            .unwrap_err();
        let StoreError::Database { at, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(at.file().ends_with("store/mod.rs"), "{at}");
        // The `.or_conflict()` call, however rustfmt wraps the statement.
        assert!(
            (line..line + 3).contains(&at.line()),
            "{at}, statement at {line}"
        );
    }

    /// The SQLite writer gives its one connection back without a ping (vendor/sqlx-core): a
    /// transaction dropped before its commit is still rolled back before the next user of the
    /// connection starts, and a statement whose future was dropped does not get in its way.
    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_statement() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/x.db", dir.path().display());
        let store = Store::connect(&url, 2).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&store.writer)
            .await
            .unwrap();
        for round in 0..20i64 {
            let mut tx = store.writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(-1i64)
                .execute(&mut *tx)
                .await
                .unwrap();
            drop(tx);
            // A write whose caller stops waiting after its first poll.
            let insert = sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(round)
                .execute(&store.writer);
            let _ = tokio::time::timeout(std::time::Duration::ZERO, insert).await;
            // A new transaction on the same connection: no "transaction within a transaction".
            let mut tx = store.writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(1000 + round)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let rolled_back: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE v < 0")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(rolled_back, 0);
        let committed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE v >= 1000")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(committed, 20);
    }
}
