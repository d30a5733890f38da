//! A trigger run: post-login (the tenant's enabled rules in order, then the actions bound to
//! post-login) or credentials-exchange (its bound actions), one after the other on one
//! thread (an executor thread, or the request's own within a bound: [`RunContext::inline_until`]),
//! each seeing what the previous ones set. The first denial or failure stops
//! the run; a rule with `on_failure: skip` that fails is recorded and passed over. A redirect
//! action pauses the run, which resumes at `/continue` with the same action's
//! `onContinuePostLogin` (see [`Resume`]).
//!
//! Rules see Auth0's Rules `user`/`context` and answer merge patches ([`super::patch`]); actions
//! see Auth0's Actions `event` and answer what they asked of the `api`
//! ([`super::actions`]). Everything is applied to one [`RunState`].

mod action_step;
mod rule_step;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::actions::{
    ActionCache, ActionOutput, CacheEntry, RedirectRequest, set_claims, set_metadata,
};
use super::engine::{RuleEngine, Session};
use super::input::{DynamicMember, EventFrame, event_user};
use super::js::{ImageLookup, ImageScripts, LoadedImage};
use super::outbound::NetPolicy;
use super::patch::{InputFrame, NotApplied, apply, deny_of};
use super::ruleset::PreparedItem;
use crate::domain::execution::{
    CodeKind, ExecutionRecord, Failure, FailureKind, LogLine, Outcome, Trigger,
};
use crate::domain::{OnFailure, ScopeSet, TriggerId};
use action_step::action_step;
use rule_step::rule_step;

/// How a trigger run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerOutcome {
    /// Go on: these claims (`{"id_token":{}, "access_token":{}}`) and this scope go into the
    /// tokens; `added_scopes` are what actions asked to add, for the caller to grant only
    /// within what the client may be granted.
    Allow {
        /// Extra claims per token.
        claims: Value,
        /// The granted scope after rules and actions narrowed it.
        scope: ScopeSet,
        /// Scopes actions added (`api.accessToken.addScope`).
        added_scopes: Vec<String>,
    },
    /// A rule or action denied access with this message (and, for credentials-exchange, this
    /// RFC 6749 error code).
    Deny {
        /// The message for the client.
        message: String,
        /// `invalid_scope`, `invalid_request` or `server_error` (credentials-exchange).
        code: Option<String>,
    },
    /// A rule or action failed; the tenant finds the details under this execution id.
    Fail { execution_id: String },
    /// An action sent the browser away: the run resumes at `/continue` with `resume`.
    Redirect {
        /// Where to send the browser (with `state` and the action's query).
        url: String,
        /// What the run has done so far.
        resume: Box<Resume>,
    },
}

/// A paused post-login run, kept with the login transaction until `/continue` (sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    /// The action that redirected (its `onContinuePostLogin` runs first); empty when the
    /// rules did.
    pub action_id: String,
    /// A rule redirected (`context.redirect`): the whole run starts over, the rules seeing
    /// `context.protocol = "redirect-callback"`, as Auth0 does.
    #[serde(default)]
    pub rules: bool,
    /// Redirects the login has been through, this one included.
    #[serde(default)]
    pub redirects: u32,
    /// The `state` the browser brings back (and the `state` claim of encoded tokens).
    pub state: String,
    /// `event.transaction.id`.
    pub transaction_id: String,
    /// The user as the run left it (metadata changes not yet saved).
    pub user: Value,
    /// The user's metadata before the run (what gets saved is the difference).
    pub original_metadata: [Value; 2],
    /// The claims and scope so far (Rules' `context.idToken` / `context.accessToken`).
    pub tokens: Value,
    /// Rules that ran (`api.rules.wasExecuted`).
    pub executed_rules: Vec<String>,
}

/// What a run changes as it goes.
#[derive(Debug, Clone)]
pub(crate) struct RunState {
    /// Rules' `user` (actions see it as `event.user`; metadata changes land here).
    pub(crate) user: Value,
    /// Rules' `context` (`idToken`, `accessToken` with `scope`: the claims and scope so far).
    /// A run with only actions (and no recording) holds only those two tokens: whatever else
    /// an action path reads of it would be `null` (`Rules::run_post_login`).
    pub(crate) context: Value,
    /// Rules that ran without failing.
    pub(crate) executed_rules: Vec<String>,
    /// The scope the run started from: rules may narrow it, only actions may add to it.
    pub(crate) granted: Vec<String>,
    /// What actions set and deleted with `api.cache`, latest per key: later actions of the run
    /// see it over the node's cache, which takes it when the run is kept
    /// ([`super::Rules::execute`]), so an abandoned attempt changes nothing there.
    pub(crate) cache_changes: BTreeMap<String, Option<CacheEntry>>,
    /// The actions' texts that stay the same from one action to the next until an action
    /// changes what they show: serializing them again for every action cost ≈ 5 µs each.
    pub(crate) action_texts: ActionTexts,
}

/// The dynamic member of the actions' `event` (post-login: `event.user`; credentials-exchange:
/// `event.accessToken`) and the facts their `api` reads, as last sent; `None` once something
/// they show has changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActionTexts {
    pub(crate) dynamic: Option<DynamicMember>,
    pub(crate) facts: Option<String>,
}

/// What does not change during a run.
pub(crate) struct RunContext<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) trigger: TriggerId,
    pub(crate) log_as: Trigger,
    pub(crate) now: i64,
    pub(crate) net: &'a NetPolicy,
    /// The rule settings, for rules.
    pub(crate) configuration: &'a str,
    /// The fixed part of the actions' event.
    pub(crate) event: Option<&'a EventFrame>,
    /// Facts the actions' `api` needs.
    pub(crate) issuer: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) ip: &'a str,
    pub(crate) resume_state: &'a str,
    /// The `state` the browser came back with to `/continue` (what `validateToken` checks).
    pub(crate) continue_state: Option<&'a str>,
    pub(crate) transaction_id: &'a str,
    /// An interactive login: an action may redirect the browser.
    pub(crate) can_redirect: bool,
    /// Resuming after a redirect: the action with this id runs `onContinuePostLogin`; the
    /// items before it (and all rules) are not run again.
    pub(crate) resume_at: Option<&'a str>,
    /// Redirects this login has been through already.
    pub(crate) redirects: u32,
    pub(crate) cache: &'a ActionCache,
    /// Running on a request's own thread: the run stops ([`TriggerRun::overran`]) rather than
    /// go on past this instant, to be run again from the start on the executor.
    pub(crate) inline_until: Option<Instant>,
    /// The run's scripts already loaded, when the engine has their image.
    pub(crate) image: Option<Arc<LoadedImage>>,
}

/// Time an item must have left before it starts on a request's thread: deadlines are whole
/// epoch ticks, so less could stop an item that was not slow at all.
const INLINE_ITEM_MIN: Duration = Duration::from_millis(2);

/// A run's outcome and the record of every execution, in order.
pub(crate) struct TriggerRun {
    pub(crate) outcome: TriggerOutcome,
    pub(crate) records: Vec<ExecutionRecord>,
    pub(crate) state: RunState,
    /// It ran out of [`RunContext::inline_until`]: nothing of it counts (not its outcome, not
    /// its records) and it must run again without that bound.
    pub(crate) overran: bool,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Runs `items` (rules, then actions) on `state`. Blocking: on an executor thread, or bounded by
/// `cx.inline_until` on a thread with room for the wasm stack ([`super::executor`]).
pub(crate) fn run(
    engine: &RuleEngine,
    items: &[PreparedItem],
    mut state: RunState,
    cx: &RunContext<'_>,
) -> TriggerRun {
    let limits = engine.limits();
    let started = Instant::now();
    let mut session = if cx.inline_until.is_some() {
        engine.session(&NetPolicy {
            offline_attempt: true,
            ..cx.net.clone()
        })
    } else {
        engine.session(cx.net)
    };
    session.image = cx.image.clone();
    // Built for the first rule: a run of actions alone never needs it.
    let mut frame: Option<InputFrame> = None;
    let mut records: Vec<ExecutionRecord> = Vec::with_capacity(items.len());
    let skip_to = cx.resume_at.and_then(|id| {
        items
            .iter()
            .position(|i| i.kind == CodeKind::Action && i.id == id)
    });
    let finish =
        |outcome: TriggerOutcome, records: Vec<ExecutionRecord>, state: RunState| TriggerRun {
            outcome,
            records,
            state,
            overran: false,
        };
    if cx.resume_at.is_some() && skip_to.is_none() {
        // The action that redirected is no longer bound (or deployed): nothing can continue.
        let mut record = ExecutionRecord::start(
            cx.resume_at.unwrap_or_default(),
            "(unbound action)",
            cx.log_as,
            cx.now,
        );
        record.kind = CodeKind::Action;
        record.fail(
            FailureKind::Unavailable,
            "the action that redirected the user is no longer bound to post-login; the login cannot continue",
        );
        let execution_id = record.id.clone();
        return finish(TriggerOutcome::Fail { execution_id }, vec![record], state);
    }
    // Once every rule has run (and before any action), a rule's `context.redirect` pauses the
    // run; a resumed action run has no rules to look at.
    let mut rules_done = skip_to.is_some();
    for (index, item) in items.iter().enumerate().skip(skip_to.unwrap_or(0)) {
        if item.kind == CodeKind::Action && !rules_done {
            rules_done = true;
            match rules_redirect(&state, cx) {
                Some(Ok(outcome)) => return finish(outcome, records, state),
                Some(Err(why)) => return redirect_refused(records, state, why),
                None => {}
            }
        }
        let mut record = ExecutionRecord::start(&item.id, &item.name, cx.log_as, cx.now);
        record.kind = item.kind;
        record.rule_version = item.version;
        let remaining = limits.pipeline_timeout.saturating_sub(started.elapsed());
        let mut deadline = if item.compiled.uses_http {
            limits.http_rule_timeout
        } else {
            limits.rule_timeout
        }
        .min(remaining);
        if let Some(until) = cx.inline_until {
            let left = until.saturating_duration_since(Instant::now());
            if left < INLINE_ITEM_MIN {
                return overran(records, state);
            }
            deadline = deadline.min(left);
        }
        if remaining < Duration::from_millis(1) {
            record.fail(
                FailureKind::Timeout,
                "the trigger's deadline passed before this could run",
            );
            if item.kind == CodeKind::Rule && item.on_failure == OnFailure::Skip {
                record.skipped = true;
                records.push(record);
                continue;
            }
            records.push(record);
            return fail(records, state);
        }
        let step = match item.kind {
            CodeKind::Rule => {
                let input = frame
                    .get_or_insert_with(|| {
                        InputFrame::new(&state.user, &state.context, cx.configuration)
                    })
                    .input(&state.user, &state.context);
                rule_step(
                    &mut session,
                    item,
                    &input,
                    deadline,
                    cx.can_redirect,
                    &mut state,
                    &mut record,
                )
            }
            CodeKind::Action => {
                let entry = if skip_to == Some(index) {
                    "onContinuePostLogin"
                } else {
                    cx.trigger.entry_point()
                };
                action_step(
                    &mut session,
                    item,
                    entry,
                    deadline,
                    cx,
                    &mut state,
                    &mut record,
                )
            }
        };
        // Out of the inline bound, not necessarily of its own deadline: it may yet succeed.
        if cx.inline_until.is_some() && record.outcome == Outcome::Failed(FailureKind::Timeout) {
            return overran(records, state);
        }
        match step {
            Step::Next => records.push(record),
            Step::Skipped => {
                record.skipped = true;
                records.push(record);
            }
            Step::End(outcome) => {
                records.push(record);
                return finish(outcome, records, state);
            }
            Step::Failed => {
                records.push(record);
                return fail(records, state);
            }
        }
    }
    if !rules_done {
        match rules_redirect(&state, cx) {
            Some(Ok(outcome)) => return finish(outcome, records, state),
            Some(Err(why)) => return redirect_refused(records, state, why),
            None => {}
        }
    }
    // Metadata is stored and sent to every later rule: bound it like the Management API does.
    for key in ["app_metadata", "user_metadata"] {
        let size = state.user.get(key).map(json_len).unwrap_or(0);
        if size > limits.metadata_bytes
            && let Some(last) = records.last_mut()
        {
            last.fail(
                FailureKind::MetadataTooLarge,
                format!(
                    "user.{key} would be {size} bytes; at most {} are allowed",
                    limits.metadata_bytes
                ),
            );
            return fail(records, state);
        }
    }
    // Claims that would bloat every token fail the login rather than the API calls after it.
    for (token, key) in [("ID token", "idToken"), ("access token", "accessToken")] {
        let size = state.context.get(key).map(json_len).unwrap_or(0);
        if size > limits.claims_bytes
            && let Some(last) = records.last_mut()
        {
            last.fail(
                FailureKind::ClaimsTooLarge,
                format!(
                    "custom claims of the {token} are {size} bytes; at most {} are allowed",
                    limits.claims_bytes
                ),
            );
            return fail(records, state);
        }
    }
    let outcome = allow(&state);
    finish(outcome, records, state)
}

/// The length of `value`'s compact JSON text (what is stored and sent), counted as it is
/// written instead of building the text: these checks run at the end of every run.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that cannot fail does not fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// How many times one login may be sent away by redirects: a rule that redirects whatever
/// `context.protocol` says would otherwise loop between its page and `/continue`.
const MAX_REDIRECTS: u32 = 5;

/// The pause a rule asked for with `context.redirect` (its URL checked when it was set): the
/// browser goes there with `state`, and `/continue` runs the whole trigger again. An error
/// when the login has been redirected too often.
fn rules_redirect(state: &RunState, cx: &RunContext<'_>) -> Option<Result<TriggerOutcome, String>> {
    let url = state.context.get("redirect")?.get("url")?.as_str()?;
    let mut target = url::Url::parse(url).ok()?;
    if cx.redirects >= MAX_REDIRECTS {
        return Some(Err(format!(
            "the rules redirected this login {MAX_REDIRECTS} times; a rule that redirects should \
             check context.protocol (\"redirect-callback\" on the way back); the login was refused"
        )));
    }
    // The page's own query is kept byte for byte (it may be signed); only a `state` of ours
    // is added, replacing one the URL already had.
    if target.query_pairs().any(|(k, _)| k == "state") {
        let kept: Vec<(String, String)> = target
            .query_pairs()
            .filter(|(k, _)| k != "state")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        target.query_pairs_mut().clear().extend_pairs(kept);
    }
    target
        .query_pairs_mut()
        .append_pair("state", cx.resume_state);
    Some(Ok(TriggerOutcome::Redirect {
        url: target.to_string(),
        resume: Box::new(Resume {
            action_id: String::new(),
            rules: true,
            redirects: cx.redirects + 1,
            state: cx.resume_state.to_string(),
            transaction_id: cx.transaction_id.to_string(),
            user: state.user.clone(),
            original_metadata: [Value::Null, Value::Null],
            tokens: json!({}),
            executed_rules: Vec::new(),
        }),
    }))
}

/// The login is refused on a redirect it cannot follow, as for any unsupported request (the
/// last rule's record says why).
fn redirect_refused(mut records: Vec<ExecutionRecord>, state: RunState, why: String) -> TriggerRun {
    if let Some(last) = records.last_mut() {
        last.fail(FailureKind::Unsupported, why.clone());
    }
    TriggerRun {
        outcome: TriggerOutcome::Deny {
            message: why,
            code: None,
        },
        records,
        state,
        overran: false,
    }
}

fn fail(records: Vec<ExecutionRecord>, state: RunState) -> TriggerRun {
    let execution_id = records.last().map(|r| r.id.clone()).unwrap_or_default();
    TriggerRun {
        outcome: TriggerOutcome::Fail { execution_id },
        records,
        state,
        overran: false,
    }
}

fn overran(records: Vec<ExecutionRecord>, state: RunState) -> TriggerRun {
    TriggerRun {
        overran: true,
        ..fail(records, state)
    }
}

/// The tokens' claims and the scope decided by the run (before the caller grants added
/// scopes). The input scope is in `context.accessToken.scope` at the start.
fn allow(state: &RunState) -> TriggerOutcome {
    let mut access = state.context["accessToken"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let kept: Vec<String> = access
        .remove("scope")
        .and_then(|s| serde_json::from_value::<Vec<String>>(s).ok())
        .unwrap_or_default();
    let added: Vec<String> = state.context["addedScopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|s| kept.iter().any(|k| k == s))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    // Rules narrow: only what was granted stays, unless an action added it.
    let scope = kept
        .into_iter()
        .filter(|s| state.granted.contains(s) || added.contains(s))
        .collect();
    TriggerOutcome::Allow {
        claims: json!({"id_token": state.context["idToken"], "access_token": Value::Object(access)}),
        scope,
        added_scopes: added,
    }
}

/// How one execution left the run.
enum Step {
    Next,
    Skipped,
    End(TriggerOutcome),
    Failed,
}

/// Runs one item and records its time, fuel and logs: its output object, or the step a
/// failure makes of it.
fn execute(
    session: &mut Session<'_>,
    item: &PreparedItem,
    input: &[u8],
    deadline: Duration,
    record: &mut ExecutionRecord,
) -> Result<serde_json::Map<String, Value>, Step> {
    let execution = session.run(&item.compiled, input, deadline);
    record.duration_us = micros(execution.duration);
    record.fuel = i64::try_from(execution.fuel_used).unwrap_or(i64::MAX);
    record.logs = execution.logs;
    execution
        .result
        .map_err(|failure| failed(item, record, failure.kind(), failure.detail()))
}

/// Fails `record` with `failure`: skipped for a rule with `on_failure: skip`, else the end.
fn failed(
    item: &PreparedItem,
    record: &mut ExecutionRecord,
    kind: FailureKind,
    detail: String,
) -> Step {
    record.fail(kind, detail);
    if item.kind == CodeKind::Rule && item.on_failure == OnFailure::Skip {
        Step::Skipped
    } else {
        Step::Failed
    }
}

/// A fresh run state: the user, and the tokens' claims and scope as the input gives them.
pub(crate) fn initial_state(user: Value, context: Value) -> RunState {
    RunState {
        granted: scope_of(&context),
        user,
        context,
        executed_rules: Vec::new(),
        cache_changes: BTreeMap::new(),
        action_texts: ActionTexts::default(),
    }
}

fn scope_of(context: &Value) -> Vec<String> {
    context["accessToken"]["scope"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The state a resumed run starts from.
pub(crate) fn resumed_state(resume: &Resume, context: Value) -> RunState {
    let granted = scope_of(&context);
    let mut context = context;
    if let (Value::Object(target), Value::Object(tokens)) = (&mut context, &resume.tokens) {
        for (k, v) in tokens {
            target.insert(k.clone(), v.clone());
        }
    }
    RunState {
        user: resume.user.clone(),
        context,
        executed_rules: resume.executed_rules.clone(),
        granted,
        cache_changes: BTreeMap::new(),
        action_texts: ActionTexts::default(),
    }
}

/// An empty claims object, for runs with nothing to run.
pub(crate) fn no_claims() -> Value {
    json!({"id_token": {}, "access_token": {}})
}

/// A post-login run outside any login, for benchmarks: `items` (rules and actions) in order
/// on `user`/`context`, with the sample event around the actions and no network. Blocking.
#[doc(hidden)]
pub fn bench_post_login(
    engine: &RuleEngine,
    items: &[(CodeKind, std::sync::Arc<super::CompiledRule>)],
    user: Value,
    context: Value,
    configuration: &str,
) -> TriggerOutcome {
    let prepared: Vec<PreparedItem> = items
        .iter()
        .enumerate()
        .map(|(i, (kind, compiled))| PreparedItem {
            kind: *kind,
            id: format!("item_{i}"),
            name: format!("item {i}"),
            version: 1,
            on_failure: OnFailure::Deny,
            compiled: compiled.clone(),
            secrets: "{}".into(),
        })
        .collect();
    // As a login has it: an `event` only when an action will see it.
    let event = items
        .iter()
        .any(|(kind, _)| *kind == CodeKind::Action)
        .then(|| super::input::sample_frame(TriggerId::PostLogin));
    let net = NetPolicy::default();
    let cache = ActionCache::default();
    let cx = RunContext {
        tenant_id: "bench",
        trigger: TriggerId::PostLogin,
        log_as: Trigger::Login,
        now: 0,
        net: &net,
        configuration,
        event: event.as_ref(),
        issuer: "https://bench.invalid/t/bench",
        subject: "auth0|bench",
        ip: "203.0.113.7",
        resume_state: "bench",
        continue_state: None,
        transaction_id: "bench",
        can_redirect: true,
        resume_at: None,
        redirects: 0,
        cache: &cache,
        inline_until: None,
        // As a node has it once the set's first run has had it made.
        image: match engine.js_image_lookup(ImageScripts::of(prepared.iter().map(|i| &i.compiled)))
        {
            ImageLookup::Found(image) => image,
            ImageLookup::Wanted(scripts) => engine.js_image(&scripts),
        },
    };
    run(engine, &prepared, initial_state(user, context), &cx).outcome
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json_len;

    #[test]
    fn json_len_is_the_length_of_the_compact_text() {
        for value in [
            json!(null),
            json!({}),
            json!({"roles": ["admin", "ré\"sumé\n"], "n": -1.5e300, "deep": {"a": [1, {}]}}),
            json!("\u{1F600}\u{0001}"),
        ] {
            assert_eq!(json_len(&value), value.to_string().len(), "{value}");
        }
    }
}
