//! Replaying a candidate rule or action on recorded runs (SPEC §18): the tenant's pipeline
//! runs twice on each recorded input — as it is live, and with the candidate in place — at the
//! recorded time, with no request leaving the sandbox, and the two results are compared.
//! Nothing a replay does is stored: no metadata, no execution log, no usage.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::actions::ActionCache;
use super::engine::RuleEngine;
use super::executor::NotRun;
use super::input::EventFrame;
use super::outbound::NetPolicy;
use super::ruleset::{PreparedItem, RuleSet};
use super::trigger::{self, RunContext, TriggerOutcome};
use super::{CompiledRule, Rules};
use crate::domain::TriggerId;
use crate::domain::execution::{CodeKind, Trigger};
use crate::store::RuleRecord;

/// One recorded run, unsealed.
pub struct RecordedInput {
    /// Unix time of the run: the replay's clock.
    pub created_at: i64,
    /// `oidc-basic-profile` or `oauth2-refresh-token`.
    pub protocol: String,
    pub client_id: String,
    pub user_id: Option<String>,
    /// `{"user", "context", ...}` as recorded.
    pub input: Value,
}

/// How one version's run ended.
#[warn(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VersionResult {
    /// `allowed`, `denied`, `failed` or `redirect`.
    pub outcome: &'static str,
    /// The denial's message, or what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Instructions the replayed rule used (0 when it did not run).
    pub fuel: i64,
    /// Its time, µs.
    pub duration_us: i64,
    #[serde(skip)]
    id_token: Map<String, Value>,
    #[serde(skip)]
    access_token: Map<String, Value>,
    #[serde(skip)]
    app_metadata: Map<String, Value>,
    #[serde(skip)]
    user_metadata: Map<String, Value>,
}

/// One recorded input, replayed.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayedInput {
    /// When it was recorded (Unix time).
    pub recorded_at: i64,
    /// `oidc-basic-profile` or `oauth2-refresh-token`.
    pub protocol: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: Option<String>,
    /// `same`, `changed`, `newly_denied`, `newly_allowed` or `newly_failing`.
    pub category: &'static str,
    /// The live version's run.
    pub live: VersionResult,
    /// The candidate's run.
    pub candidate: VersionResult,
    /// What differs, per part (`id_token`, `access_token`, `app_metadata`, `user_metadata`):
    /// `added` and `removed` keys with their values, `changed` keys with `before` and `after`.
    #[schema(value_type = Object)]
    pub differences: Map<String, Value>,
}

/// Percentiles of one measure.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    /// Median.
    pub p50: i64,
    /// 95th percentile.
    pub p95: i64,
    /// 99th percentile.
    pub p99: i64,
}

/// Fuel and time of one version over the replayed inputs.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionCost {
    /// Instructions the rule used.
    pub fuel: Percentiles,
    /// Its time, µs.
    pub duration_us: Percentiles,
}

/// Each replayed input is counted in exactly one category.
#[warn(missing_docs)]
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ReplaySummary {
    /// Inputs replayed.
    pub inputs: usize,
    /// Same outcome, claims and metadata.
    pub same: usize,
    /// The same kind of outcome, with different claims, metadata or message.
    pub changed: usize,
    /// Allowed live, denied by the candidate.
    pub newly_denied: usize,
    /// Denied or failed live, allowed by the candidate.
    pub newly_allowed: usize,
    /// The candidate fails where the live version did not.
    pub newly_failing: usize,
    /// Recorded runs of another trigger (client credentials for rules and post-login
    /// actions; logins for credentials-exchange actions), left out.
    pub skipped: usize,
    /// Recorded runs that could not be unsealed or read (left out, and logged).
    pub unreadable: usize,
    /// The live version's cost.
    pub live: Option<VersionCost>,
    /// The candidate's cost.
    pub candidate: Option<VersionCost>,
}

/// A replay's answer.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// The counts and costs.
    pub summary: ReplaySummary,
    /// Every replayed input, newest first.
    pub inputs: Vec<ReplayedInput>,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The tenant's live rules cannot be loaded now.
    #[error("the live rules cannot be loaded: {0}")]
    Unavailable(String),
    /// A replay of this tenant is running, or the executor is full.
    #[error("a replay of this tenant is running, or too many executions are waiting; try again")]
    Busy,
    /// Our failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Rules {
    /// Replays `inputs` (newest first) through the tenant's rules as they are live and with
    /// `candidate` as `rule` (in its place, or at its position when it is disabled).
    pub async fn replay_rule(
        &self,
        tenant_id: &str,
        generation: i64,
        rule: &RuleRecord,
        candidate: Arc<CompiledRule>,
        inputs: Vec<RecordedInput>,
    ) -> Result<ReplayReport, ReplayError> {
        let set = self.rule_set(tenant_id, generation).await?;
        let live = self
            .live_items(tenant_id, &set, TriggerId::PostLogin, &inputs)
            .await?;
        // Rules only: actions run after them and are the same on both sides.
        let live: Vec<PreparedItem> = live
            .into_iter()
            .filter(|i| i.kind == CodeKind::Rule)
            .collect();
        let mut with_candidate = live.clone();
        let item = PreparedItem {
            kind: CodeKind::Rule,
            id: rule.id.clone(),
            name: rule.name.clone(),
            version: rule.version + 1,
            on_failure: rule.on_failure,
            compiled: candidate,
            secrets: "{}".into(),
        };
        match with_candidate.iter().position(|i| i.id == rule.id) {
            Some(at) => with_candidate[at] = item,
            None => {
                // A disabled rule: where its order puts it among the enabled ones.
                let at = set
                    .rules
                    .iter()
                    .filter(|r| r.rule_order < rule.rule_order)
                    .filter(|r| live.iter().any(|i| i.id == r.id))
                    .count();
                with_candidate.insert(at.min(with_candidate.len()), item);
            }
        }
        self.compare(
            tenant_id,
            &set,
            TriggerId::PostLogin,
            (live, with_candidate),
            &rule.id,
            inputs,
        )
        .await
    }

    /// Replays `inputs` (newest first) through the tenant's `trigger` as it is live (rules,
    /// then bound actions) and with `candidate` as action `id` (in its binding's place, or
    /// after the bound actions when it is not bound). `secrets` are the action's.
    #[allow(clippy::too_many_arguments)]
    pub async fn replay_action(
        &self,
        tenant_id: &str,
        generation: i64,
        action: (&str, &str, i64),
        trigger: TriggerId,
        candidate: Arc<CompiledRule>,
        secrets: &str,
        inputs: Vec<RecordedInput>,
    ) -> Result<ReplayReport, ReplayError> {
        let (id, name, version) = action;
        let set = self.rule_set(tenant_id, generation).await?;
        let live = self.live_items(tenant_id, &set, trigger, &inputs).await?;
        let mut with_candidate = live.clone();
        let item = PreparedItem {
            kind: CodeKind::Action,
            id: id.to_string(),
            name: name.to_string(),
            version: version + 1,
            on_failure: crate::domain::OnFailure::Deny,
            compiled: candidate,
            secrets: secrets.into(),
        };
        match with_candidate.iter().position(|i| i.id == id) {
            Some(at) => with_candidate[at] = item,
            None => with_candidate.push(item),
        }
        self.compare(tenant_id, &set, trigger, (live, with_candidate), id, inputs)
            .await
    }

    /// The trigger's items as they run live now.
    async fn live_items(
        &self,
        tenant_id: &str,
        set: &RuleSet,
        trigger: TriggerId,
        inputs: &[RecordedInput],
    ) -> Result<Vec<PreparedItem>, ReplayError> {
        let now = inputs.first().map_or(0, |i| i.created_at);
        let with_rules = trigger == TriggerId::PostLogin;
        self.prepare(tenant_id, set, with_rules, trigger, Trigger::Test, now)
            .await
            .map_err(|record| {
                let why = record.logs.last().map(|l| l.message.clone());
                ReplayError::Unavailable(why.unwrap_or_default())
            })
    }

    /// Runs both item lists on every input of `trigger` and compares them; `replayed` is the
    /// id of the rule or action whose cost is measured.
    async fn compare(
        &self,
        tenant_id: &str,
        set: &RuleSet,
        trigger: TriggerId,
        (live, with_candidate): (Vec<PreparedItem>, Vec<PreparedItem>),
        replayed: &str,
        inputs: Vec<RecordedInput>,
    ) -> Result<ReplayReport, ReplayError> {
        let _turn = ReplayTurn::take(self, tenant_id)?;
        let (live, with_candidate) = (Arc::new(live), Arc::new(with_candidate));
        let mut summary = ReplaySummary::default();
        let mut out = Vec::new();
        for recorded in inputs {
            if trigger_of(&recorded.protocol) != Some(trigger) {
                summary.skipped += 1;
                continue;
            }
            let engine = self.inner.engine.clone();
            let (live, with_candidate) = (live.clone(), with_candidate.clone());
            let configuration = set.configuration.clone();
            let replayed = replayed.to_string();
            let input = recorded.input.clone();
            let at = recorded.created_at;
            let client = recorded.client_id.clone();
            // One input at a time, in the tenant's own lane: a replay holds at most one
            // executor thread, within the tenant's share, and takes turns with other tenants.
            let (before, after) = match self
                .inner
                .executor
                .run(tenant_id, move || {
                    let run = |items: &[PreparedItem]| {
                        replay_once(
                            &engine,
                            trigger,
                            items,
                            &input,
                            &configuration,
                            at,
                            &client,
                            &replayed,
                        )
                    };
                    (run(&live), run(&with_candidate))
                })
                .await
            {
                Ok(pair) => pair,
                Err(NotRun::Busy) => return Err(ReplayError::Busy),
                Err(e @ NotRun::Closed) => return Err(ReplayError::Internal(e.into())),
            };
            let category = categorize(&before, &after);
            match category {
                "same" => summary.same += 1,
                "changed" => summary.changed += 1,
                "newly_denied" => summary.newly_denied += 1,
                "newly_allowed" => summary.newly_allowed += 1,
                _ => summary.newly_failing += 1,
            }
            out.push(ReplayedInput {
                recorded_at: recorded.created_at,
                protocol: recorded.protocol,
                client_id: recorded.client_id,
                user_id: recorded.user_id,
                category,
                differences: differences(&before, &after),
                live: before,
                candidate: after,
            });
        }
        summary.inputs = out.len();
        if !out.is_empty() {
            summary.live = Some(cost(out.iter().map(|r| &r.live)));
            summary.candidate = Some(cost(out.iter().map(|r| &r.candidate)));
        }
        Ok(ReplayReport {
            summary,
            inputs: out,
        })
    }
}

/// A tenant's one running replay on this node; the next waits until it ends.
struct ReplayTurn<'a> {
    rules: &'a Rules,
    tenant_id: String,
}

impl<'a> ReplayTurn<'a> {
    fn take(rules: &'a Rules, tenant_id: &str) -> Result<Self, ReplayError> {
        let mut running = rules
            .inner
            .replaying
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !running.insert(tenant_id.to_string()) {
            return Err(ReplayError::Busy);
        }
        Ok(ReplayTurn {
            rules,
            tenant_id: tenant_id.to_string(),
        })
    }
}

impl Drop for ReplayTurn<'_> {
    fn drop(&mut self) {
        self.rules
            .inner
            .replaying
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.tenant_id);
    }
}

/// The trigger a recorded run of `protocol` ran.
fn trigger_of(protocol: &str) -> Option<TriggerId> {
    match protocol {
        "oidc-basic-profile" | "oauth2-refresh-token" => Some(TriggerId::PostLogin),
        "oauth2-client-credentials" => Some(TriggerId::CredentialsExchange),
        _ => None,
    }
}

/// One run of `items` on a recorded input. Blocking.
#[allow(clippy::too_many_arguments)]
fn replay_once(
    engine: &RuleEngine,
    trigger: TriggerId,
    items: &[PreparedItem],
    input: &Value,
    configuration: &str,
    at: i64,
    client_id: &str,
    replayed: &str,
) -> VersionResult {
    let net = NetPolicy {
        replay_at: Some(at),
        body_bytes: engine.limits().http_body_bytes,
        ..NetPolicy::default()
    };
    let cache = ActionCache::default();
    let members = input["event"].as_object().cloned().unwrap_or_default();
    let (event, _) = EventFrame::of_event(trigger, members);
    let (subject, user) = match trigger {
        TriggerId::PostLogin => (
            input["user"]["user_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            input["user"].clone(),
        ),
        TriggerId::CredentialsExchange => (format!("{client_id}@clients"), json!({})),
    };
    let cx = RunContext {
        tenant_id: "replay",
        trigger,
        log_as: Trigger::Test,
        now: at,
        net: &net,
        configuration,
        event: Some(&event),
        issuer: "",
        subject: &subject,
        ip: input["event"]["request"]["ip"]
            .as_str()
            .or(input["context"]["request"]["ip"].as_str())
            .unwrap_or_default(),
        resume_state: "",
        continue_state: None,
        transaction_id: "replay",
        can_redirect: false,
        resume_at: None,
        redirects: 0,
        cache: &cache,
        inline_until: None,
        image: None,
    };
    let state = trigger::initial_state(user, input["context"].clone());
    let run = trigger::run(engine, items, state, &cx);
    let (fuel, duration_us) = run
        .records
        .iter()
        .find(|r| r.rule_id == replayed)
        .map_or((0, 0), |r| (r.fuel, r.duration_us));
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let (outcome, message, claims) = match &run.outcome {
        TriggerOutcome::Allow { claims, .. } => ("allowed", None, claims.clone()),
        TriggerOutcome::Deny { message, .. } => ("denied", Some(message.clone()), Value::Null),
        TriggerOutcome::Fail { .. } => {
            let why = run
                .records
                .iter()
                .rev()
                .find(|r| r.outcome.label().starts_with("failed"))
                .map(|r| {
                    let last = r.logs.last().map(|l| l.message.as_str()).unwrap_or("");
                    format!("{} ({}): {last}", r.rule_name, r.outcome.label())
                });
            ("failed", why, Value::Null)
        }
        TriggerOutcome::Redirect { url, .. } => ("redirect", Some(url.clone()), Value::Null),
    };
    VersionResult {
        outcome,
        message,
        fuel,
        duration_us,
        id_token: object(&claims["id_token"]),
        access_token: object(&claims["access_token"]),
        app_metadata: object(&run.state.user["app_metadata"]),
        user_metadata: object(&run.state.user["user_metadata"]),
    }
}

/// The one category an input falls in.
fn categorize(before: &VersionResult, after: &VersionResult) -> &'static str {
    match (before.outcome, after.outcome) {
        (b, "failed") if b != "failed" => "newly_failing",
        ("allowed", "denied") => "newly_denied",
        (b, "allowed") if b != "allowed" => "newly_allowed",
        _ if before.outcome == after.outcome
            && before.message == after.message
            && before.id_token == after.id_token
            && before.access_token == after.access_token
            && before.app_metadata == after.app_metadata
            && before.user_metadata == after.user_metadata =>
        {
            "same"
        }
        _ => "changed",
    }
}

/// Per part, what the candidate added, removed and changed.
fn differences(before: &VersionResult, after: &VersionResult) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, b, a) in [
        ("id_token", &before.id_token, &after.id_token),
        ("access_token", &before.access_token, &after.access_token),
        ("app_metadata", &before.app_metadata, &after.app_metadata),
        ("user_metadata", &before.user_metadata, &after.user_metadata),
    ] {
        let (mut added, mut removed, mut changed) = (Map::new(), Map::new(), Map::new());
        for (k, v) in a {
            match b.get(k) {
                None => {
                    added.insert(k.clone(), v.clone());
                }
                Some(old) if old != v => {
                    changed.insert(k.clone(), json!({"before": old, "after": v}));
                }
                Some(_) => {}
            }
        }
        for (k, v) in b {
            if !a.contains_key(k) {
                removed.insert(k.clone(), v.clone());
            }
        }
        if !(added.is_empty() && removed.is_empty() && changed.is_empty()) {
            out.insert(
                name.into(),
                json!({"added": added, "removed": removed, "changed": changed}),
            );
        }
    }
    out
}

fn cost<'a>(results: impl Iterator<Item = &'a VersionResult> + Clone) -> VersionCost {
    let percentiles = |mut v: Vec<i64>| {
        v.sort_unstable();
        let at = |p: usize| v[(v.len() - 1) * p / 100];
        Percentiles {
            p50: at(50),
            p95: at(95),
            p99: at(99),
        }
    };
    VersionCost {
        fuel: percentiles(results.clone().map(|r| r.fuel).collect()),
        duration_us: percentiles(results.map(|r| r.duration_us).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: &'static str, claim: Option<&str>) -> VersionResult {
        let mut id_token = Map::new();
        if let Some(c) = claim {
            id_token.insert("https://x/tier".into(), json!(c));
        }
        VersionResult {
            outcome,
            message: None,
            fuel: 0,
            duration_us: 0,
            id_token,
            access_token: Map::new(),
            app_metadata: Map::new(),
            user_metadata: Map::new(),
        }
    }

    #[test]
    fn every_pair_of_results_falls_in_exactly_one_category() {
        let cases = [
            (("allowed", Some("a")), ("allowed", Some("a")), "same"),
            (("allowed", Some("a")), ("allowed", Some("b")), "changed"),
            (("allowed", None), ("denied", None), "newly_denied"),
            (("denied", None), ("allowed", None), "newly_allowed"),
            (("failed", None), ("allowed", None), "newly_allowed"),
            (("allowed", None), ("failed", None), "newly_failing"),
            (("denied", None), ("failed", None), "newly_failing"),
            (("failed", None), ("failed", None), "same"),
            (("failed", None), ("denied", None), "changed"),
            (("denied", None), ("denied", None), "same"),
            (("allowed", None), ("redirect", None), "changed"),
        ];
        for ((b, bc), (a, ac), want) in cases {
            assert_eq!(
                categorize(&result(b, bc), &result(a, ac)),
                want,
                "{b} → {a}"
            );
        }
        let diff = differences(&result("allowed", Some("a")), &result("allowed", Some("b")));
        assert_eq!(
            diff["id_token"]["changed"]["https://x/tier"],
            json!({"before": "a", "after": "b"})
        );
        assert!(differences(&result("allowed", None), &result("allowed", None)).is_empty());
    }
}
