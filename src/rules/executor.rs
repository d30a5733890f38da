//! The threads rule pipelines run on, shared fairly between tenants.
//!
//! Pipelines block a thread for up to their deadline, so only short ones may run on the async
//! workers (below). A fixed set of threads (sized to the machine) takes jobs from per-tenant
//! queues: a free thread always serves the waiting tenant that has the fewest pipelines
//! running, and no tenant may hold every thread. One tenant alone gets the whole machine; a
//! tenant with slow rules leaves a thread, and the next turn, to everyone else.
//!
//! The threads are the host's stack for wasm: their stack size covers the configured wasm
//! stack plus headroom for the host's own frames, so no rule can exhaust it (wasmtime aborts
//! the process when the host stack overflows).
//!
//! A short run may instead happen on the request's own thread ([`Executor::inline`]): handing
//! it over costs two thread wake-ups and context switches — more than a typical pipeline's own
//! CPU on a small machine. The caller then bounds it in time (see `rules::Rules::execute`) and
//! takes it to the executor when it runs longer; only threads with room for the wasm stack
//! qualify, and only a few runs at a time (the instance pool is sized for them).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Runs on requests' own threads now, at most `inline_cap`.
    inline: AtomicUsize,
    inline_cap: usize,
    /// Stack a thread must have left to run wasm itself.
    inline_stack: usize,
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
    /// all but one of them (all of them when there is only one). At most `inline_cap` runs
    /// happen on requests' own threads at once (0: never).
    pub fn new(threads: usize, wasm_stack: usize, inline_cap: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            per_tenant: if threads > 1 { threads - 1 } else { 1 },
            queue_cap: 1024,
            inline: AtomicUsize::new(0),
            inline_cap,
            inline_stack: wasm_stack + HOST_STACK_HEADROOM / 2,
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

    /// Leave for the calling thread to run a pipeline itself, if it has the stack for wasm and
    /// fewer than the cap of such runs are under way; the run counts until the guard drops.
    pub fn inline(&self) -> Option<InlineRun> {
        if stack_room() < self.shared.inline_stack {
            return None;
        }
        self.shared
            .inline
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.shared.inline_cap).then_some(n + 1)
            })
            .ok()?;
        Some(InlineRun(self.shared.clone()))
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

/// A run on a request's own thread, counted against the cap while it lives.
pub struct InlineRun(Arc<Shared>);

impl Drop for InlineRun {
    fn drop(&mut self) {
        self.0.inline.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bytes of stack left below the caller's frame on this thread (0 where it cannot be told).
fn stack_room() -> usize {
    thread_local!(static LOWEST: std::cell::OnceCell<usize> = const { std::cell::OnceCell::new() });
    let lowest = LOWEST.with(|l| *l.get_or_init(lowest_stack_address));
    let here = std::hint::black_box(0u8);
    (std::ptr::addr_of!(here) as usize).saturating_sub(lowest)
}

/// The lowest usable address of this thread's stack (`usize::MAX` where it cannot be told,
/// which leaves no room).
#[cfg(target_os = "linux")]
fn lowest_stack_address() -> usize {
    // SAFETY: the attribute object is initialised by pthread_getattr_np for the calling
    // thread, read, and destroyed; nothing else is passed.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return usize::MAX;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if got != 0 || addr.is_null() {
            return usize::MAX;
        }
        addr as usize
    }
}

#[cfg(not(target_os = "linux"))]
fn lowest_stack_address() -> usize {
    usize::MAX
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn inline_runs_need_stack_room_and_stay_under_their_cap() {
        let executor = Executor::new(1, 256 << 10, 2).unwrap();
        // A thread with a 4 MiB stack has room for a 256 KiB wasm stack plus headroom.
        let (first, second, third) = std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn({
                let executor = executor.clone();
                move || {
                    let (a, b) = (executor.inline(), executor.inline());
                    let c = executor.inline();
                    (a.is_some(), b.is_some(), c.is_some())
                }
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!((first, second, third), (true, true, false));
        // The guards dropped: the count is back to zero.
        assert_eq!(executor.shared.inline.load(Ordering::SeqCst), 0);
        // A thread whose stack cannot hold the wasm stack never runs wasm itself. (The stack
        // asked for is not what a thread gets when glibc reuses a larger cached one, so the
        // wasm stack is made larger than any thread's here.)
        let huge = Executor::new(1, 64 << 20, 2).unwrap();
        let room_for_huge = std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(move || huge.inline().is_some())
            .unwrap()
            .join()
            .unwrap();
        assert!(!room_for_huge);
        let room = std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(stack_room)
            .unwrap()
            .join()
            .unwrap();
        // What is left below this frame of a 4 MiB (or larger, reused) stack.
        assert!((3 << 20..1 << 30).contains(&room), "{room}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_uses_every_thread_but_one() {
        let executor = Executor::new(3, 1 << 20, 0).unwrap();
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
        let executor = Executor::new(2, 1 << 20, 0).unwrap();
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
