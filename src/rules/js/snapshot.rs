//! The runtime snapshot: the embedded QuickJS module run up to the end of its
//! `wizer-initialize` (runtime, context, Auth0 globals, frozen intrinsics) and written back as
//! a module whose memory starts there, made once per process with `wasmtime-wizer`.

use std::sync::OnceLock;

use super::{UNAVAILABLE, runtime_wasm};
use crate::rules::engine::Rejected;

/// The runtime pre-initialized (QuickJS runtime, context and Auth0 globals built), as wasm
/// bytes: the lean snapshot, or with `modules` the one with every bundled module evaluated
/// (scripts that require one run there; the lean one stays as small and fast as it was). Made
/// once per process each; deterministic, because the clock reads zero and randomness is not
/// drawn while it is made, so every node derives the same bytes and hash.
pub(crate) fn snapshot(modules: bool) -> Result<&'static [u8], Rejected> {
    static LEAN: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    static WITH_MODULES: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    let Some(runtime) = runtime_wasm() else {
        return Err(Rejected(UNAVAILABLE.into()));
    };
    let (cell, init) = if modules {
        (&WITH_MODULES, "wizer-initialize-modules")
    } else {
        (&LEAN, "wizer-initialize")
    };
    cell.get_or_init(|| make_snapshot(runtime, init).map_err(|e| format!("{e:#}")))
        .as_deref()
        .map_err(|e| Rejected(format!("the JavaScript runtime does not start: {e}")))
}

fn make_snapshot(runtime: &[u8], init: &str) -> wasmtime::Result<Vec<u8>> {
    use wasmtime::{Engine, Linker, Module, Store};
    let mut wizer = wasmtime_wizer::Wizer::new();
    wizer.init_func(init);
    let (context, instrumented) = wizer.instrument(runtime)?;
    let engine = Engine::default();
    let module = Module::new(&engine, &instrumented)?;
    let mut linker = Linker::new(&engine);
    // What the runtime logs while it initializes is why it failed, if it does.
    let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = logged.clone();
    linker.func_wrap(
        "wardstone",
        "log",
        move |mut caller: wasmtime::Caller<'_, ()>, _: i32, ptr: i32, len: i32| {
            let text = caller
                .get_export("memory")
                .and_then(|e| e.into_memory())
                .and_then(|m| {
                    let start = ptr as u32 as usize;
                    m.data(&caller)
                        .get(start..start.checked_add(len as u32 as usize)?)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                });
            if let (Some(text), Ok(mut last)) = (text, sink.lock()) {
                *last = text;
            }
        },
    )?;
    linker.func_wrap("wardstone", "decision", |_: i32, _: i32| {})?;
    linker.func_wrap("wardstone", "http_fetch", |_: i32, _: i32| 0i64)?;
    linker.func_wrap("wardstone", "crypto", |_: i32, _: i32| 0i64)?;
    linker.func_wrap("wardstone", "random_seed", || 0i64)?;
    linker.func_wrap("env", "__rquickjs_host_now_us", || 0f64)?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module)?;
    instance
        .get_typed_func::<(), ()>(&mut store, wizer.get_init_func())?
        .call(&mut store, ())
        .map_err(|e| {
            let why = logged.lock().map(|l| l.clone()).unwrap_or_default();
            e.context(why)
        })?;
    let mut state = Snapshotting {
        store: &mut store,
        instance,
    };
    ready(wizer.snapshot(&context, &mut state))
}

/// Wizer reads the initialized instance through this (its own wasmtime glue wants async
/// wasmtime and more features than the server builds).
struct Snapshotting<'a> {
    store: &'a mut wasmtime::Store<()>,
    instance: wasmtime::Instance,
}

impl wasmtime_wizer::InstanceState for Snapshotting<'_> {
    async fn global_get(
        &mut self,
        name: &str,
        _: wasmtime_wizer::ValType,
    ) -> wasmtime_wizer::SnapshotVal {
        use wasmtime::Val;
        use wasmtime_wizer::SnapshotVal;
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer asks for exported globals");
        match global.get(&mut *self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            _ => SnapshotVal::I32(0),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer asks for exported memories");
        contents(memory.data(&*self.store))
    }
}

/// Drives a future that never waits (wizer's snapshot over a synchronous instance).
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::yield_now();
    }
}
