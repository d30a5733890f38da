//! One action's execution within a run: its event and facts, what it asked of the `api` applied,
//! a redirect turned into a pause.

use super::*;

/// The input of one action: which handler, the event, and the facts its `api` needs.
fn action_input(
    item: &PreparedItem,
    entry: &str,
    cx: &RunContext<'_>,
    state: &RunState,
) -> Vec<u8> {
    let dynamic = match cx.trigger {
        TriggerId::PostLogin => event_user(&state.user),
        TriggerId::CredentialsExchange => {
            let mut access = state.context["accessToken"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let scope = access.remove("scope").unwrap_or_else(|| json!([]));
            json!({"scope": scope, "customClaims": access})
        }
    };
    let facts = json!({
        "cache": cx.cache.snapshot_with(cx.tenant_id, cx.trigger, cx.now * 1000, &state.cache_changes),
        "executed_rules": state.executed_rules,
        "can_redirect": cx.can_redirect,
        "resume_state": cx.resume_state,
        "continue_state": cx.continue_state,
        "issuer": cx.issuer,
        "subject": cx.subject,
        "ip": cx.ip,
    })
    .to_string();
    let empty;
    let frame = match cx.event {
        Some(frame) => frame,
        None => {
            empty = EventFrame::of_event(cx.trigger, serde_json::Map::new()).0;
            &empty
        }
    };
    frame.action_input(entry, cx.trigger.as_str(), &dynamic, &item.secrets, &facts)
}

pub(super) fn action_step(
    session: &mut Session<'_>,
    item: &PreparedItem,
    entry: &str,
    deadline: Duration,
    cx: &RunContext<'_>,
    state: &mut RunState,
    record: &mut ExecutionRecord,
) -> Step {
    let input = action_input(item, entry, cx, state);
    let output = match execute(session, item, &input, deadline, record) {
        Ok(output) => output,
        Err(step) => return step,
    };
    let output: ActionOutput = match serde_json::from_value(Value::Object(output)) {
        Ok(o) => o,
        Err(e) => {
            return failed(
                item,
                record,
                FailureKind::BadOutput,
                format!("the action's output is invalid: {e}"),
            );
        }
    };
    if let Some(capability) = output.unsupported {
        let message = format!(
            "the action asked for {capability}, which this server does not support; the login was refused"
        );
        record.fail(FailureKind::Unsupported, message.clone());
        return Step::End(TriggerOutcome::Deny {
            message,
            code: None,
        });
    }
    if let Some(denial) = output.denied {
        record.outcome = Outcome::Denied;
        let message = crate::rules::patch::clean_message(&denial.reason);
        return Step::End(TriggerOutcome::Deny {
            message,
            code: denial.code,
        });
    }
    let mut notes = Vec::new();
    let context = match &mut state.context {
        Value::Object(map) => map,
        other => {
            *other = json!({});
            other.as_object_mut().expect("just made")
        }
    };
    for (key, claims, token) in [
        ("idToken", output.id_token, "ID token"),
        ("accessToken", output.access_token, "access token"),
    ] {
        if claims.is_empty() {
            continue;
        }
        let target = context.entry(key).or_insert_with(|| json!({}));
        if !target.is_object() {
            *target = json!({});
        }
        if let Value::Object(map) = target {
            set_claims(map, claims, token, &mut notes);
        }
    }
    if !output.scopes.is_empty() {
        let mut scope: Vec<String> = context
            .get("accessToken")
            .and_then(|a| a.get("scope"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        let mut added: Vec<String> = context
            .get("addedScopes")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        for (op, name) in output.scopes {
            if op == "+" {
                if !scope.contains(&name) {
                    scope.push(name.clone());
                    added.push(name);
                }
            } else {
                scope.retain(|s| *s != name);
                added.retain(|s| *s != name);
            }
        }
        let access = context.entry("accessToken").or_insert_with(|| json!({}));
        access["scope"] = json!(scope);
        context.insert("addedScopes".into(), json!(added));
    }
    if !output.app_metadata.is_empty() {
        set_metadata(&mut state.user["app_metadata"], output.app_metadata);
    }
    if !output.user_metadata.is_empty() {
        set_metadata(&mut state.user["user_metadata"], output.user_metadata);
    }
    state.cache_changes.extend(output.cache);
    record.logs.extend(notes.into_iter().map(LogLine::warn));
    match output.redirect {
        Some(RedirectRequest { url, query }) => {
            let mut target = match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => u,
                _ => {
                    return failed(
                        item,
                        record,
                        FailureKind::BadOutput,
                        format!("api.redirect.sendUserTo: {url:?} is not an http(s) URL"),
                    );
                }
            };
            {
                let mut pairs = target.query_pairs_mut();
                for (k, v) in &query {
                    if k != "state" {
                        pairs.append_pair(k, v);
                    }
                }
                pairs.append_pair("state", cx.resume_state);
            }
            Step::End(TriggerOutcome::Redirect {
                url: target.to_string(),
                resume: Box::new(Resume {
                    action_id: item.id.clone(),
                    rules: false,
                    redirects: cx.redirects + 1,
                    state: cx.resume_state.to_string(),
                    transaction_id: cx.transaction_id.to_string(),
                    user: state.user.clone(),
                    original_metadata: [Value::Null, Value::Null],
                    tokens: json!({
                        "idToken": state.context["idToken"],
                        "accessToken": state.context["accessToken"],
                        "addedScopes": state.context["addedScopes"],
                    }),
                    executed_rules: state.executed_rules.clone(),
                }),
            })
        }
        None => Step::Next,
    }
}
