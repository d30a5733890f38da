//! The threads rule pipelines run on, shared fairly between tenants.
//!
//! Pipelines block a thread for up to their deadline, so they never run on the async workers.
//! A fixed set of threads (sized to the machine) takes jobs from per-tenant queues: a free
//! thread always serves the waiting tenant that has the fewest pipelines running, and no
//! tenant may hold every thread. One tenant alone gets the whole machine; a tenant with slow
//! rules leaves a thread, and the next turn, to everyone else.
//!
//! The threads are the host's stack for wasm: their stack size covers the configured wasm
//! stack plus headroom for the host's own frames, so no rule can exhaust it (wasmtime aborts
//! the process when the host stack overflows).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// Stack the host's own frames may use on an executor thread beyond the wasm stack.
const HOST_STACK_HEADROOM: usize = 2 << 20;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotRun {
    /// The tenant already has too many pipelines waiting.
    #[error("too many rule executions are waiting for this tenant")]
    Busy,
    /// The executor is shutting down.
    #[error("the rule executor is shutting down")]
    Closed,
}

#[derive(Default)]
struct TenantQueue {
    running: usize,
    jobs: VecDeque<Job>,
}

#[derive(Default)]
struct State {
    tenants: HashMap<String, TenantQueue>,
    /// Tenants with waiting jobs, in the order they will be considered on ties.
    order: VecDeque<String>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    per_tenant: usize,
    queue_cap: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job: from the waiting tenant with the fewest running, first in turn on ties.
    fn next(state: &mut State, per_tenant: usize) -> Option<(String, Job)> {
        let (pos, _) = state
            .order
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let q = state.tenants.get(t)?;
                (!q.jobs.is_empty() && q.running < per_tenant).then_some((i, q.running))
            })
            .min_by_key(|(i, running)| (*running, *i))?;
        let tenant = state.order.remove(pos)?;
        let q = state.tenants.get_mut(&tenant)?;
        let job = q.jobs.pop_front()?;
        q.running += 1;
        if !q.jobs.is_empty() {
            state.order.push_back(tenant.clone());
        }
        Some((tenant, job))
    }

    fn worker(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            if state.closed {
                return;
            }
            let Some((tenant, job)) = Self::next(&mut state, self.per_tenant) else {
                state = self.work.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            drop(state);
            // A panicking job must not take the thread with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            state = self.lock();
            let idle = match state.tenants.get_mut(&tenant) {
                Some(q) => {
                    q.running -= 1;
                    q.running == 0 && q.jobs.is_empty()
                }
                None => false,
            };
            if idle {
                state.tenants.remove(&tenant);
            }
            // A tenant that was at its cap may run again.
            self.work.notify_one();
        }
    }
}

/// Stops the threads when the last handle goes.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_all();
    }
}

/// The executor: a handle to its threads and queues.
#[derive(Clone)]
pub struct Executor {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

impl Executor {
    /// `threads` threads able to run wasm with a `wasm_stack` byte stack; one tenant may use
    /// all but one of them (all of them when there is only one).
    pub fn new(threads: usize, wasm_stack: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            per_tenant: if threads > 1 { threads - 1 } else { 1 },
            queue_cap: 1024,
        });
        for i in 0..threads {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("wardstone-rules-{i}"))
                .stack_size(wasm_stack + HOST_STACK_HEADROOM)
                .spawn(move || {
                    crate::cpu::run_in_background();
                    shared.worker()
                })?;
        }
        Ok(Executor {
            _closer: Arc::new(Closer(shared.clone())),
            shared,
        })
    }

    /// Runs `f` on an executor thread in `tenant`'s turn and returns its result. If the
    /// caller stops waiting (the request was abandoned), a job that has not started is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        tenant: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        {
            let mut state = self.shared.lock();
            if state.closed {
                return Err(NotRun::Closed);
            }
            let q = state.tenants.entry(tenant.to_string()).or_default();
            if q.jobs.len() >= self.shared.queue_cap {
                return Err(NotRun::Busy);
            }
            let was_waiting = !q.jobs.is_empty();
            q.jobs.push_back(job);
            if !was_waiting {
                state.order.push_back(tenant.to_string());
            }
        }
        self.shared.work.notify_one();
        rx.await.map_err(|_| NotRun::Closed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_uses_every_thread_but_one() {
        let executor = Executor::new(3, 1 << 20).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let (executor, running, peak) = (executor.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    executor
                        .run("a", move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(30));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_tenant_runs_before_a_noisy_tenants_queue_drains() {
        let executor = Executor::new(2, 1 << 20).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let noisy: Vec<_> = (0..10)
            .map(|_| {
                let (executor, done) = (executor.clone(), done.clone());
                tokio::spawn(async move {
                    executor
                        .run("noisy", move || {
                            std::thread::sleep(Duration::from_millis(20));
                            done.fetch_add(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        while executor
            .shared
            .lock()
            .tenants
            .get("noisy")
            .is_none_or(|q| q.running == 0)
        {
            tokio::task::yield_now().await;
        }
        let noisy_done = {
            let done = done.clone();
            executor
                .run("quiet", move || done.load(Ordering::SeqCst))
                .await
                .unwrap()
        };
        assert!(
            noisy_done <= 1,
            "the quiet tenant waited for {noisy_done} noisy jobs"
        );
        for n in noisy {
            n.await.unwrap().unwrap();
        }
    }
}
