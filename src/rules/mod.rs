//! Tenant rules in the token pipeline: the wasm host ([`engine`]), ABI v1 checks, the pipeline
//! ([`pipeline`]), limits ([`limits`]), and [`Rules`], which builds the input from a login,
//! runs the pipeline off the async workers and records every execution.
//!
//! The rule's input and output types are the `rules_sdk` wire types, shared with rule authors.

pub mod engine;
pub mod limits;
pub mod pipeline;

pub use engine::{CompiledRule, Execution, Failure, LogLine, Rejected, RuleEngine};
pub use limits::Limits;
pub use pipeline::{PreparedRule, Verdict};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rules_sdk::{
    AccessToken, Authentication, AuthenticationMethod, Authorization, Configuration, Context,
    IdToken, Request, Stats, User,
};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::crypto::MasterKey;
use crate::domain::ScopeSet;
use crate::store::{ClientRecord, ExecutionRow, Store, UserRecord};

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
        match self {
            Protocol::Login => "oidc-basic-profile",
            Protocol::Refresh => "oauth2-refresh-token",
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

/// The rules service: engine, database and the bounds on concurrent executions.
#[derive(Clone)]
pub struct Rules {
    engine: Arc<RuleEngine>,
    store: Store,
    master_key: MasterKey,
    slots: Arc<Semaphore>,
    tenant_slots: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
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

fn object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Rules {
    /// The service with an engine built from `limits`.
    pub fn new(store: Store, master_key: MasterKey, limits: Limits) -> anyhow::Result<Self> {
        let slots = Arc::new(Semaphore::new(limits.max_concurrent));
        Ok(Rules {
            engine: Arc::new(RuleEngine::new(limits).context("cannot configure the wasm engine")?),
            store,
            master_key,
            slots,
            tenant_slots: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The engine (uploads validate through it; the offline runner runs through it).
    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.engine
    }

    /// The AAD that binds a sealed configuration value to its tenant and key.
    pub fn config_aad(tenant_id: &str, key: &str) -> String {
        format!("rule-config:{tenant_id}:{key}")
    }

    /// The tenant's configuration, decrypted.
    pub async fn configuration(&self, tenant_id: &str) -> anyhow::Result<Configuration> {
        let mut map = BTreeMap::new();
        for (key, sealed) in self.store.rule_configs(tenant_id).await? {
            let plain = self
                .master_key
                .open(&Self::config_aad(tenant_id, &key), &sealed)
                .with_context(|| format!("cannot decrypt rule setting {key}"))?;
            map.insert(
                key,
                String::from_utf8(plain).context("rule setting is not UTF-8")?,
            );
        }
        Ok(Configuration(map))
    }

    /// Compiled rules for a tenant's enabled rules, compiling on this node if needed.
    async fn prepared(
        &self,
        tenant_id: &str,
    ) -> anyhow::Result<Result<Vec<PreparedRule>, (String, String, String)>> {
        let mut out = Vec::new();
        for rule in self.store.rules(tenant_id, true).await? {
            let compiled = match self.engine.cached(&rule.sha256) {
                Some(c) => c,
                None => {
                    // By rule id, not by the listed hash: if the module was swapped since the
                    // listing, this login runs the new one (never a mix, never a failure).
                    let Some(bytes) = self.store.rule_module_of(tenant_id, &rule.id).await? else {
                        continue; // deleted since the listing
                    };
                    match self.engine.prepare(&bytes).await {
                        Ok(c) => c,
                        Err(rejected) => return Ok(Err((rule.id, rule.name, rejected.0))),
                    }
                }
            };
            out.push(PreparedRule {
                id: rule.id,
                name: rule.name,
                compiled,
            });
        }
        Ok(Ok(out))
    }

    /// Runs one compiled rule on `input` under the same bounds as a login (global and
    /// per-tenant slots, the blocking pool): the rule test endpoint uses it.
    pub async fn execute_one(
        &self,
        tenant_id: &str,
        compiled: Arc<CompiledRule>,
        input: Vec<u8>,
    ) -> anyhow::Result<Execution> {
        let tenant_slot = self.tenant_slot(tenant_id).acquire_owned().await?;
        let slot = self.slots.clone().acquire_owned().await?;
        let engine = self.engine.clone();
        let timeout = engine.limits().rule_timeout;
        Ok(tokio::task::spawn_blocking(move || {
            let _held = (tenant_slot, slot);
            engine.execute(&compiled, &input, timeout)
        })
        .await?)
    }

    fn tenant_slot(&self, tenant_id: &str) -> Arc<Semaphore> {
        let mut map = self.tenant_slots.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(tenant_id.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.engine.limits().max_concurrent_per_tenant,
                ))
            })
            .clone()
    }

    /// Builds the rule input objects of a login, as Auth0 would.
    pub fn input_objects(input: &RunInput<'_>) -> (User, Context) {
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
            app_metadata: object(&u.app_metadata),
            user_metadata: object(&u.user_metadata),
        };
        let context = Context {
            tenant: input.tenant_name.to_string(),
            client_id: input.client.client_id.clone(),
            client_name: input.client.name.clone(),
            client_metadata: object(&input.client.metadata),
            connection: "Username-Password-Authentication".into(),
            connection_strategy: "auth0".into(),
            protocol: input.protocol.as_str().into(),
            request: Request {
                ip: input.request.ip.clone(),
                hostname: input.request.hostname.clone(),
                user_agent: input.request.user_agent.clone(),
                query: input.request.query.clone(),
            },
            stats: Stats {
                logins_count: u.logins_count,
            },
            session_id: input.session_id.unwrap_or_default().to_string(),
            authentication: Authentication {
                methods: vec![AuthenticationMethod {
                    name: "pwd".into(),
                    timestamp: input.auth_time * 1000,
                }],
            },
            authorization: Authorization { roles: vec![] },
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
        let rules = match self.prepared(input.tenant_id).await? {
            Ok(rules) if rules.is_empty() => return Ok(no_rules),
            Ok(rules) => rules,
            Err((rule_id, rule_name, why)) => {
                // Time-ordered ids keep executions of one second in the order they ran.
                let execution_id = uuid::Uuid::now_v7().to_string();
                let row = ExecutionRow {
                    id: execution_id.clone(),
                    rule_id,
                    rule_name,
                    protocol: input.protocol.as_str().into(),
                    outcome: "failed:abi".into(),
                    duration_us: 0,
                    fuel: 0,
                    logs: serde_json::to_string(&[LogLine {
                        level: "error".into(),
                        message: why,
                    }])?,
                    created_at: input.now,
                };
                self.store
                    .insert_executions(input.tenant_id, &[row])
                    .await?;
                return Ok(RulesOutcome::Fail { execution_id });
            }
        };
        let configuration = serde_json::to_string(&self.configuration(input.tenant_id).await?)?;
        let (user, context) = Self::input_objects(&input);
        let (user, context) = (serde_json::to_value(user)?, serde_json::to_value(context)?);
        let original_metadata = (user["app_metadata"].clone(), user["user_metadata"].clone());

        // Executions block a thread for up to their deadline: run them on the blocking pool,
        // bounded overall and per tenant so one tenant's slow rules leave room for others.
        let tenant_slot = self.tenant_slot(input.tenant_id).acquire_owned().await?;
        let slot = self.slots.clone().acquire_owned().await?;
        let engine = self.engine.clone();
        let run = tokio::task::spawn_blocking(move || {
            let _held = (tenant_slot, slot);
            pipeline::run_pipeline(&engine, &rules, user, context, &configuration)
        })
        .await?;

        let rows: Vec<ExecutionRow> = run
            .records
            .iter()
            .map(|r| ExecutionRow {
                id: r.id.clone(),
                rule_id: r.rule_id.clone(),
                rule_name: r.rule_name.clone(),
                protocol: input.protocol.as_str().into(),
                outcome: r.outcome.clone(),
                duration_us: r.duration_us,
                fuel: r.fuel,
                logs: serde_json::to_string(&r.logs).unwrap_or_else(|_| "[]".into()),
                created_at: input.now,
            })
            .collect();
        self.store.insert_executions(input.tenant_id, &rows).await?;

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
                    self.store
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
}
