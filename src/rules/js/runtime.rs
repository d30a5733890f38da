//! The JavaScript runtime as the engine uses it: compiled once per engine (from its stored
//! artifact, or a snapshot and a compile), compiling sources to bytecode in the sandbox, and
//! running scripts — the rules and actions of one trigger run share one fresh instance, each
//! loaded into a slot of its own (see the runtime crate's `load` and `run`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Module, Store};

use super::ScriptKind;
use crate::domain::execution::Failure;
use crate::rules::engine::abi::{Instance, classify, instantiate, output_object};
use crate::rules::engine::epoch::RunningGuard;
use crate::rules::engine::host::HostState;
use crate::rules::engine::{
    CompiledRule, Execution, Rejected, RuleEngine, Session, module_hash, set_budget,
};
use crate::rules::outbound::NetPolicy;

/// The runtime snapshot compiled by one engine, with its exports beyond ABI v1.
pub(crate) struct JsRuntime {
    /// The runtime as a module (its `memory`, `alloc`, `rule`).
    pub(crate) rule: CompiledRule,
    compile: wasmtime::ModuleExport,
    pub(crate) load: wasmtime::ModuleExport,
    run: wasmtime::ModuleExport,
    reusable: wasmtime::ModuleExport,
}

/// A script compiled by the runtime: what `load` takes (kind byte, then QuickJS bytecode).
pub(crate) struct Script {
    pub(crate) runtime: Arc<JsRuntime>,
    pub(crate) code: Arc<[u8]>,
    pub(crate) kind: ScriptKind,
    /// It requires a bundled module, so it runs on the modules snapshot.
    pub(crate) modules: bool,
}

/// The runtime instance of one trigger run, with the scripts loaded into it so far.
pub(crate) struct JsInstance {
    runtime: Arc<JsRuntime>,
    store: Store<HostState>,
    instance: Instance,
    /// (module hash, slot) of each loaded script.
    slots: Vec<(String, i32)>,
}

impl RuleEngine {
    /// The JavaScript runtime: snapshotted once per process, compiled once per engine (the
    /// compiled code is kept per engine fingerprint, so engines alike share one compile).
    /// `rules::modules` first tries the runtime's stored artifact ([`Self::install_js_runtime`]).
    pub(crate) fn js_runtime(&self) -> Result<Arc<JsRuntime>, Rejected> {
        self.js_runtime_of(false)
    }

    /// The lean runtime, or (`modules`) the one with the bundled modules evaluated, which
    /// scripts that require one run on (made the first time such a script is compiled or
    /// loaded in this process; not stored as an artifact).
    pub(crate) fn js_runtime_of(&self, modules: bool) -> Result<Arc<JsRuntime>, Rejected> {
        // Held while the runtime is made: whoever else needs it waits for it.
        let cell = if modules { &self.js_modules } else { &self.js };
        let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(runtime) = slot.as_ref() {
            return Ok(runtime.clone());
        }
        type Compiled = Mutex<Vec<(String, bool, Arc<Vec<u8>>)>>;
        static COMPILED: Compiled = Mutex::new(Vec::new());
        let known = COMPILED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(f, m, _)| f == self.fingerprint() && *m == modules)
            .map(|(_, _, a)| a.clone());
        let module = match known {
            // SAFETY: these bytes were serialized by this process from an engine with the
            // same fingerprint, just below.
            Some(artifact) => unsafe { Module::deserialize(&self.engine, &artifact[..]) }
                .map_err(|e| Rejected(format!("JavaScript runtime: {e:#}")))?,
            None => {
                let snapshot = super::snapshot::snapshot(modules)?;
                let module = Module::from_binary(&self.engine, snapshot)
                    .map_err(|e| Rejected(format!("JavaScript runtime: {e:#}")))?;
                if let Ok(bytes) = module.serialize() {
                    COMPILED.lock().unwrap_or_else(|p| p.into_inner()).push((
                        self.fingerprint().to_string(),
                        modules,
                        Arc::new(bytes),
                    ));
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
        let (compile, load, run, reusable) = (
            export("compile")?,
            export("load")?,
            export("run")?,
            export("reusable")?,
        );
        let rule = self.link_trusted(module, super::runtime_hash().to_string())?;
        // The first instance of a module builds its copy-on-write memory image (for the
        // runtime, megabytes of snapshot): done here, not in the first login that runs a script.
        let mut store = self.new_store(
            self.limits().compile_timeout,
            &NetPolicy::default(),
            self.limits().fuel,
        );
        instantiate(&mut store, &rule)
            .map_err(|f| Rejected(format!("JavaScript runtime: {}", f.detail())))?;
        Ok(JsRuntime {
            rule,
            compile,
            load,
            run,
            reusable,
        })
    }

    /// Whether this engine has its JavaScript runtime ready.
    pub fn js_ready(&self) -> bool {
        self.js_ready_of(false)
    }

    /// Whether this engine has the lean runtime, or (`modules`) the modules one, ready.
    pub fn js_ready_of(&self, modules: bool) -> bool {
        let cell = if modules { &self.js_modules } else { &self.js };
        cell.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The JavaScript runtime's compiled code, once it is ready (to store as an artifact).
    pub fn js_runtime_artifact(&self) -> Option<Vec<u8>> {
        self.js_runtime_artifact_of(false)
    }

    /// The compiled code of the lean or the modules runtime, once it is ready.
    pub fn js_runtime_artifact_of(&self, modules: bool) -> Option<Vec<u8>> {
        let cell = if modules { &self.js_modules } else { &self.js };
        let runtime = cell.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        runtime.rule.pre.module().serialize().ok()
    }

    /// Makes the JavaScript runtime ready from its stored compiled code (milliseconds instead
    /// of a snapshot and a compile). Does nothing if it is ready already.
    ///
    /// # Safety
    /// As for [`Self::deserialize`]: an authenticated artifact from
    /// [`Self::js_runtime_artifact`] of an engine with this fingerprint.
    pub unsafe fn install_js_runtime(&self, artifact: &[u8]) -> anyhow::Result<()> {
        // SAFETY: guaranteed by the caller.
        unsafe { self.install_js_runtime_of(false, artifact) }
    }

    /// [`Self::install_js_runtime`] for the lean or the modules runtime.
    ///
    /// # Safety
    /// An authenticated artifact from [`Self::js_runtime_artifact_of`] with the same
    /// `modules`, of an engine with this fingerprint.
    pub unsafe fn install_js_runtime_of(
        &self,
        modules: bool,
        artifact: &[u8],
    ) -> anyhow::Result<()> {
        if self.js_ready_of(modules) {
            return Ok(());
        }
        // SAFETY: guaranteed by the caller.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let runtime = self
            .js_from_module(module)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let cell = if modules { &self.js_modules } else { &self.js };
        let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Arc::new(runtime));
        }
        Ok(())
    }

    /// Prepares the JavaScript runtime now (a snapshot and a compile: about three seconds of
    /// CPU the first time in a process).
    pub fn warm_js(&self) -> Result<(), Rejected> {
        self.js_runtime().map(|_| ())
    }

    /// Prepares the lean or the modules runtime now.
    pub fn warm_js_of(&self, modules: bool) -> Result<(), Rejected> {
        self.js_runtime_of(modules).map(|_| ())
    }

    /// Compiles a script's module bytes to bytecode in a fresh runtime instance, under the
    /// upload's budget (ten executions' fuel, the compile deadline). Syntax errors come back
    /// with the line and column of the author's source.
    pub(crate) fn compile_script(&self, module: &[u8]) -> Result<CompiledRule, Rejected> {
        let kind = super::script_kind(module).unwrap_or(ScriptKind::Rule);
        let source = super::check_script(super::source_of(module), self.limits().module_bytes)?;
        let runtime = self.js_runtime()?;
        let _running = RunningGuard::enter();
        let mut store = self.new_store(
            self.limits().compile_timeout,
            &NetPolicy::default(),
            self.limits().fuel.saturating_mul(10),
        );
        // What `compile` takes is the module bytes themselves: an action's mark tells it.
        let output = instantiate(&mut store, &runtime.rule)
            .and_then(|instance| instance.call(&mut store, &runtime.compile, module, 64 << 20))
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
        let code = super::compile_output(&output)?;
        // Bytecode is the same for both snapshots (one runtime binary made it).
        let modules = super::uses_modules(source);
        let rule = script_rule(
            &self.js_runtime_of(modules)?,
            module_hash(module),
            code,
            kind,
            super::uses_network(source),
            modules,
        );
        // What every login will do before the code runs (load the bytecode, run an action's
        // module code) must fit one execution's budget, or the upload would fail every login.
        let mut session = self.session(&NetPolicy::default());
        session
            .js_slot(&rule, self.limits().rule_timeout)
            .map_err(|(failure, logs)| {
                let logged = logs
                    .last()
                    .map(|l| format!(": {}", l.message))
                    .unwrap_or_default();
                Rejected(format!(
                    "loading the compiled script does not fit one execution's limits: {}{logged}",
                    failure.detail()
                ))
            })?;
        Ok(rule)
    }

    /// A script from its stored artifact (bytecode; another runtime's is refused, so the
    /// script is compiled again from its source).
    pub(crate) fn script_from_artifact(
        &self,
        sha256: &str,
        artifact: &[u8],
    ) -> anyhow::Result<CompiledRule> {
        let (flags, code) = super::read_bytecode_artifact(artifact)
            .ok_or_else(|| anyhow::anyhow!("bytecode of another JavaScript runtime"))?;
        let kind = match code.first() {
            Some(b'a') => ScriptKind::Action,
            _ => ScriptKind::Rule,
        };
        let runtime = self
            .js_runtime_of(flags.modules)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(script_rule(
            &runtime,
            sha256.to_string(),
            code.to_vec(),
            kind,
            flags.http,
            flags.modules,
        ))
    }
}

fn script_rule(
    runtime: &Arc<JsRuntime>,
    sha256: String,
    code: Vec<u8>,
    kind: ScriptKind,
    uses_http: bool,
    modules: bool,
) -> CompiledRule {
    CompiledRule {
        pre: runtime.rule.pre.clone(),
        exports: runtime.rule.exports,
        sha256,
        uses_http,
        script: Some(Script {
            runtime: runtime.clone(),
            code: code.into(),
            kind,
            modules,
        }),
    }
}

impl Session<'_> {
    /// The slot of `rule`'s script in this run's runtime instance, making the instance and
    /// loading the script when needed (within `timeout` and the engine's fuel).
    pub(crate) fn js_slot(
        &mut self,
        rule: &CompiledRule,
        timeout: Duration,
    ) -> Result<i32, (Failure, Vec<crate::domain::execution::LogLine>)> {
        let Some(script) = &rule.script else {
            return Err((Failure::Abi("not a script".into()), Vec::new()));
        };
        let same_runtime = self
            .js
            .as_ref()
            .is_some_and(|js| Arc::ptr_eq(&js.runtime, &script.runtime));
        if !same_runtime {
            let mut store = self
                .engine
                .new_store(timeout, &self.net, self.engine.limits().fuel);
            let instance = instantiate(&mut store, &script.runtime.rule).map_err(|f| {
                let logs = store.data_mut().take_logs();
                (f, logs)
            })?;
            // The trigger's scripts already loaded, when the engine has their image: a fresh
            // instance all the same, its memory written as the loads would have left it.
            let slots = match &self.image {
                Some(image) if Arc::ptr_eq(&image.runtime, &script.runtime) => {
                    match image.apply(&mut store, instance.memory()) {
                        Ok(()) => image.slots.clone(),
                        Err(why) => {
                            tracing::warn!(%why, "a loaded-scripts image could not be applied");
                            self.image = None;
                            return self.js_slot(rule, timeout);
                        }
                    }
                }
                _ => Vec::new(),
            };
            self.js = Some(JsInstance {
                runtime: script.runtime.clone(),
                store,
                instance,
                slots,
            });
        }
        let js = self.js.as_mut().expect("made above");
        if let Some((_, slot)) = js.slots.iter().find(|(sha, _)| *sha == rule.sha256) {
            return Ok(*slot);
        }
        js.store.data_mut().reset(Instant::now() + timeout);
        set_budget(&mut js.store, self.engine.limits().fuel, timeout);
        let loaded = js
            .instance
            .func::<(i32, i32), i32>(&mut js.store, &js.runtime.load, "load(i32, i32) -> i32")
            .and_then(|load| {
                let (ptr, len) = js.instance.write(&mut js.store, &script.code)?;
                load.call(&mut js.store, (ptr, len)).map_err(classify)
            });
        match loaded {
            Ok(slot) => {
                js.slots.push((rule.sha256.clone(), slot));
                Ok(slot)
            }
            Err(failure) => {
                let logs = js.store.data_mut().take_logs();
                self.js = None;
                Err((failure, logs))
            }
        }
    }

    /// Runs a script in this run's runtime instance: loads it if needed, then calls `run` on
    /// its slot with a fresh fuel budget and deadline. A failure, or a run that leaves work
    /// behind, retires the instance: the next script gets a fresh one.
    pub(crate) fn run_script(
        &mut self,
        rule: &CompiledRule,
        input: &[u8],
        timeout: Duration,
    ) -> Execution {
        let started = Instant::now();
        let _running = RunningGuard::enter();
        let fuel = self.engine.limits().fuel;
        let output_cap = self.engine.limits().output_bytes;
        let slot = match self.js_slot(rule, timeout) {
            Ok(slot) => slot,
            Err((failure, logs)) => {
                return Execution {
                    result: Err(script_failure(failure, &logs, false)),
                    fuel_used: fuel,
                    duration: started.elapsed(),
                    logs,
                };
            }
        };
        let js = self.js.as_mut().expect("js_slot made it");
        // The deadline and the fuel are this script's own, loading included.
        let left = timeout.saturating_sub(started.elapsed());
        js.store.data_mut().reset(Instant::now() + left);
        set_budget(&mut js.store, fuel, left);
        let result = js
            .instance
            .func::<(i32, i32, i32), i64>(
                &mut js.store,
                &js.runtime.run,
                "run(i32, i32, i32) -> i64",
            )
            .and_then(|run| {
                let (ptr, len) = js.instance.write(&mut js.store, input)?;
                run.call(&mut js.store, (slot, ptr, len)).map_err(classify)
            })
            .and_then(|packed| js.instance.output(&js.store, packed, output_cap))
            .and_then(|bytes| output_object(&bytes));
        let fuel_used = fuel.saturating_sub(js.store.get_fuel().unwrap_or(0));
        let reusable = result.is_ok()
            && js
                .instance
                .func::<(), i32>(&mut js.store, &js.runtime.reusable, "reusable() -> i32")
                .and_then(|f| f.call(&mut js.store, ()).map_err(classify))
                .is_ok_and(|r| r == 1);
        let state = js.store.data_mut();
        let memory_denied = state.limiter.memory_denied;
        let decision = state.decision.take();
        let mut logs = state.take_logs();
        if !reusable {
            self.js = None;
        }
        // A rule that denied access by calling `callback` and then trapped (ran out of fuel,
        // time or memory in code that ran on) is still a denial: the first outcome is final,
        // and a failure could be skipped (`on_failure: skip`) where a denial never is.
        let result = match (result, decision) {
            (Err(failure), Some(denial)) => match serde_json::from_slice(&denial) {
                Ok(serde_json::Value::Object(map)) => {
                    logs.push(crate::domain::execution::LogLine::warn(format!(
                        "the rule failed after it denied access ({}); the denial stands",
                        failure.detail()
                    )));
                    Ok(map)
                }
                _ => Err(failure),
            },
            (result, _) => result,
        };
        Execution {
            result: result.map_err(|f| script_failure(f, &logs, memory_denied)),
            fuel_used,
            duration: started.elapsed(),
            logs,
        }
    }
}

/// A script's failure as the log tells it: the runtime logs why it gives up, then executes
/// `unreachable`.
fn script_failure(
    failure: Failure,
    logs: &[crate::domain::execution::LogLine],
    memory_denied: bool,
) -> Failure {
    match failure {
        Failure::Trap(_) if memory_denied => Failure::Memory,
        trap @ Failure::Trap(_) => match logs.last() {
            Some(line) if line.level == "error" => Failure::Script(
                line.message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("the rule failed: ")
                    .trim_start_matches("the action failed: ")
                    .to_string(),
            ),
            _ => trap,
        },
        other => other,
    }
}
