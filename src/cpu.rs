//! Thread priorities. On a machine with few cores, the CPU-heavy work of a request (rules,
//! RSA signatures, argon2) runs on threads of its own; when they outnumber the cores, the
//! scheduler can leave the async workers — which answer every other request — waiting for a
//! time slice of several milliseconds. Those threads therefore run at a lower priority: a
//! quick request (userinfo, discovery, a health probe) preempts them, and when nothing else
//! needs the CPU they get all of it.

/// How much lower than the process (`nice` steps, Linux): enough for the scheduler to prefer
/// the async workers at once, not so much that heavy work starves under steady load.
const BACKGROUND_NICE: libc::c_int = 5;

/// Lowers the calling thread's priority (once per thread; later calls do nothing). Failure is
/// harmless — the thread then keeps the process's priority.
pub fn run_in_background() {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, current + BACKGROUND_NICE);
    }
}

/// CPU time the calling thread has used so far (zero where it cannot be told). Unlike the wall
/// clock, it does not count the time the thread was preempted.
pub fn thread_cpu_time() -> std::time::Duration {
    // SAFETY: a timespec is plain integers (zero is valid); clock_gettime writes the one owned
    // by this frame.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if got != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
