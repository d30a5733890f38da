//! WAL checkpoints off the writer's thread (SQLite only).
//!
//! SQLite's default is that the connection whose commit takes the WAL past 1,000 pages copies
//! the WAL into the database file and `fsync`s it, in that commit. Here that connection is the
//! one writer every write queues for, so each checkpoint stalled every login and exchange
//! behind it: p99 8–11 ms on the login bench against p50 1 ms. A task checkpoints instead, on a
//! connection of its own on the blocking pool, every [`EVERY`]. A passive checkpoint runs
//! beside the writer (WAL mode lets it), so the writer only appends. The writer's automatic
//! checkpoint stays as a backstop at [`BACKSTOP_PAGES`], should this task fall behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the WAL is copied into the database file.
pub(crate) const EVERY: Duration = Duration::from_millis(200);
/// The writer checkpoints itself past this many pages of WAL (40 MiB with 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 10_000;

/// Stops the task when the store is closed (or the last handle dropped).
pub(crate) struct Checkpoints {
    stop: Arc<AtomicBool>,
}

impl Checkpoints {
    /// Starts checkpointing the database at `path` (a SQLite file the writer has opened).
    pub(crate) fn start(path: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        tokio::spawn(async move {
            let mut connection: Option<Connection> = None;
            loop {
                tokio::time::sleep(EVERY).await;
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let path = path.clone();
                let held = connection.take();
                let Ok(kept) = tokio::task::spawn_blocking(move || checkpoint(held, &path)).await
                else {
                    break;
                };
                connection = kept;
            }
        });
        Checkpoints { stop }
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One passive checkpoint; the connection to keep for the next one (`None`: open it again).
fn checkpoint(connection: Option<Connection>, path: &std::path::Path) -> Option<Connection> {
    let connection = match connection {
        Some(c) => c,
        None => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .inspect_err(|e| tracing::warn!(error = %e, "cannot open the checkpoint connection"))
        .ok()?,
    };
    // Passive: never waits for readers or the writer; what it cannot copy now, the next one will.
    match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        Ok(()) => Some(connection),
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    /// The writer leaves the WAL alone below its backstop; the task copies it into the
    /// database file within a few periods.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_reaches_the_database_file_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/x.db", dir.path().display());
        let store = Store::connect(&url, 2).await.unwrap();
        assert!(store.checkpoints.is_some());
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(&store.writer)
            .await
            .unwrap();
        let file = dir.path().join("x.db");
        let before = std::fs::metadata(&file).unwrap().len();
        // ≈ 250 pages of WAL: far below the backstop, so only the task copies them.
        for _ in 0..500 {
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind("x".repeat(2000))
                .execute(&store.writer)
                .await
                .unwrap();
        }
        let mut grew = false;
        for _ in 0..50 {
            tokio::time::sleep(super::EVERY).await;
            if std::fs::metadata(&file).unwrap().len() > before + 900_000 {
                grew = true;
                break;
            }
        }
        assert!(grew, "the database file did not receive the WAL's pages");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(rows, 500);
        store.close().await;
    }
}
