//! JavaScript: Auth0 Rules (SPEC §14) and Actions (SPEC §15) on the embedded QuickJS runtime,
//! inside the wasm sandbox.
//!
//! A script is stored as module bytes like any rule — UTF-8 text for a rule, one byte
//! [`ACTION_MARK`] then the text for an action (a wasm module always starts with `\0asm`, a
//! script never contains NUL) — so versions, rollback, hashes and the per-node cache are one
//! path for all. Compiling a script means running the runtime's `compile` export in the
//! sandbox: the result is QuickJS bytecode, the script's "artifact" (stored and shared by
//! nodes like native code, under the same MAC). A trigger run instantiates the one shared
//! runtime snapshot afresh and loads each script's bytecode into it ([`runtime`]).
//!
//! Here: the checks a source passes before it is compiled, and what module bytes and
//! artifacts look like. [`snapshot`]: the pre-initialized runtime; [`runtime`]: the compiled
//! runtime, compiling scripts, and running them in one instance per trigger run; [`crypto`]:
//! the host side of `wardstone.crypto`.

pub mod crypto;
pub(crate) mod image;
pub(crate) mod runtime;
pub(crate) mod snapshot;

pub(crate) use image::{ImageCache, ImageLookup, ImageScripts, LoadedImage};
pub(crate) use runtime::{JsInstance, JsRuntime, Script};

use std::sync::OnceLock;

use super::engine::{Rejected, RuleEngine};

#[cfg(js_runtime)]
const EMBEDDED_RUNTIME: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("OUT_DIR"), "/js-runtime.wasm")));
#[cfg(not(js_runtime))]
const EMBEDDED_RUNTIME: Option<&[u8]> = None;

/// Whether this build embeds the JavaScript runtime (its build needs clang; see `build.rs`).
pub const AVAILABLE: bool = EMBEDDED_RUNTIME.is_some();

/// The runtime's wasm: the embedded one or — a developer's switch, to measure a changed
/// runtime (`rules-sdk/js-runtime`) without rebuilding the server — the file
/// `WARDSTONE_JS_RUNTIME` names, in a build that embeds one.
fn runtime_wasm() -> Option<&'static [u8]> {
    static RUNTIME: OnceLock<Option<&'static [u8]>> = OnceLock::new();
    *RUNTIME.get_or_init(|| {
        let Some(path) = std::env::var_os("WARDSTONE_JS_RUNTIME").filter(|_| AVAILABLE) else {
            return EMBEDDED_RUNTIME;
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                tracing::warn!(path = %path.to_string_lossy(), "JavaScript runtime loaded from WARDSTONE_JS_RUNTIME");
                Some(Box::leak(bytes.into_boxed_slice()))
            }
            Err(e) => {
                tracing::error!(path = %path.to_string_lossy(), "cannot read WARDSTONE_JS_RUNTIME ({e}); using the embedded runtime");
                EMBEDDED_RUNTIME
            }
        }
    })
}

/// Why JavaScript is unavailable, for an upload that needs it.
pub const UNAVAILABLE: &str = "JavaScript rules and actions are not available on this server: it was built without the JavaScript runtime (building it needs clang and the wasm32-unknown-unknown target)";

/// The first byte of an action's module bytes (and of its source as `compile` takes it).
pub const ACTION_MARK: u8 = 1;

/// The modules `require` may name (SPEC §15; docs/writing-js-rules.md): the host-backed
/// `crypto` and, when the build bundled them (`cfg(js_modules)`, see build.rs), one per file of
/// `rules-sdk/js-runtime/modules/entries`. Anything else is refused at upload.
#[cfg(js_modules)]
pub const BUILTIN_MODULES: &[&str] = &[
    "@auth0/rule-utilities",
    "auth0",
    "axios",
    "buffer",
    "crypto",
    "ipaddr.js",
    "jsonwebtoken",
    "lodash",
    "moment",
    "node-fetch",
    "oauth-sign",
    "querystring",
    "request",
    "request-promise",
    "slack-notify",
    "url",
    "uuid",
];
#[cfg(not(js_modules))]
pub const BUILTIN_MODULES: &[&str] = &["crypto"];

/// Starts a stored "artifact" that is QuickJS bytecode rather than native code.
const BYTECODE_TAG: &[u8] = b"wardstone-js-bytecode-v2\n";

/// What a script is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// An Auth0 Rule: one function `(user, context, callback)`.
    Rule,
    /// An Auth0 Action: a CommonJS module exporting its handlers.
    Action,
}

/// Whether stored module bytes are a script (and which kind) rather than a wasm module.
pub fn script_kind(module: &[u8]) -> Option<ScriptKind> {
    if module.starts_with(b"\0asm") {
        None
    } else if module.first() == Some(&ACTION_MARK) {
        Some(ScriptKind::Action)
    } else {
        Some(ScriptKind::Rule)
    }
}

/// Whether stored module bytes are a script rather than a wasm module.
pub fn is_script(module: &[u8]) -> bool {
    script_kind(module).is_some()
}

/// The source text of a script's module bytes (without an action's mark).
pub fn source_of(module: &[u8]) -> &[u8] {
    module.strip_prefix(&[ACTION_MARK]).unwrap_or(module)
}

/// An action's source as module bytes.
pub fn action_module(source: &str) -> Vec<u8> {
    [&[ACTION_MARK][..], source.as_bytes()].concat()
}

/// The hex SHA-256 of the embedded runtime (bytecode is only valid for the runtime that made
/// it: it is in every script artifact's header and in the runtime artifact's key).
pub fn runtime_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        runtime_wasm()
            .map(super::engine::module_hash)
            .unwrap_or_else(|| "none".into())
    })
}

/// Under what name the runtime's compiled code is stored with the rule artifacts (never a
/// module hash: those are hex; `store` keeps `runtime:` rows out of pruning and warm-up).
pub fn runtime_artifact_key() -> String {
    runtime_artifact_key_of(false)
}

/// The stored name of the lean runtime's compiled code, or (`modules`) the modules one's.
pub fn runtime_artifact_key_of(modules: bool) -> String {
    let kind = if modules { "js-modules" } else { "js" };
    format!("runtime:{kind}:{}", runtime_hash())
}

/// Which runtimes a script needs ready: the lean one always (it compiles every script), and
/// the modules one when the script runs there. `bytes` are module bytes or an artifact.
pub(crate) fn needs_modules_runtime(bytes: &[u8]) -> bool {
    if let Some((flags, _)) = read_bytecode_artifact(bytes) {
        return flags.modules;
    }
    is_script(bytes) && std::str::from_utf8(source_of(bytes)).is_ok_and(uses_modules)
}

/// What a script's artifact starts with: the tag, then the hash of the runtime that made the
/// bytecode (so the engine fingerprint, shared with native modules, need not change with it).
fn bytecode_header() -> Vec<u8> {
    [BYTECODE_TAG, runtime_hash().as_bytes(), b"\n"].concat()
}

/// Whether an artifact holds bytecode (of any runtime).
pub(crate) fn is_bytecode_artifact(artifact: &[u8]) -> bool {
    artifact.starts_with(b"wardstone-js-bytecode-")
}

/// A script's artifact: the header, one byte of flags (1: it makes outbound requests; 2: it
/// requires a bundled module), then the bytecode as the runtime's `load` takes it (kind byte
/// first).
pub(crate) fn bytecode_artifact(script: &Script, uses_http: bool) -> Vec<u8> {
    let flags = u8::from(uses_http) | (u8::from(script.modules) << 1);
    [&bytecode_header()[..], &[flags], &script.code[..]].concat()
}

/// What a script's artifact says about it.
pub(crate) struct ArtifactFlags {
    pub(crate) http: bool,
    pub(crate) modules: bool,
}

/// The flags and bytecode of an artifact made by this runtime; `None` for another runtime's
/// (compiled again from the script).
pub(crate) fn read_bytecode_artifact(artifact: &[u8]) -> Option<(ArtifactFlags, &[u8])> {
    let rest = artifact.strip_prefix(&bytecode_header()[..])?;
    let (flags, code) = rest.split_first()?;
    let flags = ArtifactFlags {
        http: flags & 1 == 1,
        modules: flags & 2 == 2,
    };
    (!code.is_empty()).then_some((flags, code))
}

/// The module bytes of a script upload, after its checks.
pub(crate) fn module_bytes(
    engine: &RuleEngine,
    source: &str,
    action: bool,
) -> Result<Vec<u8>, Rejected> {
    if !AVAILABLE {
        return Err(Rejected(UNAVAILABLE.into()));
    }
    check_script(source.as_bytes(), engine.limits().module_bytes)?;
    Ok(if action {
        action_module(source)
    } else {
        source.as_bytes().to_vec()
    })
}

/// Checks a script before compiling it: size, UTF-8, no NUL, not empty, and every `require`
/// names a built-in module with a string literal (the author hears about a missing module at
/// upload, not at the first login).
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
    if text.starts_with(|c: char| c.is_control() && !c.is_whitespace()) {
        return Err(Rejected(
            "the script starts with a control character".into(),
        ));
    }
    if text.trim().is_empty() {
        return Err(Rejected("the script is empty".into()));
    }
    for call in calls(text) {
        if call.name != "require" {
            continue;
        }
        let (line, column) = (call.line, call.column);
        match call.argument {
            None => {
                return Err(Rejected(format!(
                    "require needs a module name as a string literal (line {line}, column {column})"
                )));
            }
            Some(name) if !is_builtin(&name) => {
                let set = if BUILTIN_MODULES.is_empty() {
                    "there are no npm modules yet".to_string()
                } else {
                    format!("the built-in modules are {}", BUILTIN_MODULES.join(", "))
                };
                return Err(Rejected(format!(
                    "module {name:?} is not available in Wardstone (line {line}, column {column}): {set}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(text)
}

/// Whether `require(name)` (Auth0's `name@version` too) names a built-in module.
pub fn is_builtin(name: &str) -> bool {
    BUILTIN_MODULES.contains(&bare_name(name))
}

/// A module name without Auth0's `@version` (a scope's `@` stays).
fn bare_name(name: &str) -> &str {
    match name.strip_prefix('@') {
        Some(scoped) => scoped
            .split_once('@')
            .map_or(name, |(n, _)| &name[..n.len() + 1]),
        None => name.split_once('@').map_or(name, |(n, _)| n),
    }
}

/// Whether a script requires a bundled module (anything but the prelude's `crypto`) or uses
/// a global that lives in one (`Buffer`, `URL`, `URLSearchParams`), and so runs on the
/// modules snapshot. A use this misses still works on the lean one, evaluating the module
/// from source in the execution (slowly, within its fuel).
pub fn uses_modules(source: &str) -> bool {
    calls(source).iter().any(|c| {
        c.name == "module global"
            || c.name == "require"
                && c.argument
                    .as_deref()
                    .is_some_and(|name| is_builtin(name) && bare_name(name) != "crypto")
    })
}

/// Whether a script makes outbound requests (`fetch`, or an HTTP module), and so runs under
/// the HTTP deadline.
pub fn uses_network(source: &str) -> bool {
    const HTTP_MODULES: &[&str] = &[
        "axios",
        "node-fetch",
        "request",
        "request-promise",
        "slack-notify",
    ];
    calls(source).iter().any(|c| {
        c.name == "fetch"
            || c.name == "require"
                && c.argument
                    .as_deref()
                    .is_some_and(|name| HTTP_MODULES.contains(&bare_name(name)))
    })
}

/// A call of `require` or `fetch` found in a source.
#[derive(Debug, PartialEq, Eq)]
struct Call {
    name: &'static str,
    /// The first argument, when it is a plain string literal.
    argument: Option<String>,
    /// 1-based.
    line: usize,
    /// 1-based, in characters.
    column: usize,
}

/// The calls of `require` and `fetch`, and the uses of `Buffer`, `URL` and `URLSearchParams`
/// (named `module global`), outside strings and comments (a property of that name is fine). A lexer, not a parser: template literals and regular expressions are
/// skipped as strings; the runtime's own `require` throws too, so anything missed here still
/// fails closed.
fn calls(text: &str) -> Vec<Call> {
    let bytes = text.as_bytes();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let mut found = Vec::new();
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
                let word = &text[start..i];
                let preceded_by_dot = text[..start].trim_end().ends_with('.');
                let name = match word {
                    "require" => "require",
                    "fetch" => "fetch",
                    // Node's globals that live in a bundled module: used, not only called.
                    "Buffer" | "URL" | "URLSearchParams" if !preceded_by_dot => {
                        let column = text[line_start..start].chars().count() + 1;
                        found.push(Call {
                            name: "module global",
                            argument: None,
                            line,
                            column,
                        });
                        continue;
                    }
                    _ => continue,
                };
                let after = text[i..].trim_start();
                if preceded_by_dot || !after.starts_with('(') {
                    continue;
                }
                let column = text[line_start..start].chars().count() + 1;
                found.push(Call {
                    name,
                    argument: string_argument(&after[1..]),
                    line,
                    column,
                });
            }
            _ => i += 1,
        }
    }
    found
}

/// The string literal that `text` starts with (after blanks), when it is a whole argument.
fn string_argument(text: &str) -> Option<String> {
    let text = text.trim_start();
    let quote = text
        .chars()
        .next()
        .filter(|q| matches!(q, '\'' | '"' | '`'))?;
    let body = &text[1..];
    let end = body.find(quote)?;
    let value = &body[..end];
    if value.contains('\\') || (quote == '`' && value.contains("${")) {
        return None;
    }
    let rest = body[end + 1..].trim_start();
    (rest.starts_with(')') || rest.starts_with(',')).then(|| value.to_string())
}

/// What the runtime's `compile` export reported for a refused script.
#[derive(serde::Deserialize)]
struct CompileError {
    message: String,
    line: Option<u32>,
    column: Option<u32>,
}

/// Reads the runtime's `compile` output: the bytecode (kind byte first), or the refusal with
/// line and column.
pub(crate) fn compile_output(output: &[u8]) -> Result<Vec<u8>, Rejected> {
    match output.split_first() {
        Some((0, bytecode)) if bytecode.len() > 1 => Ok(bytecode.to_vec()),
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

    fn requires(text: &str) -> Vec<(Option<String>, usize, usize)> {
        calls(text)
            .into_iter()
            .filter(|c| c.name == "require")
            .map(|c| (c.argument, c.line, c.column))
            .collect()
    }

    #[test]
    fn require_is_found_outside_strings_and_comments() {
        assert_eq!(
            requires("const x = require('x');"),
            [(Some("x".into()), 1, 11)]
        );
        assert_eq!(
            requires("// require('x')\n  require (\"y\")"),
            [(Some("y".into()), 2, 3)]
        );
        assert!(requires("const o = { require: true }; o.require").is_empty());
        assert!(requires("'require' + \"require\" + `require`").is_empty());
        assert!(requires("/* require */ a.require(1)").is_empty());
        assert!(requires("const required = 1").is_empty());
        assert_eq!(requires("require(name)"), [(None, 1, 1)]);
        assert_eq!(requires("require(`a${b}`)"), [(None, 1, 1)]);
    }

    #[test]
    fn modules_outside_the_set_are_refused_by_name() {
        let err = check_script(b"const r = require('mongodb@3.1.4');", 1000).unwrap_err();
        assert!(err.0.contains("\"mongodb@3.1.4\""), "{err}");
        assert!(err.0.contains("line 1, column 11"), "{err}");
        let err = check_script(b"require(x)", 1000).unwrap_err();
        assert!(err.0.contains("string literal"), "{err}");
        assert!(check_script(b"\x01exports.x = 1", 1000).is_err());
    }

    /// The list the server checks uploads against is the list the runtime bundles.
    #[cfg(js_modules)]
    #[test]
    fn the_module_list_is_the_bundled_entries() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rules-sdk/js-runtime/modules/entries"
        );
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".js").map(|n| n.replace('+', "/"))
            })
            .chain(["crypto".to_string()])
            .collect();
        names.sort();
        assert_eq!(names, BUILTIN_MODULES);
        assert!(is_builtin("request@2.88.0") && is_builtin("lodash@4.17.19"));
    }

    #[test]
    fn network_use_is_seen() {
        assert!(uses_network("const r = await fetch('https://x')"));
        assert!(!uses_network("const fetchUser = 1; obj.fetch(1)"));
        assert!(uses_network("const request = require('request@2.88.0');"));
        assert!(uses_network("const axios = require('axios');"));
        assert!(!uses_network("const _ = require('lodash');"));
    }

    #[cfg(js_modules)]
    #[test]
    fn module_use_is_seen() {
        assert!(uses_modules("const _ = require('lodash@4.17.19');"));
        assert!(uses_modules(
            "const b = Buffer.from('x').toString('base64');"
        ));
        assert!(uses_modules("new URL(u)"));
        assert!(!uses_modules(
            "const c = require('crypto'); const MyURL = 1; a.Buffers = 2;"
        ));
        // Words in comments and strings, and properties, are not uses.
        assert!(!uses_modules(
            "// the callback URL\nconst u = 'a URL'; x.URL = 1;"
        ));
    }

    #[test]
    fn scripts_are_told_from_modules_and_actions_from_rules() {
        assert_eq!(
            script_kind(b"function (u, c, cb) { cb(null, u, c) }"),
            Some(ScriptKind::Rule)
        );
        assert_eq!(
            script_kind(&action_module("exports.x = 1")),
            Some(ScriptKind::Action)
        );
        assert_eq!(script_kind(b"\0asm\x01\0\0\0"), None);
        assert_eq!(source_of(&action_module("abc")), b"abc");
        assert!(is_builtin("x") == BUILTIN_MODULES.contains(&"x"));
    }
}
