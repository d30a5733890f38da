//! ABI v1 glue: reading the input, calling the rule, writing the output.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Configuration, Context, Deny, RuleErrorBody, RuleInput, User};

/// The signature of a rule.
pub type RuleFn = fn(&mut User, &mut Context, &Configuration) -> Result<(), Deny>;

/// The keys of a JSON object's text.
fn keys_of(raw: Option<&serde_json::value::RawValue>) -> Vec<String> {
    raw.and_then(|r| {
        serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(r.get())
            .ok()
    })
    .map(|m| m.into_keys().collect())
    .unwrap_or_default()
}

/// `map` with `null` for each of `before` it no longer has: the merge patch then removes them.
fn with_removals(map: &Map<String, Value>, before: &[String]) -> Value {
    let mut out = map.clone();
    for k in before {
        if !out.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

#[derive(Serialize)]
struct Patch<'a> {
    #[serde(skip_serializing_if = "Map::is_empty")]
    user: Map<String, Value>,
    context: ContextPatch<'a>,
}

#[derive(Serialize)]
struct ContextPatch<'a> {
    #[serde(rename = "idToken")]
    id_token: Value,
    #[serde(rename = "accessToken")]
    access_token: &'a crate::AccessToken,
}

/// Runs a rule on ABI v1 input JSON and returns ABI v1 output JSON, exactly as the wasm export
/// does. Useful to test a rule end to end without a server.
///
/// The output carries only what the server honours and the rule may have changed: the token
/// claims and scopes, and the metadata objects the rule wrote to.
pub fn run_json(rule: RuleFn, input: &[u8]) -> Vec<u8> {
    let parsed = input_text(input)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<RuleInput>(text).map_err(|e| e.to_string()));
    let mut input = match parsed {
        Ok(i) => i,
        Err(e) => return error_json(&format!("the rule could not read its input: {e}")),
    };
    // Claims present before the rule ran: a claim the rule removed goes out as `null`.
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<String>>();
    let id_before = keys(&input.context.id_token.claims);
    let access_before = keys(&input.context.access_token.claims);
    let output = match rule(&mut input.user, &mut input.context, &input.configuration) {
        Ok(()) => patch_json(&mut input, &id_before, &access_before),
        Err(deny) => serde_json::to_vec(&serde_json::json!({
            "error": RuleErrorBody { kind: "unauthorized".into(), message: deny.message }
        }))
        .unwrap_or_default(),
    };
    // The instance is thrown away after this execution: walking the input's maps to free
    // memory that is never reused would only cost time.
    #[cfg(target_arch = "wasm32")]
    std::mem::forget(input);
    output
}

fn patch_json(input: &mut RuleInput, id_before: &[String], access_before: &[String]) -> Vec<u8> {
    let (user, context) = (&input.user, &mut input.context);
    let mut user_patch = Map::new();
    for (name, metadata) in [
        ("app_metadata", &user.app_metadata),
        ("user_metadata", &user.user_metadata),
    ] {
        if metadata.changed() {
            let before = keys_of(metadata.received());
            user_patch.insert(name.into(), with_removals(metadata, &before));
        }
    }
    for k in access_before {
        if !context.access_token.claims.contains_key(k) {
            context.access_token.claims.insert(k.clone(), Value::Null);
        }
    }
    let patch = Patch {
        user: user_patch,
        context: ContextPatch {
            id_token: with_removals(&context.id_token.claims, id_before),
            access_token: &context.access_token,
        },
    };
    let out = serde_json::to_vec(&patch)
        .unwrap_or_else(|e| error_json(&format!("the rule's output could not be serialized: {e}")));
    #[cfg(target_arch = "wasm32")]
    std::mem::forget(patch);
    out
}

/// The input as text. Parsing from `str` skips the UTF-8 check of every string; inside the
/// sandbox the host guarantees UTF-8 (ABI v1), so the whole-input check is skipped too.
fn input_text(input: &[u8]) -> Result<&str, std::str::Utf8Error> {
    #[cfg(target_arch = "wasm32")]
    {
        // SAFETY: ABI v1's host writes UTF-8 JSON (it serializes it from Rust strings); a host
        // that did not could only confuse this rule inside its own sandbox.
        Ok(unsafe { std::str::from_utf8_unchecked(input) })
    }
    #[cfg(not(target_arch = "wasm32"))]
    std::str::from_utf8(input)
}

fn error_json(message: &str) -> Vec<u8> {
    // Reported as malformed by the host, which fails the login closed.
    crate::log::error(message);
    b"{\"error\":{\"kind\":\"sdk_error\",\"message\":\"\"}}".to_vec()
}

/// `alloc(len)`: memory the host writes the input into. The module's instance lives for one
/// execution only, so this memory is simply never freed.
#[doc(hidden)]
pub fn guest_alloc(len: i32) -> i32 {
    let buf: Vec<u8> = Vec::with_capacity(len.max(0) as usize);
    let mut buf = std::mem::ManuallyDrop::new(buf);
    buf.as_mut_ptr() as usize as i32
}

/// `rule(ptr, len)`: runs the rule and returns `(out_ptr << 32) | out_len`.
#[doc(hidden)]
pub fn guest_rule(ptr: i32, len: i32, rule: RuleFn) -> i64 {
    // SAFETY: the host wrote `len` bytes at `ptr`, a region `guest_alloc` handed out.
    let input =
        unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len.max(0) as usize) };
    let output = std::mem::ManuallyDrop::new(run_json(rule, input));
    ((output.as_ptr() as usize as i64) << 32) | (output.len() as i64 & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_plan(user: &mut User, _: &mut Context, _: &Configuration) -> Result<(), Deny> {
        user.app_metadata.remove("plan");
        user.user_metadata.insert("seen".into(), Value::Bool(true));
        Ok(())
    }

    #[test]
    fn removed_keys_are_sent_as_null_so_the_host_removes_them() {
        let input = br#"{"user":{"user_id":"u","app_metadata":{"plan":"pro","roles":[]}},"context":{},"configuration":{}}"#;
        let out: Value = serde_json::from_slice(&run_json(drop_plan, input)).unwrap();
        assert_eq!(
            out["user"]["app_metadata"],
            serde_json::json!({"plan": null, "roles": []})
        );
        assert_eq!(
            out["user"]["user_metadata"],
            serde_json::json!({"seen": true})
        );
    }
}
