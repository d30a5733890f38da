//! Wardstone's JavaScript runtime: QuickJS compiled to a core wasm module that follows rule
//! ABI v1, so a tenant's Auth0 Rules and Actions run in the same sandbox, under the same limits,
//! as every other rule.
//!
//! The host snapshots this module once after `wizer-initialize` (QuickJS runtime, context and
//! the Auth0 globals of `prelude.js` already built, intrinsics frozen), compiles each source to
//! bytecode once with `compile`, and for every trigger run instantiates the snapshot afresh,
//! hands it the bytecode of each rule or action through `load` (one slot each), then calls
//! `run` for each in turn — one instance for the whole run. `rule` (ABI v1) runs the last
//! loaded rule, for a lone execution.
//!
//! Exports: `memory`, `alloc`, `rule` (ABI v1), `compile`, `load`, `run`, `wizer-initialize`
//! (the lean snapshot) and `wizer-initialize-modules` (the bundled modules evaluated).
//! Imports: `wardstone.log` (ABI v1), `wardstone.http_fetch` (outbound HTTP, the tenant's
//! allow-list), `wardstone.crypto` (host-backed HMAC, hashes, JWTs), `wardstone.decision` (a
//! rule's denial, handed over at once), `wardstone.random_seed` (fresh randomness per run) and
//! `env.__rquickjs_host_now_us` (the clock of rquickjs's wasm shim). Nothing else.

mod heap;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use rquickjs::{Context, Ctx, Function, Persistent, Runtime, Value, qjs};

#[link(wasm_import_module = "wardstone")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: usize);
    #[link_name = "random_seed"]
    fn host_random_seed() -> i64;
    #[link_name = "decision"]
    fn host_decision(ptr: *const u8, len: usize);
    #[link_name = "http_fetch"]
    fn host_http_fetch(ptr: *const u8, len: usize) -> i64;
    #[link_name = "crypto"]
    fn host_crypto(ptr: *const u8, len: usize) -> i64;
}

/// Name the rule's source is compiled under: it appears in syntax errors and stack traces.
const FILE_NAME: &std::ffi::CStr = c"rule.js";
/// Prepended to a rule's source so an anonymous `function (user, context, callback) {...}`
/// parses as an expression. On the first line, so line numbers in errors and stack traces are
/// the author's (columns of line 1 are one more).
const RULE_PREFIX: &str = "(";
const RULE_SUFFIX: &str = "\n)";
/// An action is a CommonJS module: its source becomes the body of a function that receives
/// `exports`, `module` and `require`, so each action has a module scope of its own.
const ACTION_PREFIX: &str = "(function (exports, module, require) {";
const ACTION_SUFFIX: &str = "\n})";
/// A built-in module is CommonJS too; its wrapper also receives the runtime's own host calls
/// (`__wardstone_host.crypto`), which scripts never see.
const MODULE_PREFIX: &str = "(function (exports, module, require, __wardstone_host) {";
const MODULE_SUFFIX: &str = "\n})";
/// What `compile` is given first for an action's source (a rule's source never starts with it).
const ACTION_MARK: u8 = 1;
/// QuickJS checks its C stack (a region of linear memory) against this; it must stay below the
/// 1 MiB the linker gives the shadow stack or every call "overflows".
const JS_STACK_BYTES: usize = 384 << 10;

/// The heap an execution on the modules snapshot allocates from first (see `heap`): most
/// executions need far less; one that needs more grows memory, up to the host's limit.
const EXECUTION_HEAP_BYTES: usize = 4 << 20;

/// What `load` made of one bytecode.
enum Item {
    /// An Auth0 Rule: the function `(user, context, callback)`.
    Rule(Persistent<Function<'static>>),
    /// An Auth0 Action: its module's `exports` (the handlers).
    Action(Persistent<rquickjs::Object<'static>>),
}

struct State {
    runtime: Runtime,
    context: Context,
    entries: Entries,
    items: Vec<Item>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

// The built-in npm modules and Wardstone's own (`modules/entries`, bundled by the server's
// build script): `MODULE_SOURCES`, name and source.
include!(concat!(env!("OUT_DIR"), "/modules.rs"));

fn log(level: i32, message: &str) {
    // SAFETY: the host reads `len` bytes at `ptr` from this module's memory.
    unsafe { host_log(level, message.as_ptr(), message.len()) }
}

/// Fails the execution closed: the host records a trap, the log says why.
fn fail(message: &str) -> ! {
    log(3, message);
    core::arch::wasm32::unreachable()
}

/// Builds the runtime once; the host snapshots memory after this returns. The lean
/// snapshot: scripts that require no bundled module run on it.
#[unsafe(export_name = "wizer-initialize")]
pub extern "C" fn initialize() {
    build(false)
}

/// The snapshot for scripts that require a bundled module: every module evaluated, frozen
/// and shared, so a `require` costs a lookup.
#[unsafe(export_name = "wizer-initialize-modules")]
pub extern "C" fn initialize_with_modules() {
    // Before anything else allocates: see `heap`.
    heap::reserve(EXECUTION_HEAP_BYTES);
    build(true)
}

fn build(with_modules: bool) {
    let runtime = Runtime::new().unwrap_or_else(|_| fail("cannot create the QuickJS runtime"));
    runtime.set_max_stack_size(JS_STACK_BYTES);
    let context = Context::full(&runtime).unwrap_or_else(|_| fail("cannot create a context"));
    context.with(|ctx| {
        let log_fn = Function::new(ctx.clone(), |level: i32, message: String| {
            log(level, &message)
        })
        .unwrap_or_else(|_| fail("cannot create the log function"));
        ctx.globals()
            .set("__wardstone_log", log_fn)
            .unwrap_or_else(|_| fail("cannot set up globals"));
        define_raw(&ctx, c"__wardstone_take", Some(take_property), 3);
        define_raw(&ctx, c"__wardstone_keys", Some(pending_keys), 1);
        define_raw(&ctx, c"__wardstone_getter", Some(make_getter), 2);
        define_raw(&ctx, c"__wardstone_settle", Some(settle), 1);
        define_raw(&ctx, c"__wardstone_fetch", Some(fetch), 1);
        define_raw(&ctx, c"__wardstone_crypto", Some(crypto), 1);
        define_raw(&ctx, c"__wardstone_emit", Some(emit), 3);
        define_raw(&ctx, c"__wardstone_emit_value", Some(emit_value), 3);
        define_raw(&ctx, c"__wardstone_is_promise", Some(is_promise), 1);
        define_raw(&ctx, c"__wardstone_module", Some(load_module), 1);
        if let Err(e) = ctx.eval::<(), _>(include_str!("prelude.js")) {
            fail(&format!("prelude: {}", describe(&ctx, e)));
        }
    });
    let entries = context.with(|ctx| {
        let host: rquickjs::Object = ctx
            .globals()
            .get("__wardstone")
            .unwrap_or_else(|_| fail("the prelude defines no entry points"));
        let entry = |name: &str| {
            let f: Function = host
                .get(name)
                .unwrap_or_else(|_| fail(&format!("the prelude defines no {name}")));
            Persistent::save(&ctx, f)
        };
        Entries {
            start_rule: entry("startRule"),
            finish_rule: entry("finishRule"),
            start_action: entry("startAction"),
            settle_action: entry("settleAction"),
            finish_action: entry("finishAction"),
        }
    });
    // The modules snapshot evaluates the built-in modules now, so a script that requires one
    // pays only for what it calls.
    context.with(|ctx| {
        let require: Function = ctx
            .globals()
            .get("require")
            .unwrap_or_else(|_| fail("the prelude defines no require"));
        for (name, _) in MODULE_SOURCES.iter().filter(|_| with_modules) {
            if let Err(e) = require.call::<_, Value>((*name,)) {
                fail(&format!("module {name}: {}", describe(&ctx, e)));
            }
        }
    });
    runtime.run_gc();
    if with_modules {
        // SAFETY: the runtime is alive and no JavaScript runs meanwhile.
        unsafe { seal_arenas(runtime_ptr(&context)) };
        heap::seal();
    }
    // QuickJS frees by reference counting; its cycle collector would walk the whole heap
    // (every builtin) whenever allocations cross a threshold, costing more than a typical
    // rule. An instance lives for one execution, under the memory cap, so cycles are left to
    // die with it.
    runtime.set_gc_threshold(usize::MAX);
    runtime.set_interrupt_handler(Some(Box::new(|| SETTLED.with(|s| s.get()))));
    STATE.with(|s| {
        *s.borrow_mut() = Some(State {
            runtime,
            context,
            entries,
            items: Vec::new(),
        })
    });
}

/// The raw runtime behind rquickjs's handle.
fn runtime_ptr(context: &Context) -> *mut qjs::JSRuntime {
    context.with(|ctx| unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) })
}

/// QuickJS's arena size classes (quickjs.c `arena_block_sizes`).
const ARENA_BLOCK_SIZES: [usize; 31] = [
    16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 144, 160, 176, 192, 208, 224,
    240, 256, 288, 320, 352, 384, 416, 448, 480, 512,
];
/// `sizeof(JSArena)` on wasm32: two list heads, then the counters, 8-aligned.
const ARENA_HEADER: usize = 24;

/// Fills the free blocks the snapshot's 4 KB arenas still have, so that what an execution
/// allocates comes from fresh arenas at the top of memory rather than from holes spread over
/// every page the modules and prelude occupy: each page an instance first writes is a
/// copy-on-write fault, and scattered small allocations made a hundred of them per run.
/// The filler blocks are leaked (they live in the snapshot, never touched again).
///
/// Reads QuickJS's block and arena headers (quickjs.c `JSMallocBlockHeader`, `JSArena`):
/// a block's arena has exactly one block in use right after the allocation only when the
/// allocation had to start a new arena — every old arena still listed as free has others.
/// If a header does not read as expected the filling stops (correct, only slower).
unsafe fn seal_arenas(rt: *mut qjs::JSRuntime) {
    for (class, &block) in ARENA_BLOCK_SIZES.iter().enumerate() {
        // A generous bound: the snapshot holds a few megabytes at most.
        for _ in 0..(8 << 20) / block {
            let p = unsafe { qjs::js_malloc_rt(rt, (block - 8) as _) } as *mut u8;
            if p.is_null() {
                return;
            }
            let header = unsafe { p.sub(8) };
            let index = unsafe { (header as *const u16).read() } as usize;
            let size_class = unsafe { header.add(2).read() } as usize;
            if size_class != class {
                unsafe { qjs::js_free_rt(rt, p as *mut _) };
                log(2, "seal_arenas: QuickJS's block header is not as expected");
                return;
            }
            let arena = unsafe { header.sub(block * index + ARENA_HEADER) };
            let used = unsafe { (arena.add(18) as *const u16).read() };
            if used == 1 {
                // A fresh arena: give it back; allocations start here from now on.
                unsafe { qjs::js_free_rt(rt, p as *mut _) };
                break;
            }
        }
    }
}

/// ABI v1: `len` writable bytes for the host.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: i32) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(len.max(0) as usize);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

fn leak(bytes: Vec<u8>) -> i64 {
    let bytes = bytes.into_boxed_slice();
    let len = bytes.len() as i64;
    let ptr = Box::into_raw(bytes) as *mut u8 as u32 as i64;
    (ptr << 32) | len
}

/// SAFETY: the host wrote `len` bytes at `ptr` (memory it got from `alloc`).
unsafe fn input<'a>(ptr: *const u8, len: i32) -> &'a [u8] {
    unsafe { std::slice::from_raw_parts(ptr, len.max(0) as usize) }
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let state = s
            .as_mut()
            .unwrap_or_else(|| fail("the JavaScript runtime was not initialized"));
        f(state)
    })
}

/// The pending exception as "Name: message" plus QuickJS's stack, for the rule's log.
fn describe(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if !matches!(error, rquickjs::Error::Exception) {
        return error.to_string();
    }
    let exception = ctx.catch();
    describe_value(&exception)
}

fn describe_value(value: &Value<'_>) -> String {
    if let Some(object) = value.as_object() {
        let name: Option<String> = object.get("name").ok();
        let message: Option<String> = object.get("message").ok();
        let stack: Option<String> = object.get("stack").ok();
        if name.is_some() || message.is_some() {
            let mut text = format!(
                "{}: {}",
                name.unwrap_or_else(|| "Error".into()),
                message.unwrap_or_default()
            );
            if let Some(stack) = stack.filter(|s| !s.trim().is_empty()) {
                text.push('\n');
                text.push_str(stack.trim_end());
            }
            return text;
        }
    }
    match value.as_string().and_then(|s| s.to_string().ok()) {
        Some(text) => text,
        None => format!("a {} was thrown", value.type_name()),
    }
}

/// Compiles a rule's or an action's source to QuickJS bytecode, checking that a rule is one
/// function expression. An action's source comes after one byte [`ACTION_MARK`].
/// Output: `0`, the kind (`r` or `a`), then the bytecode; or `1` then a UTF-8 JSON object
/// `{"message", "line", "column"}` (line and column of the author's source, when known).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn compile(ptr: *const u8, len: i32) -> i64 {
    let bytes = unsafe { input(ptr, len) };
    let (action, bytes) = match bytes.split_first() {
        Some((&ACTION_MARK, rest)) => (true, rest),
        _ => (false, bytes),
    };
    let source = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => return leak(compile_error("the source is not UTF-8", None)),
    };
    if source.contains('\0') {
        return leak(compile_error("the source contains a NUL character", None));
    }
    let (prefix, suffix) = if action {
        (ACTION_PREFIX, ACTION_SUFFIX)
    } else {
        (RULE_PREFIX, RULE_SUFFIX)
    };
    with_state(|state| {
        state.context.with(|ctx| {
            let raw = ctx.as_raw().as_ptr();
            let compile_only = |text: &str| {
                let wrapped = std::ffi::CString::new(format!("{prefix}{text}{suffix}"))
                    .expect("no NUL, checked above");
                unsafe {
                    qjs::JS_Eval(
                        raw,
                        wrapped.as_ptr(),
                        wrapped.as_bytes().len() as _,
                        FILE_NAME.as_ptr(),
                        (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
                    )
                }
            };
            let mut compiled = compile_only(source);
            if unsafe { qjs::JS_IsException(compiled) } {
                let exception = ctx.catch();
                // Auth0's editor lets a rule end with `};` (and a comment): inside the
                // parentheses that makes the expression a syntax error, so try without it.
                compiled = match without_final_semicolon(source).filter(|_| !action) {
                    Some(retry) => compile_only(&retry),
                    None => compiled,
                };
                if unsafe { qjs::JS_IsException(compiled) } {
                    let _ = ctx.catch();
                    return leak(syntax_error(&exception, prefix.chars().count() as u32));
                }
            }
            let mut size = 0usize;
            let bytes = unsafe {
                qjs::JS_WriteObject(
                    raw,
                    &mut size as *mut usize as *mut _,
                    compiled,
                    qjs::JS_WRITE_OBJ_BYTECODE as i32,
                )
            };
            let bytecode = if bytes.is_null() {
                None
            } else {
                let copy = unsafe { std::slice::from_raw_parts(bytes, size) }.to_vec();
                unsafe { qjs::js_free(raw, bytes as *mut _) };
                Some(copy)
            };
            // Evaluate once here, so a source whose value is not a function is refused at
            // upload rather than at every login (an action's wrapper always is one; its
            // top-level code runs when it is loaded).
            let value = unsafe { qjs::JS_EvalFunction(raw, compiled) };
            if unsafe { qjs::JS_IsException(value) } {
                let exception = ctx.catch();
                return leak(compile_error(
                    &format!("evaluating the source failed: {}", describe_value(&exception)),
                    None,
                ));
            }
            let is_function = unsafe { qjs::JS_IsFunction(raw, value) };
            unsafe { qjs::JS_FreeValue(raw, value) };
            if !is_function {
                return leak(compile_error(
                    "the source must be one function expression: function (user, context, callback) { ... }",
                    Some((1, 1)),
                ));
            }
            match bytecode {
                Some(b) => {
                    let mut out = vec![0u8, if action { b'a' } else { b'r' }];
                    out.extend_from_slice(&b);
                    leak(out)
                }
                None => leak(compile_error("QuickJS could not serialize the source", None)),
            }
        })
    })
}

/// The source with a final `;` (followed only by blanks and comments) blanked out, if it has
/// one.
fn without_final_semicolon(source: &str) -> Option<String> {
    let at = source.rfind(';')?;
    let mut rest = source[at + 1..].trim_start();
    loop {
        if let Some(comment) = rest.strip_prefix("//") {
            rest = comment
                .find('\n')
                .map_or("", |end| &comment[end..])
                .trim_start();
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment
                .find("*/")
                .map(|end| &comment[end + 2..])?
                .trim_start();
        } else {
            break;
        }
    }
    rest.is_empty()
        .then(|| format!("{} {}", &source[..at], &source[at + 1..]))
}

fn compile_error(message: &str, at: Option<(u32, u32)>) -> Vec<u8> {
    let (line, column) = match at {
        Some((l, c)) => (l.to_string(), c.to_string()),
        None => ("null".into(), "null".into()),
    };
    let mut out = vec![1u8];
    out.extend_from_slice(
        format!(
            "{{\"message\":{},\"line\":{line},\"column\":{column}}}",
            json_string(message)
        )
        .as_bytes(),
    );
    out
}

/// A syntax error with the author's line and column (QuickJS puts them in the stack:
/// `at rule.js:LINE:COLUMN`).
fn syntax_error(exception: &Value<'_>, prefix_columns: u32) -> Vec<u8> {
    let object = exception.as_object();
    let message: String = object
        .and_then(|o| o.get::<_, String>("message").ok())
        .unwrap_or_else(|| describe_value(exception));
    let name: String = object
        .and_then(|o| o.get::<_, String>("name").ok())
        .unwrap_or_else(|| "SyntaxError".into());
    let stack: String = object
        .and_then(|o| o.get::<_, String>("stack").ok())
        .unwrap_or_default();
    let at = stack.split("rule.js:").nth(1).and_then(|rest| {
        let mut parts = rest.split(|c: char| !c.is_ascii_digit());
        let line: u32 = parts.next()?.parse().ok()?;
        let column: u32 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
        let column = if line == 1 {
            column.saturating_sub(prefix_columns).max(1)
        } else {
            column
        };
        Some((line, column))
    });
    compile_error(&format!("{name}: {message}"), at)
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
}

/// Appends `text` as a JSON string; the common case (nothing to escape) is one copy.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(text);
    } else {
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                // The short forms, as JSON.stringify writes them.
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\u00");
                    out.push(HEX[(c as usize) >> 4] as char);
                    out.push(HEX[(c as usize) & 15] as char);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// Loads bytecode made by `compile` with the same runtime (its kind byte first) into a new
/// slot of this instance; returns the slot. An action's module code runs now, once, and its
/// `module.exports` are kept.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn load(ptr: *const u8, len: i32) -> i32 {
    let (kind, bytecode) = match unsafe { input(ptr, len) }.split_first() {
        Some((kind, rest)) => (*kind, rest),
        None => fail("no bytecode to load"),
    };
    with_state(|state| {
        let item = state.context.with(|ctx| {
            let raw = ctx.as_raw().as_ptr();
            let object = unsafe {
                qjs::JS_ReadObject(
                    raw,
                    bytecode.as_ptr(),
                    bytecode.len() as _,
                    qjs::JS_READ_OBJ_BYTECODE as i32,
                )
            };
            if unsafe { qjs::JS_IsException(object) } {
                fail(&format!(
                    "cannot load the bytecode: {}",
                    describe_value(&ctx.catch())
                ));
            }
            let value = unsafe { qjs::JS_EvalFunction(raw, object) };
            if unsafe { qjs::JS_IsException(value) } {
                fail(&format!(
                    "evaluating the source failed: {}",
                    describe_value(&ctx.catch())
                ));
            }
            let value = unsafe { Value::from_raw(ctx.clone(), value) };
            let Some(function) = value.into_function() else {
                fail("the source is not a function")
            };
            if kind != b'a' {
                return Item::Rule(Persistent::save(&ctx, function));
            }
            let exports = match module_exports(&ctx, &function) {
                Ok(e) => e,
                Err(why) => fail(&format!("the action's module code failed: {why}")),
            };
            Item::Action(Persistent::save(&ctx, exports))
        });
        state.items.push(item);
        (state.items.len() - 1) as i32
    })
}

/// Runs an action's module function as CommonJS does, and returns what it exported.
fn module_exports<'js>(
    ctx: &Ctx<'js>,
    function: &Function<'js>,
) -> Result<rquickjs::Object<'js>, String> {
    let module = rquickjs::Object::new(ctx.clone()).map_err(|e| e.to_string())?;
    let exports = rquickjs::Object::new(ctx.clone()).map_err(|e| e.to_string())?;
    module
        .set("exports", exports.clone())
        .map_err(|e| e.to_string())?;
    let require: Value = ctx.globals().get("require").map_err(|e| describe(ctx, e))?;
    function
        .call::<_, ()>((exports, module.clone(), require))
        .map_err(|e| describe(ctx, e))?;
    let exported: Value = module.get("exports").map_err(|e| describe(ctx, e))?;
    exported
        .into_object()
        .ok_or_else(|| "module.exports is not an object".to_string())
}

/// A rule's ABI input split one level down: each property of `user` and `context` as its
/// JSON text, for `prelude.js` to parse only when the rule reads it.
struct Input {
    user: Fields,
    context: Fields,
    configuration: &'static [u8],
}

impl Input {
    /// Cuts the host's input (`{"configuration":…,"context":{…},"user":{…}}`, other members
    /// skipped) into its parts by its brackets and quotes alone. It accepts what the host never
    /// writes (a `user` that is not an object is left empty, a member repeated in `user`
    /// or `context` counts with its first value, trailing bytes are ignored) where serde_json refused it. The host wrote it with
    /// serde_json, so it is valid JSON; reading it with serde_json here (checking every byte,
    /// a tree per object) was a fifth of a small rule's fuel. Text this cannot follow fails the
    /// run; a member it cut wrongly would only fail to parse when the rule reads it.
    fn split(bytes: &'static [u8]) -> Option<Input> {
        let mut scan = Scan { bytes, at: 0 };
        let mut input = Input {
            user: Fields::new(),
            context: Fields::new(),
            configuration: b"{}",
        };
        scan.members(|scan, key| {
            match &*key {
                b"user" | b"context" if scan.peek() == Some(b'{') => {
                    let mut fields = Fields(Vec::with_capacity(24));
                    scan.members(|scan, key| {
                        let raw = scan.value()?;
                        fields.0.push((key, Field { raw, taken: false }));
                        Some(())
                    })?;
                    if &*key == b"user" {
                        input.user = fields;
                    } else {
                        input.context = fields;
                    }
                }
                b"configuration" => {
                    let raw = scan.value()?;
                    if raw != b"null" {
                        input.configuration = raw;
                    }
                }
                _ => drop(scan.value()?),
            }
            Some(())
        })?;
        Some(input)
    }
}

/// Where the first `"` or `\\` of `bytes` is: eight bytes per step (the sandbox's wasm has no
/// SIMD; a byte loop cost four times the fuel on the long strings of a login's input).
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The lowest set high bit marks the first byte equal to `byte`; bits above it may be wrong.
    let equal = |word: u64, byte: u8| {
        let x = word ^ (ONES * byte as u64);
        x.wrapping_sub(ONES) & !x & HIGH
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = equal(word, b'"') | equal(word, b'\\');
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|n| at + n)
}

/// A cursor over JSON text that finds where values end without reading them.
struct Scan {
    bytes: &'static [u8],
    at: usize,
}

impl Scan {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    /// Past the string that starts at the cursor; whether it held an escape.
    fn string(&mut self) -> Option<bool> {
        let mut escaped = false;
        self.at += 1;
        loop {
            self.at += quote_or_backslash(self.bytes.get(self.at..)?)?;
            self.at += 1;
            if self.bytes[self.at - 1] == b'"' {
                return Some(escaped);
            }
            escaped = true;
            self.at += 1;
        }
    }

    /// The text of the value at the cursor, which moves past it.
    fn value(&mut self) -> Option<&'static [u8]> {
        let start = {
            self.skip_space();
            self.at
        };
        match *self.bytes.get(start)? {
            b'"' => drop(self.string()?),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    let rest = self.bytes.get(self.at..)?;
                    let n = rest
                        .iter()
                        .position(|&b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']'))?;
                    self.at += n;
                    match rest[n] {
                        b'"' => drop(self.string()?),
                        b'{' | b'[' => {
                            depth += 1;
                            self.at += 1;
                        }
                        _ => {
                            depth -= 1;
                            self.at += 1;
                            if depth == 0 {
                                break;
                            }
                        }
                    }
                }
            }
            _ => {
                while !matches!(
                    self.bytes.get(self.at),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                ) {
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
            }
        }
        self.bytes.get(start..self.at)
    }

    /// The members of the object at the cursor: `each` gets each key (unescaped) with the
    /// cursor on its value, and must move past it.
    fn members(
        &mut self,
        mut each: impl FnMut(&mut Scan, Cow<'static, [u8]>) -> Option<()>,
    ) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return None;
            }
            let start = self.at;
            let escaped = self.string()?;
            let quoted = &self.bytes[start..self.at];
            let key = if escaped {
                Cow::Owned(serde_json::from_slice::<String>(quoted).ok()?.into_bytes())
            } else {
                Cow::Borrowed(&quoted[1..quoted.len() - 1])
            };
            if !self.eat(b':') {
                return None;
            }
            each(self, key)?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }
}

/// An action's input (see the host's `EventFrame::action_input`): ten length-prefixed
/// parts — entry, trigger, the fixed members' token and member index, the dynamic member's
/// name, token, value and (for `user`) member index, the action's secrets, the facts its `api`
/// needs.
struct ActionInput {
    parts: [&'static [u8]; 10],
}

impl ActionInput {
    fn parse(mut bytes: &'static [u8]) -> Option<Self> {
        let mut parts: [&'static [u8]; 10] = [&[]; 10];
        for part in &mut parts {
            let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            *part = bytes.get(4..4 + len)?;
            bytes = &bytes[4 + len..];
        }
        Some(ActionInput { parts })
    }

    fn text(&self, i: usize) -> &'static str {
        std::str::from_utf8(self.parts[i]).unwrap_or_else(|_| fail("the action input is not UTF-8"))
    }

    fn token(&self, i: usize) -> u64 {
        self.parts[i]
            .try_into()
            .map(u64::from_le_bytes)
            .unwrap_or_else(|_| fail("the action input has no token"))
    }
}

/// The tokens of the event parts slots 2 and 3 of `INPUT` hold: an action run whose parts
/// carry the same tokens reuses them as they are (only the `taken` marks reset), instead of
/// parsing kilobytes of JSON again (the fixed members never change within one trigger run;
/// the user changes only when an action sets metadata).
#[derive(Default)]
struct EventTokens {
    fixed: u64,
    dynamic: u64,
}

/// One property of `user` or `context`: its JSON text and whether the rule has it already.
/// The text is the host's and goes to QuickJS as bytes (`JS_NewStringLen`, `JS_ParseJSON`);
/// it is not checked for UTF-8 here (most members are never read, and checking all of them
/// was a tenth of a small action's fuel).
#[derive(Clone, Copy)]
struct Field {
    raw: &'static [u8],
    taken: bool,
}

/// The properties of one lazy object, in the host's order. A list, not a map: an event has
/// about twenty members, found by a compare of their lengths and bytes, and building a map
/// (a `String` per key, the tree's nodes) cost more than all the lookups of a run.
#[derive(Default)]
struct Fields(Vec<(Cow<'static, [u8]>, Field)>);

impl Fields {
    const fn new() -> Self {
        Fields(Vec::new())
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Field> {
        self.0
            .iter_mut()
            .find(|(k, _)| **k == *key)
            .map(|(_, field)| field)
    }

    /// Sets `key` (replacing its field when it is there).
    fn set(&mut self, key: Cow<'static, [u8]>, field: Field) {
        match self.get_mut(&key) {
            Some(old) => *old = field,
            None => self.0.push((key, field)),
        }
    }

    /// Every field not taken again (a new run over the same texts).
    fn untake(&mut self) {
        for (_, field) in &mut self.0 {
            field.taken = false;
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

thread_local! {
    /// The current run's `user` (0) and `context` (1) properties, or an action's `event` (2)
    /// and, for post-login, `event.user` (3). The texts live in input buffers `alloc` leaked,
    /// for the instance's life.
    static INPUT: RefCell<[Fields; 4]> = const { RefCell::new([Fields::new(), Fields::new(), Fields::new(), Fields::new()]) };
    /// The tokens of the event parts held in `INPUT` (see [`EventTokens`]).
    static EVENT: RefCell<EventTokens> = RefCell::new(EventTokens::default());
    /// What the running action asked for, collected by `__wardstone_emit`.
    static OUT: RefCell<ActionOut> = RefCell::new(ActionOut::default());
    /// The rule called `callback` (or failed): QuickJS's interrupt handler stops its code.
    static SETTLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The members of a member index (the host's `member_index`: each key, then its value's JSON
/// text, as u32 little-endian lengths and bytes), cut out without reading any JSON.
fn indexed(mut bytes: &'static [u8]) -> Fields {
    fn next(bytes: &mut &'static [u8]) -> &'static [u8] {
        let part = bytes
            .get(..4)
            .and_then(|len| len.try_into().ok())
            .map(|len| u32::from_le_bytes(len) as usize)
            .and_then(|len| bytes.get(4..4 + len))
            .unwrap_or_else(|| fail("the action input's member index is cut short"));
        *bytes = &bytes[4 + part.len()..];
        part
    }
    // The host writes each key once (the members of a JSON object).
    let mut out = Fields(Vec::with_capacity(24));
    while !bytes.is_empty() {
        let key = next(&mut bytes);
        let raw = next(&mut bytes);
        out.0
            .push((Cow::Borrowed(key), Field { raw, taken: false }));
    }
    out
}

/// Reads argument `i` as a Rust string (empty when it is not a string).
unsafe fn arg_string(
    ctx: *mut qjs::JSContext,
    argc: i32,
    argv: *mut qjs::JSValue,
    i: i32,
) -> String {
    let Some(text) = (unsafe { ArgText::new(ctx, argc, argv, i) }) else {
        return String::new();
    };
    // A lone surrogate comes out as invalid UTF-8 (WTF-8); the common case is one check.
    match std::str::from_utf8(text.bytes()) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(text.bytes()).into_owned(),
    }
}

/// Argument `i` converted to a string, as the bytes QuickJS gives (UTF-8, or WTF-8 with a
/// lone surrogate), borrowed until dropped; `None` when it is missing or the conversion threw.
struct ArgText {
    ctx: *mut qjs::JSContext,
    ptr: *const std::ffi::c_char,
    len: usize,
}

impl ArgText {
    unsafe fn new(
        ctx: *mut qjs::JSContext,
        argc: i32,
        argv: *mut qjs::JSValue,
        i: i32,
    ) -> Option<Self> {
        if i >= argc {
            return None;
        }
        unsafe { Self::of(ctx, *argv.add(i as usize)) }
    }

    /// `value` converted to a string (see [`ArgText::new`]).
    unsafe fn of(ctx: *mut qjs::JSContext, value: qjs::JSValue) -> Option<Self> {
        let mut len: qjs::size_t = 0;
        let ptr = unsafe { qjs::JS_ToCStringLen2(ctx, &mut len, value, false) };
        (!ptr.is_null()).then_some(ArgText {
            ctx,
            ptr,
            len: len as usize,
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: QuickJS keeps the `len` bytes at `ptr` until `JS_FreeCString`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for ArgText {
    fn drop(&mut self) {
        unsafe { qjs::JS_FreeCString(self.ctx, self.ptr) };
    }
}

unsafe fn arg_i32(ctx: *mut qjs::JSContext, argc: i32, argv: *mut qjs::JSValue, i: i32) -> i32 {
    let mut value = 0;
    if i < argc {
        unsafe { qjs::JS_ToInt32(ctx, &mut value, *argv.add(i as usize)) };
    }
    value
}

unsafe fn new_string(ctx: *mut qjs::JSContext, text: &[u8]) -> qjs::JSValue {
    unsafe { qjs::JS_NewStringLen(ctx, text.as_ptr() as *const _, text.len() as _) }
}

fn with_fields<R>(which: i32, f: impl FnOnce(&mut Fields) -> R) -> R {
    INPUT.with(|input| f(&mut input.borrow_mut()[which.clamp(0, 3) as usize]))
}

/// Marks property `key` of slot `which` taken and returns its JSON text; `None` when there is
/// no such property not yet taken.
fn take_field(which: i32, key: &[u8]) -> Option<&'static [u8]> {
    with_fields(which, |fields| match fields.get_mut(key) {
        Some(field) if !field.taken => {
            field.taken = true;
            Some(field.raw)
        }
        _ => None,
    })
}

/// Whether `key` of slot `which` is a post-login event's `user`, which is lazy one level
/// further down (slot 3) instead of parsed whole.
fn is_lazy_user(which: i32, key: &[u8]) -> bool {
    which == 2 && key == b"user" && !with_fields(3, |f| f.is_empty())
}

/// `__wardstone_take(which, key, wanted)`: marks `user[key]` (`which` 0) or `context[key]`
/// (1) taken and returns its JSON text when `wanted`; undefined when there is no such
/// property not yet taken. A raw QuickJS function: it runs at every first read of a property,
/// and rquickjs's generic wrapper costs several times the lookup.
unsafe extern "C" fn take_property(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let which = unsafe { arg_i32(ctx, argc, argv, 0) };
    let Some(key) = (unsafe { ArgText::new(ctx, argc, argv, 1) }) else {
        return qjs::JS_UNDEFINED;
    };
    let wanted = argc > 2 && unsafe { qjs::JS_ToBool(ctx, *argv.add(2)) } > 0;
    let raw = take_field(which, key.bytes());
    // A post-login event's `user` is lazy one level further down: `true` tells the prelude to
    // make it a lazy object over slot 3 instead of parsing all of it.
    if raw.is_some() && wanted && is_lazy_user(which, key.bytes()) {
        return qjs::JS_TRUE;
    }
    match raw {
        Some(raw) if wanted => unsafe { new_string(ctx, raw) },
        _ => qjs::JS_UNDEFINED,
    }
}

/// `__wardstone_getter(which, makeLazyUser)`: the `get` trap of the lazy objects over slot
/// `which`, as a native function. Every read of `event.x` goes through it, and the trap
/// written in JavaScript (read, checks, `hostTake`, `JSON.parse`, assignment, read again) was
/// a fifth of a small action's run.
unsafe extern "C" fn make_getter(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let which = unsafe { arg_i32(ctx, argc, argv, 0) };
    let mut data = [if argc > 1 {
        unsafe { *argv.add(1) }
    } else {
        qjs::JS_UNDEFINED
    }];
    // JS_NewCFunctionData keeps its own reference to each data value.
    unsafe { qjs::JS_NewCFunctionData(ctx, Some(lazy_get), 3, which, 1, data.as_mut_ptr()) }
}

/// The `get` trap: `target[key]` when the target has it (or the key is a symbol); else the
/// property's JSON text taken from the input, parsed and defined on the target — or, for a
/// post-login event's `user`, a lazy object one level down (`data[0]` makes it).
unsafe extern "C" fn lazy_get(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
    which: i32,
    data: *mut qjs::JSValue,
) -> qjs::JSValue {
    if argc < 2 {
        return qjs::JS_UNDEFINED;
    }
    unsafe {
        let (target, key) = (*argv, *argv.add(1));
        let atom = qjs::JS_ValueToAtom(ctx, key);
        if atom == qjs::JS_ATOM_NULL {
            return qjs::JS_EXCEPTION;
        }
        let value = qjs::JS_GetProperty(ctx, target, atom);
        if !qjs::JS_IsUndefined(value) || !qjs::JS_IsString(key) {
            qjs::JS_FreeAtom(ctx, atom);
            return value;
        }
        // An own property that holds undefined stays so; so does a deleted one (taken).
        let own = qjs::JS_GetOwnProperty(ctx, std::ptr::null_mut(), target, atom);
        if own != 0 {
            qjs::JS_FreeAtom(ctx, atom);
            return if own < 0 {
                qjs::JS_EXCEPTION
            } else {
                qjs::JS_UNDEFINED
            };
        }
        let name = ArgText::new(ctx, argc, argv, 1);
        let name = name.as_ref().map_or(&[][..], ArgText::bytes);
        let raw = take_field(which, name);
        let Some(raw) = raw else {
            qjs::JS_FreeAtom(ctx, atom);
            return qjs::JS_UNDEFINED;
        };
        let value = if is_lazy_user(which, name) {
            qjs::JS_Call(ctx, *data, qjs::JS_UNDEFINED, 0, std::ptr::null_mut())
        } else {
            // QuickJS's JSON parser reads up to a NUL past the text.
            let mut text = Vec::with_capacity(raw.len() + 1);
            text.extend_from_slice(raw);
            text.push(0);
            qjs::JS_ParseJSON(
                ctx,
                text.as_ptr() as *const _,
                raw.len() as _,
                c"event".as_ptr(),
            )
        };
        if qjs::JS_IsException(value) {
            qjs::JS_FreeAtom(ctx, atom);
            return value;
        }
        let defined = qjs::JS_DefinePropertyValue(
            ctx,
            target,
            atom,
            qjs::JS_DupValue(ctx, value),
            // As the strict-mode assignment of the JavaScript trap did: a target made
            // non-extensible (`Object.preventExtensions(event)`) throws, and the member is not
            // handed out once and then lost.
            (qjs::JS_PROP_C_W_E | qjs::JS_PROP_THROW) as i32,
        );
        qjs::JS_FreeAtom(ctx, atom);
        if defined < 0 {
            qjs::JS_FreeValue(ctx, value);
            return qjs::JS_EXCEPTION;
        }
        value
    }
}

/// `__wardstone_keys(which)`: the names of the properties not yet taken, as a JSON array.
unsafe extern "C" fn pending_keys(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let which = unsafe { arg_i32(ctx, argc, argv, 0) };
    let keys = with_fields(which, |fields| {
        let keys: Vec<_> = (fields.0.iter())
            .filter(|(_, f)| !f.taken)
            .map(|(k, _)| String::from_utf8_lossy(k))
            .collect();
        serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into())
    });
    unsafe { new_string(ctx, keys.as_bytes()) }
}

/// `__wardstone_settle(denial)`: the rule reached its outcome. A denial's output is handed to
/// the host now, so nothing that runs afterwards can turn it into a failure; the interrupt
/// handler then stops the rule's code.
unsafe extern "C" fn settle(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let denied = argc > 0 && !unsafe { qjs::JS_IsUndefined(*argv) };
    if denied {
        let output = unsafe { arg_string(ctx, argc, argv, 0) };
        // SAFETY: the host reads `len` bytes at `ptr` from this module's memory.
        unsafe { host_decision(output.as_ptr(), output.len()) };
    }
    SETTLED.with(|s| s.set(true));
    qjs::JS_UNDEFINED
}

/// Calls a host import that takes a UTF-8 JSON request and answers UTF-8 JSON written into
/// memory from our `alloc`; returns the answer as a JS string.
unsafe fn call_host(
    ctx: *mut qjs::JSContext,
    argc: i32,
    argv: *mut qjs::JSValue,
    import: unsafe extern "C" fn(*const u8, usize) -> i64,
) -> qjs::JSValue {
    let request = unsafe { arg_string(ctx, argc, argv, 0) };
    // SAFETY: the host reads `len` bytes at `ptr`, and writes its answer into memory it gets
    // from our `alloc`, which is never freed.
    let packed = unsafe { import(request.as_ptr(), request.len()) } as u64;
    let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    let answer = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
    let text = String::from_utf8_lossy(answer);
    unsafe { new_string(ctx, text.as_bytes()) }
}

/// `__wardstone_fetch(requestJson)`: one outbound request through `wardstone.http_fetch`.
unsafe extern "C" fn fetch(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    unsafe { call_host(ctx, argc, argv, host_http_fetch) }
}

/// `__wardstone_module(name)`: the wrapper function of built-in module `name`, evaluated
/// from its source into this instance; undefined when there is no such module. The modules
/// snapshot has them all evaluated already; in the lean one this is the slow path for a use
/// the upload's scan did not see (see the server's `uses_modules`).
unsafe extern "C" fn load_module(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let name = unsafe { arg_string(ctx, argc, argv, 0) };
    let Some((name, source)) = MODULE_SOURCES.iter().find(|(n, _)| *n == name) else {
        return qjs::JS_UNDEFINED;
    };
    let Ok(wrapped) = std::ffi::CString::new(format!("{MODULE_PREFIX}{source}{MODULE_SUFFIX}"))
    else {
        return qjs::JS_UNDEFINED;
    };
    let file = std::ffi::CString::new(format!("{name}.js")).unwrap_or_default();
    unsafe {
        qjs::JS_Eval(
            ctx,
            wrapped.as_ptr(),
            wrapped.as_bytes().len() as _,
            file.as_ptr(),
            qjs::JS_EVAL_TYPE_GLOBAL as i32,
        )
    }
}

/// `__wardstone_crypto(requestJson)`: an HMAC, hash, random bytes or JWT done by the host.
unsafe extern "C" fn crypto(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    unsafe { call_host(ctx, argc, argv, host_crypto) }
}

/// What one action run asked for, as JSON texts, gathered as its `api` calls happen (so the
/// output is written here, not by `JSON.stringify` of a state object in the interpreter).
#[derive(Default)]
struct ActionOut {
    denied: Option<String>,
    id_token: BTreeMap<String, String>,
    access_token: BTreeMap<String, String>,
    scopes: Vec<(bool, String)>,
    app_metadata: BTreeMap<String, String>,
    user_metadata: BTreeMap<String, String>,
    cache: BTreeMap<String, String>,
    redirect: Option<String>,
    unsupported: Option<String>,
}

impl ActionOut {
    /// The output the host reads (its `ActionOutput`): only what was asked for. Written into
    /// one buffer (`format!` per member was a tenth of a small action's run).
    fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        if let Some(name) = &self.unsupported {
            out.push_str("{\"unsupported\":");
            push_json_string(&mut out, name);
            out.push('}');
            return out;
        }
        out.push('{');
        let member = |out: &mut String, name: &str| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
        };
        if let Some(denied) = &self.denied {
            member(&mut out, "denied");
            out.push_str(denied);
        }
        for (name, map) in [
            ("idToken", &self.id_token),
            ("accessToken", &self.access_token),
            ("appMetadata", &self.app_metadata),
            ("userMetadata", &self.user_metadata),
            ("cache", &self.cache),
        ] {
            if map.is_empty() {
                continue;
            }
            member(&mut out, name);
            out.push('{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, key);
                out.push(':');
                out.push_str(value);
            }
            out.push('}');
        }
        if !self.scopes.is_empty() {
            member(&mut out, "scopes");
            out.push('[');
            for (i, (add, scope)) in self.scopes.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(if *add { "[\"+\"," } else { "[\"-\"," });
                push_json_string(&mut out, scope);
                out.push(']');
            }
            out.push(']');
        }
        if let Some(redirect) = &self.redirect {
            member(&mut out, "redirect");
            out.push_str(redirect);
        }
        out.push('}');
        out
    }
}

/// `__wardstone_emit(kind, key, json)`: one thing the running action asked for. `json` is
/// the value's JSON text, made by the prelude when the call happened (so later changes to
/// the object do not count).
unsafe extern "C" fn emit(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let kind = unsafe { arg_i32(ctx, argc, argv, 0) };
    let key = unsafe { arg_string(ctx, argc, argv, 1) };
    let json = unsafe { arg_string(ctx, argc, argv, 2) };
    record(kind, key, json);
    qjs::JS_UNDEFINED
}

/// `__wardstone_emit_value(kind, key, value)`: as `__wardstone_emit` with `value`'s JSON text
/// (`JSON.stringify`, `null` for what it leaves out), made here. Claims and metadata are most
/// often a string, a number or a list of strings: those are written directly, and everything
/// else goes through QuickJS's `JSON.stringify`, whose setup alone (a wrapper object, its
/// property, their release) cost ≈ 5 k fuel a call. A throw (a cycle, a `toJSON` that throws)
/// reaches the action as it did from `JSON.stringify`.
unsafe extern "C" fn emit_value(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let kind = unsafe { arg_i32(ctx, argc, argv, 0) };
    let key = unsafe { arg_string(ctx, argc, argv, 1) };
    let value = if argc > 2 {
        unsafe { *argv.add(2) }
    } else {
        qjs::JS_UNDEFINED
    };
    let mut json = String::new();
    match unsafe { write_json(ctx, value, &mut json, true) } {
        Written::Json => {}
        Written::Threw => return qjs::JS_EXCEPTION,
        Written::Other => {
            let text =
                unsafe { qjs::JS_JSONStringify(ctx, value, qjs::JS_UNDEFINED, qjs::JS_UNDEFINED) };
            if unsafe { qjs::JS_IsException(text) } {
                return text;
            }
            // A string in valid UTF-16: QuickJS escapes lone surrogates.
            json = match unsafe { qjs::JS_IsString(text) } {
                true => unsafe { ArgText::of(ctx, text) }
                    .map(|t| String::from_utf8_lossy(t.bytes()).into_owned())
                    .unwrap_or_else(|| "null".into()),
                false => "null".into(),
            };
            unsafe { qjs::JS_FreeValue(ctx, text) };
        }
    }
    record(kind, key, json);
    qjs::JS_UNDEFINED
}

/// `__wardstone_is_promise(value)`: whether `value` is a promise object (not a thenable, nor a
/// proxy of one), whose state the runtime can read.
unsafe extern "C" fn is_promise(
    ctx: *mut qjs::JSContext,
    _this: qjs::JSValue,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    let promise = argc > 0
        && unsafe { qjs::JS_PromiseState(ctx, *argv) }
            != qjs::JSPromiseStateEnum_JS_PROMISE_NOT_A_PROMISE;
    if promise { qjs::JS_TRUE } else { qjs::JS_FALSE }
}

/// What [`write_json`] did.
enum Written {
    Json,
    /// `JSON.stringify` must write this value (`out` holds part of it: drop it).
    Other,
    /// A getter threw: the exception is pending.
    Threw,
}

/// Writes `value` as `JSON.stringify` would when it is a string (valid UTF-16), an integer
/// below 2^53, a boolean, null, undefined at the top (`null`, as the prelude always sent for a claim set to undefined), or
/// (at the top) an Array of those with no `toJSON`. Its elements are read as
/// `JSON.stringify` reads them; one that is not such a value hands the whole array to it,
/// which reads them again (observable only through getters or proxies the array reaches).
unsafe fn write_json(
    ctx: *mut qjs::JSContext,
    value: qjs::JSValue,
    out: &mut String,
    top: bool,
) -> Written {
    use std::fmt::Write;
    let tag = unsafe { qjs::JS_VALUE_GET_TAG(value) };
    if tag == qjs::JS_TAG_INT {
        let _ = write!(out, "{}", unsafe { qjs::JS_VALUE_GET_INT(value) });
    } else if unsafe { qjs::JS_TAG_IS_FLOAT64(tag) } {
        let f = unsafe { qjs::JS_VALUE_GET_FLOAT64(value) };
        // Integral and exact: printed as JavaScript prints it (-0 as 0).
        if f.fract() != 0.0 || f.abs() >= 9_007_199_254_740_992.0 || f.is_nan() {
            return Written::Other;
        }
        let _ = write!(out, "{}", f as i64);
    } else if tag == qjs::JS_TAG_BOOL {
        out.push_str(if unsafe { qjs::JS_VALUE_GET_BOOL(value) } {
            "true"
        } else {
            "false"
        });
    } else if tag == qjs::JS_TAG_NULL || (top && tag == qjs::JS_TAG_UNDEFINED) {
        out.push_str("null");
    } else if unsafe { qjs::JS_IsString(value) } {
        let Some(text) = (unsafe { ArgText::of(ctx, value) }) else {
            return Written::Other;
        };
        // A lone surrogate comes out as WTF-8, which JSON.stringify escapes.
        let Ok(text) = std::str::from_utf8(text.bytes()) else {
            return Written::Other;
        };
        push_json_string(out, text);
    } else if top && unsafe { qjs::JS_IsArray(value) } {
        let to_json = unsafe { qjs::JS_GetPropertyStr(ctx, value, c"toJSON".as_ptr()) };
        let plain = unsafe { qjs::JS_IsUndefined(to_json) };
        unsafe { qjs::JS_FreeValue(ctx, to_json) };
        if unsafe { qjs::JS_IsException(to_json) } {
            return Written::Threw;
        }
        let mut len = 0i64;
        if !plain || unsafe { qjs::JS_GetLength(ctx, value, &mut len) } < 0 || len > 10_000 {
            return Written::Other;
        }
        out.push('[');
        for i in 0..len as u32 {
            if i > 0 {
                out.push(',');
            }
            let element = unsafe { qjs::JS_GetPropertyUint32(ctx, value, i) };
            if unsafe { qjs::JS_IsException(element) } {
                return Written::Threw;
            }
            // What JSON.stringify writes as null inside an array.
            let tag = unsafe { qjs::JS_VALUE_GET_TAG(element) };
            let written = if tag == qjs::JS_TAG_UNDEFINED || tag == qjs::JS_TAG_SYMBOL {
                out.push_str("null");
                Written::Json
            } else {
                unsafe { write_json(ctx, element, out, false) }
            };
            unsafe { qjs::JS_FreeValue(ctx, element) };
            if !matches!(written, Written::Json) {
                return written;
            }
        }
        out.push(']');
    } else {
        return Written::Other;
    }
    Written::Json
}

/// Keeps one thing the running action asked for (`json`: its value's JSON text).
fn record(kind: i32, key: String, json: String) {
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        match kind {
            0 => out.denied = Some(json),
            1 => drop(out.id_token.insert(key, json)),
            2 => drop(out.access_token.insert(key, json)),
            3 => out.scopes.push((true, key)),
            4 => out.scopes.push((false, key)),
            5 => drop(out.app_metadata.insert(key, json)),
            6 => drop(out.user_metadata.insert(key, json)),
            7 => drop(out.cache.insert(key, json)),
            8 => out.redirect = Some(json),
            _ => out.unsupported = Some(key),
        }
    });
}

/// Defines a raw QuickJS function as a global.
fn define_raw(ctx: &Ctx<'_>, name: &std::ffi::CStr, f: qjs::JSCFunction, length: i32) {
    let raw = ctx.as_raw().as_ptr();
    unsafe {
        let function = qjs::JS_NewCFunction2(
            raw,
            f,
            name.as_ptr(),
            length,
            qjs::JSCFunctionEnum_JS_CFUNC_generic,
            0,
        );
        let global = qjs::JS_GetGlobalObject(raw);
        qjs::JS_SetPropertyStr(raw, global, name.as_ptr(), function);
        qjs::JS_FreeValue(raw, global);
    }
}

/// Adds null for every key `before` has and `after` lacks, recursively through objects: with
/// it, `after` is an RFC 7396 patch that turns `before` into `after`. Whether it added any.
fn null_removed_keys(before: &serde_json::Value, after: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return false;
    };
    let mut added = false;
    for (key, old) in before {
        match after.get_mut(key) {
            Some(new) => added |= null_removed_keys(old, new),
            None => {
                after.insert(key.clone(), Value::Null);
                added = true;
            }
        }
    }
    added
}

/// The rule's output with every object-valued property of `user` and `context` made a merge
/// patch against the input's value (a nested key the rule deleted must go out as null).
/// Denials, and outputs where nothing was removed, pass unchanged.
fn as_merge_patch(json: String) -> String {
    let Ok(serde_json::Value::Object(mut output)) = serde_json::from_str(&json) else {
        return json;
    };
    let mut added = false;
    for (which, name) in ["user", "context"].into_iter().enumerate() {
        let Some(serde_json::Value::Object(object)) = output.get_mut(name) else {
            continue;
        };
        with_fields(which as i32, |fields| {
            for (key, value) in object.iter_mut() {
                let Some(field) = fields.get_mut(key.as_bytes()) else {
                    continue;
                };
                // Only objects can lose nested keys; the text check skips the parse otherwise.
                let raw = field.raw;
                if !value.is_object() || !raw.starts_with(b"{") || raw == b"{}" {
                    continue;
                }
                if let Ok(before) = serde_json::from_slice::<serde_json::Value>(raw) {
                    added |= null_removed_keys(&before, value);
                }
            }
        });
    }
    if !added {
        return json;
    }
    serde_json::to_string(&output).unwrap_or(json)
}

/// ABI v1: runs the most recently loaded rule on the input and returns the output's location.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rule(ptr: *const u8, len: i32) -> i64 {
    let slot = with_state(|state| {
        state
            .items
            .iter()
            .rposition(|i| matches!(i, Item::Rule(_)))
            .unwrap_or_else(|| fail("no rule was loaded"))
    });
    unsafe { run(slot as i32, ptr, len) }
}

/// Runs the item in `slot` on the input at `[ptr, ptr+len)`: a rule on a rule ABI v1 input, an
/// action on an action input. Returns the output's location (rule ABI v1 output, or what the
/// action asked for as JSON).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn run(slot: i32, ptr: *const u8, len: i32) -> i64 {
    // SAFETY: the buffer came from `alloc`, which never frees: it outlives the instance.
    let bytes: &'static [u8] = unsafe { std::slice::from_raw_parts(ptr, len.max(0) as usize) };
    let item = with_state(|state| match state.items.get(slot.max(0) as usize) {
        Some(Item::Rule(f)) => Item::Rule(f.clone()),
        Some(Item::Action(h)) => Item::Action(h.clone()),
        None => fail(&format!("slot {slot} holds nothing")),
    });
    SETTLED.with(|s| s.set(false));
    // SAFETY: a host import without arguments.
    let seed = unsafe { host_random_seed() } as u64;
    let (high, low) = ((seed >> 32) as i32, seed as i32);
    match item {
        Item::Rule(rule) => {
            let input = Input::split(bytes)
                .unwrap_or_else(|| fail("the input is not a rule input (a JSON object)"));
            let configuration = std::str::from_utf8(input.configuration)
                .unwrap_or_else(|_| fail("the rule's configuration is not UTF-8"));
            // Slots 2 and 3 (an action's event) stay: later actions may reuse them.
            INPUT.with(|i| {
                let mut slots = i.borrow_mut();
                slots[0] = input.user;
                slots[1] = input.context;
            });
            let output = drive("rule", Finish::Rule, |ctx, state| {
                let start = state
                    .start_rule
                    .clone()
                    .restore(ctx)
                    .map_err(|e| e.to_string())?;
                let rule = rule.clone().restore(ctx).map_err(|e| e.to_string())?;
                start
                    .call::<_, ()>((rule, configuration, high, low))
                    .map_err(|e| describe(ctx, e))?;
                Ok(None)
            });
            leak(as_merge_patch(output).into_bytes())
        }
        Item::Action(handlers) => {
            let input = ActionInput::parse(bytes)
                .unwrap_or_else(|| fail("the input is not an action input"));
            let (entry, trigger, facts) = (input.text(0), input.text(1), input.text(9));
            let dynamic_key = input.parts[4];
            let split_user = dynamic_key == b"user";
            // The host made every JSON text of the input; a broken one fails when read.
            let secrets = input.parts[8];
            EVENT.with(|tokens| {
                let mut tokens = tokens.borrow_mut();
                INPUT.with(|slots| {
                    let mut slots = slots.borrow_mut();
                    let (fixed_token, dynamic_token) = (input.token(2), input.token(5));
                    if tokens.fixed != fixed_token || fixed_token == 0 {
                        slots[2] = indexed(input.parts[3]);
                        tokens.fixed = fixed_token;
                        tokens.dynamic = 0;
                    }
                    slots[2].untake();
                    if tokens.dynamic != dynamic_token || dynamic_token == 0 {
                        let raw = input.parts[6];
                        slots[2].set(Cow::Borrowed(dynamic_key), Field { raw, taken: false });
                        slots[3] = if split_user {
                            indexed(input.parts[7])
                        } else {
                            Fields::new()
                        };
                        tokens.dynamic = dynamic_token;
                    }
                    slots[3].untake();
                    let secrets = Field {
                        raw: secrets,
                        taken: false,
                    };
                    slots[2].set(Cow::Borrowed(b"secrets"), secrets);
                });
            });
            OUT.with(|o| *o.borrow_mut() = ActionOut::default());
            drive("action", Finish::Action, |ctx, state| {
                let handlers = handlers.clone().restore(ctx).map_err(|e| e.to_string())?;
                let start = state
                    .start_action
                    .clone()
                    .restore(ctx)
                    .map_err(|e| e.to_string())?;
                let handed: Value = start
                    .call((handlers, entry, trigger, facts, high, low))
                    .map_err(|e| describe(ctx, e))?;
                // The handler's promise when `startAction` hands it over (see `drive`).
                Ok(handed
                    .is_object()
                    .then(|| unsafe { qjs::JS_DupValue(ctx.as_raw().as_ptr(), handed.as_raw()) }))
            });
            leak(OUT.with(|o| o.borrow().to_json()).into_bytes())
        }
    }
}

/// Once the promise `startAction` handed over has settled (checked before each job), queues
/// the job that settles the action (`settleAction` with its state and value) behind what is
/// already queued, and releases the promise; whether it did. This is where the reaction of a
/// `.then` on it would have run: what the handler queued before it settled still runs before
/// the action is done, with the interrupt off. Without the `.then` there is no reaction
/// record, closures or derived promise to make (≈ a tenth of a small action's fuel).
fn settle_when_queued(ctx: &Ctx<'_>, entries: &Entries, promise: qjs::JSValue) -> bool {
    let raw = ctx.as_raw().as_ptr();
    let how = unsafe { qjs::JS_PromiseState(raw, promise) };
    if how == qjs::JSPromiseStateEnum_JS_PROMISE_PENDING {
        return false;
    }
    let settle = entries
        .settle_action
        .clone()
        .restore(ctx)
        .unwrap_or_else(|e| fail(&format!("settleAction: {e}")));
    unsafe {
        let mut args = [
            settle.as_raw(),
            qjs::JS_MKVAL(qjs::JS_TAG_INT, how),
            qjs::JS_PromiseResult(raw, promise),
        ];
        // JS_EnqueueJob keeps references of its own.
        if qjs::JS_EnqueueJob(raw, Some(call_first), 3, args.as_mut_ptr()) < 0 {
            fail("cannot queue the action's settlement");
        }
        qjs::JS_FreeValue(raw, args[2]);
        qjs::JS_FreeValue(raw, promise);
    }
    true
}

/// A job that calls its first argument with the others.
unsafe extern "C" fn call_first(
    ctx: *mut qjs::JSContext,
    argc: i32,
    argv: *mut qjs::JSValue,
) -> qjs::JSValue {
    unsafe { qjs::JS_Call(ctx, *argv, qjs::JS_UNDEFINED, argc - 1, argv.add(1)) }
}

/// Promise jobs one run may leave behind and have dropped when it ends; beyond, the instance
/// is not reused (see `reusable`).
const LEFTOVER_JOBS: usize = 1000;

thread_local! {
    /// A run left work this instance could not drop: the host must not run another in it.
    static DIRTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether another rule or action may run in this instance (1) or the host must take a fresh
/// one (0): a run that failed, or left promise jobs behind, poisons it.
#[unsafe(no_mangle)]
pub extern "C" fn reusable() -> i32 {
    i32::from(!DIRTY.with(|d| d.get()))
}

/// Which entry point ends a run.
#[derive(Clone, Copy)]
enum Finish {
    Rule,
    Action,
}

/// The prelude's entry points, looked up once when the runtime is snapshotted.
struct Entries {
    start_rule: Persistent<Function<'static>>,
    finish_rule: Persistent<Function<'static>>,
    start_action: Persistent<Function<'static>>,
    settle_action: Persistent<Function<'static>>,
    finish_action: Persistent<Function<'static>>,
}

/// Starts a run with `start`, drives its promise jobs until it settles, drops what it left
/// queued, and calls the finishing entry point: a rule's output, or (for an action, whose
/// output `__wardstone_emit` gathered) an empty string. Fails the execution closed on any
/// error.
///
/// `start` may hand over a promise (an owned reference, released here): see
/// [`settle_when_queued`].
fn drive(
    what: &str,
    finish: Finish,
    start: impl for<'js> FnOnce(&Ctx<'js>, &Entries) -> Result<Option<qjs::JSValue>, String>,
) -> String {
    with_state(|state| {
        let started = state.context.with(|ctx| start(&ctx, &state.entries));
        let settled = || SETTLED.with(|s| s.get());
        let mut promise = match started {
            Ok(promise) => promise,
            Err(_) if settled() => None,
            Err(why) => {
                DIRTY.with(|d| d.set(true));
                fail(&format!("the {what} failed: {why}"));
            }
        };
        // Promises: run the jobs the code queued (async functions, fetch, auth0.users.*) until
        // it reaches its outcome. Fuel and the deadline bound this loop like any other code.
        while !settled() {
            if let Some(p) = promise
                && state
                    .context
                    .with(|ctx| settle_when_queued(&ctx, &state.entries, p))
            {
                promise = None;
            }
            match state.runtime.execute_pending_job() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    if !settled() {
                        let why = e.0.with(|ctx| describe_value(&ctx.catch()));
                        log(2, &format!("a promise job threw: {why}"));
                    }
                }
            }
        }
        // What the code left queued belongs to this run: drop it now, with the interrupt on,
        // so none of it runs during the next one.
        let mut left = 0;
        while state.runtime.is_job_pending() {
            if left == LEFTOVER_JOBS {
                DIRTY.with(|d| d.set(true));
                break;
            }
            let _ = state.runtime.execute_pending_job();
            left += 1;
        }
        // The interrupt must not stop `finish`.
        SETTLED.with(|s| s.set(false));
        let output = state.context.with(|ctx| -> Result<String, String> {
            let entry = match finish {
                Finish::Rule => &state.entries.finish_rule,
                Finish::Action => &state.entries.finish_action,
            };
            if let Some(p) = promise {
                // Never settled (or the run ended first): only the reference goes.
                unsafe { qjs::JS_FreeValue(ctx.as_raw().as_ptr(), p) };
            }
            let finish = entry.clone().restore(&ctx).map_err(|e| e.to_string())?;
            let output: Option<String> = finish.call(()).map_err(|e| describe(&ctx, e))?;
            Ok(output.unwrap_or_default())
        });
        match output {
            Ok(json) => json,
            Err(why) => {
                DIRTY.with(|d| d.set(true));
                fail(&format!("the {what} failed: {why}"))
            }
        }
    })
}
