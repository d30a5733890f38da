//! Tenant code in the token pipeline: Auth0-style rules (wasm or JavaScript) and Auth0 Actions.
//!
//! - [`engine`]: the wasm host (wasmtime config, ABI checks, host functions, sessions);
//! - [`js`]: everything JavaScript (the embedded QuickJS runtime, its snapshot, scripts);
//! - [`modules`]: compiled modules cached per node, their artifacts shared by every node;
//! - [`ruleset`]: a tenant's rules, bound actions and settings, cached by generation;
//! - [`input`]: Auth0's Rules `user`/`context` and Actions `event`;
//! - [`trigger`]: one post-login or credentials-exchange run (rules, then actions);
//! - [`patch`]: what a rule's output may change; [`actions`]: what an action's `api` calls do;
//! - [`test_run`]: the Management API's test endpoints and the offline runners;
//! - [`executor`]: the threads runs happen on; [`journal`]: the execution log's writer;
//! - [`outbound`]: outbound HTTP for rules and actions; [`limits`].
//!
//! [`Rules`] ties them together for logins, refreshes, client credentials grants and tests.
//! The rule ABI's wire types are the `rules_sdk` ones, shared with rule authors.

pub mod actions;
pub mod engine;
pub mod executor;
pub mod input;
pub mod journal;
pub mod js;
pub mod limits;
pub mod modules;
pub mod outbound;
pub mod patch;
pub mod replay;
pub mod ruleset;
pub mod test_run;
pub mod trigger;

pub use crate::domain::execution::{
    CodeKind, ExecutionRecord, Failure, FailureKind, LogLine, Outcome, Trigger,
};
pub use engine::{CompiledRule, Execution, Rejected, RuleEngine, Upload};
pub use input::{ClientCredentialsInput, LoginInput, Protocol};
pub use limits::Limits;
pub use test_run::{TestError, TestOutcome};
pub use trigger::{Resume, TriggerOutcome};

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::Value;

use crate::cache::{CacheCounters, GenerationCache};
use crate::crypto::MasterKey;
use crate::domain::TriggerId;
use crate::metrics::RuleMetrics;
use crate::store::Store;
use actions::ActionCache;
use executor::{Executor, NotRun};
use journal::{Journal, Recording};
use modules::{Modules, Prepared};
use ruleset::{RULE_SETS, RuleSet};
use trigger::{RunContext, RunState, TriggerRun};

/// The rules service: engine, compiled modules, executor threads, execution log, the actions'
/// cache and the per-tenant rule sets. Cheap to clone.
#[derive(Clone)]
pub struct Rules {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<RuleEngine>,
    modules: Modules,
    store: Store,
    master_key: MasterKey,
    executor: Executor,
    journal: Journal,
    metrics: RuleMetrics,
    rule_sets: GenerationCache<String, RuleSet>,
    cache: Arc<ActionCache>,
    warm: std::sync::atomic::AtomicBool,
    /// Tenants with a replay running on this node (one at a time each).
    replaying: Mutex<std::collections::HashSet<String>>,
}

/// The first-level merge patch turning `before` into `after` (`null` for removed keys), or
/// `None` when nothing changed.
fn first_level_diff(before: &Value, after: &Value) -> Option<serde_json::Map<String, Value>> {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return None;
    };
    let mut patch = serde_json::Map::new();
    for (k, v) in a {
        if b.get(k) != Some(v) {
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(patch)
}

impl Rules {
    /// The service with an engine built from `limits`. Starts the execution log's writer on
    /// the current tokio runtime and the executor's threads.
    pub fn new(store: Store, master_key: MasterKey, limits: Limits) -> anyhow::Result<Self> {
        let engine =
            Arc::new(RuleEngine::new(limits.clone()).context("cannot configure the wasm engine")?);
        let executor = Executor::new(
            limits.max_concurrent,
            limits.stack_bytes,
            limits.inline_runs,
        )
        .context("cannot start the rule executor threads")?;
        let modules = Modules::new(engine.clone(), store.clone(), &master_key);
        let metrics = RuleMetrics::new(modules.stats.hits.clone(), modules.stats.misses.clone());
        Ok(Rules {
            inner: Arc::new(Inner {
                modules,
                metrics,
                journal: Journal::start(store.clone(), master_key.clone(), limits.journal_queue),
                rule_sets: GenerationCache::new("rule_set", RULE_SETS),
                cache: Arc::new(ActionCache::default()),
                warm: std::sync::atomic::AtomicBool::new(limits.warm_up.is_zero()),
                replaying: Mutex::default(),
                engine,
                store,
                master_key,
                executor,
            }),
        })
    }

    /// Warms the module cache (see [`Modules::warm_up`]); the node is ready afterwards.
    pub async fn warm_up(&self) {
        let budget = self.inner.engine.limits().warm_up;
        if !budget.is_zero() {
            self.inner.modules.warm_up(budget).await;
        }
        self.inner
            .warm
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the start-up warm-up is over.
    pub fn is_warm(&self) -> bool {
        self.inner.warm.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The engine (uploads validate through it; the offline runner runs through it).
    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.inner.engine
    }

    /// The node's compiled modules.
    pub fn modules(&self) -> &Modules {
        &self.inner.modules
    }

    /// The execution log writer.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// What the rules count, for `/metrics`.
    pub fn metrics(&self) -> &RuleMetrics {
        &self.inner.metrics
    }

    /// The rule-set cache's counters, for `/metrics`.
    pub fn cache_counters(&self) -> CacheCounters {
        self.inner.rule_sets.counters()
    }

    /// Counts executions and queues them for the execution log.
    pub(crate) fn record(&self, tenant_id: &str, records: Vec<ExecutionRecord>) {
        use crate::domain::usage::Metric;
        let mut usage = [
            (Metric::RuleExecutions, 0),
            (Metric::ActionExecutions, 0),
            (Metric::Failures, 0),
            (Metric::Denials, 0),
            (Metric::Fuel, 0),
        ];
        for r in &records {
            self.inner
                .metrics
                .execution(r.outcome.label(), r.duration_us, r.fuel);
            if r.skipped {
                self.inner.metrics.skipped();
            }
            // Usage counts traffic: the Management API's test runs are logged, not counted.
            if r.trigger != Trigger::Test {
                let kind = match r.kind {
                    CodeKind::Rule => 0,
                    CodeKind::Action => 1,
                };
                usage[kind].1 += 1;
                usage[2].1 += i64::from(matches!(r.outcome, Outcome::Failed(_)));
                usage[3].1 += i64::from(r.outcome == Outcome::Denied);
                usage[4].1 += r.fuel.max(0);
            }
        }
        if let Some(first) = records.first().filter(|_| usage[0].1 + usage[1].1 > 0) {
            self.inner
                .journal
                .count(tenant_id, first.created_at, &usage);
        }
        self.inner.journal.record(tenant_id, records);
    }

    /// Compiles an upload (bounded and timed; see [`Modules::compile_upload`]). The result is
    /// cached only when [`Rules::installed`] says its rule was stored.
    pub async fn prepare_upload(
        &self,
        tenant_id: &str,
        module: Vec<u8>,
    ) -> Result<Prepared, Rejected> {
        self.inner.modules.compile_upload(tenant_id, module).await
    }

    /// The rule of an upload was stored: its module may serve logins from this node's cache.
    pub fn installed(&self, prepared: Prepared) {
        self.inner.modules.install(prepared.compiled);
    }

    /// Runs the tenant's post-login trigger — enabled rules, then bound actions — for a login
    /// or a refresh. Persists metadata changes only when the whole run passed, and records
    /// every execution.
    pub async fn post_login(&self, input: LoginInput<'_>) -> anyhow::Result<TriggerOutcome> {
        self.run_post_login(input, None).await
    }

    /// Resumes a post-login run that a redirect paused: for an action, its
    /// `onContinuePostLogin`, then the actions after it; for a rule's `context.redirect`, the
    /// whole trigger again with the rules' `context.protocol` set to `redirect-callback`.
    pub async fn resume_post_login(
        &self,
        input: LoginInput<'_>,
        resume: &Resume,
    ) -> anyhow::Result<TriggerOutcome> {
        self.run_post_login(input, Some(resume)).await
    }

    async fn run_post_login(
        &self,
        input: LoginInput<'_>,
        resume: Option<&Resume>,
    ) -> anyhow::Result<TriggerOutcome> {
        let set = self
            .rule_set(input.tenant_id, input.rules_generation)
            .await?;
        let trigger = TriggerId::PostLogin;
        let no_code = set.rules.is_empty() && set.actions_of(trigger).is_empty();
        if no_code && resume.is_none() {
            return Ok(TriggerOutcome::Allow {
                claims: trigger::no_claims(),
                scope: input.scope.clone(),
                added_scopes: Vec::new(),
            });
        }
        let log_as = input.protocol.trigger();
        // Resuming an action skips the rules (they ran before it); a rules redirect reruns them.
        let action_resume = resume.filter(|r| !r.rules);
        let items = match self
            .prepare(
                input.tenant_id,
                &set,
                action_resume.is_none(),
                trigger,
                log_as,
                input.now,
            )
            .await
        {
            Ok(items) => items,
            Err(record) => return Ok(self.failed_before_running(input.tenant_id, record)),
        };
        // Came with the SSO session's read (an index probe), or read here only when some rule
        // or action will see them.
        let roles = match input.roles {
            Some(roles) => roles.to_vec(),
            None => {
                self.inner
                    .store
                    .user_role_names(input.tenant_id, &input.user.user_id)
                    .await?
            }
        };
        let record_input = set.recording_keep > 0 && resume.is_none();
        // Without a rule to read it (and no recording), the run needs only the tokens of
        // Auth0's `context`: actions see their `event`, and the tokens are what they change.
        // The rest of the context is not even built then.
        let actions_only = items.iter().all(|i| i.kind == CodeKind::Action);
        let user = serde_json::to_value(input::rule_user(&input))?;
        let mut context = if actions_only && !record_input {
            let (id_token, access_token) = input::initial_tokens(&input);
            serde_json::json!({
                "idToken": serde_json::to_value(&id_token)?,
                "accessToken": serde_json::to_value(&access_token)?,
            })
        } else {
            serde_json::to_value(input::rule_context(&input, roles.clone()))?
        };
        if resume.is_some_and(|r| r.rules) {
            context["protocol"] = Value::from("redirect-callback");
        }
        let original_metadata = [user["app_metadata"].clone(), user["user_metadata"].clone()];
        // A fresh run's input, for replay; a resumed run replays as the run it resumes.
        let recorded = record_input.then(|| format!(r#"{{"user":{user},"context":{context}"#));
        let transaction_id = resume
            .map(|r| r.transaction_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let state = match resume {
            // The user as the first pass left it: its metadata changes are saved (with the
            // second pass's) only when the login completes.
            Some(r) if r.rules => trigger::initial_state(r.user.clone(), context),
            Some(r) => trigger::resumed_state(r, context),
            None => trigger::initial_state(user, context),
        };
        let original_metadata = match resume {
            Some(r) => r.original_metadata.clone(),
            None => original_metadata,
        };
        // Actions' `event`: built only when an action will see it or the run is recorded.
        let event = (recorded.is_some() || items.iter().any(|i| i.kind == CodeKind::Action))
            .then(|| input::post_login_event(&input, &roles, &transaction_id));
        if let (Some(head), Some(event)) = (recorded, &event) {
            self.inner.journal.record_input(
                input.tenant_id,
                Recording {
                    user_id: Some(input.user.user_id.clone()),
                    client_id: input.client.client_id.clone(),
                    protocol: log_as.label(),
                    created_at: input.now,
                    input: format!(r#"{head},"event":{}}}"#, event.fixed_json()),
                },
            );
        }
        let resume_state = crate::crypto::random_token(24);
        let interactive = input.protocol == Protocol::Login;
        let (issuer, subject, ip) = (
            input.issuer.to_string(),
            input.user.user_id.clone(),
            input.request.ip.clone(),
        );
        let now = input.now;
        let run = self
            .execute(input.tenant_id, &set, items, state, move |set, cx_items| {
                RunParts {
                    trigger,
                    log_as,
                    now,
                    configuration: set.configuration.clone(),
                    event,
                    issuer,
                    subject,
                    ip,
                    resume_state,
                    continue_state: resume.map(|r| r.state.clone()),
                    transaction_id,
                    can_redirect: interactive,
                    resume_at: action_resume.map(|r| r.action_id.clone()),
                    redirects: resume.map_or(0, |r| r.redirects),
                    items: cx_items,
                    image: None,
                }
            })
            .await?;
        let TriggerRun { outcome, state, .. } = run;
        match outcome {
            TriggerOutcome::Allow { .. } => {
                self.save_metadata(&input, &original_metadata, &state.user)
                    .await?;
                Ok(outcome)
            }
            TriggerOutcome::Redirect { url, mut resume } => {
                resume.original_metadata = original_metadata;
                Ok(TriggerOutcome::Redirect { url, resume })
            }
            other => Ok(other),
        }
    }

    /// Saves what a run changed of the user's metadata: only the keys it changed, merged under
    /// the row lock, so a concurrent login or Management API change to other keys is kept.
    async fn save_metadata(
        &self,
        input: &LoginInput<'_>,
        original: &[Value; 2],
        user: &Value,
    ) -> anyhow::Result<()> {
        let app_patch = first_level_diff(&original[0], &user["app_metadata"]);
        let user_patch = first_level_diff(&original[1], &user["user_metadata"]);
        if app_patch.is_none() && user_patch.is_none() {
            return Ok(());
        }
        let changes = crate::store::UserChanges {
            app_metadata_patch: app_patch,
            user_metadata_patch: user_patch,
            ..Default::default()
        };
        self.inner
            .store
            .update_user(input.tenant_id, &input.user.user_id, &changes, input.now)
            .await?;
        Ok(())
    }

    /// Runs the actions bound to credentials-exchange for a client credentials grant.
    pub async fn credentials_exchange(
        &self,
        input: ClientCredentialsInput<'_>,
    ) -> anyhow::Result<TriggerOutcome> {
        let set = self
            .rule_set(input.tenant_id, input.rules_generation)
            .await?;
        let trigger = TriggerId::CredentialsExchange;
        if set.actions_of(trigger).is_empty() {
            return Ok(TriggerOutcome::Allow {
                claims: trigger::no_claims(),
                scope: input.scope.clone(),
                added_scopes: Vec::new(),
            });
        }
        let log_as = Trigger::ClientCredentials;
        let items = match self
            .prepare(input.tenant_id, &set, false, trigger, log_as, input.now)
            .await
        {
            Ok(items) => items,
            Err(record) => return Ok(self.failed_before_running(input.tenant_id, record)),
        };
        let transaction_id = uuid::Uuid::new_v4().to_string();
        let event = input::credentials_exchange_event(&input, &transaction_id);
        let context = serde_json::json!({
            "idToken": {},
            "accessToken": {"scope": input.scope.iter().collect::<Vec<_>>()},
        });
        if set.recording_keep > 0 {
            self.inner.journal.record_input(
                input.tenant_id,
                Recording {
                    user_id: None,
                    client_id: input.client.client_id.clone(),
                    protocol: log_as.label(),
                    created_at: input.now,
                    input: format!(r#"{{"context":{context},"event":{}}}"#, event.fixed_json()),
                },
            );
        }
        let state = trigger::initial_state(serde_json::json!({}), context);
        let client_id = input.client.client_id.clone();
        let run = self
            .execute(input.tenant_id, &set, items, state, move |set, cx_items| {
                RunParts {
                    trigger,
                    log_as,
                    now: input.now,
                    configuration: set.configuration.clone(),
                    event: Some(event),
                    issuer: String::new(),
                    subject: format!("{client_id}@clients"),
                    ip: input.request.ip.clone(),
                    resume_state: String::new(),
                    continue_state: None,
                    transaction_id,
                    can_redirect: false,
                    resume_at: None,
                    redirects: 0,
                    items: cx_items,
                    image: None,
                }
            })
            .await?;
        Ok(run.outcome)
    }

    /// Runs `items` and records what ran: on this thread when the run qualifies (see
    /// [`executor`]), bounded to `Limits::inline_budget`; else, or when it ran longer than that, on
    /// an executor thread in the tenant's turn.
    async fn execute(
        &self,
        tenant_id: &str,
        set: &Arc<RuleSet>,
        items: Vec<ruleset::PreparedItem>,
        state: RunState,
        parts: impl FnOnce(&RuleSet, Vec<ruleset::PreparedItem>) -> RunParts,
    ) -> anyhow::Result<TriggerRun> {
        let mut parts = parts(set, items);
        parts.image = self.image_for(tenant_id, &parts.items);
        let (trigger, now_ms) = (parts.trigger, parts.now * 1000);
        // Only a run that is kept changes the node's `api.cache`.
        let keep = |run: &mut TriggerRun| {
            self.record(tenant_id, std::mem::take(&mut run.records));
            let changes = std::mem::take(&mut run.state.cache_changes);
            self.inner.cache.apply(tenant_id, trigger, changes, now_ms);
        };
        if let Some(mut run) = self.execute_inline(tenant_id, set, &parts, &state) {
            self.inner.metrics.run_place("request_thread");
            keep(&mut run);
            return Ok(run);
        }
        let first = parts
            .items
            .first()
            .map(|i| (i.id.clone(), i.name.clone(), i.kind));
        let (log_as, now) = (parts.log_as, parts.now);
        let engine = self.inner.engine.clone();
        let net = set.net.clone();
        let cache = self.inner.cache.clone();
        let tenant = tenant_id.to_string();
        let ran = self
            .inner
            .executor
            .run(tenant_id, move || {
                trigger::run(
                    &engine,
                    &parts.items,
                    state,
                    &parts.context(&tenant, &net, &cache, None),
                )
            })
            .await;
        match ran {
            Ok(mut run) => {
                self.inner.metrics.run_place("executor");
                keep(&mut run);
                Ok(run)
            }
            Err(NotRun::Busy) => {
                let (id, name, kind) = first.unwrap_or_default();
                let mut record = ExecutionRecord::start(&id, &name, log_as, now);
                record.kind = kind;
                record.fail(
                    FailureKind::Unavailable,
                    "too many logins of this tenant were waiting for their rules and actions; this one was refused",
                );
                let outcome = self.failed_before_running(tenant_id, record);
                Ok(TriggerRun {
                    outcome,
                    records: Vec::new(),
                    state: trigger::initial_state(Value::Null, Value::Null),
                    overran: false,
                })
            }
            Err(e @ NotRun::Closed) => Err(e.into()),
        }
    }

    /// The image of a run's scripts loaded ([`js::image`]) if this node has it; if not, it is
    /// made on the executor in the tenant's turn, and this run loads them itself.
    fn image_for(
        &self,
        tenant_id: &str,
        items: &[ruleset::PreparedItem],
    ) -> Option<Arc<js::LoadedImage>> {
        // A developer's switch, to measure what the image saves (not a setting).
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if *OFF.get_or_init(|| std::env::var_os("WARDSTONE_NO_JS_IMAGE").is_some()) {
            return None;
        }
        let engine = &self.inner.engine;
        match engine.js_image_lookup(js::ImageScripts::of(items.iter().map(|i| &i.compiled))) {
            js::ImageLookup::Found(image) => image,
            js::ImageLookup::Wanted(scripts) => {
                let rules = self.clone();
                let tenant = tenant_id.to_string();
                tokio::spawn(async move {
                    let scripts = Arc::new(scripts);
                    let (engine, wanted) = (rules.inner.engine.clone(), scripts.clone());
                    let made = rules
                        .inner
                        .executor
                        .run(&tenant, move || drop(engine.js_image(&wanted)))
                        .await;
                    if made.is_err() {
                        rules.inner.engine.js_image_abandoned(&scripts);
                    }
                });
                None
            }
        }
    }

    /// The run on this thread, if it qualifies and finishes within `Limits::inline_budget`.
    /// Runs with code known to use outbound HTTP never qualify, and any other that asks for the
    /// network ends its attempt (`NetPolicy::offline_attempt`): requests wait on it. Nor do a
    /// rule set's runs for a while after one of its runs overran or was slow here. An overrun
    /// is thrown away whole — its outcome, records, metadata and `api.cache` changes — and
    /// counts as nothing but wasted time.
    fn execute_inline(
        &self,
        tenant_id: &str,
        set: &RuleSet,
        parts: &RunParts,
        state: &RunState,
    ) -> Option<TriggerRun> {
        if parts.items.iter().any(|i| i.compiled.uses_http) || set.inline_backoff.skip() {
            return None;
        }
        let _slot = self.inner.executor.inline()?;
        let started = std::time::Instant::now();
        let cpu_before = crate::cpu::thread_cpu_time();
        let cx = parts.context(
            tenant_id,
            &set.net,
            &self.inner.cache,
            Some(started + self.inner.engine.limits().inline_budget),
        );
        let run = trigger::run(&self.inner.engine, &parts.items, state.clone(), &cx);
        // Its next runs go to the executor too when this one held the worker for long (CPU
        // time: a worker preempted on a busy machine is no fault of the tenant's) or ended well
        // before its bound, which only asking for the network does. A thread's CPU time is a
        // system call (no vDSO), and it cannot exceed the wall time: read again only when the
        // wall time says it could be over.
        let wall = started.elapsed();
        let slow = wall > INLINE_SLOW
            && crate::cpu::thread_cpu_time().saturating_sub(cpu_before) > INLINE_SLOW;
        let budget = self.inner.engine.limits().inline_budget;
        if slow || (run.overran && wall < budget / 2) {
            set.inline_backoff.back_off();
        }
        if run.overran {
            self.inner.metrics.run_place("executor_after_overrun");
            return None;
        }
        Some(run)
    }

    fn failed_before_running(&self, tenant_id: &str, record: ExecutionRecord) -> TriggerOutcome {
        let execution_id = record.id.clone();
        self.record(tenant_id, vec![record]);
        TriggerOutcome::Fail { execution_id }
    }
}

/// A run on a request's own thread that used more CPU than this (and finished) also sends its
/// rule set's next runs to the executor ([`ruleset::InlineBackoff`]).
const INLINE_SLOW: std::time::Duration = std::time::Duration::from_millis(1);

/// What a run owns (on the executor it outlives the request's borrows).
struct RunParts {
    trigger: TriggerId,
    log_as: Trigger,
    now: i64,
    configuration: Arc<str>,
    event: Option<input::EventFrame>,
    issuer: String,
    subject: String,
    ip: String,
    resume_state: String,
    continue_state: Option<String>,
    transaction_id: String,
    can_redirect: bool,
    resume_at: Option<String>,
    /// Redirects this login has been through already (rules' redirects are bounded).
    redirects: u32,
    items: Vec<ruleset::PreparedItem>,
    /// The items' scripts already loaded, when this node has their image.
    image: Option<Arc<js::LoadedImage>>,
}

impl RunParts {
    fn context<'a>(
        &'a self,
        tenant_id: &'a str,
        net: &'a outbound::NetPolicy,
        cache: &'a ActionCache,
        inline_until: Option<std::time::Instant>,
    ) -> RunContext<'a> {
        RunContext {
            tenant_id,
            trigger: self.trigger,
            log_as: self.log_as,
            now: self.now,
            net,
            configuration: &self.configuration,
            event: self.event.as_ref(),
            issuer: &self.issuer,
            subject: &self.subject,
            ip: &self.ip,
            resume_state: &self.resume_state,
            continue_state: self.continue_state.as_deref(),
            transaction_id: &self.transaction_id,
            can_redirect: self.can_redirect,
            resume_at: self.resume_at.as_deref(),
            redirects: self.redirects,
            cache,
            inline_until,
            image: self.image.clone(),
        }
    }
}
