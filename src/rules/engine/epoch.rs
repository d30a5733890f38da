//! The epoch ticker that turns deadlines into traps: one thread for the whole process keeps
//! the epoch of every live engine moving while executions run, and parks when none do.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{Engine, EngineWeak};

/// One epoch tick. Deadlines are whole ticks.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Executions running now, in every engine of the process, and whether the epoch thread is
/// parked: it ticks while rules run and parks after a quiet spell, instead of waking a thousand
/// times a second for nothing or being woken for every execution.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PARKED: AtomicBool = AtomicBool::new(false);
static PARKING: Mutex<()> = Mutex::new(());
static UNPARK: Condvar = Condvar::new();
static ENGINES: OnceLock<Mutex<Vec<EngineWeak>>> = OnceLock::new();

/// Ticks without any execution after which the epoch thread parks.
const IDLE_TICKS_BEFORE_PARKING: u32 = 200;

/// Counts one execution as running while it lives.
pub(crate) struct RunningGuard;

impl RunningGuard {
    pub(crate) fn enter() -> Self {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        if PARKED.load(Ordering::SeqCst) {
            let _lock = PARKING.lock().unwrap_or_else(|p| p.into_inner());
            UNPARK.notify_all();
        }
        RunningGuard
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps the epoch of every live engine moving, from one thread for the whole process, while
/// executions run. Deadlines are counted in ticks from the start of an execution, so a pause
/// while nothing runs changes no deadline.
pub(crate) fn register_ticker(engine: &Engine) {
    let engines = ENGINES.get_or_init(|| {
        std::thread::Builder::new()
            .name("wardstone-epoch".into())
            .spawn(|| {
                let mut idle = 0u32;
                loop {
                    std::thread::sleep(TICK);
                    if let Some(list) = ENGINES.get()
                        && let Ok(mut list) = list.lock()
                    {
                        list.retain(|weak| match weak.upgrade() {
                            Some(engine) => {
                                engine.increment_epoch();
                                true
                            }
                            None => false,
                        });
                    }
                    idle = if RUNNING.load(Ordering::SeqCst) == 0 {
                        idle + 1
                    } else {
                        0
                    };
                    if idle >= IDLE_TICKS_BEFORE_PARKING {
                        let mut lock = PARKING.lock().unwrap_or_else(|p| p.into_inner());
                        PARKED.store(true, Ordering::SeqCst);
                        while RUNNING.load(Ordering::SeqCst) == 0 {
                            lock = UNPARK.wait(lock).unwrap_or_else(|p| p.into_inner());
                        }
                        PARKED.store(false, Ordering::SeqCst);
                        idle = 0;
                    }
                }
            })
            .expect("spawning the epoch thread");
        Mutex::new(Vec::new())
    });
    if let Ok(mut list) = engines.lock() {
        list.push(engine.weak());
    }
}
