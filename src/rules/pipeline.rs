//! The pipeline: runs a tenant's rules in order, applying each output as a JSON Merge Patch
//! (RFC 7396) and holding host-owned fields unchanged. The first denial or failure stops it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::engine::{CompiledRule, Failure, RuleEngine};
use super::execution::{ExecutionRecord, FailureKind, LogLine, Outcome, Trigger};
use crate::domain::OnFailure;

/// A rule ready to run.
#[derive(Clone)]
pub struct PreparedRule {
    /// Rule id.
    pub id: String,
    /// Rule name.
    pub name: String,
    /// The rule's version (recorded with each execution).
    pub version: i64,
    /// What its failure does.
    pub on_failure: OnFailure,
    /// Its compiled module.
    pub compiled: Arc<CompiledRule>,
}

/// How a pipeline ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every rule passed; the patched objects.
    Allow {
        /// The user after all patches.
        user: Value,
        /// The context after all patches.
        context: Value,
    },
    /// A rule denied access.
    Deny {
        /// The rule's message.
        message: String,
        /// The execution that denied.
        execution_id: String,
    },
    /// A rule failed; the login fails closed.
    Fail {
        /// The execution that failed.
        execution_id: String,
    },
}

/// A pipeline's verdict and the record of every execution.
#[derive(Debug)]
pub struct PipelineRun {
    /// How it ended.
    pub verdict: Verdict,
    /// What ran, in order.
    pub records: Vec<ExecutionRecord>,
}

/// Claims no rule may set: the host owns them, or relies on them to decide who a token speaks
/// for (`gty` and `sub` make a Management API caller, `gid` ties a token to its grant,
/// `permissions` is RBAC's answer). Dropped with a warning in the rule's log.
pub const RESTRICTED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "azp",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
    "s_hash",
    "acr",
    "amr",
    "sid",
    "cnf",
    "client_id",
    "scope",
    "typ",
    "gid",
    "gty",
    "permissions",
    "act",
    "may_act",
    "org_id",
];

const USER_WRITABLE: &[&str] = &["app_metadata", "user_metadata"];
const CONTEXT_WRITABLE: &[&str] = &["idToken", "accessToken"];

/// RFC 7396 JSON Merge Patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Applies the patch of one object: writable members are merged (RFC 7396), any other member
/// is ignored with a note when it would have changed something. Host-owned fields are thus
/// never touched, and nothing is cloned or compared unless a rule sends it.
fn patch_object(
    target: &mut Value,
    patch: &Map<String, Value>,
    writable: &[&str],
    what: &str,
    notes: &mut Vec<String>,
) {
    let Value::Object(map) = target else { return };
    for (key, value) in patch {
        if writable.contains(&key.as_str()) {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        } else {
            match map.get(key) {
                Some(current) if current == value => {}
                Some(_) => notes.push(format!(
                    "{what}.{key} is owned by the server; the change was ignored"
                )),
                None if value.is_null() => {}
                None => notes.push(format!(
                    "{what}.{key} is not a field rules can set; it was ignored"
                )),
            }
        }
    }
}

fn drop_restricted(
    claims: &mut Map<String, Value>,
    token: &str,
    keep_scope: bool,
    notes: &mut Vec<String>,
) {
    for claim in RESTRICTED_CLAIMS {
        if keep_scope && *claim == "scope" {
            continue;
        }
        if claims.remove(*claim).is_some() {
            notes.push(format!(
                "claim {claim:?} is restricted and was dropped from the {token}"
            ));
        }
    }
}

/// Why a rule's output could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NotApplied {
    /// The output is malformed.
    Malformed(String),
    /// The rule asks for something this server cannot do; the login must not go on without it.
    Unsupported(String),
}

impl From<String> for NotApplied {
    fn from(why: String) -> Self {
        NotApplied::Malformed(why)
    }
}

impl From<&str> for NotApplied {
    fn from(why: &str) -> Self {
        NotApplied::Malformed(why.into())
    }
}

/// What an Auth0 rule can ask of the login that Wardstone cannot do. A rule that sets one has
/// made it a condition of the login, so the login fails closed rather than passing without it
/// (SPEC §17); `None` when the output asks for none of them.
pub fn unsupported_request(context_patch: &Map<String, Value>) -> Option<String> {
    if let Some(mfa) = context_patch.get("multifactor") {
        let provider = mfa.get("provider").and_then(Value::as_str);
        if !mfa.is_null() && provider != Some("none") {
            return Some(format!(
                "multifactor authentication was required by a rule (context.multifactor, provider {}), \
                 which this server does not support; the login was refused",
                provider.unwrap_or("unnamed")
            ));
        }
    }
    if context_patch.get("redirect").is_some_and(|r| !r.is_null()) {
        return Some(
            "a rule asked to redirect the user (context.redirect), which this server does not \
             support; the login was refused"
                .into(),
        );
    }
    None
}

/// Applies one rule's output.
fn apply(
    output: &Map<String, Value>,
    user: &mut Value,
    context: &mut Value,
) -> Result<Vec<String>, NotApplied> {
    if let Some(Value::Object(patch)) = output.get("context")
        && let Some(why) = unsupported_request(patch)
    {
        return Err(NotApplied::Unsupported(why));
    }
    let mut notes = Vec::new();
    for key in output.keys() {
        if key != "user" && key != "context" {
            notes.push(format!(
                "output member {key:?} is not part of ABI v1; it was ignored"
            ));
        }
    }
    for (key, target, writable) in [
        ("user", &mut *user, USER_WRITABLE),
        ("context", &mut *context, CONTEXT_WRITABLE),
    ] {
        match output.get(key) {
            None => {}
            Some(Value::Object(p)) => patch_object(target, p, writable, key, &mut notes),
            Some(_) => return Err(format!("output member {key:?} must be an object").into()),
        }
    }
    for key in USER_WRITABLE {
        if !user.get(*key).is_some_and(Value::is_object) {
            return Err(format!("user.{key} must stay an object").into());
        }
    }
    let Some(Value::Object(id_token)) = context.get_mut("idToken") else {
        return Err("context.idToken must stay an object".into());
    };
    drop_restricted(id_token, "ID token", false, &mut notes);
    let Some(Value::Object(access_token)) = context.get_mut("accessToken") else {
        return Err("context.accessToken must stay an object".into());
    };
    drop_restricted(access_token, "access token", true, &mut notes);
    let scope_ok = match access_token.get("scope") {
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        _ => false,
    };
    if !scope_ok {
        return Err("context.accessToken.scope must stay an array of strings".into());
    }
    Ok(notes)
}

/// A denial message as the end user's application will see it: bounded, no control characters.
fn clean_message(message: &str) -> String {
    let cleaned: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect();
    if cleaned.trim().is_empty() {
        "Access denied by a rule".into()
    } else {
        cleaned
    }
}

pub(crate) fn deny_of(output: &Map<String, Value>) -> Option<Result<String, String>> {
    let error = output.get("error")?;
    let kind = error.get("kind").and_then(Value::as_str);
    let message = error.get("message").and_then(Value::as_str);
    Some(match (kind, message) {
        (Some("unauthorized"), Some(m)) => Ok(clean_message(m)),
        _ => Err("error must be {\"kind\": \"unauthorized\", \"message\": \"...\"}".into()),
    })
}

/// The parts of the input no rule can change, serialized once per pipeline; only the writable
/// members are serialized again for each rule.
struct InputFrame {
    user_head: String,
    context_head: String,
    configuration: String,
}

/// `{"a":1,"b":2}` without the members in `skip`, and without its closing brace.
fn head_without(value: &Value, skip: &[&str]) -> String {
    let mut head = String::from("{");
    if let Value::Object(map) = value {
        for (k, v) in map.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            if head.len() > 1 {
                head.push(',');
            }
            head.push_str(&Value::String(k.clone()).to_string());
            head.push(':');
            head.push_str(&v.to_string());
        }
    }
    head
}

impl InputFrame {
    fn new(user: &Value, context: &Value, configuration: &str) -> Self {
        InputFrame {
            user_head: head_without(user, USER_WRITABLE),
            context_head: head_without(context, CONTEXT_WRITABLE),
            configuration: configuration.to_string(),
        }
    }

    fn input(&self, user: &Value, context: &Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.user_head.len() + self.context_head.len() + self.configuration.len() + 512,
        );
        let object = |out: &mut Vec<u8>, head: &str, value: &Value, members: &[&str]| {
            out.extend_from_slice(head.as_bytes());
            let mut first = head.len() == 1;
            for m in members {
                if let Some(v) = value.get(*m) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(Value::String((*m).to_string()).to_string().as_bytes());
                    out.push(b':');
                    serde_json::to_writer(&mut *out, v).unwrap_or_default();
                }
            }
            out.push(b'}');
        };
        out.extend_from_slice(b"{\"user\":");
        object(&mut out, &self.user_head, user, USER_WRITABLE);
        out.extend_from_slice(b",\"context\":");
        object(&mut out, &self.context_head, context, CONTEXT_WRITABLE);
        out.extend_from_slice(b",\"configuration\":");
        out.extend_from_slice(self.configuration.as_bytes());
        out.push(b'}');
        out
    }
}

/// What a tenant gives every rule of a pipeline: its settings and its reach.
#[derive(Debug, Clone, Copy)]
pub struct TenantEnv<'a> {
    /// The settings as the JSON object rules receive.
    pub configuration_json: &'a str,
    /// What `wardstone.http_fetch` may reach.
    pub net: &'a super::outbound::NetPolicy,
}

/// Runs `rules` in order on `user` and `context`. Blocking: call it off the async workers.
pub fn run_pipeline(
    engine: &RuleEngine,
    rules: &[PreparedRule],
    mut user: Value,
    mut context: Value,
    env: TenantEnv<'_>,
    trigger: Trigger,
    now: i64,
) -> PipelineRun {
    let TenantEnv {
        configuration_json,
        net,
    } = env;
    let limits = engine.limits();
    let started = Instant::now();
    let frame = InputFrame::new(&user, &context, configuration_json);
    let mut records: Vec<ExecutionRecord> = Vec::with_capacity(rules.len());
    let fail = |mut records: Vec<ExecutionRecord>| {
        let execution_id = records.last_mut().map(|r| r.id.clone()).unwrap_or_default();
        PipelineRun {
            verdict: Verdict::Fail { execution_id },
            records,
        }
    };
    // A failing rule whose `on_failure` is `skip` is recorded as skipped and the pipeline goes
    // on with the objects as they were before it; any other failure ends it.
    macro_rules! failed {
        ($record:ident, $rule:ident) => {{
            if $rule.on_failure == OnFailure::Skip {
                $record.skipped = true;
                records.push($record);
                continue;
            }
            records.push($record);
            return fail(records);
        }};
    }
    for rule in rules {
        let mut record = ExecutionRecord::start(&rule.id, &rule.name, trigger, now);
        record.rule_version = rule.version;
        let remaining = limits.pipeline_timeout.saturating_sub(started.elapsed());
        if remaining < Duration::from_millis(1) {
            record.fail(
                FailureKind::Timeout,
                "the pipeline's deadline passed before this rule could run",
            );
            failed!(record, rule);
        }
        let input = frame.input(&user, &context);
        let deadline = if rule.compiled.uses_http {
            limits.http_rule_timeout
        } else {
            limits.rule_timeout
        };
        let execution = engine.execute_with(&rule.compiled, &input, deadline.min(remaining), net);
        record.duration_us = i64::try_from(execution.duration.as_micros()).unwrap_or(i64::MAX);
        record.fuel = i64::try_from(execution.fuel_used).unwrap_or(i64::MAX);
        record.logs = execution.logs;
        let output = match execution.result {
            Ok(output) => output,
            Err(failure) => {
                record.fail(failure.kind(), failure.detail());
                failed!(record, rule);
            }
        };
        match deny_of(&output) {
            Some(Ok(message)) => {
                record.outcome = Outcome::Denied;
                let execution_id = record.id.clone();
                records.push(record);
                return PipelineRun {
                    verdict: Verdict::Deny {
                        message,
                        execution_id,
                    },
                    records,
                };
            }
            Some(Err(why)) => {
                record.fail(FailureKind::BadOutput, Failure::BadOutput(why).detail());
                failed!(record, rule);
            }
            None => {}
        }
        // A skip-rule's bad output must not leave half a patch behind: apply it to copies.
        let (mut next_user, mut next_context) = if rule.on_failure == OnFailure::Skip {
            (user.clone(), context.clone())
        } else {
            (std::mem::take(&mut user), std::mem::take(&mut context))
        };
        match apply(&output, &mut next_user, &mut next_context) {
            Ok(notes) => {
                record.logs.extend(notes.into_iter().map(LogLine::warn));
                records.push(record);
                (user, context) = (next_user, next_context);
            }
            Err(NotApplied::Malformed(why)) => {
                record.fail(FailureKind::BadOutput, Failure::BadOutput(why).detail());
                failed!(record, rule);
            }
            // Never skipped: the rule made it a condition of the login.
            Err(NotApplied::Unsupported(message)) => {
                record.fail(FailureKind::Unsupported, message.clone());
                let execution_id = record.id.clone();
                records.push(record);
                return PipelineRun {
                    verdict: Verdict::Deny {
                        message,
                        execution_id,
                    },
                    records,
                };
            }
        }
    }
    // Metadata is stored and sent to every later rule: bound it like the Management API does.
    for key in USER_WRITABLE {
        let size = user.get(*key).map(|m| m.to_string().len()).unwrap_or(0);
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
            return fail(records);
        }
    }
    // Claims that would bloat every token fail the login rather than the API calls after it.
    for (token, key) in [("ID token", "idToken"), ("access token", "accessToken")] {
        let size = context.get(key).map(|c| c.to_string().len()).unwrap_or(0);
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
            return fail(records);
        }
    }
    PipelineRun {
        verdict: Verdict::Allow { user, context },
        records,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    fn base() -> (Value, Value) {
        (
            json!({"user_id": "u1", "email": "a@b.c", "app_metadata": {}, "user_metadata": {}}),
            json!({"protocol": "oidc-basic-profile", "idToken": {}, "accessToken": {"scope": ["openid"]}}),
        )
    }

    #[test]
    fn host_owned_fields_and_restricted_claims_are_kept_out() {
        let (mut user, mut context) = base();
        let output = json!({
            "user": {"email": "evil@x.y", "user_metadata": {"n": 1}},
            "context": {"protocol": "x", "newField": 1, "idToken": {"sub": "evil", "https://x/r": ["a"]},
                        "accessToken": {"aud": "evil", "scope": ["openid"]}}
        });
        let notes = apply(output.as_object().unwrap(), &mut user, &mut context).unwrap();
        assert_eq!(user["email"], "a@b.c");
        assert_eq!(user["user_metadata"], json!({"n": 1}));
        assert_eq!(context["protocol"], "oidc-basic-profile");
        assert!(context.get("newField").is_none());
        assert_eq!(context["idToken"], json!({"https://x/r": ["a"]}));
        assert_eq!(context["accessToken"], json!({"scope": ["openid"]}));
        assert!(notes.iter().any(|n| n.contains("\"sub\"")));
        assert!(notes.iter().any(|n| n.contains("\"aud\"")));
        assert!(notes.iter().any(|n| n.contains("user.email")));
    }

    #[test]
    fn the_input_frame_serializes_the_same_json_as_a_whole_object() {
        let (user, context) = base();
        let frame = InputFrame::new(&user, &context, "{\"K\":\"v\"}");
        let built: Value = serde_json::from_slice(&frame.input(&user, &context)).unwrap();
        assert_eq!(
            built,
            json!({"user": user, "context": context, "configuration": {"K": "v"}})
        );
        let empty = InputFrame::new(&json!({}), &json!({}), "{}");
        let built: Value = serde_json::from_slice(&empty.input(&json!({}), &json!({}))).unwrap();
        assert_eq!(
            built,
            json!({"user": {}, "context": {}, "configuration": {}})
        );
    }

    #[test]
    fn malformed_patches_are_refused() {
        for output in [
            json!({"user": 1}),
            json!({"user": {"app_metadata": 1}}),
            json!({"context": {"idToken": null}}),
            json!({"context": {"accessToken": {"scope": "openid"}}}),
        ] {
            let (mut user, mut context) = base();
            assert!(
                apply(output.as_object().unwrap(), &mut user, &mut context).is_err(),
                "{output}"
            );
        }
    }

    #[test]
    fn denials_need_the_abi_shape() {
        let ok = json!({"error": {"kind": "unauthorized", "message": "no\u{7}pe"}});
        assert_eq!(deny_of(ok.as_object().unwrap()), Some(Ok("nope".into())));
        let bad = json!({"error": {"kind": "other", "message": "x"}});
        assert!(matches!(deny_of(bad.as_object().unwrap()), Some(Err(_))));
        assert_eq!(deny_of(json!({}).as_object().unwrap()), None);
    }
}
