//! Every host function a guest can call, in one place, and the per-store state they use.
//!
//! Uploads may import only `wardstone.log` and `wardstone.http_fetch` (rule ABI v1, checked by
//! [`super::abi::check_abi`]); the JavaScript runtime, which the host builds itself, also
//! imports `wardstone.crypto`, `wardstone.decision`, `wardstone.random_seed` and the clock of
//! rquickjs's wasm shim.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Caller, Linker, ResourceLimiter};

use crate::domain::execution::LogLine;
use crate::rules::outbound::{self, NetPolicy, Outbound};

/// What one store carries for the host functions: the execution's policy, deadline and logs.
pub(crate) struct HostState {
    /// A JavaScript rule's denial, handed over when it called `callback`.
    pub(crate) decision: Option<Vec<u8>>,
    pub(crate) net: NetPolicy,
    pub(crate) deadline: Instant,
    pub(crate) limiter: Limiter,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) dropped: usize,
    pub(crate) max_lines: usize,
    pub(crate) max_line_bytes: usize,
    /// Calls whose answer comes from outside the guest (clock, randomness, crypto, network):
    /// a run that made none computed only from its code and input (`rules::js::image`).
    pub(crate) outside_inputs: u32,
}

impl HostState {
    /// Ready for the next run in the same store: no logs, no decision.
    pub(crate) fn reset(&mut self, deadline: Instant) {
        self.decision = None;
        self.deadline = deadline;
        self.logs.clear();
        self.dropped = 0;
        self.limiter.memory_denied = false;
    }

    /// The run's log lines, with a note of how many were dropped.
    pub(crate) fn take_logs(&mut self) -> Vec<LogLine> {
        let mut logs = std::mem::take(&mut self.logs);
        if self.dropped > 0 {
            logs.push(LogLine::warn(format!(
                "{} more log lines were dropped",
                self.dropped
            )));
            self.dropped = 0;
        }
        logs
    }
}

/// The memory cap, and whether a guest ran into it.
pub(crate) struct Limiter {
    pub(crate) memory_bytes: usize,
    pub(crate) memory_denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// The bytes `[ptr, ptr+len)` of the caller's memory, if they are inside it.
fn guest_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: usize) -> Option<Vec<u8>> {
    let start = ptr as u32 as usize;
    caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .and_then(|m| {
            m.data(&*caller)
                .get(start..start.checked_add(len)?)
                .map(<[u8]>::to_vec)
        })
}

/// Writes `answer` into memory the guest allocates with its own `alloc` and returns its
/// location packed as `(ptr << 32) | len`. A trap in the guest's `alloc` is the guest's
/// failure, like any other trap.
fn answer_guest(caller: &mut Caller<'_, HostState>, answer: &[u8]) -> wasmtime::Result<i64> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("no exported memory"))?;
    let alloc = caller
        .get_export("alloc")
        .and_then(|e| e.into_func())
        .and_then(|f| f.typed::<i32, i32>(&*caller).ok())
        .ok_or_else(|| wasmtime::Error::msg("no exported alloc(i32) -> i32"))?;
    let out = alloc.call(&mut *caller, answer.len() as i32)?;
    memory
        .write(&mut *caller, out as u32 as usize, answer)
        .map_err(|_| {
            wasmtime::Error::msg(format!(
                "alloc returned {out}, which is not {} writable bytes",
                answer.len()
            ))
        })?;
    Ok(((out as u32 as i64) << 32) | answer.len() as i64)
}

/// Defines every host function on `linker`.
pub(crate) fn define(
    linker: &mut Linker<HostState>,
    outbound: Arc<Outbound>,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "wardstone",
        "log",
        |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            // Caps first: a guest must not make the host copy megabytes per call.
            let (max_lines, max_bytes) = (caller.data().max_lines, caller.data().max_line_bytes);
            if caller.data().logs.len() >= max_lines {
                caller.data_mut().dropped += 1;
                return;
            }
            let len = len as u32 as usize;
            let text = guest_bytes(&mut caller, ptr, len.min(max_bytes)).map(|kept| {
                let mut text = String::from_utf8_lossy(&kept).into_owned();
                if len > max_bytes {
                    text.push('…');
                }
                text
            });
            let message = text.unwrap_or_else(|| "<log message out of bounds>".into());
            let level = match level {
                0 => "debug",
                1 => "info",
                2 => "warn",
                _ => "error",
            };
            caller.data_mut().logs.push(LogLine {
                level: level.into(),
                message,
            });
        },
    )?;
    linker.func_wrap(
        "wardstone",
        "http_fetch",
        move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
            caller.data_mut().outside_inputs += 1;
            // Whatever the script looked like (`globalThis.fetch` escapes a source scan): the
            // attempt ends as if out of time, which is what sends the run to the executor.
            if caller.data().net.offline_attempt {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            let len = len as u32 as usize;
            let answer = if len > outbound::MAX_REQUEST_BYTES {
                serde_json::json!({"error": format!(
                    "the request is {len} bytes; at most {} are allowed",
                    outbound::MAX_REQUEST_BYTES
                )})
            } else {
                match guest_bytes(&mut caller, ptr, len) {
                    Some(request) => {
                        let state = caller.data();
                        outbound::fetch(&outbound, &state.net, &request, state.deadline)
                    }
                    None => serde_json::json!({"error": "the request is outside linear memory"}),
                }
            };
            answer_guest(&mut caller, answer.to_string().as_bytes())
        },
    )?;
    // Only the JavaScript runtime may import the rest (`check_abi` refuses them in uploads).
    linker.func_wrap(
        "wardstone",
        "crypto",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
            caller.data_mut().outside_inputs += 1;
            let len = len as u32 as usize;
            let answer = match guest_bytes(&mut caller, ptr, len.min(1 << 20)) {
                Some(request) => crate::rules::js::crypto::answer(&request),
                None => serde_json::json!({"error": "the request is outside linear memory"}),
            };
            answer_guest(&mut caller, answer.to_string().as_bytes())
        },
    )?;
    // A denial decided by a rule's `callback`: recorded at once, so a trap in code that runs
    // on cannot turn it into a (skippable) failure.
    linker.func_wrap(
        "wardstone",
        "decision",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
            let bytes = guest_bytes(&mut caller, ptr, len as u32 as usize);
            if caller.data().decision.is_none() {
                caller.data_mut().decision = bytes;
            }
        },
    )?;
    // The OS's randomness through `uuid`'s getrandom: aws-lc's generator spends tens of
    // milliseconds setting itself up on each thread's first call, which an executor thread's
    // first JavaScript run would pay inside its deadline.
    linker.func_wrap(
        "wardstone",
        "random_seed",
        |mut caller: Caller<'_, HostState>| -> i64 {
            caller.data_mut().outside_inputs += 1;
            // 122 random bits; folding the halves covers the version and variant bits.
            let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
            (high ^ low.rotate_left(29)) as i64
        },
    )?;
    linker.func_wrap(
        "env",
        "__rquickjs_host_now_us",
        |mut caller: Caller<'_, HostState>| -> f64 {
            caller.data_mut().outside_inputs += 1;
            match caller.data().net.replay_at {
                Some(at) => at as f64 * 1e6,
                None => crate::clock::Clock::System.now_micros() as f64,
            }
        },
    )?;
    Ok(())
}
