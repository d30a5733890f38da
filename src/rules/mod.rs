//! Tenant rules in the token pipeline: the wasm host ([`engine`]), compiled modules and their
//! artifacts ([`modules`]), the pipeline ([`pipeline`]), the threads it runs on
//! ([`executor`]), the execution log ([`execution`], [`journal`]) and limits ([`limits`]).
//! [`Rules`] ties them together for logins, refreshes and the rule test endpoint.
//!
//! The rule's input and output types are the `rules_sdk` wire types, shared with rule authors.

pub mod engine;
pub mod execution;
pub mod executor;
pub mod journal;
pub mod js;
pub mod limits;
pub mod modules;
pub mod outbound;
pub mod pipeline;

pub use engine::{CompiledRule, Execution, Failure, Rejected, RuleEngine, Upload};
pub use execution::{ExecutionRecord, FailureKind, LogLine, Outcome, Trigger};
pub use limits::Limits;
pub use pipeline::{PreparedRule, TenantEnv, Verdict};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rules_sdk::{
    AccessToken, Authentication, AuthenticationMethod, Authorization, Configuration, Context,
    IdToken, Request, Stats, User,
};
use serde_json::{Map, Value, json};

use crate::crypto::MasterKey;
use crate::domain::{OnFailure, ScopeSet};
use crate::metrics::RuleMetrics;
use crate::store::{ClientRecord, RuleRecord, Store, UserRecord};
use executor::{Executor, NotRun};
use journal::Journal;
use modules::{LoadError, Modules, Prepared};

/// Which flow runs the rules (`context.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Authorization code grant, after login and consent.
    Login,
    /// Refresh token grant.
    Refresh,
}

impl Protocol {
    /// The `context.protocol` value.
    pub fn as_str(self) -> &'static str {
        self.trigger().label()
    }

    /// How the execution log names it.
    pub fn trigger(self) -> Trigger {
        match self {
            Protocol::Login => Trigger::Login,
            Protocol::Refresh => Trigger::Refresh,
        }
    }
}

/// The HTTP request that triggered the rules.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// Client address.
    pub ip: String,
    /// Host header.
    pub hostname: String,
    /// User agent.
    pub user_agent: String,
    /// Query parameters of the authorization request.
    pub query: BTreeMap<String, String>,
}

/// Everything a pipeline run needs to know about the login.
pub struct RunInput<'a> {
    /// Tenant id.
    pub tenant_id: &'a str,
    /// Tenant name.
    pub tenant_name: &'a str,
    /// The tenant's rules generation, as read with the tenant for this request.
    pub rules_generation: i64,
    /// Login or refresh.
    pub protocol: Protocol,
    /// The user.
    pub user: &'a UserRecord,
    /// The client.
    pub client: &'a ClientRecord,
    /// The request.
    pub request: RequestInfo,
    /// Public session id.
    pub session_id: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Granted scopes.
    pub scope: &'a ScopeSet,
    /// API identifier.
    pub audience: Option<&'a str>,
    /// Now.
    pub now: i64,
}

/// What the rules decided.
#[derive(Debug, Clone, PartialEq)]
pub enum RulesOutcome {
    /// Go on: these claims (`{"id_token":{}, "access_token":{}}`) and this (possibly narrowed)
    /// scope go into the tokens.
    Allow {
        /// Extra claims per token.
        claims: Value,
        /// Granted scope after the rules.
        scope: ScopeSet,
    },
    /// A rule denied access with this message.
    Deny {
        /// The rule's message.
        message: String,
    },
    /// A rule failed; the tenant finds the details under this execution id.
    Fail {
        /// Execution id.
        execution_id: String,
    },
}

/// The rules service: engine, compiled modules, executor threads, execution log and the
/// per-tenant rule sets. Cheap to clone.
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
    rule_sets: Mutex<lru::LruCache<String, Arc<RuleSet>>>,
    warm: std::sync::atomic::AtomicBool,
}

/// A tenant's enabled rules and decrypted settings, valid while the tenant's
/// `rules_generation` is `generation`.
struct RuleSet {
    generation: i64,
    rules: Vec<RuleRecord>,
    /// What its rules may reach through `wardstone.http_fetch`.
    net: outbound::NetPolicy,
    /// The settings as the JSON object rules receive.
    configuration: Arc<str>,
}

/// Tenants whose rule sets one node keeps in memory (each is small: ids, names, hashes and
/// settings; the compiled modules live in [`Modules`] under their own bound).
const RULE_SETS: usize = 100_000;

/// What one test execution did (the Management API's rule test endpoint).
#[derive(Debug)]
pub struct TestRun {
    /// The execution, as recorded in the log.
    pub record: ExecutionRecord,
    /// The patch the rule returned (when ok).
    pub patch: Option<Value>,
    /// The denial, or what failed.
    pub error: Option<Value>,
}

/// Why a test could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The module cannot be loaded or compiled.
    #[error("{0}")]
    Module(String),
    /// Too many executions of this tenant are waiting.
    #[error("too many rule executions are waiting; try again")]
    Busy,
    /// Our failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The first-level merge patch turning `before` into `after` (`null` for removed keys), or
/// `None` when nothing changed.
fn first_level_diff(before: &Value, after: &Value) -> Option<Map<String, Value>> {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return None;
    };
    let mut patch = Map::new();
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

fn rfc3339(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// How a single execution ended: its outcome, and the patch or the denial/failure as JSON.
pub fn summarize(execution: &Execution) -> (Outcome, Option<Value>, Option<Value>) {
    match &execution.result {
        Ok(out) => match pipeline::deny_of(out) {
            Some(Ok(message)) => (
                Outcome::Denied,
                None,
                Some(json!({"kind": "unauthorized", "message": message})),
            ),
            Some(Err(why)) => {
                let failure = Failure::BadOutput(why);
                (
                    Outcome::Failed(failure.kind()),
                    None,
                    Some(json!({"message": failure.detail()})),
                )
            }
            None => match out
                .get("context")
                .and_then(Value::as_object)
                .and_then(pipeline::unsupported_request)
            {
                Some(why) => (
                    Outcome::Failed(FailureKind::Unsupported),
                    None,
                    Some(json!({"message": why})),
                ),
                None => (Outcome::Ok, Some(Value::Object(out.clone())), None),
            },
        },
        Err(f) => (
            Outcome::Failed(f.kind()),
            None,
            Some(json!({"message": f.detail()})),
        ),
    }
}

impl Rules {
    /// The service with an engine built from `limits`. Starts the execution log's writer on
    /// the current tokio runtime and the executor's threads.
    pub fn new(store: Store, master_key: MasterKey, limits: Limits) -> anyhow::Result<Self> {
        let engine =
            Arc::new(RuleEngine::new(limits.clone()).context("cannot configure the wasm engine")?);
        let executor = Executor::new(limits.max_concurrent, limits.stack_bytes)
            .context("cannot start the rule executor threads")?;
        let modules = Modules::new(engine.clone(), store.clone(), &master_key);
        let metrics = RuleMetrics::new(modules.stats.hits.clone(), modules.stats.misses.clone());
        Ok(Rules {
            inner: Arc::new(Inner {
                modules,
                metrics,
                journal: Journal::start(store.clone(), limits.journal_queue),
                rule_sets: Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(RULE_SETS).expect("non-zero"),
                )),
                warm: std::sync::atomic::AtomicBool::new(limits.warm_up.is_zero()),
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

    /// Counts executions and queues them for the execution log.
    fn record(&self, tenant_id: &str, records: Vec<ExecutionRecord>) {
        for r in &records {
            self.inner
                .metrics
                .execution(r.outcome.label(), r.duration_us, r.fuel);
            if r.skipped {
                self.inner.metrics.skipped();
            }
        }
        self.inner.journal.record(tenant_id, records);
    }

    /// The AAD that binds a sealed configuration value to its tenant and key.
    pub fn config_aad(tenant_id: &str, key: &str) -> String {
        format!("rule-config:{tenant_id}:{key}")
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

    /// The tenant's enabled rules and settings at `generation`: from memory when this node
    /// has that generation, otherwise read (two indexed queries) and kept.
    async fn rule_set(&self, tenant_id: &str, generation: i64) -> anyhow::Result<Arc<RuleSet>> {
        if let Some(set) = self
            .inner
            .rule_sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .filter(|s| s.generation == generation)
        {
            return Ok(set.clone());
        }
        let rows = self
            .inner
            .store
            .rule_set(tenant_id)
            .await
            .context("cannot read the tenant's rules")?;
        let mut configuration = BTreeMap::new();
        for (key, sealed) in rows.configs {
            let plain = self
                .inner
                .master_key
                .open(&Self::config_aad(tenant_id, &key), &sealed)
                .with_context(|| format!("cannot decrypt rule setting {key}"))?;
            configuration.insert(
                key,
                String::from_utf8(plain).context("rule setting is not UTF-8")?,
            );
        }
        let set = Arc::new(RuleSet {
            generation: rows.generation,
            rules: rows.rules,
            net: outbound::NetPolicy {
                allowed: rows.allowed_hosts.into(),
                body_bytes: self.inner.engine.limits().http_body_bytes,
            },
            configuration: serde_json::to_string(&Configuration(configuration))?.into(),
        });
        self.inner
            .rule_sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(tenant_id.to_string(), set.clone());
        Ok(set)
    }

    /// The tenant's settings as rules receive them (a JSON object).
    pub async fn configuration(&self, tenant_id: &str, generation: i64) -> anyhow::Result<Value> {
        let set = self.rule_set(tenant_id, generation).await?;
        Ok(serde_json::from_str(&set.configuration)?)
    }

    /// The compiled module of a rule, or the failure record that stands for it.
    async fn module_of(
        &self,
        tenant_id: &str,
        rule: &RuleRecord,
        trigger: Trigger,
        now: i64,
    ) -> Result<Option<Arc<CompiledRule>>, ExecutionRecord> {
        match self
            .inner
            .modules
            .get(tenant_id, &rule.id, &rule.sha256)
            .await
        {
            Ok(compiled) => Ok(Some(compiled)),
            Err(LoadError::Gone) => Ok(None),
            Err(e) => {
                let mut record = ExecutionRecord::start(&rule.id, &rule.name, trigger, now);
                let kind = match e {
                    LoadError::Rejected(_) => FailureKind::Abi,
                    _ => FailureKind::Unavailable,
                };
                tracing::warn!(rule_id = %rule.id, error = %e, "rule module could not be loaded");
                record.fail(kind, format!("the rule's module could not be loaded: {e}"));
                Err(record)
            }
        }
    }

    /// Runs one rule on an ABI v1 input for the test endpoint, under the same limits and
    /// executor as logins, and records it in the log as a `test` execution.
    pub async fn test(
        &self,
        tenant_id: &str,
        generation: i64,
        rule: &RuleRecord,
        input: Vec<u8>,
        now: i64,
    ) -> Result<TestRun, TestError> {
        let compiled = match self.module_of(tenant_id, rule, Trigger::Test, now).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(TestError::Module("the rule no longer exists".into())),
            Err(record) => {
                let why = record
                    .logs
                    .last()
                    .map(|l| l.message.clone())
                    .unwrap_or_default();
                self.record(tenant_id, vec![record]);
                return Err(TestError::Module(why));
            }
        };
        let net = self
            .rule_set(tenant_id, generation)
            .await
            .map_err(TestError::Internal)?
            .net
            .clone();
        let engine = self.inner.engine.clone();
        let limits = engine.limits();
        let timeout = if compiled.uses_http {
            limits.http_rule_timeout.min(limits.pipeline_timeout)
        } else {
            limits.rule_timeout
        };
        let execution = match self
            .inner
            .executor
            .run(tenant_id, move || {
                engine.execute_with(&compiled, &input, timeout, &net)
            })
            .await
        {
            Ok(e) => e,
            Err(NotRun::Busy) => return Err(TestError::Busy),
            Err(e @ NotRun::Closed) => return Err(TestError::Internal(e.into())),
        };
        let (outcome, patch, error) = summarize(&execution);
        let mut record = ExecutionRecord::start(&rule.id, &rule.name, Trigger::Test, now);
        record.rule_version = rule.version;
        record.outcome = outcome;
        record.duration_us = i64::try_from(execution.duration.as_micros()).unwrap_or(i64::MAX);
        record.fuel = i64::try_from(execution.fuel_used).unwrap_or(i64::MAX);
        record.logs = execution.logs;
        if let Some(message) = error.as_ref().filter(|_| outcome.is_failure()) {
            record.logs.push(LogLine::error(
                message["message"].as_str().unwrap_or_default(),
            ));
        }
        self.record(tenant_id, vec![record.clone()]);
        Ok(TestRun {
            record,
            patch,
            error,
        })
    }

    /// Builds the rule input objects of a login, as Auth0 would; `roles` are the names of the
    /// user's roles.
    pub fn input_objects(input: &RunInput<'_>, roles: Vec<String>) -> (User, Context) {
        let u = input.user;
        let user = User {
            user_id: u.user_id.clone(),
            email: Some(u.email.clone()),
            email_verified: u.email_verified == 1,
            name: u.name.clone(),
            given_name: u.given_name.clone(),
            family_name: u.family_name.clone(),
            nickname: u.nickname.clone(),
            picture: u.picture.clone(),
            username: u.username.clone(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            last_login: u.last_login.and_then(rfc3339),
            logins_count: u.logins_count,
            app_metadata: u.app_metadata.0.clone().into(),
            user_metadata: u.user_metadata.0.clone().into(),
        };
        let context = Context {
            tenant: input.tenant_name.to_string(),
            client_id: input.client.client_id.clone(),
            client_name: input.client.name.clone(),
            client_metadata: input.client.metadata.0.clone().into(),
            connection: "Username-Password-Authentication".into(),
            connection_strategy: "auth0".into(),
            protocol: input.protocol.as_str().into(),
            request: Request {
                ip: input.request.ip.clone(),
                hostname: input.request.hostname.clone(),
                user_agent: input.request.user_agent.clone(),
                query: input.request.query.clone(),
            }
            .into(),
            stats: Stats {
                logins_count: u.logins_count,
            },
            session_id: input.session_id.unwrap_or_default().to_string(),
            authentication: Authentication {
                methods: vec![AuthenticationMethod {
                    name: "pwd".into(),
                    timestamp: input.auth_time * 1000,
                }],
            }
            .into(),
            authorization: Authorization { roles },
            id_token: IdToken::default(),
            access_token: AccessToken {
                scope: input.scope.iter().map(String::from).collect(),
                claims: Map::new(),
            },
            audience: input.audience.map(String::from),
        };
        (user, context)
    }

    /// Runs the tenant's enabled rules for a login or refresh. Persists metadata changes only
    /// when every rule passed, and records every execution.
    pub async fn run(&self, input: RunInput<'_>) -> anyhow::Result<RulesOutcome> {
        let no_rules = RulesOutcome::Allow {
            claims: json!({"id_token": {}, "access_token": {}}),
            scope: input.scope.clone(),
        };
        let set = self
            .rule_set(input.tenant_id, input.rules_generation)
            .await?;
        if set.rules.is_empty() {
            return Ok(no_rules);
        }
        let trigger = input.protocol.trigger();
        // Modules this node does not hold yet (after a restart, say) load side by side.
        let modules = futures_util::future::join_all(
            set.rules
                .iter()
                .map(|rule| self.module_of(input.tenant_id, rule, trigger, input.now)),
        )
        .await;
        let mut rules = Vec::with_capacity(set.rules.len());
        let mut unloadable = Vec::new();
        for (rule, module) in set.rules.iter().zip(modules) {
            match module {
                Ok(Some(compiled)) => rules.push(PreparedRule {
                    id: rule.id.clone(),
                    name: rule.name.clone(),
                    version: rule.version,
                    on_failure: rule.on_failure,
                    compiled,
                }),
                Ok(None) => {} // deleted since the list was read
                Err(mut record) if rule.on_failure == OnFailure::Skip => {
                    record.rule_version = rule.version;
                    record.skipped = true;
                    unloadable.push(record);
                }
                Err(mut record) => {
                    record.rule_version = rule.version;
                    return Ok(self.failed_before_running(input.tenant_id, record));
                }
            }
        }
        if !unloadable.is_empty() {
            self.record(input.tenant_id, unloadable);
        }
        // Read only when some rule will see them: a tenant without rules pays nothing.
        let roles = self
            .inner
            .store
            .user_role_names(input.tenant_id, &input.user.user_id)
            .await?;
        let (user, context) = Self::input_objects(&input, roles);
        let (user, context) = (serde_json::to_value(user)?, serde_json::to_value(context)?);
        let original_metadata = (user["app_metadata"].clone(), user["user_metadata"].clone());

        let engine = self.inner.engine.clone();
        let configuration = set.configuration.clone();
        let net = set.net.clone();
        let now = input.now;
        let run = match self
            .inner
            .executor
            .run(input.tenant_id, move || {
                pipeline::run_pipeline(
                    &engine,
                    &rules,
                    user,
                    context,
                    pipeline::TenantEnv {
                        configuration_json: &configuration,
                        net: &net,
                    },
                    trigger,
                    now,
                )
            })
            .await
        {
            Ok(run) => run,
            Err(NotRun::Busy) => {
                let first = &set.rules[0];
                let mut record = ExecutionRecord::start(&first.id, &first.name, trigger, now);
                record.fail(
                    FailureKind::Unavailable,
                    "too many logins of this tenant were waiting for their rules; this one was refused",
                );
                return Ok(self.failed_before_running(input.tenant_id, record));
            }
            Err(e @ NotRun::Closed) => return Err(e.into()),
        };
        self.record(input.tenant_id, run.records);

        match run.verdict {
            Verdict::Deny { message, .. } => Ok(RulesOutcome::Deny { message }),
            Verdict::Fail { execution_id } => Ok(RulesOutcome::Fail { execution_id }),
            Verdict::Allow { user, context } => {
                let app_patch = first_level_diff(&original_metadata.0, &user["app_metadata"]);
                let user_patch = first_level_diff(&original_metadata.1, &user["user_metadata"]);
                if app_patch.is_some() || user_patch.is_some() {
                    // Only what the rules changed is written, merged under the row lock, so a
                    // concurrent login or Management API change to other keys is kept.
                    let changes = crate::store::UserChanges {
                        app_metadata_patch: app_patch,
                        user_metadata_patch: user_patch,
                        ..Default::default()
                    };
                    self.inner
                        .store
                        .update_user(input.tenant_id, &input.user.user_id, &changes, input.now)
                        .await?;
                }
                let mut access = context["accessToken"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let kept: Vec<String> = access
                    .remove("scope")
                    .and_then(|s| serde_json::from_value::<Vec<String>>(s).ok())
                    .unwrap_or_default();
                // Rules may narrow the scope, never widen it.
                let scope = input.scope.filter(|s| kept.iter().any(|k| k == s));
                Ok(RulesOutcome::Allow {
                    claims: json!({"id_token": context["idToken"], "access_token": Value::Object(access)}),
                    scope,
                })
            }
        }
    }

    fn failed_before_running(&self, tenant_id: &str, record: ExecutionRecord) -> RulesOutcome {
        let execution_id = record.id.clone();
        self.record(tenant_id, vec![record]);
        RulesOutcome::Fail { execution_id }
    }
}
