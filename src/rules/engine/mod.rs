//! The wasm host: validates and compiles modules, turns them into authenticated precompiled
//! artifacts and back, and runs executions under fuel, an epoch deadline, a memory cap and a
//! stack cap. A wasm rule gets a fresh `Store` and instance from the pooling allocator per
//! execution; the JavaScript rules and actions of one trigger run share one fresh instance of
//! the JavaScript runtime (see [`Session`] and [`crate::rules::js`]). Every failure is a typed
//! [`Failure`], never a panic. Caching and scheduling live in [`super::modules`] and
//! [`super::executor`].
//!
//! [`abi`]: the upload checks and the calls into an instance; [`host`]: every host function;
//! [`epoch`]: the ticker that turns deadlines into traps.

pub(crate) mod abi;
pub(crate) mod epoch;
pub(crate) mod host;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, OptLevel,
    PoolingAllocationConfig, Store,
};

use super::Limits;
use super::js::{ImageCache, JsInstance, JsRuntime, LoadedImage, Script};
use super::outbound::{NetPolicy, Outbound};
use crate::domain::execution::{Failure, LogLine};
use abi::{check_abi, instantiate, output_object, precheck, root_cause};
use epoch::{RunningGuard, TICK, register_ticker};
use host::{HostState, Limiter};

/// Why a module was refused at upload. The message names the problem for the tenant.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Rejected(pub String);

/// What a tenant uploads: a wasm module (binary or WAT text), a JavaScript rule's source, or
/// an action's source.
#[derive(Debug, Clone)]
pub enum Upload {
    /// A wasm binary or WAT text.
    Module(Vec<u8>),
    /// An Auth0-style JavaScript rule (SPEC §14).
    Script(String),
    /// An Auth0 Action's source (SPEC §15).
    Action(String),
}

impl Upload {
    /// A file as the CLI reads it: `.js` (also `.cjs`, `.mjs`) is a script, anything else a
    /// module.
    pub fn from_file(path: &std::path::Path, bytes: Vec<u8>) -> Result<Upload, Rejected> {
        let is_js = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "js" | "cjs" | "mjs"));
        if !is_js {
            return Ok(Upload::Module(bytes));
        }
        String::from_utf8(bytes)
            .map(Upload::Script)
            .map_err(|_| Rejected(format!("{} is not UTF-8 text", path.display())))
    }

    /// Stored module bytes (a version to roll back to) as the upload they came from.
    pub fn stored(bytes: Vec<u8>) -> Upload {
        match super::js::script_kind(&bytes) {
            None => Upload::Module(bytes),
            Some(kind) => {
                let source = super::js::source_of(&bytes).to_vec();
                match (String::from_utf8(source), kind) {
                    (Ok(text), super::js::ScriptKind::Rule) => Upload::Script(text),
                    (Ok(text), super::js::ScriptKind::Action) => Upload::Action(text),
                    (Err(_), _) => Upload::Module(bytes),
                }
            }
        }
    }
}

/// A module compiled and checked against ABI v1, linked and ready to instantiate.
pub struct CompiledRule {
    pub(crate) pre: InstancePre<HostState>,
    /// The ABI's exports, looked up once (by index, not by name, at every execution).
    pub(crate) exports: [wasmtime::ModuleExport; 3],
    /// Hex SHA-256 of the module's stored bytes.
    pub sha256: String,
    /// It makes outbound requests (and so runs under the HTTP deadline).
    pub uses_http: bool,
    /// A rule or action in JavaScript: the shared runtime above, plus this source's bytecode.
    pub(crate) script: Option<Script>,
}

impl CompiledRule {
    /// Bytes of compiled code and data this module keeps in memory (what the module cache
    /// counts against its capacity).
    pub fn weight(&self) -> usize {
        // A script's compiled code is the runtime every script shares (held once by the
        // engine); what it adds is its bytecode.
        if let Some(script) = &self.script {
            return script.code.len() + 4096;
        }
        let image = self.pre.module().image_range();
        (image.end as usize).saturating_sub(image.start as usize) + 4096
    }

    /// Whether this is an action (its output is what the action asked for, not a patch).
    pub fn is_action(&self) -> bool {
        self.script
            .as_ref()
            .is_some_and(|s| s.kind == super::js::ScriptKind::Action)
    }
}

/// What one execution produced.
#[derive(Debug)]
pub struct Execution {
    /// The output object, or why there is none.
    pub result: Result<serde_json::Map<String, serde_json::Value>, Failure>,
    /// Instructions used.
    pub fuel_used: u64,
    /// Wall-clock time of instantiate + input + run + output parsing.
    pub duration: Duration,
    /// Log lines.
    pub logs: Vec<LogLine>,
}

/// The wasm engine and its linker.
pub struct RuleEngine {
    pub(crate) engine: Engine,
    /// Where rules' outbound requests may go, and how names resolve.
    outbound: Arc<Outbound>,
    pub(crate) linker: Linker<HostState>,
    limits: Limits,
    fingerprint: String,
    /// The JavaScript runtime once it is ready. A failure is not kept: the next use tries
    /// again (the cause may be transient, e.g. a database that was briefly away).
    pub(crate) js: Mutex<Option<Arc<JsRuntime>>>,
    /// The runtime with the bundled modules evaluated, once a script needs it.
    pub(crate) js_modules: Mutex<Option<Arc<JsRuntime>>>,
    /// Trigger runs' scripts loaded once ([`crate::rules::js::image`]).
    pub(crate) js_images: ImageCache,
}

/// The SHA-256 of module bytes, hex.
pub fn module_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::crypto::hex(&Sha256::digest(bytes))
}

/// Feeds `Hash` output into SHA-256, so a fingerprint is the same in every process that runs
/// the same wasmtime with the same settings.
struct Sha256Hasher(sha2::Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.0.update(bytes);
    }
}

impl RuleEngine {
    /// Configures wasmtime: Cranelift, fuel, epochs, pooling allocator sized by `limits`.
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.stack_bytes);
        // Only checked against max_wasm_stack (rules never run on async stacks).
        config.async_stack_size(limits.stack_bytes + (1 << 20));
        config.cranelift_opt_level(OptLevel::Speed);
        config.wasm_backtrace_max_frames(None);
        config.generate_address_map(false);
        // For `perf record`: JIT frames get names (a developer's switch, not a setting).
        if std::env::var_os("WARDSTONE_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // Each run holds at most two instances at once (a wasm rule's and the JavaScript one).
        let slots =
            u32::try_from((limits.max_concurrent + limits.inline_runs) * 2 + 8).unwrap_or(1024);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(10_000)
            .max_memory_size(limits.memory_bytes)
            // Keep the first pages of a slot mapped between instances: a fresh instance then
            // does not page-fault on its stack and first heap pages.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        // Where the kernel can tell which pages an instance touched (Linux ≥ 6.7), only those
        // are reset between instances instead of the whole kept-resident region.
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        register_ticker(&engine);
        let outbound = Arc::new(
            Outbound::new(
                limits.http_allow_private.clone(),
                &limits.dns_servers,
                limits.dns_lookups,
            )
            .map_err(|e| anyhow::anyhow!("cannot start the rules' DNS resolver: {e}"))?,
        );
        let mut linker = Linker::new(&engine);
        host::define(&mut linker, outbound.clone())?;
        let fingerprint = {
            use sha2::Digest;
            use std::hash::Hash;
            let mut hasher = Sha256Hasher(sha2::Sha256::new());
            "wardstone rule abi v1 + http_fetch".hash(&mut hasher);
            engine.precompile_compatibility_hash().hash(&mut hasher);
            crate::crypto::hex(&hasher.0.finalize())[..32].to_string()
        };
        Ok(RuleEngine {
            engine,
            outbound,
            linker,
            limits,
            fingerprint,
            js: Mutex::new(None),
            js_modules: Mutex::new(None),
            js_images: ImageCache::default(),
        })
    }

    /// Identifies the compiled code this engine produces and accepts: a precompiled artifact is
    /// only reused by an engine with the same fingerprint (same wasmtime, same settings).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The node's outbound client (the operator's reach, the bounded DNS resolver).
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Turns an upload into the bytes stored as the module: a wasm binary (WAT is assembled)
    /// or a checked script's text (an action's marked as one). Oversized input is refused.
    pub fn assemble(&self, upload: Upload) -> Result<Vec<u8>, Rejected> {
        let upload = match upload {
            Upload::Module(bytes) => bytes,
            Upload::Script(text) => return super::js::module_bytes(self, &text, false),
            Upload::Action(text) => return super::js::module_bytes(self, &text, true),
        };
        if upload.len() > self.limits.module_bytes {
            return Err(Rejected(format!(
                "module is {} bytes, larger than the {} byte limit",
                upload.len(),
                self.limits.module_bytes
            )));
        }
        let bytes = wat::parse_bytes(&upload).map_err(|e| Rejected(format!("invalid WAT: {e}")))?;
        if bytes.len() > self.limits.module_bytes {
            return Err(Rejected(format!(
                "assembled module is larger than the {} byte limit",
                self.limits.module_bytes
            )));
        }
        Ok(bytes.into_owned())
    }

    /// Checks and compiles stored module bytes (Cranelift: tens of milliseconds for a typical
    /// rule). Blocking: call it off the async workers; [`super::modules`] bounds and times it.
    /// A script is compiled to bytecode by the JavaScript runtime instead.
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledRule, Rejected> {
        if super::js::script_kind(bytes).is_some() {
            return self.compile_script(bytes);
        }
        precheck(&self.limits, bytes)?;
        let module = Module::from_binary(&self.engine, bytes)
            .map_err(|e| Rejected(format!("invalid wasm module: {}", root_cause(&e))))?;
        self.link(module, module_hash(bytes))
    }

    fn link(&self, module: Module, sha256: String) -> Result<CompiledRule, Rejected> {
        check_abi(&module)?;
        self.link_trusted(module, sha256)
    }

    /// Links a module without the upload's import check (the host's own runtime).
    pub(crate) fn link_trusted(
        &self,
        module: Module,
        sha256: String,
    ) -> Result<CompiledRule, Rejected> {
        let export = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| Rejected(format!("missing export {name}")))
        };
        let exports = [export("memory")?, export("alloc")?, export("rule")?];
        let uses_http = module
            .imports()
            .any(|i| i.module() == "wardstone" && i.name() == "http_fetch");
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Rejected(format!("cannot link module: {}", root_cause(&e))))?;
        Ok(CompiledRule {
            pre,
            exports,
            sha256,
            uses_http,
            script: None,
        })
    }

    /// The compiled code of `rule` as a precompiled artifact. For a script that is its
    /// bytecode, tagged.
    pub fn serialize(&self, rule: &CompiledRule) -> anyhow::Result<Vec<u8>> {
        if let Some(script) = &rule.script {
            return Ok(super::js::bytecode_artifact(script, rule.uses_http));
        }
        rule.pre
            .module()
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    /// Loads a precompiled artifact made by an engine with this fingerprint.
    ///
    /// # Safety
    /// The artifact is native code that is not validated: it must come from
    /// [`RuleEngine::serialize`] and must have been authenticated (see
    /// [`super::modules`], which checks its MAC first).
    pub unsafe fn deserialize(
        &self,
        sha256: &str,
        artifact: &[u8],
    ) -> anyhow::Result<CompiledRule> {
        if super::js::is_bytecode_artifact(artifact) {
            return self.script_from_artifact(sha256, artifact);
        }
        // SAFETY: the caller guarantees the bytes are an authenticated artifact of ours.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        self.link(module, sha256.to_string())
            .map_err(|e| anyhow::anyhow!("artifact does not link: {e}"))
    }

    /// Runs one rule on `input` in a fresh instance, with no outbound HTTP. Blocking: call it
    /// off the async workers.
    pub fn execute(&self, rule: &CompiledRule, input: &[u8], timeout: Duration) -> Execution {
        self.execute_with(rule, input, timeout, &NetPolicy::default())
    }

    /// [`RuleEngine::execute`] with the tenant's outbound HTTP policy.
    pub fn execute_with(
        &self,
        rule: &CompiledRule,
        input: &[u8],
        timeout: Duration,
        net: &NetPolicy,
    ) -> Execution {
        self.session(net).run(rule, input, timeout)
    }

    /// A session for the executions of one trigger run: wasm rules each get a fresh instance,
    /// the JavaScript rules and actions share one fresh runtime instance.
    pub fn session(&self, net: &NetPolicy) -> Session<'_> {
        Session {
            engine: self,
            net: net.clone(),
            js: None,
            image: None,
        }
    }

    /// A store for one execution (or one JavaScript session): fuel, deadline in epoch ticks,
    /// memory cap, log caps.
    pub(crate) fn new_store(
        &self,
        timeout: Duration,
        net: &NetPolicy,
        fuel: u64,
    ) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState {
                decision: None,
                net: net.clone(),
                deadline: Instant::now() + timeout,
                limiter: Limiter {
                    memory_bytes: self.limits.memory_bytes,
                    memory_denied: false,
                },
                logs: Vec::new(),
                dropped: 0,
                max_lines: self.limits.log_lines,
                max_line_bytes: self.limits.log_line_bytes,
                outside_inputs: 0,
            },
        );
        store.limiter(|s| &mut s.limiter);
        set_budget(&mut store, fuel, timeout);
        store
    }

    fn execute_wasm(
        &self,
        rule: &CompiledRule,
        input: &[u8],
        timeout: Duration,
        net: &NetPolicy,
    ) -> Execution {
        let started = Instant::now();
        let _running = RunningGuard::enter();
        let fuel = self.limits.fuel;
        let mut store = self.new_store(timeout, net, fuel);
        let result = instantiate(&mut store, rule)
            .and_then(|instance| {
                instance.call(
                    &mut store,
                    &rule.exports[2],
                    input,
                    self.limits.output_bytes,
                )
            })
            .and_then(|bytes| output_object(&bytes));
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        let result = result.map_err(|f| match f {
            Failure::Trap(_) if state.limiter.memory_denied => Failure::Memory,
            other => other,
        });
        Execution {
            result,
            fuel_used,
            duration: started.elapsed(),
            logs: state.take_logs(),
        }
    }
}

/// Resets a store's fuel to `fuel` and its deadline to `timeout` from now.
pub(crate) fn set_budget(store: &mut Store<HostState>, fuel: u64, timeout: Duration) {
    let _ = store.set_fuel(fuel);
    let ticks = (timeout.as_micros() / TICK.as_micros()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
}

/// The executions of one trigger run, in order: each wasm rule in a fresh instance, the
/// JavaScript rules and actions in one runtime instance made at the first of them (and made
/// again after one that failed or left work behind). Blocking: see `trigger::run` for where.
pub struct Session<'e> {
    pub(crate) engine: &'e RuleEngine,
    pub(crate) net: NetPolicy,
    pub(crate) js: Option<JsInstance>,
    /// The run's scripts already loaded, for each fresh runtime instance
    /// ([`crate::rules::js::image`]).
    pub(crate) image: Option<Arc<LoadedImage>>,
}

impl Session<'_> {
    /// Runs `rule` on `input` within `timeout`, with the engine's fuel.
    pub fn run(&mut self, rule: &CompiledRule, input: &[u8], timeout: Duration) -> Execution {
        match &rule.script {
            None => self.engine.execute_wasm(rule, input, timeout, &self.net),
            Some(_) => self.run_script(rule, input, timeout),
        }
    }
}
