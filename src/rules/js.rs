//! JavaScript rules (SPEC §14): the embedded QuickJS runtime module, its pre-initialized
//! snapshot, and the checks a script passes before it is compiled.
//!
//! A script is stored as the rule's module bytes (UTF-8 text; a wasm module always starts with
//! `\0asm`, a script never contains NUL), so versions, rollback, hashes and the per-node cache
//! are the same for both. Compiling a script means running the runtime's `compile` export in
//! the sandbox: the result is QuickJS bytecode, which is the script's "artifact" (stored and
//! shared by nodes like native code, under the same MAC). Every execution instantiates the one
//! shared runtime snapshot afresh and loads the bytecode into it; see [`super::engine`].

use std::sync::OnceLock;

use super::engine::Rejected;

#[cfg(js_runtime)]
const RUNTIME_WASM: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("OUT_DIR"), "/js-runtime.wasm")));
#[cfg(not(js_runtime))]
const RUNTIME_WASM: Option<&[u8]> = None;

/// Whether this build embeds the JavaScript runtime (its build needs clang; see `build.rs`).
pub const AVAILABLE: bool = RUNTIME_WASM.is_some();

/// Why JavaScript is unavailable, for an upload that needs it.
pub const UNAVAILABLE: &str = "JavaScript rules are not available on this server: it was built without the JavaScript runtime (building it needs clang and the wasm32-unknown-unknown target)";

/// Starts a stored "artifact" that is QuickJS bytecode rather than native code.
pub(super) const BYTECODE_TAG: &[u8] = b"wardstone-js-bytecode-v1\n";

/// What a script's artifact starts with: the tag, then the hash of the runtime that made the
/// bytecode (so the engine fingerprint, shared with native modules, need not change with it).
pub(super) fn bytecode_header() -> Vec<u8> {
    [BYTECODE_TAG, runtime_hash().as_bytes(), b"\n"].concat()
}

/// Whether stored module bytes are a script rather than a wasm module.
pub fn is_script(module: &[u8]) -> bool {
    !module.starts_with(b"\0asm")
}

/// The hex SHA-256 of the embedded runtime (bytecode is only valid for the runtime that made
/// it: it is in every script artifact's header and in the runtime artifact's key).
pub fn runtime_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        RUNTIME_WASM
            .map(super::engine::module_hash)
            .unwrap_or_else(|| "none".into())
    })
}

/// Under what name the runtime's compiled code is stored with the rule artifacts (never a
/// module hash: those are hex; `store` keeps `runtime:` rows out of pruning and warm-up).
pub fn runtime_artifact_key() -> String {
    format!("runtime:js:{}", runtime_hash())
}

/// Checks a script before compiling it: size, UTF-8, no NUL, not empty, and no `require`
/// (there are no modules to load; the author hears so at upload, not at the first login).
pub fn check_script(source: &[u8], max_bytes: usize) -> Result<&str, Rejected> {
    if source.len() > max_bytes {
        return Err(Rejected(format!(
            "the script is {} bytes, larger than the {max_bytes} byte limit",
            source.len()
        )));
    }
    let text =
        std::str::from_utf8(source).map_err(|_| Rejected("the script is not UTF-8".into()))?;
    if text.contains('\0') {
        return Err(Rejected("the script contains a NUL character".into()));
    }
    if text.trim().is_empty() {
        return Err(Rejected(
            "the script is empty: give one function (user, context, callback) { ... }".into(),
        ));
    }
    if let Some((line, column)) = find_require(text) {
        return Err(Rejected(format!(
            "require is not available in Wardstone rules (line {line}, column {column}): \
             there are no npm modules; use the globals (configuration, auth0, console, JSON, \
             Promise)"
        )));
    }
    Ok(text)
}

/// Where the script calls `require(...)` outside strings and comments, 1-based (a property
/// or a variable of that name is fine).
/// A lexer, not a parser: template literals and regular expressions are skipped as strings;
/// the runtime's own `require` throws too, so anything missed here still fails closed.
fn find_require(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                line_start = i + 1;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            b'"' | b'\'' | b'`' => {
                let quote = b;
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    } else if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ if is_ident(b) => {
                let start = i;
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
                let preceded_by_dot = text[..start].trim_end().ends_with('.');
                let called = text[i..].trim_start().starts_with('(');
                if &text[start..i] == "require" && !preceded_by_dot && called {
                    let column = text[line_start..start].chars().count() + 1;
                    return Some((line, column));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The runtime pre-initialized (QuickJS runtime, context and Auth0 globals built), as wasm
/// bytes. Made once per process; deterministic, because the clock reads zero and randomness is
/// not drawn while it is made, so every node derives the same bytes and hash.
pub(super) fn snapshot() -> Result<&'static [u8], Rejected> {
    static SNAPSHOT: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    let Some(runtime) = RUNTIME_WASM else {
        return Err(Rejected(UNAVAILABLE.into()));
    };
    SNAPSHOT
        .get_or_init(|| make_snapshot(runtime).map_err(|e| format!("{e:#}")))
        .as_deref()
        .map_err(|e| Rejected(format!("the JavaScript runtime does not start: {e}")))
}

fn make_snapshot(runtime: &[u8]) -> wasmtime::Result<Vec<u8>> {
    use wasmtime::{Engine, Linker, Module, Store};
    let wizer = wasmtime_wizer::Wizer::new();
    let (context, instrumented) = wizer.instrument(runtime)?;
    let engine = Engine::default();
    let module = Module::new(&engine, &instrumented)?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap("wardstone", "log", |_: i32, _: i32, _: i32| {})?;
    linker.func_wrap("wardstone", "decision", |_: i32, _: i32| {})?;
    linker.func_wrap("wardstone", "random_seed", || 0i64)?;
    linker.func_wrap("env", "__rquickjs_host_now_us", || 0f64)?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module)?;
    instance
        .get_typed_func::<(), ()>(&mut store, wizer.get_init_func())?
        .call(&mut store, ())?;
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

/// What the runtime's `compile` export reported for a refused script.
#[derive(serde::Deserialize)]
struct CompileError {
    message: String,
    line: Option<u32>,
    column: Option<u32>,
}

/// Reads the runtime's `compile` output: bytecode, or the refusal with line and column.
pub(super) fn compile_output(output: &[u8]) -> Result<Vec<u8>, Rejected> {
    match output.split_first() {
        Some((0, bytecode)) if !bytecode.is_empty() => Ok(bytecode.to_vec()),
        Some((1, error)) => {
            let error: CompileError = serde_json::from_slice(error)
                .map_err(|_| Rejected("the script does not compile".into()))?;
            Err(Rejected(match (error.line, error.column) {
                (Some(line), Some(column)) => {
                    format!("{} (line {line}, column {column})", error.message)
                }
                _ => error.message,
            }))
        }
        _ => Err(Rejected(
            "the JavaScript runtime gave no result for the script".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_is_found_outside_strings_and_comments() {
        assert_eq!(find_require("const x = require('x');"), Some((1, 11)));
        assert_eq!(
            find_require("// require('x')\n  require ('y')"),
            Some((2, 3))
        );
        assert_eq!(find_require("const o = { require: true }; o.require"), None);
        assert_eq!(find_require("'require' + \"require\" + `require`"), None);
        assert_eq!(find_require("/* require */ a.require(1)"), None);
        assert_eq!(find_require("const required = 1"), None);
    }

    #[test]
    fn scripts_are_told_from_modules() {
        assert!(is_script(b"function (u, c, cb) { cb(null, u, c) }"));
        assert!(!is_script(b"\0asm\x01\0\0\0"));
    }
}
