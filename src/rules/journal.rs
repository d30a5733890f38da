//! The execution log's writer: each pipeline run's records go into a bounded queue as one
//! message and a background task writes them in batches every few milliseconds (one row per
//! run), so a login never waits for the log's `INSERT`s and queuing a run wakes nobody.
//!
//! A full queue (the database is slower than the logins) never blocks a login: the records
//! are dropped, counted, and a warning says how many. Readers of the log on this node flush
//! the queue first, so a login's executions are visible to the next read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::domain::execution::ExecutionRecord;
use crate::store::Store;

/// Runs one write may carry.
const BATCH: usize = 500;
/// How often the writer wakes to write what is queued.
const CADENCE: Duration = Duration::from_millis(50);

enum Message {
    Records(String, Vec<ExecutionRecord>),
    Flush(oneshot::Sender<()>),
}

/// The handle that logins and tests record executions through.
#[derive(Clone)]
pub struct Journal {
    queue: mpsc::Sender<Message>,
    flush_now: Arc<tokio::sync::Notify>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Journal {
    /// Starts the writer task on the current runtime; `capacity` records may wait.
    pub fn start(store: Store, capacity: usize) -> Self {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let journal = Journal {
            queue,
            flush_now: Arc::new(tokio::sync::Notify::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
        };
        tokio::spawn(writer(
            store,
            rx,
            journal.flush_now.clone(),
            journal.dropped.clone(),
            journal.written.clone(),
        ));
        journal
    }

    /// Queues the `records` of one pipeline run of `tenant_id` (in the order they ran) without
    /// waiting; they become one row. When the queue is full they are dropped and counted.
    pub fn record(&self, tenant_id: &str, records: Vec<ExecutionRecord>) {
        if records.is_empty() {
            return;
        }
        let n = records.len() as u64;
        if let Err(e) = self
            .queue
            .try_send(Message::Records(tenant_id.to_string(), records))
        {
            let before = self.dropped.fetch_add(n, Ordering::Relaxed);
            // One warning per thousand, so a flood of drops does not become a flood of logs.
            if before / 1000 != (before + n) / 1000 || before == 0 {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the writer has stopped",
                };
                tracing::warn!(
                    dropped_total = before + n,
                    "rule execution log records dropped: {why}"
                );
            }
        }
    }

    /// Waits until everything queued before this call is written (or dropped).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Message::Flush(tx)).await.is_ok() {
            self.flush_now.notify_one();
            let _ = rx.await;
        }
    }

    /// Records dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records written since start.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Message>,
    flush_now: Arc<tokio::sync::Notify>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
) {
    let mut batch: Vec<(String, Vec<ExecutionRecord>)> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut tick = tokio::time::interval(CADENCE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open {
        tokio::select! {
            _ = tick.tick() => {}
            _ = flush_now.notified() => {}
        }
        // Everything queued now goes out, in writes of at most BATCH records.
        loop {
            match rx.try_recv() {
                Ok(Message::Records(tenant, records)) => batch.push((tenant, records)),
                Ok(Message::Flush(ack)) => waiting.push(ack),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
            if batch.len() >= BATCH {
                write(&store, &mut batch, &dropped, &written).await;
            }
        }
        write(&store, &mut batch, &dropped, &written).await;
        for ack in waiting.drain(..) {
            let _ = ack.send(());
        }
    }
}

async fn write(
    store: &Store,
    batch: &mut Vec<(String, Vec<ExecutionRecord>)>,
    dropped: &AtomicU64,
    written: &AtomicU64,
) {
    if batch.is_empty() {
        return;
    }
    let n = batch.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
    let mut result = store.insert_executions(batch).await;
    if result.is_err() {
        // The database may be briefly gone: one more try before giving up on them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        result = store.insert_executions(batch).await;
    }
    match result {
        Ok(()) => {
            written.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => {
            let total = dropped.fetch_add(n, Ordering::Relaxed) + n;
            tracing::warn!(error = %e, records = n, dropped_total = total, "cannot write rule execution log records; dropped");
        }
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::Trigger;

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/j.db", dir.path().display());
        let store = crate::startup::open_store(&url, 2).await.unwrap();
        let journal = Journal::start(store, 1);
        let record = || vec![ExecutionRecord::start("rul_1", "r", Trigger::Login, 0)];
        // The writer wakes on its cadence: the first message fills the queue, the rest overflow.
        for _ in 0..3 {
            journal.record("t", record());
        }
        assert_eq!(journal.dropped(), 2);
        journal.flush().await;
        // The record that fit was written (its tenant does not exist, so it fails the foreign
        // key and is counted as dropped: either way nothing is lost silently).
        assert_eq!(journal.dropped() + journal.written(), 3);
    }
}
