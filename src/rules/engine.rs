//! The wasm host: validates and compiles modules, turns them into authenticated precompiled
//! artifacts and back, and runs each execution in a fresh `Store` and instance from the pooling
//! allocator, with fuel, an epoch deadline, a memory cap and a stack cap. Every failure is a
//! typed [`Failure`], never a panic. Caching and scheduling live in [`super::modules`] and
//! [`super::executor`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
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

/// A module compiled and checked against ABI v1, linked and ready to instantiate.
pub struct CompiledRule {
    pre: InstancePre<HostState>,
    /// The ABI's exports, looked up once (by index, not by name, at every execution).
    exports: [wasmtime::ModuleExport; 3],
    /// Hex SHA-256 of the module's binary bytes.
    pub sha256: String,
    /// It imports `wardstone.http_fetch` (and so runs under the HTTP rule deadline).
    pub uses_http: bool,
}

impl CompiledRule {
    /// Bytes of compiled code and data this module keeps in memory (what the module cache
    /// counts against its capacity).
    pub fn weight(&self) -> usize {
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
            Failure::Trap(_) => FailureKind::Trap,
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
    net: super::http::NetPolicy,
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
    linker: Linker<HostState>,
    limits: Limits,
    fingerprint: String,
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
        linker.func_wrap(
            "wardstone",
            "http_fetch",
            |mut caller: wasmtime::Caller<'_, HostState>,
             ptr: i32,
             len: i32|
             -> wasmtime::Result<i64> {
                let memory = caller
                    .get_export("memory")
                    .and_then(|e| e.into_memory())
                    .ok_or_else(|| wasmtime::Error::msg("no exported memory"))?;
                let (start, len) = (ptr as u32 as usize, len as u32 as usize);
                let answer = if len > super::http::MAX_REQUEST_BYTES {
                    serde_json::json!({"error": format!(
                        "the request is {len} bytes; at most {} are allowed",
                        super::http::MAX_REQUEST_BYTES
                    )})
                } else {
                    match start
                        .checked_add(len)
                        .and_then(|end| memory.data(&caller).get(start..end))
                    {
                        Some(bytes) => {
                            let request = bytes.to_vec();
                            let state = caller.data();
                            super::http::fetch(&state.net, &request, state.deadline)
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
            linker,
            limits,
            fingerprint,
        })
    }

    /// Identifies the compiled code this engine produces and accepts: a precompiled artifact is
    /// only reused by an engine with the same fingerprint (same wasmtime, same settings).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Turns an upload (wasm binary or WAT text) into module bytes, refusing oversized input.
    pub fn assemble(&self, upload: &[u8]) -> Result<Vec<u8>, Rejected> {
        if upload.len() > self.limits.module_bytes {
            return Err(Rejected(format!(
                "module is {} bytes, larger than the {} byte limit",
                upload.len(),
                self.limits.module_bytes
            )));
        }
        let bytes = wat::parse_bytes(upload).map_err(|e| Rejected(format!("invalid WAT: {e}")))?;
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
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledRule, Rejected> {
        precheck(&self.limits, bytes)?;
        let module = Module::from_binary(&self.engine, bytes)
            .map_err(|e| Rejected(format!("invalid wasm module: {}", root_cause(&e))))?;
        self.link(module, module_hash(bytes))
    }

    fn link(&self, module: Module, sha256: String) -> Result<CompiledRule, Rejected> {
        check_abi(&module)?;
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
        })
    }

    /// The compiled code of `rule` as a precompiled artifact.
    pub fn serialize(&self, rule: &CompiledRule) -> anyhow::Result<Vec<u8>> {
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
        // SAFETY: the caller guarantees the bytes are an authenticated artifact of ours.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        self.link(module, sha256.to_string())
            .map_err(|e| anyhow::anyhow!("artifact does not link: {e}"))
    }

    /// Runs one rule on `input` in a fresh instance, with no outbound HTTP. Blocking: call it
    /// off the async workers.
    pub fn execute(&self, rule: &CompiledRule, input: &[u8], timeout: Duration) -> Execution {
        self.execute_with(rule, input, timeout, &super::http::NetPolicy::default())
    }

    /// [`RuleEngine::execute`] with the tenant's outbound HTTP policy.
    pub fn execute_with(
        &self,
        rule: &CompiledRule,
        input: &[u8],
        timeout: Duration,
        net: &super::http::NetPolicy,
    ) -> Execution {
        let started = Instant::now();
        let _running = RunningGuard::enter();
        let mut store = Store::new(
            &self.engine,
            HostState {
                net: net.clone(),
                deadline: started + timeout,
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
        let fuel = self.limits.fuel;
        let _ = store.set_fuel(fuel);
        let ticks = (timeout.as_micros() / TICK.as_micros()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let result = run(&mut store, rule, input, self.limits.output_bytes);
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        let result = result.map_err(|f| match f {
            Failure::Trap(_) if state.limiter.memory_denied => Failure::Memory,
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

fn run(
    store: &mut Store<HostState>,
    rule: &CompiledRule,
    input: &[u8],
    output_cap: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let instance = rule.pre.instantiate(&mut *store).map_err(classify)?;
    let [memory, alloc, entry] = &rule.exports;
    let memory = instance
        .get_module_export(&mut *store, memory)
        .and_then(|e| e.into_memory())
        .ok_or_else(|| Failure::Abi("missing export memory".into()))?;
    let alloc = instance
        .get_module_export(&mut *store, alloc)
        .and_then(|e| e.into_func())
        .and_then(|f| f.typed::<i32, i32>(&*store).ok())
        .ok_or_else(|| Failure::Abi("missing export alloc(i32) -> i32".into()))?;
    let entry = instance
        .get_module_export(&mut *store, entry)
        .and_then(|e| e.into_func())
        .and_then(|f| f.typed::<(i32, i32), i64>(&*store).ok())
        .ok_or_else(|| Failure::Abi("missing export rule(i32, i32) -> i64".into()))?;
    let len =
        i32::try_from(input.len()).map_err(|_| Failure::BadOutput("input too large".into()))?;
    let ptr = alloc.call(&mut *store, len).map_err(classify)?;
    memory
        .write(&mut *store, ptr as u32 as usize, input)
        .map_err(|_| {
            Failure::Abi(format!(
                "alloc returned {ptr}, which is not {len} writable bytes"
            ))
        })?;
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
    let data = memory.data(&*store);
    let bytes = out_ptr
        .checked_add(out_len)
        .and_then(|end| data.get(out_ptr..end))
        .ok_or_else(|| {
            Failure::BadOutput(format!(
                "output [{out_ptr}, +{out_len}) is outside linear memory"
            ))
        })?;
    let value: serde_json::Value = serde_json::from_slice(bytes)
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
