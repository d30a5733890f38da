//! Group commit for one kind of row: requests hand their row to one task, which writes what has
//! arrived — under load the rows that came while the previous batch was written, alone a batch
//! of one — in one statement, and answers each request once its row is committed (with what the
//! statement returned for it: nothing for an insert, the code for a redemption).
//!
//! On SQLite every write queues for the one writer connection, whose thread each statement
//! visits and leaves: many writes of one kind per second then wait on each other (the token
//! endpoint's code redemptions and refresh tokens, the login's code, `tokens.rs`). On
//! PostgreSQL writes run in parallel on the pool, so callers write directly there.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreResult};

/// How a batch's rows are written.
pub(crate) trait WriteRows<T>: Send + Sync + 'static {
    /// What each row's request gets back (`()` for an insert).
    type Out: Send + 'static;
    /// All of `rows` in one statement, all or none: exactly one answer per row, in their order
    /// (the statement has committed by then; a wrong count fails every request of the batch).
    fn write_all(&self, rows: &[&T]) -> impl Future<Output = StoreResult<Vec<Self::Out>>> + Send;
    /// One row alone (after its batch failed on a row's own fault).
    fn write_one(&self, row: &T) -> impl Future<Output = StoreResult<Self::Out>> + Send;
}

/// A row waiting for its batch, and where its answer goes.
type Waiting<T, O> = (T, oneshot::Sender<StoreResult<O>>);

/// The batching task of one store, started at the first write (on that write's runtime) and
/// started again if its task is gone (its runtime shut down): a store handle used later from
/// another runtime still writes.
pub(crate) struct Batcher<T, O = ()> {
    queue: Mutex<Option<mpsc::Sender<Waiting<T, O>>>>,
    rows_per_statement: usize,
}

impl<T: Send + Sync + 'static, O: Send + 'static> Batcher<T, O> {
    /// A batcher writing at most `rows_per_statement` rows at a time.
    pub(crate) fn new(rows_per_statement: usize) -> Self {
        Batcher {
            queue: Mutex::new(None),
            rows_per_statement: rows_per_statement.max(1),
        }
    }

    /// Writes `row` with whatever else is waiting; answers once it is committed.
    pub(crate) async fn write<W: WriteRows<T, Out = O>>(
        &self,
        row: T,
        writer: impl FnOnce() -> W,
    ) -> StoreResult<O> {
        let queue = {
            let mut slot = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                Some(queue) if !queue.is_closed() => queue.clone(),
                _ => {
                    let queue = start(writer(), self.rows_per_statement);
                    *slot = Some(queue.clone());
                    queue
                }
            }
        };
        let (done, answer) = oneshot::channel();
        if queue.send((row, done)).await.is_err() {
            return Err(sqlx::Error::PoolClosed.into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(sqlx::Error::PoolClosed.into()))
    }
}

fn start<T: Send + Sync + 'static, W: WriteRows<T>>(
    writer: W,
    rows_per_statement: usize,
) -> mpsc::Sender<Waiting<T, W::Out>> {
    let (queue, mut arrivals) = mpsc::channel::<Waiting<T, W::Out>>(4096);
    // The task holds the writer (a pool), not the store: when the last store handle goes, the
    // queue closes and the task ends.
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(rows_per_statement);
        while arrivals.recv_many(&mut batch, rows_per_statement).await > 0 {
            let rows: Vec<&T> = batch.iter().map(|(row, _)| row).collect();
            match writer.write_all(&rows).await {
                Ok(answers) if answers.len() == batch.len() => {
                    for ((_, done), answer) in batch.drain(..).zip(answers) {
                        let _ = done.send(Ok(answer));
                    }
                }
                Ok(answers) => {
                    let message = format!("{} answers for {} rows", answers.len(), batch.len());
                    for (_, done) in batch.drain(..) {
                        let _ = done.send(Err(sqlx::Error::Protocol(message.clone()).into()));
                    }
                }
                // One row's fault (a constraint): each row alone, so it fails only its own
                // request.
                Err(e) if batch.len() > 1 && is_row_fault(&e) => {
                    for (row, done) in batch.drain(..) {
                        let _ = done.send(writer.write_one(&row).await);
                    }
                }
                // Anything else (a timeout, a lock, a lost connection) would fail each row
                // again, one timeout after another: the whole batch fails at once.
                Err(e) => {
                    let message = e.to_string();
                    let mut first = Some(e);
                    for (_, done) in batch.drain(..) {
                        let err = first.take().unwrap_or_else(|| {
                            sqlx::Error::Protocol(format!("its batch failed: {message}")).into()
                        });
                        let _ = done.send(Err(err));
                    }
                }
            }
        }
    });
    queue
}

/// Whether a write failed on a row's own content rather than on the database.
fn is_row_fault(e: &StoreError) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        StoreError::Conflict => true,
        StoreError::Database {
            cause: sqlx::Error::Database(db),
            ..
        } => matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Rows are numbers; 13 is a row fault, 99 makes the database fail.
    #[derive(Clone, Default)]
    struct Fake {
        stored: Arc<Mutex<Vec<u32>>>,
        statements: Arc<AtomicUsize>,
        largest: Arc<AtomicUsize>,
    }

    impl WriteRows<u32> for Fake {
        type Out = ();

        async fn write_all(&self, rows: &[&u32]) -> StoreResult<Vec<()>> {
            self.statements.fetch_add(1, Ordering::SeqCst);
            self.largest.fetch_max(rows.len(), Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if rows.iter().any(|r| **r == 99) {
                return Err(sqlx::Error::PoolTimedOut.into());
            }
            if rows.iter().any(|r| **r == 13) {
                return Err(StoreError::Conflict);
            }
            self.stored.lock().unwrap().extend(rows.iter().copied());
            Ok(vec![(); rows.len()])
        }

        async fn write_one(&self, row: &u32) -> StoreResult<()> {
            self.write_all(&[row]).await.map(|_| ())
        }
    }

    async fn write_concurrently(
        batcher: &Arc<Batcher<u32>>,
        fake: &Fake,
        rows: Vec<u32>,
    ) -> Vec<bool> {
        let tasks: Vec<_> = rows
            .into_iter()
            .map(|row| {
                let (batcher, fake) = (batcher.clone(), fake.clone());
                tokio::spawn(async move { batcher.write(row, || fake).await.is_ok() })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rows_share_statements_and_a_bad_row_fails_alone() {
        let fake = Fake::default();
        let batcher = Arc::new(Batcher::new(32));
        let mut rows: Vec<u32> = (0..40).collect();
        rows[20] = 13;
        let answers = write_concurrently(&batcher, &fake, rows.clone()).await;
        for (row, ok) in rows.iter().zip(&answers) {
            assert_eq!(*ok, *row != 13, "row {row}");
        }
        let mut stored = fake.stored.lock().unwrap().clone();
        stored.sort();
        assert_eq!(
            stored,
            rows.iter()
                .copied()
                .filter(|r| *r != 13)
                .collect::<Vec<_>>()
        );
        assert!(fake.largest.load(Ordering::SeqCst) > 1, "no batch formed");
        assert!(fake.largest.load(Ordering::SeqCst) <= 32);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_database_fails_the_batch_at_once() {
        let fake = Fake::default();
        let batcher = Arc::new(Batcher::new(32));
        // The first row occupies the task; the others queue behind it and form one batch.
        let first = {
            let (batcher, fake) = (batcher.clone(), fake.clone());
            tokio::spawn(async move { batcher.write(1, || fake).await.is_ok() })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let answers = write_concurrently(&batcher, &fake, vec![2, 99, 3, 4]).await;
        assert!(first.await.unwrap());
        assert!(answers.iter().all(|ok| !ok), "{answers:?}");
        // One statement for the first row, one for the failing batch: no retry row by row.
        assert_eq!(fake.statements.load(Ordering::SeqCst), 2);
    }
}
