//! A trigger's scripts loaded once per node: the runtime memory that loading them writes,
//! replayed into each run's fresh instance instead of loading them again.
//!
//! Loading a script (QuickJS reading its bytecode, an action's module code running) depends
//! only on the runtime snapshot and the script bytes when the loads call no host function
//! that answers from outside (clock, randomness, crypto, network: counted in
//! `HostState::outside_inputs`; a set whose loads make such a call gets no image). Nothing of a
//! login goes in, and what the loads log is dropped before the first run
//! (`HostState::reset`). So the instance a run gets after the loads is the same every time, and
//! only its linear memory differs from a fresh one — the runtime's one mutable global is the
//! shadow stack pointer, which each `load` call leaves where it found it, and its table is
//! never written. An image holds the memory's size and the runs of 64-byte lines that differ
//! after the loads; writing them into a fresh instance gives the state the loads would have
//! made, byte for byte, for a copy of a few kilobytes instead of ≈ 5 µs (warm, engine bench) to
//! 16 µs (in a login) of QuickJS per script. Lines, not pages: three small actions change 51
//! pages but only 15 KB — a few bytes per page, spread over the snapshot (most likely
//! reference counts of shared atoms and prototypes) — and whole pages made a copy of 200 KB
//! per login. Each run still gets its own fresh instance (SPEC §15): the image carries code,
//! never a run's state.
//!
//! One difference a script can see: with an image, every script's top-level code has run
//! before the first handler, as a server loads its modules before it serves; loaded per run,
//! a script's top-level code runs just before its own handler. Only state a script leaves on
//! `globalThis` for another can tell, or a promise job its top-level code queued (it now runs
//! in the first run's turn). And a top-level `Math.random()` now always draws from the
//! snapshot's fixed seed (loaded per run, a script loaded after another had run drew from that
//! run's seed). docs/writing-js-rules.md says so.
//!
//! An image is made on an executor thread, in the tenant's turn ([`RuleEngine::js_image_lookup`]
//! says when one is wanted): never on a request's thread, where loading a large set could hold
//! an async worker for many executions' deadlines. Until it is ready, runs load as before.
//!
//! Scripts that may reach the network (`uses_http`) are left to the per-run path, so whatever
//! their module code does runs under the login's own policy and deadline; so is a set whose
//! loads fail (each login then fails as it would have) or that mixes the two runtimes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::Digest;

use super::JsRuntime;
use crate::rules::engine::abi::instantiate;
use crate::rules::engine::epoch::RunningGuard;
use crate::rules::engine::{CompiledRule, RuleEngine, set_budget};
use crate::rules::outbound::NetPolicy;

/// The unit of comparison: a cache line.
const LINE: usize = 64;

/// A larger image (module code that filled memory) is not kept: its set loads per run, and
/// one tenant cannot fill the cache with a few of them.
const IMAGE_BYTES: usize = 1 << 20;

/// Images kept per engine, in bytes: beyond it the cache starts over (a node serving
/// thousands of distinct rule sets rebuilds an image in about a millisecond).
const CACHE_BYTES: usize = 64 << 20;

/// What loading a trigger's scripts, in order, leaves in a fresh runtime instance.
pub(crate) struct LoadedImage {
    pub(crate) runtime: Arc<JsRuntime>,
    /// The memory's size after the loads, in bytes.
    memory_bytes: usize,
    /// (offset, bytes) of each run of lines the loads changed.
    runs: Vec<(usize, Box<[u8]>)>,
    /// (module hash, slot) of each script, as `Session::js_slot` keeps them.
    pub(crate) slots: Vec<(String, i32)>,
}

impl LoadedImage {
    fn bytes(&self) -> usize {
        self.runs.iter().map(|(_, r)| r.len() + 32).sum::<usize>() + 64
    }

    /// Makes a fresh instance's memory what the loads left: grows it, writes the runs.
    pub(crate) fn apply(
        &self,
        store: &mut wasmtime::Store<crate::rules::engine::host::HostState>,
        memory: wasmtime::Memory,
    ) -> Result<(), String> {
        let have = memory.data_size(&*store);
        if self.memory_bytes > have {
            let wasm_pages = (self.memory_bytes - have).div_ceil(65536) as u64;
            memory
                .grow(&mut *store, wasm_pages)
                .map_err(|e| format!("cannot grow the runtime's memory: {e}"))?;
        }
        let data = memory.data_mut(&mut *store);
        for (offset, run) in &self.runs {
            data.get_mut(*offset..*offset + run.len())
                .ok_or("an image run lies outside the memory")?
                .copy_from_slice(run);
        }
        Ok(())
    }
}

/// The images an engine has made or is making, by the hash of the scripts they hold.
#[derive(Default)]
pub(crate) struct ImageCache(Mutex<Images>);

enum Entry {
    /// Queued or being made: runs load their scripts themselves meanwhile.
    Making,
    /// Made (`None`: that set is left to the per-run path).
    Done(Option<Arc<LoadedImage>>),
}

#[derive(Default)]
struct Images {
    by_key: HashMap<[u8; 32], Entry>,
    /// What `by_key` holds, in bytes (see [`LoadedImage::bytes`]).
    bytes: usize,
}

/// The distinct scripts of a run, in order, and the key of their image.
pub(crate) struct ImageScripts {
    key: [u8; 32],
    list: Vec<Arc<CompiledRule>>,
}

impl ImageScripts {
    /// The JavaScript ones of `rules` (the items of a trigger run), or `None` if there is none.
    pub(crate) fn of<'a>(rules: impl Iterator<Item = &'a Arc<CompiledRule>>) -> Option<Self> {
        let mut list: Vec<Arc<CompiledRule>> = Vec::new();
        for rule in rules.filter(|r| r.script.is_some()) {
            if !list.iter().any(|r| r.sha256 == rule.sha256) {
                list.push(rule.clone());
            }
        }
        if list.is_empty() {
            return None;
        }
        let mut hasher = sha2::Sha256::new();
        for rule in &list {
            hasher.update(rule.sha256.as_bytes());
            hasher.update([u8::from(rule.script.as_ref().is_some_and(|s| s.modules))]);
        }
        Some(ImageScripts {
            key: hasher.finalize().into(),
            list,
        })
    }
}

/// What a run's lookup found.
pub(crate) enum ImageLookup {
    /// The image, or that there will be none (or that it is being made).
    Found(Option<Arc<LoadedImage>>),
    /// None yet, and this caller is the one to have it made ([`RuleEngine::js_image`]).
    Wanted(ImageScripts),
}

impl RuleEngine {
    /// A run's image without making it: made already, or to be made by this caller.
    pub(crate) fn js_image_lookup(&self, scripts: Option<ImageScripts>) -> ImageLookup {
        let Some(scripts) = scripts else {
            return ImageLookup::Found(None);
        };
        let mut images = self.js_images.0.lock().unwrap_or_else(|p| p.into_inner());
        match images.by_key.get(&scripts.key) {
            Some(Entry::Done(image)) => ImageLookup::Found(image.clone()),
            Some(Entry::Making) => ImageLookup::Found(None),
            None => {
                images.by_key.insert(scripts.key, Entry::Making);
                ImageLookup::Wanted(scripts)
            }
        }
    }

    /// Gives up making an image [`Self::js_image_lookup`] asked for (its job was not run):
    /// a later run asks again.
    pub(crate) fn js_image_abandoned(&self, scripts: &ImageScripts) {
        let mut images = self.js_images.0.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(images.by_key.get(&scripts.key), Some(Entry::Making)) {
            images.by_key.remove(&scripts.key);
        }
    }

    /// Makes the image of `scripts` loaded in order, keeps it, and returns it (`None` when
    /// runs must load them themselves). Blocking, for up to one execution's deadline per
    /// script: on an executor thread.
    pub(crate) fn js_image(&self, scripts: &ImageScripts) -> Option<Arc<LoadedImage>> {
        let image = self
            .make_image(&scripts.list)
            .filter(|i| i.bytes() <= IMAGE_BYTES)
            .map(Arc::new);
        let size = |e: &Option<Arc<LoadedImage>>| e.as_ref().map_or(64, |i| i.bytes());
        let mut images = self.js_images.0.lock().unwrap_or_else(|p| p.into_inner());
        if images.bytes + size(&image) > CACHE_BYTES {
            // The images made go; the ones being made stay, so each is made once.
            images.by_key.retain(|_, e| matches!(e, Entry::Making));
            images.bytes = 0;
        }
        images.bytes += size(&image);
        if let Some(Entry::Done(old)) = images
            .by_key
            .insert(scripts.key, Entry::Done(image.clone()))
        {
            images.bytes = images.bytes.saturating_sub(size(&old));
        }
        image
    }

    fn make_image(&self, list: &[Arc<CompiledRule>]) -> Option<LoadedImage> {
        let scripts: Vec<_> = list.iter().filter_map(|r| r.script.as_ref()).collect();
        let runtime = scripts.first()?.runtime.clone();
        if list.iter().any(|r| r.uses_http)
            || scripts.iter().any(|s| !Arc::ptr_eq(&s.runtime, &runtime))
        {
            return None;
        }
        let _running = RunningGuard::enter();
        let limits = self.limits();
        let mut store = self.new_store(limits.rule_timeout, &NetPolicy::default(), limits.fuel);
        let instance = instantiate(&mut store, &runtime.rule).ok()?;
        let before = instance.memory().data(&store).to_vec();
        let load = instance
            .func::<(i32, i32), i32>(&mut store, &runtime.load, "load(i32, i32) -> i32")
            .ok()?;
        let mut slots = Vec::with_capacity(scripts.len());
        for (rule, script) in list.iter().zip(&scripts) {
            // Each load within one execution's budget, as `js_slot` gives it.
            store
                .data_mut()
                .reset(std::time::Instant::now() + limits.rule_timeout);
            set_budget(&mut store, limits.fuel, limits.rule_timeout);
            let (ptr, len) = instance.write(&mut store, &script.code).ok()?;
            let slot = load.call(&mut store, (ptr, len)).ok()?;
            slots.push((rule.sha256.clone(), slot));
        }
        // Module code that read the clock, drew randomness, hashed or fetched made state no
        // other run may share (a value per login before; and the key is not the tenant's).
        if store.data().outside_inputs > 0 {
            return None;
        }
        let after = instance.memory().data(&store);
        let mut runs: Vec<(usize, Box<[u8]>)> = Vec::new();
        let mut open: Option<usize> = None;
        for (i, line) in after.chunks(LINE).enumerate() {
            let offset = i * LINE;
            let old = before.get(offset..(offset + line.len()).min(before.len()));
            let changed = match old {
                Some(old) if old.len() == line.len() => old != line,
                // Grown memory starts zeroed.
                _ => line.iter().any(|b| *b != 0),
            };
            match (changed, open) {
                (true, None) => open = Some(offset),
                (false, Some(start)) => {
                    runs.push((start, Box::from(&after[start..offset])));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            runs.push((start, Box::from(&after[start..])));
        }
        tracing::debug!(
            scripts = list.len(),
            runs = runs.len(),
            bytes = runs.iter().map(|(_, r)| r.len()).sum::<usize>(),
            memory_bytes = after.len(),
            "made a loaded-scripts image"
        );
        Some(LoadedImage {
            runtime,
            memory_bytes: after.len(),
            runs,
            slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::CodeKind;
    use crate::rules::Limits;
    use crate::rules::js::{AVAILABLE, action_module};
    use crate::rules::trigger::{TriggerOutcome, bench_post_login};
    use serde_json::json;

    fn action(engine: &RuleEngine, source: &str) -> Arc<CompiledRule> {
        Arc::new(engine.compile(&action_module(source)).expect("compiles"))
    }

    /// Module code that builds state at load: what a run sees must not depend on whether the
    /// loads ran in it or came from the image.
    const STATEFUL: &str = r#"
const table = new Map([['a', 1], ['b', 2]]);
let runs = 0;
exports.onExecutePostLogin = async (event, api) => {
  runs += 1;
  table.set('c', runs);
  api.idToken.setCustomClaim('https://t.example/runs', runs);
  api.idToken.setCustomClaim('https://t.example/table', [...table.entries()]);
};
"#;

    #[test]
    fn an_image_leaves_the_memory_the_loads_would_have() {
        if !AVAILABLE {
            return;
        }
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let scripts = [
            action(&engine, STATEFUL),
            action(&engine, "exports.onExecutePostLogin = async () => {};"),
            action(&engine, &format!("{STATEFUL}\n// another one")),
        ];
        let wanted = ImageScripts::of(scripts.iter()).unwrap();
        let image = engine
            .js_image(&wanted)
            .expect("an image of three plain actions");
        assert_eq!(image.slots.len(), 3);
        eprintln!(
            "image: {} runs, {} bytes",
            image.runs.len(),
            image.runs.iter().map(|(_, r)| r.len()).sum::<usize>()
        );
        let runtime = &scripts[0].script.as_ref().unwrap().runtime;
        let net = NetPolicy::default();
        let limits = engine.limits();

        let mut replayed = engine.new_store(limits.rule_timeout, &net, limits.fuel);
        let instance = instantiate(&mut replayed, &runtime.rule).unwrap();
        image.apply(&mut replayed, instance.memory()).unwrap();

        let mut loaded = engine.new_store(limits.rule_timeout, &net, limits.fuel);
        let fresh = instantiate(&mut loaded, &runtime.rule).unwrap();
        let load = fresh
            .func::<(i32, i32), i32>(&mut loaded, &runtime.load, "load")
            .unwrap();
        for (script, (sha, slot)) in scripts.iter().zip(&image.slots) {
            set_budget(&mut loaded, limits.fuel, limits.rule_timeout);
            let code = &script.script.as_ref().unwrap().code;
            let (ptr, len) = fresh.write(&mut loaded, code).unwrap();
            assert_eq!(load.call(&mut loaded, (ptr, len)).unwrap(), *slot);
            assert_eq!(*sha, script.sha256);
        }
        let (a, b) = (
            instance.memory().data(&replayed),
            fresh.memory().data(&loaded),
        );
        assert_eq!(a.len(), b.len());
        assert!(a == b, "the image differs from the loads");
    }

    #[test]
    fn each_run_still_starts_from_the_loaded_state_not_the_previous_run() {
        if !AVAILABLE {
            return;
        }
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let items = [(CodeKind::Action, action(&engine, STATEFUL))];
        for _ in 0..3 {
            match bench_post_login(&engine, &items, json!({}), json!({}), "{}") {
                TriggerOutcome::Allow { claims, .. } => {
                    assert_eq!(claims["id_token"]["https://t.example/runs"], json!(1));
                    assert_eq!(
                        claims["id_token"]["https://t.example/table"],
                        json!([["a", 1], ["b", 2], ["c", 1]])
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn scripts_that_may_reach_the_network_or_read_the_clock_at_load_are_loaded_per_run() {
        if !AVAILABLE {
            return;
        }
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let plain = action(&engine, "exports.onExecutePostLogin = async () => {};");
        let fetching = action(
            &engine,
            "exports.onExecutePostLogin = async () => { await fetch('https://api.example'); };",
        );
        assert!(fetching.uses_http);
        let image_of = |rules: &[&Arc<CompiledRule>]| {
            engine.js_image(&ImageScripts::of(rules.iter().copied()).unwrap())
        };
        assert!(image_of(&[&plain, &fetching]).is_none());
        // Module code that reads the clock: a value per login before, so no shared image.
        let clock = action(
            &engine,
            "const started = Date.now();\nexports.onExecutePostLogin = async () => {};",
        );
        assert!(image_of(&[&plain, &clock]).is_none());
        assert!(image_of(&[&plain]).is_some());
        // No script, no image.
        assert!(ImageScripts::of(std::iter::empty()).is_none());
    }

    #[test]
    fn one_run_has_the_image_made_the_others_load_meanwhile_and_an_abandoned_one_is_asked_again() {
        if !AVAILABLE {
            return;
        }
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let plain = action(&engine, "exports.onExecutePostLogin = async () => {};");
        let lookup = || engine.js_image_lookup(ImageScripts::of([&plain].into_iter()));
        let ImageLookup::Wanted(wanted) = lookup() else {
            panic!("the first run is asked to have it made")
        };
        assert!(matches!(lookup(), ImageLookup::Found(None)), "being made");
        engine.js_image_abandoned(&wanted);
        let ImageLookup::Wanted(wanted) = lookup() else {
            panic!("asked again once abandoned")
        };
        assert!(engine.js_image(&wanted).is_some());
        assert!(matches!(lookup(), ImageLookup::Found(Some(_))));
    }

    /// What an image leaves out (globals) holds nothing a load changes: the runtime has one
    /// mutable global, the shadow stack pointer, which calls leave as they found it.
    #[test]
    fn the_runtime_has_one_mutable_global() {
        if !AVAILABLE {
            return;
        }
        fn leb(bytes: &[u8], at: &mut usize) -> u64 {
            let (mut value, mut shift) = (0u64, 0);
            loop {
                let byte = bytes[*at];
                *at += 1;
                value |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return value;
                }
                shift += 7;
            }
        }
        for modules in [false, true] {
            let wasm = crate::rules::js::snapshot::snapshot(modules).unwrap();
            let (mut at, mut mutable, mut globals) = (8, 0, 0);
            while at < wasm.len() {
                let id = wasm[at];
                at += 1;
                let size = leb(wasm, &mut at) as usize;
                let body = &wasm[at..at + size];
                if id == 6 {
                    let mut i = 0;
                    globals = leb(body, &mut i);
                    for _ in 0..globals {
                        // Value type (one byte for i32/i64/f32/f64), then mutability.
                        assert!(matches!(body[i], 0x7c..=0x7f), "a global of another type");
                        mutable += u32::from(body[i + 1] == 1);
                        i += 2;
                        // The constant initializer: one instruction, then `end`.
                        let op = body[i];
                        i += 1;
                        match op {
                            0x41 | 0x42 | 0x23 => drop(leb(body, &mut i)),
                            0x43 => i += 4,
                            0x44 => i += 8,
                            other => panic!("initializer opcode {other:#x}"),
                        }
                        assert_eq!(body[i], 0x0b, "a constant initializer of one instruction");
                        i += 1;
                    }
                }
                at += size;
            }
            assert!(globals >= 1);
            assert_eq!(mutable, 1, "modules runtime: {modules}");
        }
    }
}
