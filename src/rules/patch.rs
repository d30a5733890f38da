//! What a rule's output may change, and how: RFC 7396 merge patches on the writable members of
//! `user` and `context`, host-owned fields held unchanged, restricted claims dropped, and the
//! requests Wardstone cannot honour (MFA, redirects) recognised so the login fails closed. Also
//! the rule input, serialized once per trigger run and patched per rule.

use serde_json::{Map, Value};

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

/// The members of `user` and `context` a rule may change, written after the others (which
/// keep their sorted order) in every input. The SDK's decoders list their fields in exactly
/// this order and recognise each next key by comparing words (rules-sdk/src/types.rs):
/// reordering here keeps rules correct but makes every SDK rule slower.
pub(crate) const USER_WRITABLE: &[&str] = &["app_metadata", "user_metadata"];
pub(crate) const CONTEXT_WRITABLE: &[&str] = &["idToken", "accessToken"];

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

pub(crate) fn drop_restricted(
    claims: &mut Map<String, Value>,
    token: &str,
    keep_scope: bool,
    notes: &mut Vec<String>,
) {
    // A token holds a few claims, mostly namespaced URLs: looking each up in the short list
    // is cheaper than searching the map for every restricted name, on every rule.
    let restricted =
        |k: &String| RESTRICTED_CLAIMS.contains(&k.as_str()) && !(keep_scope && k == "scope");
    if !claims.keys().any(restricted) {
        return;
    }
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
pub(crate) enum NotApplied {
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
/// (SPEC §17); `None` when the output asks for none of them. `context.redirect` is honoured in
/// an interactive login (`can_redirect`) and refused anywhere else (a refresh).
pub fn unsupported_request(
    context_patch: &Map<String, Value>,
    can_redirect: bool,
) -> Option<String> {
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
    if !can_redirect && context_patch.get("redirect").is_some_and(|r| !r.is_null()) {
        return Some(
            "a rule asked to redirect the user (context.redirect) where no browser can follow \
             (a refresh or a machine grant); the login was refused"
                .into(),
        );
    }
    None
}

/// What a rule did to `context.redirect`: set it (to a checked absolute http(s) URL), cleared
/// it (`null`), or left it. A URL that is none is unsupported, not malformed: a rule with
/// `on_failure: skip` must not pass the login without the redirect it asked for.
fn redirect_of(patch: &Map<String, Value>) -> Result<Option<Option<String>>, NotApplied> {
    match patch.get("redirect") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(redirect) => {
            let url = redirect
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(Some(url.to_string()))),
                _ => Err(NotApplied::Unsupported(format!(
                    "context.redirect.url must be an absolute http(s) URL, not {url:?}; the login was refused"
                ))),
            }
        }
    }
}

/// Applies one rule's output.
pub(crate) fn apply(
    output: &Map<String, Value>,
    user: &mut Value,
    context: &mut Value,
    can_redirect: bool,
) -> Result<Vec<String>, NotApplied> {
    let mut redirect = None;
    if let Some(Value::Object(patch)) = output.get("context") {
        if let Some(why) = unsupported_request(patch, can_redirect) {
            return Err(NotApplied::Unsupported(why));
        }
        redirect = redirect_of(patch)?;
    }
    // Later rules see it (Auth0's rule-utilities check it before redirecting themselves) and
    // may clear it; the trigger sends the browser there once every rule has run.
    if let Some(change) = redirect
        && let Value::Object(context) = &mut *context
    {
        match change {
            Some(url) => context.insert("redirect".into(), serde_json::json!({ "url": url })),
            None => context.remove("redirect"),
        };
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
            Some(Value::Object(p)) if key == "context" && p.contains_key("redirect") => {
                let mut p = p.clone();
                p.remove("redirect");
                patch_object(target, &p, writable, key, &mut notes)
            }
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
pub(crate) fn clean_message(message: &str) -> String {
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
pub(crate) struct InputFrame {
    user_head: Vec<u8>,
    context_head: Vec<u8>,
    configuration: String,
}

/// `"key":value` appended to `out` (serde's writer straight into the buffer: no `fmt`).
fn write_member(out: &mut Vec<u8>, key: &str, value: &Value) {
    // Writing JSON into a Vec cannot fail: strings and maps of strings always serialize.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, value);
}

/// `{"a":1,"b":2}` without the members in `skip`, and without its closing brace.
fn head_without(value: &Value, skip: &[&str]) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    head.push(b'{');
    if let Value::Object(map) = value {
        for (k, v) in map.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            if head.len() > 1 {
                head.push(b',');
            }
            write_member(&mut head, k, v);
        }
    }
    head
}

impl InputFrame {
    pub(crate) fn new(user: &Value, context: &Value, configuration: &str) -> Self {
        InputFrame {
            user_head: head_without(user, USER_WRITABLE),
            context_head: head_without(context, CONTEXT_WRITABLE),
            configuration: configuration.to_string(),
        }
    }

    pub(crate) fn input(&self, user: &Value, context: &Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.user_head.len() + self.context_head.len() + self.configuration.len() + 512,
        );
        let object = |out: &mut Vec<u8>, head: &[u8], value: &Value, members: &[&str]| {
            out.extend_from_slice(head);
            let mut first = head.len() == 1;
            for m in members {
                if let Some(v) = value.get(*m) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_member(out, m, v);
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
        let notes = apply(output.as_object().unwrap(), &mut user, &mut context, false).unwrap();
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
    fn the_input_frame_writes_compact_json_with_escapes_head_first() {
        let user = json!({"a\"b": "x\ny", "app_metadata": {"é": "\u{1}"}, "z": 1});
        let context = json!({"idToken": {"k\\": true}, "tenant": "t"});
        let frame = InputFrame::new(&user, &context, "{}");
        assert_eq!(
            String::from_utf8(frame.input(&user, &context)).unwrap(),
            r#"{"user":{"a\"b":"x\ny","z":1,"app_metadata":{"é":"\u0001"}},"context":{"tenant":"t","idToken":{"k\\":true}},"configuration":{}}"#
        );
    }

    #[test]
    fn restricted_claims_are_dropped_from_each_token_as_it_allows() {
        let object = |v: Value| v.as_object().cloned().unwrap();
        let mut notes = Vec::new();
        // An ID token may not carry `scope`; an access token keeps its own.
        let mut id = object(json!({"scope": "x", "https://x/a": 1}));
        drop_restricted(&mut id, "ID token", false, &mut notes);
        assert_eq!(Value::Object(id), json!({"https://x/a": 1}));
        assert_eq!(notes.len(), 1);
        let mut access = object(json!({"scope": ["openid"], "sub": "evil"}));
        drop_restricted(&mut access, "access token", true, &mut notes);
        assert_eq!(Value::Object(access), json!({"scope": ["openid"]}));
        assert_eq!(notes.len(), 2);
        // Nothing restricted: nothing changes, nothing is noted.
        let plain = object(json!({"https://x/a": 1, "https://x/b": [2], "scope": ["openid"]}));
        let mut kept = plain.clone();
        drop_restricted(&mut kept, "access token", true, &mut notes);
        assert_eq!(kept, plain);
        assert_eq!(notes.len(), 2);
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
                apply(output.as_object().unwrap(), &mut user, &mut context, false).is_err(),
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
