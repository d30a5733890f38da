//! Every SQL query lives here, one submodule per aggregate. The rest of the server sees typed
//! records and never which database it talks to: queries are written once in the SQL that both
//! SQLite and PostgreSQL accept and run through sqlx's `Any` driver.

mod clients;
mod flow;
mod keys;
mod manage;
mod rules;
mod tenants;
mod tokens;
mod users;

pub use clients::{ClientRecord, NewClient, ResourceServerRecord, ScopeDefinition};
pub use flow::{LoginTransactionRecord, SessionRecord};
pub use keys::SigningKeyRecord;
pub use manage::{ClientGrantRecord, UserChanges, merge_first_level};
pub use rules::{ExecutionRow, RuleRecord};
pub use tenants::TenantRecord;
pub use tokens::{CodeRecord, NewCode, NewRefreshToken, RedeemOutcome, RefreshTokenRecord};
pub use users::{NewUser, UserRecord};

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
    /// Anything else: the cause chain goes to the log, never to a client.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

pub(crate) fn map_unique(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        return StoreError::Conflict;
    }
    StoreError::Database(err)
}

/// Which SQL dialect the pool speaks (only migrations differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The handle every part of the server uses to reach the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
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
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("cannot connect to the database")?;
        Ok(Store { pool, backend })
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await,
        }
        .context("failed to apply database migrations")
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers (for readiness probes).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializing plain data cannot fail")
}
