//! The execution log's writer: each pipeline run's records go into a bounded queue as one
//! message and a background task writes them in batches every few milliseconds (one row per
//! run), so a login never waits for the log's `INSERT`s and queuing a run wakes nobody.
//!
//! A full queue (the database is slower than the logins) never blocks a login: the records
//! are dropped, counted, and a warning says how many. Readers of the log on this node flush
//! the queue first, so a login's executions are visible to the next read.
//!
//! Recorded inputs (SPEC §18, for tenants that turned recording on) travel the same queue and
//! are sealed with the master key here, off the login path.
//!
//! The same writer adds the tenants' usage counters (SPEC §18) into the database: they are
//! summed in memory per tenant, day and metric and added every [`USAGE_CADENCE`] (or on a
//! flush), so usage costs a login one short lock and every node's counts end in the same rows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::crypto::MasterKey;
use crate::domain::execution::ExecutionRecord;
use crate::domain::usage::{Day, Metric};
use crate::store::{RecordingRow, Store};

/// Runs one write may carry.
const BATCH: usize = 500;
/// How often the writer wakes to write what is queued.
const CADENCE: Duration = Duration::from_millis(50);
/// How often the usage counters are added into the database.
const USAGE_CADENCE: Duration = Duration::from_secs(1);

/// Usage not yet written: tenant → (day, metric) → count.
type Counts = HashMap<String, HashMap<(i64, Metric), i64>>;

/// One pipeline run's input to record, not yet sealed.
pub struct Recording {
    /// The user of a login or refresh; `None` for client credentials.
    pub user_id: Option<String>,
    pub client_id: String,
    /// The run's protocol label.
    pub protocol: &'static str,
    /// Unix time of the run.
    pub created_at: i64,
    /// `{"user", "context", "event"}` as JSON.
    pub input: String,
}

/// The sealing context of a recording: its tenant and id, so a sealed input cannot move to
/// another row or tenant.
pub fn recording_context(tenant_id: &str, id: &str) -> String {
    format!("recording:{tenant_id}:{id}")
}

enum Message {
    Records(String, Vec<ExecutionRecord>),
    Recording(String, Recording),
    Flush(oneshot::Sender<()>),
}

/// The handle that logins and tests record executions through.
#[derive(Clone)]
pub struct Journal {
    queue: mpsc::Sender<Message>,
    flush_now: Arc<tokio::sync::Notify>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    usage: Arc<Mutex<Counts>>,
}

impl Journal {
    /// Starts the writer task on the current runtime; `capacity` records may wait.
    pub fn start(store: Store, master_key: MasterKey, capacity: usize) -> Self {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let journal = Journal {
            queue,
            flush_now: Arc::new(tokio::sync::Notify::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
            usage: Arc::default(),
        };
        tokio::spawn(writer(
            store,
            master_key,
            rx,
            journal.flush_now.clone(),
            journal.dropped.clone(),
            journal.written.clone(),
            journal.usage.clone(),
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

    /// Queues the input of one pipeline run of `tenant_id` for recording, without waiting.
    /// When the queue is full it is dropped and counted.
    pub fn record_input(&self, tenant_id: &str, recording: Recording) {
        if let Err(e) = self
            .queue
            .try_send(Message::Recording(tenant_id.to_string(), recording))
        {
            let before = self.dropped.fetch_add(1, Ordering::Relaxed);
            if before.is_multiple_of(1000) {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the writer has stopped",
                };
                tracing::warn!(dropped_total = before + 1, "recorded inputs dropped: {why}");
            }
        }
    }

    /// Adds usage of `tenant_id` on the day of `now` (Unix time); written with the next usage
    /// batch.
    pub fn count(&self, tenant_id: &str, now: i64, counts: &[(Metric, i64)]) {
        let day = Day::of(now).0;
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up by `&str` first: a tenant already counted costs no allocation.
        let per_tenant = match usage.get_mut(tenant_id) {
            Some(m) => m,
            None => usage.entry(tenant_id.to_string()).or_default(),
        };
        for &(metric, n) in counts {
            let slot = per_tenant.entry((day, metric)).or_default();
            *slot = slot.saturating_add(n);
        }
    }

    /// Waits until everything queued before this call is written (or dropped), usage
    /// counters included.
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
    master_key: MasterKey,
    mut rx: mpsc::Receiver<Message>,
    flush_now: Arc<tokio::sync::Notify>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    usage: Arc<Mutex<Counts>>,
) {
    let mut last_usage = tokio::time::Instant::now();
    let mut batch: Vec<(String, Vec<ExecutionRecord>)> = Vec::new();
    let mut recordings: Vec<(String, Recording)> = Vec::new();
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
                Ok(Message::Recording(tenant, r)) => recordings.push((tenant, r)),
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
        write_recordings(&store, &master_key, &mut recordings, &dropped).await;
        if !waiting.is_empty() || !open || last_usage.elapsed() >= USAGE_CADENCE {
            write_usage(&store, &usage).await;
            last_usage = tokio::time::Instant::now();
        }
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

/// Seals and stores queued recordings, tenant by tenant, each tenant's oldest beyond its
/// `keep` dropped in the same transaction.
async fn write_recordings(
    store: &Store,
    master_key: &MasterKey,
    recordings: &mut Vec<(String, Recording)>,
    dropped: &AtomicU64,
) {
    if recordings.is_empty() {
        return;
    }
    let mut by_tenant: HashMap<String, Vec<RecordingRow>> = HashMap::new();
    for (tenant, r) in recordings.drain(..) {
        let id = uuid::Uuid::now_v7().to_string();
        let sealed = master_key.seal(&recording_context(&tenant, &id), r.input.as_bytes());
        by_tenant.entry(tenant).or_default().push(RecordingRow {
            id,
            user_id: r.user_id,
            client_id: r.client_id,
            protocol: r.protocol.to_string(),
            created_at: r.created_at,
            sealed,
        });
    }
    for (tenant, rows) in by_tenant {
        if let Err(e) = store.insert_recordings(&tenant, &rows).await {
            let n = rows.len() as u64;
            let total = dropped.fetch_add(n, Ordering::Relaxed) + n;
            tracing::warn!(error = %e, recordings = n, dropped_total = total, "cannot write recorded inputs; dropped");
        }
    }
}

/// Adds the counted usage into the database. A failed write is tried once more, then tenant by
/// tenant, so a tenant deleted meanwhile does not take the others' counts with it.
async fn write_usage(store: &Store, usage: &Mutex<Counts>) {
    let counts = std::mem::take(&mut *usage.lock().unwrap_or_else(|p| p.into_inner()));
    if counts.is_empty() {
        return;
    }
    let mut rows: Vec<(String, i64, String, i64)> = counts
        .into_iter()
        .flat_map(|(tenant, m)| {
            m.into_iter()
                .map(move |((day, metric), n)| (tenant.clone(), day, metric.key(), n))
        })
        .collect();
    // One order on every node: concurrent upserts of the same keys cannot deadlock.
    rows.sort();
    if store.add_usage(&rows).await.is_ok() {
        return;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    if store.add_usage(&rows).await.is_ok() {
        return;
    }
    let mut tenants: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    tenants.dedup();
    for tenant in tenants {
        let of_tenant: Vec<_> = rows.iter().filter(|r| r.0 == tenant).cloned().collect();
        if let Err(e) = store.add_usage(&of_tenant).await {
            tracing::warn!(error = %e, tenant_id = tenant, "cannot write usage counters; dropped");
        }
    }
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
        let journal = Journal::start(store, MasterKey::generate(), 1);
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
