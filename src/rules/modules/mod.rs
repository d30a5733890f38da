//! Compiled rule modules on one node: an in-memory cache bounded by bytes (least recently used
//! out first), precompiled artifacts shared by every node through the database, and the
//! compile slots.
//!
//! A login never waits for Cranelift in the normal case: a module missing from memory is
//! loaded from its artifact (`Module::deserialize`, about a millisecond). Because
//! `deserialize` runs whatever native code it is given, an artifact is only used after its
//! HMAC — under a key derived from the master key, over the module hash, the engine
//! fingerprint and the bytes — verifies; anything else (a row written by someone without the
//! master key, a bit flip, another wasmtime) is ignored and the stored module bytes are
//! compiled again, under a deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::engine::{CompiledRule, Rejected, RuleEngine, module_hash};
use crate::crypto::MasterKey;
use crate::store::{ArtifactRecord, Store};

mod artifact;
use artifact::{authentic, seal};

/// Why a login could not get a rule's compiled code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The stored module does not compile (it did at upload: another wasmtime may refuse it).
    #[error("{0}")]
    Rejected(String),
    /// Not now: a compile slot, a deadline or the database failed.
    #[error("{0}")]
    Unavailable(String),
    /// The rule was deleted meanwhile.
    #[error("the rule no longer exists")]
    Gone,
}

/// Where a module's bytes are stored, to compile it again when its artifact is missing.
#[derive(Debug, Clone, Copy)]
pub enum ModuleSource<'a> {
    /// A rule's current module, by rule id.
    Rule(&'a str),
    /// An action version's code, by version id.
    ActionVersion(&'a str),
}

/// A module compiled for an upload, not yet in any cache: it goes into the cache only once
/// its rule is stored ([`Modules::install`]).
pub struct Prepared {
    pub compiled: Arc<CompiledRule>,
    /// Its authenticated artifact, to store with the rule.
    pub artifact: ArtifactRecord,
}

/// Counters for metrics and the benchmark.
#[derive(Debug, Default)]
pub struct ModuleStats {
    /// Lookups served from memory (exported as a metric).
    pub hits: prometheus_client::metrics::counter::Counter,
    /// Lookups that had to load or compile (exported as a metric).
    pub misses: prometheus_client::metrics::counter::Counter,
    /// Modules loaded from an artifact.
    pub loaded: AtomicU64,
    /// Modules compiled because no valid artifact existed.
    pub recompiled: AtomicU64,
    /// Artifacts refused because their MAC did not verify.
    pub refused_artifacts: AtomicU64,
    /// Modules evicted to stay under the capacity.
    pub evicted: AtomicU64,
    /// The JavaScript runtime was loaded from its stored artifact (1) rather than made here.
    pub js_runtime_loaded: AtomicU64,
}

struct Lru {
    map: lru::LruCache<String, Arc<CompiledRule>>,
    bytes: usize,
}

/// The node's compiled modules.
pub struct Modules {
    engine: Arc<RuleEngine>,
    store: Store,
    mac_key: aws_lc_rs::hmac::Key,
    capacity: usize,
    max_modules: usize,
    cache: Mutex<Lru>,
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    upload_slots: Arc<Semaphore>,
    tenant_compiles: Arc<Mutex<HashMap<String, usize>>>,
    recovery_slots: Arc<Semaphore>,
    js_gate: tokio::sync::Mutex<()>,
    /// Counters.
    pub stats: ModuleStats,
}

/// A per-tenant compile in progress; released on drop.
struct TenantCompile {
    map: Arc<Mutex<HashMap<String, usize>>>,
    tenant: String,
}

impl Drop for TenantCompile {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

impl Modules {
    /// An empty cache of `capacity` bytes over `engine`.
    pub fn new(engine: Arc<RuleEngine>, store: Store, master_key: &MasterKey) -> Self {
        let limits = engine.limits().clone();
        Modules {
            mac_key: master_key.derive_hmac_key("wardstone rule artifact v1"),
            capacity: limits.module_cache_bytes,
            max_modules: limits.module_cache_count.max(1),
            cache: Mutex::new(Lru {
                map: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            loading: Mutex::new(HashMap::new()),
            upload_slots: Arc::new(Semaphore::new(limits.compile_slots)),
            tenant_compiles: Arc::new(Mutex::new(HashMap::new())),
            // Recompiles on the login path have their own slot: an upload never delays them.
            recovery_slots: Arc::new(Semaphore::new(1)),
            js_gate: tokio::sync::Mutex::new(()),
            stats: ModuleStats::default(),
            engine,
            store,
        }
    }

    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.engine
    }

    /// Makes the engine's JavaScript runtimes ready before anything JavaScript is compiled or
    /// loaded — the lean one, and the modules one when `bytes` (a script or its artifact) run
    /// there: from the stored artifact when one verifies (milliseconds), otherwise by a
    /// snapshot and a compile (seconds of CPU, once per deployment and engine version), whose
    /// result is stored for every node and restart.
    async fn ensure_js_runtime(&self, bytes: &[u8]) {
        self.ensure_js_runtime_of(false).await;
        if super::js::needs_modules_runtime(bytes) {
            self.ensure_js_runtime_of(true).await;
        }
    }

    async fn ensure_js_runtime_of(&self, modules: bool) {
        if !super::js::AVAILABLE || self.engine.js_ready_of(modules) {
            return;
        }
        let _turn = self.js_gate.lock().await;
        if self.engine.js_ready_of(modules) {
            return;
        }
        let key = super::js::runtime_artifact_key_of(modules);
        let fingerprint = self.engine.fingerprint().to_string();
        if let Ok(Some(artifact)) = self.store.rule_artifact(&key, &fingerprint).await {
            let (engine, mac_key) = (self.engine.clone(), self.mac_key.clone());
            let installed = tokio::task::spawn_blocking(move || {
                if !authentic(&mac_key, &artifact) {
                    return Err(anyhow::anyhow!("the stored artifact failed authentication"));
                }
                // SAFETY: the MAC proves this deployment stored these bytes from
                // `js_runtime_artifact_of(modules)` of an engine with this fingerprint (the
                // key names which runtime).
                unsafe { engine.install_js_runtime_of(modules, &artifact.bytes) }
            })
            .await;
            match installed {
                Ok(Ok(())) => {
                    if !modules {
                        self.stats.js_runtime_loaded.store(1, Ordering::Relaxed);
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), modules, "JavaScript runtime artifact not used; making it again")
                }
                Err(e) => {
                    tracing::warn!(error = %e, modules, "JavaScript runtime artifact not loaded")
                }
            }
        }
        let engine = self.engine.clone();
        let made = tokio::task::spawn_blocking(move || {
            crate::cpu::run_in_background();
            engine
                .warm_js_of(modules)
                .map(|_| engine.js_runtime_artifact_of(modules))
        })
        .await;
        match made {
            Ok(Ok(Some(bytes))) => {
                let record = seal(&self.mac_key, key, fingerprint, bytes);
                if let Err(e) = self.store.put_rule_artifact(&record).await {
                    tracing::warn!(error = %e, "cannot store the JavaScript runtime's compiled code");
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, modules, "the JavaScript runtime does not start")
            }
            Ok(Ok(None)) | Err(_) => {}
        }
    }

    /// Whether an upload of `tenant_id` is compiling (or waiting for a slot) now.
    pub fn compiling(&self, tenant_id: &str) -> bool {
        self.tenant_compiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .is_some_and(|n| *n > 0)
    }

    /// Compiles an uploaded module: at most one compile per tenant and `compile_slots` per
    /// node at once, waiting at most `compile_wait` for a slot, and at most `compile_timeout`
    /// for Cranelift. Nothing is cached here.
    pub async fn compile_upload(
        &self,
        tenant_id: &str,
        bytes: Vec<u8>,
    ) -> Result<Prepared, Rejected> {
        if super::js::is_script(&bytes) {
            self.ensure_js_runtime(&bytes).await;
        }
        let limits = self.engine.limits();
        let busy = || {
            Rejected(format!(
                "the server is busy compiling other rules; no compile slot freed within {} ms, try again",
                limits.compile_wait.as_millis()
            ))
        };
        let _tenant = {
            let mut map = self
                .tenant_compiles
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let n = map.entry(tenant_id.to_string()).or_insert(0);
            if *n >= limits.compiles_per_tenant {
                return Err(Rejected(
                    "another rule of this tenant is being compiled; try again when it is done"
                        .into(),
                ));
            }
            *n += 1;
            TenantCompile {
                map: self.tenant_compiles.clone(),
                tenant: tenant_id.to_string(),
            }
        };
        let permit = tokio::time::timeout(
            limits.compile_wait,
            self.upload_slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
        let compiled = self.compile_on_thread(permit, bytes).await?;
        let artifact = self
            .artifact_of(&compiled)
            .map_err(|e| Rejected(format!("cannot serialize the compiled module: {e:#}")))?;
        Ok(Prepared {
            compiled: Arc::new(compiled),
            artifact,
        })
    }

    /// Runs the compile on a thread of its own (never an async worker) with a deadline. A
    /// compile cannot be cancelled: on timeout it finishes in the background still holding its
    /// slot, so timed-out compiles cannot pile up on the cores.
    async fn compile_on_thread(
        &self,
        permit: OwnedSemaphorePermit,
        bytes: Vec<u8>,
    ) -> Result<CompiledRule, Rejected> {
        let engine = self.engine.clone();
        let timeout = engine.limits().compile_timeout;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("wardstone-compile".into())
            .spawn(move || {
                let _permit = permit;
                let _ = tx.send(engine.compile(&bytes));
            })
            .map_err(|e| Rejected(format!("cannot start compilation: {e}")))?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(Rejected(format!(
                "compilation took longer than {} ms",
                timeout.as_millis()
            ))),
            Ok(Err(_)) => Err(Rejected("compilation failed".into())),
            Ok(Ok(result)) => result,
        }
    }

    /// Puts a module whose rule is stored into this node's cache.
    pub fn install(&self, compiled: Arc<CompiledRule>) {
        let weight = compiled.weight();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = cache.map.put(compiled.sha256.clone(), compiled) {
            cache.bytes -= old.weight();
        }
        cache.bytes += weight;
        while (cache.bytes > self.capacity || cache.map.len() > self.max_modules)
            && cache.map.len() > 1
        {
            match cache.map.pop_lru() {
                Some((_, evicted)) => {
                    cache.bytes -= evicted.weight();
                    self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
    }

    /// The module if this node has it in memory.
    pub fn cached(&self, sha256: &str) -> Option<Arc<CompiledRule>> {
        let found = self.peek(sha256);
        if found.is_some() {
            self.stats.hits.inc();
        } else {
            self.stats.misses.inc();
        }
        found
    }

    /// The module if this node has it in memory, not counted as a hit or a miss.
    fn peek(&self, sha256: &str) -> Option<Arc<CompiledRule>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .get(sha256)
            .cloned()
    }

    /// Modules in memory and the bytes they hold.
    pub fn usage(&self) -> (usize, usize) {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        (cache.map.len(), cache.bytes)
    }

    /// The compiled module of a tenant's rule or action version: from memory, else from its
    /// artifact, else compiled from the stored bytes (then its artifact is stored for every
    /// node).
    pub async fn get(
        &self,
        tenant_id: &str,
        source: ModuleSource<'_>,
        sha256: &str,
    ) -> Result<Arc<CompiledRule>, LoadError> {
        if let Some(hit) = self.cached(sha256) {
            return Ok(hit);
        }
        // One load per module at a time: the other logins that want it wait for it.
        let gate = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            loading
                .entry(sha256.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        let result = {
            let _turn = gate.lock().await;
            match self.peek(sha256) {
                Some(hit) => Ok(hit),
                None => self.load(tenant_id, source, sha256).await,
            }
        };
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&gate) <= 2 {
            loading.remove(sha256);
        }
        result
    }

    async fn load(
        &self,
        tenant_id: &str,
        source: ModuleSource<'_>,
        sha256: &str,
    ) -> Result<Arc<CompiledRule>, LoadError> {
        if let Some(compiled) = self.load_artifact(sha256).await? {
            return Ok(compiled);
        }
        self.recompile(tenant_id, source, sha256).await
    }

    /// Fills this node's cache with the most recently used artifacts, until the cache is full
    /// or `budget` has passed. A restarting node does this before it reports ready, so its
    /// first logins do not each wait for their modules.
    pub async fn warm_up(&self, budget: std::time::Duration) -> usize {
        let started = std::time::Instant::now();
        let fingerprint = self.engine.fingerprint().to_string();
        let shas = match self.store.recent_rule_artifacts(&fingerprint, 10_000).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list rule artifacts to warm the cache");
                return 0;
            }
        };
        let mut loaded = 0;
        // Two at a time: one reads from the database while the other verifies and loads.
        for pair in shas.chunks(2) {
            let (count, bytes) = self.usage();
            if started.elapsed() >= budget || bytes >= self.capacity || count >= self.max_modules {
                break;
            }
            let results = futures_util::future::join_all(pair.iter().map(|sha| async move {
                if self
                    .cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .map
                    .contains(sha)
                {
                    return false;
                }
                matches!(self.load_artifact(sha).await, Ok(Some(_)))
            }))
            .await;
            loaded += results.into_iter().filter(|ok| *ok).count();
        }
        tracing::info!(modules = loaded, elapsed = ?started.elapsed(), "rule module cache warmed");
        loaded
    }

    /// Tells the database which modules this node holds (the recency a restart warms by).
    pub async fn record_use(&self, now: i64) {
        let shas: Vec<String> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.map.iter().map(|(sha, _)| sha.clone()).collect()
        };
        if let Err(e) = self
            .store
            .touch_rule_artifacts(self.engine.fingerprint(), &shas, now)
            .await
        {
            tracing::warn!(error = %e, "cannot record which rule modules are in use");
        }
    }

    async fn recompile(
        &self,
        tenant_id: &str,
        source: ModuleSource<'_>,
        sha256: &str,
    ) -> Result<Arc<CompiledRule>, LoadError> {
        let limits = self.engine.limits();
        let unavailable = |e: crate::store::StoreError| {
            LoadError::Unavailable(format!("cannot read the module: {e}"))
        };
        let bytes = match source {
            ModuleSource::Rule(id) => self
                .store
                .rule_module_of(tenant_id, id)
                .await
                .map_err(unavailable)?,
            ModuleSource::ActionVersion(id) => self
                .store
                .action_version_code(tenant_id, id)
                .await
                .map_err(unavailable)?
                .map(|code| super::js::action_module(&code)),
        }
        .ok_or(LoadError::Gone)?;
        if super::js::is_script(&bytes) {
            self.ensure_js_runtime(&bytes).await;
        }
        // By rule id, not by the listed hash: if the module was swapped since the rule list
        // was read, this login runs the new one (never a mix).
        if module_hash(&bytes) != sha256 {
            tracing::info!(?source, "module changed while loading; using the new one");
        }
        let permit = tokio::time::timeout(
            limits.compile_wait,
            self.recovery_slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| LoadError::Unavailable("no compile slot freed in time".into()))?
        .map_err(|_| LoadError::Unavailable("shutting down".into()))?;
        let compiled = match self.compile_on_thread(permit, bytes).await {
            Ok(c) => c,
            Err(Rejected(why)) if why.starts_with("compilation took longer") => {
                return Err(LoadError::Unavailable(why));
            }
            Err(Rejected(why)) => return Err(LoadError::Rejected(why)),
        };
        self.stats.recompiled.fetch_add(1, Ordering::Relaxed);
        match self.artifact_of(&compiled) {
            Ok(artifact) => {
                if let Err(e) = self.store.put_rule_artifact(&artifact).await {
                    tracing::warn!(error = %e, "cannot store the rule artifact; other nodes will compile too");
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot serialize the module"),
        }
        let compiled = Arc::new(compiled);
        self.install(compiled.clone());
        Ok(compiled)
    }

    /// Compiles a module for the offline runner (no database, no cache).
    pub async fn compile_offline(&self, bytes: Vec<u8>) -> Result<CompiledRule, Rejected> {
        if super::js::is_script(&bytes) {
            self.ensure_js_runtime(&bytes).await;
        }
        let permit = self
            .upload_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Rejected("shutting down".into()))?;
        self.compile_on_thread(permit, bytes).await
    }
}
