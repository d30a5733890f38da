//! A tenant's rule set: its enabled rules, its bound actions (live versions, secrets opened),
//! its rule settings and its outbound reach, cached per node and valid while the tenant's
//! `rules_generation` is the one it was read at (ARCHITECTURE.md, "Several nodes").

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use rules_sdk::Configuration;
use serde_json::Value;

use super::modules::{LoadError, ModuleSource};
use super::outbound::NetPolicy;
use super::{CompiledRule, Rules};
use crate::domain::TriggerId;
use crate::domain::execution::{CodeKind, ExecutionRecord, FailureKind, Trigger};
use crate::store::RuleRecord;

/// A tenant's enabled rules, bound actions and settings, cached at the tenant's
/// `rules_generation` (a [`crate::cache::GenerationCache`]).
pub(crate) struct RuleSet {
    pub(crate) rules: Vec<RuleRecord>,
    /// Bound, deployed actions per trigger, in execution order.
    pub(crate) actions: BTreeMap<TriggerId, Vec<BoundAction>>,
    /// What its rules and actions may reach through outbound requests.
    pub(crate) net: NetPolicy,
    /// The settings as the JSON object rules receive.
    pub(crate) configuration: Arc<str>,
    /// Runs the tenant records for replay (0: off).
    pub(crate) recording_keep: i64,
    /// Whether its runs may be tried on the request's own thread now.
    pub(crate) inline_backoff: InlineBackoff,
}

/// After a run of a rule set used over a millisecond of CPU on a request's thread, or asked for
/// the network there, its next runs on this node go straight to the executor: a tenant whose
/// pipeline is slow pays (and makes others pay) the attempt once per period, not on every
/// login. Counted in runs, not time, so a tenant that logs users in rarely still gets another
/// try soon.
#[derive(Default)]
pub(crate) struct InlineBackoff(std::sync::atomic::AtomicU32);

impl InlineBackoff {
    /// Runs that skip the request's thread after a slow or network-bound attempt.
    const RUNS: u32 = 100;

    /// Whether this run should skip the request's thread (counting it if so).
    pub(crate) fn skip(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    pub(crate) fn back_off(&self) {
        self.0
            .store(Self::RUNS, std::sync::atomic::Ordering::Release);
    }
}

impl RuleSet {
    /// The actions bound to `trigger`, in order.
    pub(crate) fn actions_of(&self, trigger: TriggerId) -> &[BoundAction] {
        self.actions.get(&trigger).map_or(&[], Vec::as_slice)
    }
}

/// One bound action's live version.
#[derive(Clone)]
pub(crate) struct BoundAction {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) version_id: String,
    pub(crate) version: i64,
    pub(crate) sha256: String,
    /// `event.secrets`, as a JSON object.
    pub(crate) secrets: Arc<str>,
}

/// Something ready to run in a trigger: a rule or an action, with its compiled code.
#[derive(Clone)]
pub(crate) struct PreparedItem {
    pub(crate) kind: CodeKind,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) version: i64,
    pub(crate) on_failure: crate::domain::OnFailure,
    pub(crate) compiled: Arc<CompiledRule>,
    /// An action's `event.secrets` (JSON object); `{}` for rules.
    pub(crate) secrets: Arc<str>,
}

/// Tenants whose rule sets one node keeps in memory (each is small: ids, names, hashes and
/// settings; the compiled modules live in `Modules` under their own bound).
pub(crate) const RULE_SETS: usize = 100_000;

impl Rules {
    /// The AAD that binds a sealed configuration value to its tenant and key.
    pub fn config_aad(tenant_id: &str, key: &str) -> String {
        format!("rule-config:{tenant_id}:{key}")
    }

    /// Opens a stored rule setting (the rule set and the importer's comparison both read them).
    pub fn open_config(
        master_key: &crate::crypto::MasterKey,
        tenant_id: &str,
        key: &str,
        sealed: &[u8],
    ) -> anyhow::Result<String> {
        let plain = master_key
            .open(&Self::config_aad(tenant_id, key), sealed)
            .with_context(|| format!("cannot decrypt rule setting {key}"))?;
        String::from_utf8(plain).context("rule setting is not UTF-8")
    }

    /// The AAD that binds an action's sealed secrets to its tenant and action.
    pub fn secrets_aad(tenant_id: &str, action_id: &str) -> String {
        format!("action-secrets:{tenant_id}:{action_id}")
    }

    /// The tenant's rule set at `generation`: from memory when this node has that generation,
    /// otherwise read (four indexed queries) and kept.
    pub(crate) async fn rule_set(
        &self,
        tenant_id: &str,
        generation: i64,
    ) -> anyhow::Result<Arc<RuleSet>> {
        self.inner
            .rule_sets
            .get_or_load(tenant_id.to_string(), generation, || {
                self.load_rule_set(tenant_id)
            })
            .await
    }

    /// Reads and opens the tenant's rule set (four indexed queries).
    async fn load_rule_set(&self, tenant_id: &str) -> anyhow::Result<RuleSet> {
        let rows = self
            .inner
            .store
            .rule_set(tenant_id)
            .await
            .context("cannot read the tenant's rules")?;
        let mut configuration = BTreeMap::new();
        for (key, sealed) in rows.configs {
            let value = Self::open_config(&self.inner.master_key, tenant_id, &key, &sealed)?;
            configuration.insert(key, value);
        }
        let mut actions: BTreeMap<TriggerId, Vec<BoundAction>> = BTreeMap::new();
        for row in rows.actions {
            let secrets = match &row.secrets {
                None => "{}".to_string(),
                Some(sealed) => {
                    let plain = self
                        .inner
                        .master_key
                        .open(&Self::secrets_aad(tenant_id, &row.action_id), sealed)
                        .with_context(|| {
                            format!("cannot decrypt the secrets of action {}", row.action_name)
                        })?;
                    String::from_utf8(plain).context("action secrets are not UTF-8")?
                }
            };
            actions
                .entry(row.trigger_id)
                .or_default()
                .push(BoundAction {
                    id: row.action_id,
                    name: row.action_name,
                    version_id: row.version_id,
                    version: row.version_number,
                    sha256: row.sha256,
                    secrets: secrets.into(),
                });
        }
        Ok(RuleSet {
            rules: rows.rules,
            actions,
            net: NetPolicy {
                allowed: rows.allowed_hosts.into(),
                body_bytes: self.inner.engine.limits().http_body_bytes,
                replay_at: None,
                offline_attempt: false,
            },
            configuration: serde_json::to_string(&Configuration(configuration))?.into(),
            recording_keep: rows.recording_keep,
            inline_backoff: InlineBackoff::default(),
        })
    }

    /// The tenant's settings as rules receive them (a JSON object).
    pub async fn configuration(&self, tenant_id: &str, generation: i64) -> anyhow::Result<Value> {
        let set = self.rule_set(tenant_id, generation).await?;
        Ok(serde_json::from_str(&set.configuration)?)
    }

    /// The compiled module of a rule or action version, or the failure record that stands
    /// for it; `None` when it was deleted meanwhile.
    pub(crate) async fn module_of(
        &self,
        tenant_id: &str,
        source: ModuleSource<'_>,
        sha256: &str,
        record: impl FnOnce() -> ExecutionRecord,
    ) -> Result<Option<Arc<CompiledRule>>, ExecutionRecord> {
        match self.inner.modules.get(tenant_id, source, sha256).await {
            Ok(compiled) => Ok(Some(compiled)),
            Err(LoadError::Gone) => Ok(None),
            Err(e) => {
                let mut record = record();
                let kind = match e {
                    LoadError::Rejected(_) => FailureKind::Abi,
                    _ => FailureKind::Unavailable,
                };
                tracing::warn!(id = %record.rule_id, error = %e, "a module could not be loaded");
                record.fail(kind, format!("the compiled code could not be loaded: {e}"));
                Err(record)
            }
        }
    }

    /// The rules (for post-login) and the actions of `trigger`, compiled, in order; or the
    /// failure record of one that cannot be loaded and must fail the run (rules with
    /// `on_failure: skip` that cannot load are recorded as skipped and left out).
    pub(crate) async fn prepare(
        &self,
        tenant_id: &str,
        set: &RuleSet,
        with_rules: bool,
        trigger: TriggerId,
        log_as: Trigger,
        now: i64,
    ) -> Result<Vec<PreparedItem>, ExecutionRecord> {
        let rules: &[RuleRecord] = if with_rules { &set.rules } else { &[] };
        let actions = set.actions_of(trigger);
        // Modules this node does not hold yet (after a restart, say) load side by side.
        let rule_modules = futures_util::future::join_all(rules.iter().map(|rule| {
            self.module_of(
                tenant_id,
                ModuleSource::Rule(&rule.id),
                &rule.sha256,
                || {
                    let mut r = ExecutionRecord::start(&rule.id, &rule.name, log_as, now);
                    r.rule_version = rule.version;
                    r
                },
            )
        }));
        let action_modules = futures_util::future::join_all(actions.iter().map(|action| {
            self.module_of(
                tenant_id,
                ModuleSource::ActionVersion(&action.version_id),
                &action.sha256,
                || action_record(action, log_as, now),
            )
        }));
        let (rule_modules, action_modules) =
            futures_util::future::join(rule_modules, action_modules).await;
        let mut items = Vec::with_capacity(rules.len() + actions.len());
        let mut skipped = Vec::new();
        for (rule, module) in rules.iter().zip(rule_modules) {
            match module {
                Ok(Some(compiled)) => items.push(PreparedItem {
                    kind: CodeKind::Rule,
                    id: rule.id.clone(),
                    name: rule.name.clone(),
                    version: rule.version,
                    on_failure: rule.on_failure,
                    compiled,
                    secrets: Arc::from("{}"),
                }),
                Ok(None) => {} // deleted since the list was read
                Err(mut record) if rule.on_failure == crate::domain::OnFailure::Skip => {
                    record.skipped = true;
                    skipped.push(record);
                }
                Err(record) => {
                    self.record(tenant_id, skipped);
                    return Err(record);
                }
            }
        }
        for (action, module) in actions.iter().zip(action_modules) {
            match module {
                Ok(Some(compiled)) => items.push(PreparedItem {
                    kind: CodeKind::Action,
                    id: action.id.clone(),
                    name: action.name.clone(),
                    version: action.version,
                    on_failure: crate::domain::OnFailure::Deny,
                    compiled,
                    secrets: action.secrets.clone(),
                }),
                Ok(None) => {}
                Err(record) => {
                    self.record(tenant_id, skipped);
                    return Err(record);
                }
            }
        }
        self.record(tenant_id, skipped);
        Ok(items)
    }
}

/// A record of an action's execution that is about to run.
pub(crate) fn action_record(action: &BoundAction, log_as: Trigger, now: i64) -> ExecutionRecord {
    let mut r = ExecutionRecord::start(&action.id, &action.name, log_as, now);
    r.kind = CodeKind::Action;
    r.rule_version = action.version;
    r
}
