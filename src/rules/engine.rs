//! The wasm host: validates and compiles modules, turns them into authenticated precompiled
//! artifacts and back, and runs each execution in a fresh `Store` and instance from the pooling
//! allocator, with fuel, an epoch deadline, a memory cap and a stack cap. Every failure is a
//! typed [`Failure`], never a panic. Caching and scheduling live in [`super::modules`] and
//! [`super::executor`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, EngineWeak, ExternType, InstanceAllocationStrategy, InstancePre, Linker,
    Module, OptLevel, PoolingAllocationConfig, ResourceLimiter, Store, Trap, ValType,
};

use super::Limits;
use super::execution::{FailureKind, LogLine};

/// One epoch tick. Deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(1);

/// Why a module was refused at upload. The message names the problem for the tenant.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Rejected(pub String);

/// What a tenant uploads: a wasm module (binary or WAT text) or a JavaScript rule's source.
#[derive(Debug, Clone)]
pub enum Upload {
    /// A wasm binary or WAT text.
    Module(Vec<u8>),
    /// An Auth0-style JavaScript rule (SPEC §14).
    Script(String),
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
        if super::js::is_script(&bytes) {
            match String::from_utf8(bytes) {
                Ok(text) => Upload::Script(text),
                Err(e) => Upload::Module(e.into_bytes()),
            }
        } else {
            Upload::Module(bytes)
        }
    }
}

/// A module compiled and checked against ABI v1, linked and ready to instantiate.
pub struct CompiledRule {
    pre: InstancePre<HostState>,
    /// The ABI's exports, looked up once (by index, not by name, at every execution).
    exports: [wasmtime::ModuleExport; 3],
    /// Hex SHA-256 of the module's binary bytes.
    pub sha256: String,
    /// It imports `wardstone.http_fetch` (and so runs under the HTTP rule deadline).
    pub uses_http: bool,
    /// A JavaScript rule: the shared runtime above, plus this script's bytecode to load.
    js: Option<Bytecode>,
}

/// A script compiled by the JavaScript runtime, and the runtime's `load` export.
struct Bytecode {
    code: Arc<[u8]>,
    load: wasmtime::ModuleExport,
}

/// The JavaScript runtime snapshot compiled by this engine, with its extra exports.
struct JsRuntime {
    rule: CompiledRule,
    compile: wasmtime::ModuleExport,
    load: wasmtime::ModuleExport,
}

impl CompiledRule {
    /// Bytes of compiled code and data this module keeps in memory (what the module cache
    /// counts against its capacity).
    pub fn weight(&self) -> usize {
        // A script's compiled code is the runtime every script shares (held once by the
        // engine); what it adds is its bytecode.
        if let Some(js) = &self.js {
            return js.code.len() + 4096;
        }
        let image = self.pre.module().image_range();
        (image.end as usize).saturating_sub(image.start as usize) + 4096
    }
}

/// Why an execution failed. Each fails the login closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The instruction budget ran out.
    Fuel,
    /// The wall-clock deadline passed.
    Timeout,
    /// The rule tried to grow memory past the cap and then failed.
    Memory,
    /// The wasm stack overflowed.
    StackOverflow,
    /// Any other trap (`unreachable`, out-of-bounds access, ...).
    Trap(String),
    /// A JavaScript rule threw, rejected, failed its callback or never called it (the runtime
    /// logs the error and traps; this carries the error's first line).
    Script(String),
    /// The module lacks an export or has the wrong signature.
    Abi(String),
    /// The output was out of bounds, too large, not UTF-8 JSON, or not an object.
    BadOutput(String),
}

impl Failure {
    /// What kind of failure this is, as the execution log records it.
    pub fn kind(&self) -> FailureKind {
        match self {
            Failure::Fuel => FailureKind::Fuel,
            Failure::Timeout => FailureKind::Timeout,
            Failure::Memory => FailureKind::Memory,
            Failure::StackOverflow => FailureKind::StackOverflow,
            Failure::Trap(_) | Failure::Script(_) => FailureKind::Trap,
            Failure::Abi(_) => FailureKind::Abi,
            Failure::BadOutput(_) => FailureKind::BadOutput,
        }
    }

    /// A description for the tenant's execution log (never shown to end users).
    pub fn detail(&self) -> String {
        match self {
            Failure::Fuel => "the rule used its whole instruction budget (fuel)".into(),
            Failure::Timeout => "the rule ran past its deadline".into(),
            Failure::Memory => "the rule tried to use more memory than allowed".into(),
            Failure::StackOverflow => "the rule overflowed its stack (deep recursion?)".into(),
            Failure::Trap(t) => format!("the rule trapped: {t}"),
            Failure::Script(e) => format!("the JavaScript rule failed: {e}"),
            Failure::Abi(m) => format!("the module does not follow rule ABI v1: {m}"),
            Failure::BadOutput(m) => format!("the rule's output is invalid: {m}"),
        }
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

struct HostState {
    /// A JavaScript rule's denial, handed over when it called `callback` (see `execute_with`).
    decision: Option<Vec<u8>>,
    net: super::outbound::NetPolicy,
    deadline: Instant,
    limiter: Limiter,
    logs: Vec<LogLine>,
    dropped: usize,
    max_lines: usize,
    max_line_bytes: usize,
}

struct Limiter {
    memory_bytes: usize,
    memory_denied: bool,
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

/// The wasm engine and its linker.
pub struct RuleEngine {
    engine: Engine,
    /// Where rules' outbound requests may go, and how names resolve.
    outbound: Arc<super::outbound::Outbound>,
    linker: Linker<HostState>,
    limits: Limits,
    fingerprint: String,
    /// The JavaScript runtime once it is ready. A failure is not kept: the next use tries
    /// again (the cause may be transient, e.g. a database that was briefly away).
    js: Mutex<Option<Arc<JsRuntime>>>,
}

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
struct RunningGuard;

impl RunningGuard {
    fn enter() -> Self {
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
fn register_ticker(engine: &Engine) {
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
        let slots = u32::try_from(limits.max_concurrent * 2 + 8).unwrap_or(1024);
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
            super::outbound::Outbound::new(
                limits.http_allow_private.clone(),
                &limits.dns_servers,
                limits.dns_lookups,
            )
            .map_err(|e| anyhow::anyhow!("cannot start the rules' DNS resolver: {e}"))?,
        );
        let mut linker = Linker::new(&engine);
        linker.func_wrap(
            "wardstone",
            "log",
            |mut caller: wasmtime::Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
                // Caps first: a guest must not make the host copy megabytes per call.
                let (max_lines, max_bytes) =
                    (caller.data().max_lines, caller.data().max_line_bytes);
                if caller.data().logs.len() >= max_lines {
                    caller.data_mut().dropped += 1;
                    return;
                }
                let (start, len) = (ptr as u32 as usize, len as u32 as usize);
                let text = caller
                    .get_export("memory")
                    .and_then(|e| e.into_memory())
                    .and_then(|m| {
                        let bytes = m.data(&caller).get(start..start.checked_add(len)?)?;
                        let kept = &bytes[..bytes.len().min(max_bytes)];
                        let mut text = String::from_utf8_lossy(kept).into_owned();
                        if bytes.len() > max_bytes {
                            text.push('…');
                        }
                        Some(text)
                    });
                let state = caller.data_mut();
                let message = text.unwrap_or_else(|| "<log message out of bounds>".into());
                let level = match level {
                    0 => "debug",
                    1 => "info",
                    2 => "warn",
                    _ => "error",
                };
                state.logs.push(LogLine {
                    level: level.into(),
                    message,
                });
            },
        )?;
        let fetcher = outbound.clone();
        linker.func_wrap(
            "wardstone",
            "http_fetch",
            move |mut caller: wasmtime::Caller<'_, HostState>,
                  ptr: i32,
                  len: i32|
                  -> wasmtime::Result<i64> {
                let memory = caller
                    .get_export("memory")
                    .and_then(|e| e.into_memory())
                    .ok_or_else(|| wasmtime::Error::msg("no exported memory"))?;
                let (start, len) = (ptr as u32 as usize, len as u32 as usize);
                let answer = if len > super::outbound::MAX_REQUEST_BYTES {
                    serde_json::json!({"error": format!(
                        "the request is {len} bytes; at most {} are allowed",
                        super::outbound::MAX_REQUEST_BYTES
                    )})
                } else {
                    match start
                        .checked_add(len)
                        .and_then(|end| memory.data(&caller).get(start..end))
                    {
                        Some(bytes) => {
                            let request = bytes.to_vec();
                            let state = caller.data();
                            super::outbound::fetch(&fetcher, &state.net, &request, state.deadline)
                        }
                        None => {
                            serde_json::json!({"error": "the request is outside linear memory"})
                        }
                    }
                };
                let answer = answer.to_string().into_bytes();
                // The answer goes into memory the guest allocates; a trap in its `alloc` is
                // the rule's failure, like any other trap.
                let alloc = caller
                    .get_export("alloc")
                    .and_then(|e| e.into_func())
                    .and_then(|f| f.typed::<i32, i32>(&caller).ok())
                    .ok_or_else(|| wasmtime::Error::msg("no exported alloc(i32) -> i32"))?;
                let out = alloc.call(&mut caller, answer.len() as i32)?;
                memory
                    .write(&mut caller, out as u32 as usize, &answer)
                    .map_err(|_| {
                        wasmtime::Error::msg(format!(
                            "alloc returned {out}, which is not {} writable bytes",
                            answer.len()
                        ))
                    })?;
                Ok(((out as u32 as i64) << 32) | answer.len() as i64)
            },
        )?;
        // Only the JavaScript runtime may import these three (`check_abi` refuses them in
        // uploads): a denial decided by `callback`, fresh randomness per execution, and the
        // wall clock for `Date`.
        linker.func_wrap(
            "wardstone",
            "decision",
            |mut caller: wasmtime::Caller<'_, HostState>, ptr: i32, len: i32| {
                let (start, len) = (ptr as u32 as usize, len as u32 as usize);
                let bytes = caller
                    .get_export("memory")
                    .and_then(|e| e.into_memory())
                    .and_then(|m| {
                        m.data(&caller)
                            .get(start..start.checked_add(len)?)
                            .map(<[u8]>::to_vec)
                    });
                if caller.data().decision.is_none() {
                    caller.data_mut().decision = bytes;
                }
            },
        )?;
        // The OS's randomness through `uuid`'s getrandom: aws-lc's generator spends tens of
        // milliseconds setting itself up on each thread's first call, which an executor
        // thread's first JavaScript rule would pay inside its deadline.
        linker.func_wrap("wardstone", "random_seed", || -> i64 {
            // 122 random bits; folding the halves covers the version and variant bits.
            let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
            (high ^ low.rotate_left(29)) as i64
        })?;
        linker.func_wrap("env", "__rquickjs_host_now_us", || -> f64 {
            crate::clock::Clock::System.now_micros() as f64
        })?;
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
        })
    }

    /// Identifies the compiled code this engine produces and accepts: a precompiled artifact is
    /// only reused by an engine with the same fingerprint (same wasmtime, same settings).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The node's outbound client (the operator's reach, the bounded DNS resolver).
    pub fn outbound(&self) -> &super::outbound::Outbound {
        &self.outbound
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Turns an upload into the bytes stored as the rule's module: a wasm binary (WAT is
    /// assembled) or a checked script's text. Oversized input is refused.
    pub fn assemble(&self, upload: Upload) -> Result<Vec<u8>, Rejected> {
        let upload = match upload {
            Upload::Module(bytes) => bytes,
            Upload::Script(text) => {
                if !super::js::AVAILABLE {
                    return Err(Rejected(super::js::UNAVAILABLE.into()));
                }
                super::js::check_script(text.as_bytes(), self.limits.module_bytes)?;
                return Ok(text.into_bytes());
            }
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

    /// Checks and compiles a module (Cranelift: tens of milliseconds for a typical rule).
    /// Blocking: call it off the async workers; [`super::modules`] bounds and times it.
    /// A script (see [`super::js`]) is compiled to bytecode by the JavaScript runtime instead.
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledRule, Rejected> {
        if super::js::is_script(bytes) {
            return self.compile_script(bytes);
        }
        precheck(&self.limits, bytes)?;
        let module = Module::from_binary(&self.engine, bytes)
            .map_err(|e| Rejected(format!("invalid wasm module: {}", root_cause(&e))))?;
        self.link(module, module_hash(bytes))
    }

    /// The JavaScript runtime: snapshotted once per process, compiled once per engine (the
    /// compiled code is kept per engine fingerprint, so engines alike share one compile).
    /// [`super::modules`] first tries the runtime's stored artifact ([`Self::install_js_runtime`]).
    fn js_runtime(&self) -> Result<Arc<JsRuntime>, Rejected> {
        // Held while the runtime is made: whoever else needs it waits for it.
        let mut slot = self.js.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(runtime) = slot.as_ref() {
            return Ok(runtime.clone());
        }
        static COMPILED: Mutex<Vec<(String, Arc<Vec<u8>>)>> = Mutex::new(Vec::new());
        let known = COMPILED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(f, _)| *f == self.fingerprint)
            .map(|(_, a)| a.clone());
        let module = match known {
            // SAFETY: these bytes were serialized by this process from an engine with the
            // same fingerprint, just below.
            Some(artifact) => unsafe { Module::deserialize(&self.engine, &artifact[..]) }
                .map_err(|e| Rejected(format!("JavaScript runtime: {e:#}")))?,
            None => {
                let snapshot = super::js::snapshot()?;
                let module = Module::from_binary(&self.engine, snapshot)
                    .map_err(|e| Rejected(format!("JavaScript runtime: {e:#}")))?;
                if let Ok(bytes) = module.serialize() {
                    COMPILED
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((self.fingerprint.clone(), Arc::new(bytes)));
                }
                module
            }
        };
        let runtime = Arc::new(self.js_from_module(module)?);
        *slot = Some(runtime.clone());
        Ok(runtime)
    }

    fn js_from_module(&self, module: Module) -> Result<JsRuntime, Rejected> {
        let export = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| Rejected(format!("JavaScript runtime lacks {name}")))
        };
        let (compile, load) = (export("compile")?, export("load")?);
        let rule = self.link_trusted(module, super::js::runtime_hash().to_string())?;
        // The first instance of a module builds its copy-on-write memory image (for the
        // runtime, megabytes of snapshot): done here, not in the first login that runs a script.
        let mut store = self.new_store(
            self.limits.compile_timeout,
            &super::outbound::NetPolicy::default(),
            self.limits.fuel,
        );
        instantiate(&mut store, &rule)
            .map_err(|f| Rejected(format!("JavaScript runtime: {}", f.detail())))?;
        Ok(JsRuntime {
            rule,
            compile,
            load,
        })
    }

    /// Whether this engine has its JavaScript runtime ready.
    pub fn js_ready(&self) -> bool {
        self.js.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The JavaScript runtime's compiled code, once it is ready (to store as an artifact).
    pub fn js_runtime_artifact(&self) -> Option<Vec<u8>> {
        let runtime = self.js.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        runtime.rule.pre.module().serialize().ok()
    }

    /// Makes the JavaScript runtime ready from its stored compiled code (milliseconds instead
    /// of a snapshot and a compile). Does nothing if it is ready already.
    ///
    /// # Safety
    /// As for [`Self::deserialize`]: an authenticated artifact from
    /// [`Self::js_runtime_artifact`] of an engine with this fingerprint.
    pub unsafe fn install_js_runtime(&self, artifact: &[u8]) -> anyhow::Result<()> {
        if self.js_ready() {
            return Ok(());
        }
        // SAFETY: guaranteed by the caller.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let runtime = self
            .js_from_module(module)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut slot = self.js.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Arc::new(runtime));
        }
        Ok(())
    }

    /// Compiles a script to bytecode in a fresh runtime instance, under the upload's budget
    /// (ten executions' fuel, the compile deadline). Syntax errors come back with the line and
    /// column of the author's source.
    fn compile_script(&self, source: &[u8]) -> Result<CompiledRule, Rejected> {
        let source = super::js::check_script(source, self.limits.module_bytes)?;
        let runtime = self.js_runtime()?;
        let _running = RunningGuard::enter();
        let mut store = self.new_store(
            self.limits.compile_timeout,
            &super::outbound::NetPolicy::default(),
            self.limits.fuel.saturating_mul(10),
        );
        let output = call_export(
            &mut store,
            &runtime.rule,
            &runtime.compile,
            source.as_bytes(),
        )
        .map_err(|failure| {
            let logged = store
                .data()
                .logs
                .last()
                .map(|l| format!(": {}", l.message))
                .unwrap_or_default();
            Rejected(format!(
                "the script could not be compiled: {}{logged}",
                failure.detail()
            ))
        })?;
        let code = super::js::compile_output(&output)?;
        let rule = self.script_rule(&runtime, module_hash(source.as_bytes()), code);
        // What every login will do before the rule runs (load the bytecode, evaluate the top
        // level) must fit one execution's budget, or the upload would fail every login.
        let mut store = self.new_store(
            self.limits.rule_timeout,
            &super::outbound::NetPolicy::default(),
            self.limits.fuel,
        );
        load_script(&mut store, &rule).map_err(|failure| {
            Rejected(format!(
                "loading the compiled script does not fit one execution's limits: {}",
                failure.detail()
            ))
        })?;
        Ok(rule)
    }

    fn script_rule(&self, runtime: &JsRuntime, sha256: String, code: Vec<u8>) -> CompiledRule {
        CompiledRule {
            pre: runtime.rule.pre.clone(),
            exports: runtime.rule.exports,
            sha256,
            uses_http: false,
            js: Some(Bytecode {
                code: code.into(),
                load: runtime.load,
            }),
        }
    }

    /// Prepares the JavaScript runtime now (a snapshot and a compile: about three seconds of
    /// CPU the first time in a process).
    pub fn warm_js(&self) -> Result<(), Rejected> {
        self.js_runtime().map(|_| ())
    }

    fn link(&self, module: Module, sha256: String) -> Result<CompiledRule, Rejected> {
        check_abi(&module)?;
        self.link_trusted(module, sha256)
    }

    /// Links a module without the upload's import check (the host's own runtime).
    fn link_trusted(&self, module: Module, sha256: String) -> Result<CompiledRule, Rejected> {
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
            js: None,
        })
    }

    /// The compiled code of `rule` as a precompiled artifact.
    /// For a script that is its bytecode, tagged.
    pub fn serialize(&self, rule: &CompiledRule) -> anyhow::Result<Vec<u8>> {
        if let Some(js) = &rule.js {
            return Ok([&super::js::bytecode_header()[..], &js.code[..]].concat());
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
        if artifact.starts_with(super::js::BYTECODE_TAG) {
            // Bytecode is only valid for the runtime that made it; another one's is compiled
            // again from the script.
            let code = artifact
                .strip_prefix(&super::js::bytecode_header()[..])
                .ok_or_else(|| anyhow::anyhow!("bytecode of another JavaScript runtime"))?;
            let runtime = self.js_runtime().map_err(|e| anyhow::anyhow!("{e}"))?;
            return Ok(self.script_rule(&runtime, sha256.to_string(), code.to_vec()));
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
        self.execute_with(rule, input, timeout, &super::outbound::NetPolicy::default())
    }

    /// [`RuleEngine::execute`] with the tenant's outbound HTTP policy.
    pub fn execute_with(
        &self,
        rule: &CompiledRule,
        input: &[u8],
        timeout: Duration,
        net: &super::outbound::NetPolicy,
    ) -> Execution {
        let started = Instant::now();
        let _running = RunningGuard::enter();
        let fuel = self.limits.fuel;
        let mut store = self.new_store(timeout, net, fuel);
        let result = run(&mut store, rule, input, self.limits.output_bytes);
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        // A JavaScript rule that denied access by calling `callback` and then trapped (ran out
        // of fuel, time or memory in code that ran on) is still a denial: the first outcome is
        // final, and a failure could be skipped (`on_failure: skip`) where a denial never is.
        let result = match (result, state.decision.take()) {
            (Err(failure), Some(denial)) => match serde_json::from_slice(&denial) {
                Ok(serde_json::Value::Object(map)) => {
                    state.logs.push(LogLine::warn(format!(
                        "the rule failed after it denied access ({}); the denial stands",
                        failure.detail()
                    )));
                    Ok(map)
                }
                _ => Err(failure),
            },
            (result, _) => result,
        };
        let result = result.map_err(|f| match f {
            Failure::Trap(_) if state.limiter.memory_denied => Failure::Memory,
            // The runtime logs why it gives up, then executes `unreachable`.
            trap @ Failure::Trap(_) if rule.js.is_some() => match state.logs.last() {
                Some(line) if line.level == "error" => Failure::Script(
                    line.message
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("the rule failed: ")
                        .to_string(),
                ),
                _ => trap,
            },
            other => other,
        });
        let mut logs = std::mem::take(&mut state.logs);
        if state.dropped > 0 {
            logs.push(LogLine::warn(format!(
                "{} more log lines were dropped",
                state.dropped
            )));
        }
        Execution {
            result,
            fuel_used,
            duration: started.elapsed(),
            logs,
        }
    }
}

impl RuleEngine {
    /// A store for one execution: fuel, deadline in epoch ticks, memory cap, log caps.
    fn new_store(
        &self,
        timeout: Duration,
        net: &super::outbound::NetPolicy,
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
            },
        );
        store.limiter(|s| &mut s.limiter);
        let _ = store.set_fuel(fuel);
        let ticks = (timeout.as_micros() / TICK.as_micros()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.chain()
        .last()
        .map(|c| c.to_string())
        .unwrap_or_else(|| e.to_string())
}

fn classify(e: wasmtime::Error) -> Failure {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::Fuel,
        Some(Trap::Interrupt) => Failure::Timeout,
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(t) => Failure::Trap(t.to_string()),
        None => Failure::Trap(root_cause(&e)),
    }
}

/// An instance of `rule` with its memory and `alloc`.
struct Instance {
    instance: wasmtime::Instance,
    memory: wasmtime::Memory,
    alloc: wasmtime::TypedFunc<i32, i32>,
}

fn instantiate(store: &mut Store<HostState>, rule: &CompiledRule) -> Result<Instance, Failure> {
    let instance = rule.pre.instantiate(&mut *store).map_err(classify)?;
    let [memory, alloc, _] = &rule.exports;
    let memory = instance
        .get_module_export(&mut *store, memory)
        .and_then(|e| e.into_memory())
        .ok_or_else(|| Failure::Abi("missing export memory".into()))?;
    let alloc = instance
        .get_module_export(&mut *store, alloc)
        .and_then(|e| e.into_func())
        .and_then(|f| f.typed::<i32, i32>(&*store).ok())
        .ok_or_else(|| Failure::Abi("missing export alloc(i32) -> i32".into()))?;
    Ok(Instance {
        instance,
        memory,
        alloc,
    })
}

impl Instance {
    /// Copies `bytes` into memory the guest allocated; returns their location.
    fn write(&self, store: &mut Store<HostState>, bytes: &[u8]) -> Result<(i32, i32), Failure> {
        let len =
            i32::try_from(bytes.len()).map_err(|_| Failure::BadOutput("input too large".into()))?;
        let ptr = self.alloc.call(&mut *store, len).map_err(classify)?;
        self.memory
            .write(&mut *store, ptr as u32 as usize, bytes)
            .map_err(|_| {
                Failure::Abi(format!(
                    "alloc returned {ptr}, which is not {len} writable bytes"
                ))
            })?;
        Ok((ptr, len))
    }

    fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &self,
        store: &mut Store<HostState>,
        export: &wasmtime::ModuleExport,
        signature: &str,
    ) -> Result<wasmtime::TypedFunc<P, R>, Failure> {
        self.instance
            .get_module_export(&mut *store, export)
            .and_then(|e| e.into_func())
            .and_then(|f| f.typed::<P, R>(&*store).ok())
            .ok_or_else(|| Failure::Abi(format!("missing export {signature}")))
    }

    /// Calls `export(ptr, len) -> (out_ptr << 32) | out_len` on `input` and returns the output
    /// bytes, at most `output_cap` of them.
    fn call(
        &self,
        store: &mut Store<HostState>,
        export: &wasmtime::ModuleExport,
        input: &[u8],
        output_cap: usize,
    ) -> Result<Vec<u8>, Failure> {
        let entry = self.func::<(i32, i32), i64>(store, export, "rule(i32, i32) -> i64")?;
        let (ptr, len) = self.write(store, input)?;
        let packed = entry.call(&mut *store, (ptr, len)).map_err(classify)?;
        let (out_ptr, out_len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        if out_len > output_cap {
            return Err(Failure::BadOutput(format!(
                "output is {out_len} bytes, larger than the {output_cap} byte limit"
            )));
        }
        let data = self.memory.data(&*store);
        out_ptr
            .checked_add(out_len)
            .and_then(|end| data.get(out_ptr..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                Failure::BadOutput(format!(
                    "output [{out_ptr}, +{out_len}) is outside linear memory"
                ))
            })
    }
}

/// Runs one export of the JavaScript runtime (its `compile`) on `input` in a fresh instance.
fn call_export(
    store: &mut Store<HostState>,
    runtime: &CompiledRule,
    export: &wasmtime::ModuleExport,
    input: &[u8],
) -> Result<Vec<u8>, Failure> {
    let instance = instantiate(store, runtime)?;
    instance.call(store, export, input, 64 << 20)
}

/// A fresh instance of `rule`; for a script, with its bytecode loaded.
fn load_script(store: &mut Store<HostState>, rule: &CompiledRule) -> Result<Instance, Failure> {
    let instance = instantiate(store, rule)?;
    if let Some(js) = &rule.js {
        let load = instance.func::<(i32, i32), i32>(store, &js.load, "load(i32, i32) -> i32")?;
        let (ptr, len) = instance.write(store, &js.code)?;
        load.call(&mut *store, (ptr, len)).map_err(classify)?;
    }
    Ok(instance)
}

fn run(
    store: &mut Store<HostState>,
    rule: &CompiledRule,
    input: &[u8],
    output_cap: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let instance = load_script(store, rule)?;
    let bytes = instance.call(store, &rule.exports[2], input, output_cap)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::BadOutput(format!("output is not JSON: {e}")))?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(Failure::BadOutput("output is not a JSON object".into())),
    }
}

fn check_abi(module: &Module) -> Result<(), Rejected> {
    for import in module.imports() {
        let ExternType::Func(f) = import.ty() else {
            return Err(Rejected(format!(
                "import {}::{} is not allowed",
                import.module(),
                import.name()
            )));
        };
        let params: Vec<bool> = f.params().map(|p| matches!(p, ValType::I32)).collect();
        let results: Vec<bool> = f.results().map(|r| matches!(r, ValType::I64)).collect();
        match (import.module(), import.name()) {
            ("wardstone", "log") => {
                if params != [true, true, true] || !results.is_empty() {
                    return Err(Rejected(
                        "import wardstone::log must have the signature (i32, i32, i32) -> ()"
                            .into(),
                    ));
                }
            }
            ("wardstone", "http_fetch") => {
                if params != [true, true] || results != [true] {
                    return Err(Rejected(
                        "import wardstone::http_fetch must have the signature (i32, i32) -> i64"
                            .into(),
                    ));
                }
            }
            (m, n) => return Err(Rejected(format!("import {m}::{n} is not allowed"))),
        }
    }
    let func = |name: &str, params: &[&str], result: &str| -> Result<(), Rejected> {
        let sig = format!("{name}({}) -> {result}", params.join(", "));
        match module.get_export(name) {
            Some(ExternType::Func(f)) => {
                let ps: Vec<String> = f.params().map(|p| p.to_string()).collect();
                let rs: Vec<String> = f.results().map(|r| r.to_string()).collect();
                if ps != params || rs != [result] {
                    return Err(Rejected(format!(
                        "export {name} has the signature ({}) -> ({}); ABI v1 requires {sig}",
                        ps.join(", "),
                        rs.join(", ")
                    )));
                }
                Ok(())
            }
            Some(_) => Err(Rejected(format!("export {name} must be a function {sig}"))),
            None => Err(Rejected(format!("missing export {sig}"))),
        }
    };
    match module.get_export("memory") {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => {}
        Some(ExternType::Memory(_)) => {
            return Err(Rejected(
                "export memory must be a 32-bit, non-shared memory".into(),
            ));
        }
        _ => return Err(Rejected("missing export memory".into())),
    }
    func("alloc", &["i32"], "i32")?;
    func("rule", &["i32", "i32"], "i64")?;
    Ok(())
}

/// Cheap checks before compiling: a component, oversized function bodies (compile time grows
/// with them) and absurd function counts are refused without spending a compile.
fn precheck(limits: &Limits, bytes: &[u8]) -> Result<(), Rejected> {
    use wasmparser::{Parser, Payload};
    if !bytes.starts_with(b"\0asm") {
        return Err(Rejected("not a wasm module".into()));
    }
    let mut functions = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| Rejected(format!("invalid wasm module: {e}")))?;
        match payload {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err(Rejected(
                    "components are not supported; upload a core wasm module".into(),
                ));
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len();
                if size > limits.function_body_bytes {
                    return Err(Rejected(format!(
                        "function {functions} has a {size} byte body, larger than the {} byte limit",
                        limits.function_body_bytes
                    )));
                }
                functions += 1;
            }
            _ => {}
        }
    }
    if functions > 50_000 {
        return Err(Rejected(format!(
            "module has {functions} functions; at most 50000 are allowed"
        )));
    }
    Ok(())
}
