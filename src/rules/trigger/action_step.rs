//! One action's execution within a run: its event and facts, what it asked of the `api` applied,
//! a redirect turned into a pause.

use super::*;

/// The input of one action: which handler, the event, and the facts its `api` needs. The
/// event's dynamic member and the facts are serialized again only after an action changed
/// them ([`forget_changed_texts`]).
fn action_input(
    item: &PreparedItem,
    entry: &str,
    cx: &RunContext<'_>,
    state: &mut RunState,
) -> Vec<u8> {
    let dynamic = match &state.action_texts.dynamic {
        Some(text) => text,
        None => {
            let value = match cx.trigger {
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
            state
                .action_texts
                .dynamic
                .insert(DynamicMember::new(cx.trigger, &value))
        }
    };
    let facts = match &state.action_texts.facts {
        Some(text) => text,
        None => {
            let facts = json!({
                "cache": cx.cache.snapshot_with(cx.tenant_id, cx.trigger, cx.now * 1000, &state.cache_changes),
                "executed_rules": state.executed_rules,
                "can_redirect": cx.can_redirect,
                "resume_state": cx.resume_state,
                "continue_state": cx.continue_state,
                "issuer": cx.issuer,
                "subject": cx.subject,
                "ip": cx.ip,
            });
            state.action_texts.facts.insert(facts.to_string())
        }
    };
    let empty;
    let frame = match cx.event {
        Some(frame) => frame,
        None => {
            empty = EventFrame::of_event(cx.trigger, serde_json::Map::new()).0;
            &empty
        }
    };
    frame.action_input(entry, cx.trigger.as_str(), dynamic, &item.secrets, facts)
}

/// Drops the texts an action's output makes stale: `event.user` after a metadata change
/// (post-login), `event.accessToken` after a claim or scope change (credentials-exchange),
/// the facts after a cache change.
fn forget_changed_texts(trigger: TriggerId, output: &ActionOutput, texts: &mut ActionTexts) {
    let dynamic_changed = match trigger {
        TriggerId::PostLogin => !output.app_metadata.is_empty() || !output.user_metadata.is_empty(),
        TriggerId::CredentialsExchange => {
            !output.access_token.is_empty() || !output.scopes.is_empty()
        }
    };
    if dynamic_changed {
        texts.dynamic = None;
    }
    if !output.cache.is_empty() {
        texts.facts = None;
    }
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
    forget_changed_texts(cx.trigger, &output, &mut state.action_texts);
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
