//! ABI v1 glue: reading the input, calling the rule, writing the output.

use serde_json::{Map, Value};

use crate::json::{self, Reader};
use crate::{Configuration, Context, Deny, RuleInput, User};

/// The signature of a rule.
pub type RuleFn = fn(&mut User, &mut Context, &Configuration) -> Result<(), Deny>;

/// The keys of a JSON object's text.
fn keys_of(raw: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(raw) = raw {
        let _ = Reader::new(raw).object(|r, key| {
            keys.push(key.to_owned());
            r.skip().map(|_| ())
        });
    }
    keys
}

/// `map` as an object, with `null` for each of `before` it no longer has: the merge patch then
/// removes them.
fn write_with_removals(out: &mut Vec<u8>, map: &Map<String, Value>, before: &[String]) {
    json::write_map(out, map.iter());
    let removed = before.iter().filter(|k| !map.contains_key(k.as_str()));
    for (i, k) in removed.enumerate() {
        // Reopen the object written above: `{...}` becomes `{..., "k": null}`.
        out.pop();
        if i > 0 || !map.is_empty() {
            out.push(b',');
        }
        json::write_str(out, k);
        out.extend_from_slice(b":null}");
    }
}

/// Runs a rule on ABI v1 input JSON and returns ABI v1 output JSON, exactly as the wasm export
/// does. Useful to test a rule end to end without a server.
///
/// The output carries only what the server honours and the rule may have changed: the token
/// claims and scopes, and the metadata objects the rule wrote to.
pub fn run_json(rule: RuleFn, input_bytes: &[u8]) -> Vec<u8> {
    let mut input = RuleInput::default();
    let parsed = match input_text(input_bytes) {
        Ok(text) => json::read_into(text, &mut input)
            .map_err(|e| json::describe("the rule could not read its input", e)),
        Err(_) => Err("the rule could not read its input: it is not UTF-8".to_owned()),
    };
    if let Err(message) = parsed {
        return error_json(&message);
    }
    // The metadata texts as received: a rule may replace a whole object, and the keys it had
    // then go out as `null`.
    let metadata_before = [
        input.user.app_metadata.received().map(Box::<str>::from),
        input.user.user_metadata.received().map(Box::<str>::from),
    ];
    // Claims present before the rule ran: a claim the rule removed goes out as `null`.
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<String>>();
    let id_before = keys(&input.context.id_token.claims);
    let access_before = keys(&input.context.access_token.claims);
    let output = match rule(&mut input.user, &mut input.context, &input.configuration) {
        Ok(()) => patch_json(&input, &metadata_before, &id_before, &access_before),
        Err(deny) => {
            let mut out = b"{\"error\":{\"kind\":\"unauthorized\",\"message\":".to_vec();
            json::write_str(&mut out, &deny.message);
            out.extend_from_slice(b"}}");
            out
        }
    };
    // The instance is thrown away after this execution: walking the input's maps to free
    // memory that is never reused would only cost time.
    #[cfg(target_arch = "wasm32")]
    std::mem::forget(input);
    output
}

/// `{"user": {<changed metadata>}?, "context": {"idToken": {...}, "accessToken": {...}}}`.
fn patch_json(
    input: &RuleInput,
    metadata_before: &[Option<Box<str>>; 2],
    id_before: &[String],
    access_before: &[String],
) -> Vec<u8> {
    let (user, context) = (&input.user, &input.context);
    let mut out = Vec::with_capacity(512);
    out.push(b'{');
    let changed = [
        ("app_metadata", &user.app_metadata),
        ("user_metadata", &user.user_metadata),
    ];
    if changed.iter().any(|(_, m)| m.changed()) {
        out.extend_from_slice(b"\"user\":{");
        let mut first = true;
        for ((name, metadata), before) in changed.into_iter().zip(metadata_before) {
            if metadata.changed() {
                if !first {
                    out.push(b',');
                }
                first = false;
                json::write_str(&mut out, name);
                out.push(b':');
                // A text that never decoded was never seen: nothing is removed on its behalf.
                let before = if metadata.decode_failed() {
                    None
                } else {
                    before.as_deref()
                };
                write_with_removals(&mut out, metadata, &keys_of(before));
            }
        }
        out.extend_from_slice(b"},");
    }
    out.extend_from_slice(b"\"context\":{\"idToken\":");
    write_with_removals(&mut out, &context.id_token.claims, id_before);
    out.extend_from_slice(b",\"accessToken\":{\"scope\":[");
    for (i, scope) in context.access_token.scope.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::write_str(&mut out, scope);
    }
    out.push(b']');
    // The claims after `scope`, as one object's members.
    let mut claims = Vec::new();
    write_with_removals(&mut claims, &context.access_token.claims, access_before);
    if claims.len() > 2 {
        out.push(b',');
        out.extend_from_slice(claims.get(1..claims.len() - 1).unwrap_or_default());
    }
    out.extend_from_slice(b"}}}");
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

    fn copy_score(user: &mut User, context: &mut Context, _: &Configuration) -> Result<(), Deny> {
        let score = user.app_metadata.get("score").cloned().unwrap_or_default();
        context.id_token.set_claim("https://e.example/score", score);
        context.access_token.claims.remove("https://e.example/old");
        Ok(())
    }

    #[test]
    fn values_pass_through_exactly_and_untouched_parts_are_not_sent_back() {
        let input = br#"{"user":{"user_id":"u","app_metadata":{"score":[0.1,-2.5e-7,1e300,18446744073709551615,"\u00e9\n"]}},
            "context":{"request":{"ip":"203.0.113.9","query":{"a":"b"}},"idToken":{"keep":1},
            "accessToken":{"scope":["openid"],"https://e.example/old":true}},"configuration":{"K":"V"}}"#;
        let out: Value = serde_json::from_slice(&run_json(copy_score, input)).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"context": {
                "idToken": {"keep": 1, "https://e.example/score": [0.1, -2.5e-7, 1e300, 18446744073709551615u64, "é\n"]},
                "accessToken": {"scope": ["openid"], "https://e.example/old": null}
            }})
        );
    }

    #[test]
    fn input_that_is_not_the_abi_is_an_sdk_error_never_a_pass() {
        for input in [
            &b"not json"[..],
            b"{\"user\":{\"user_id\":7},\"context\":{}}",
            b"{\"user\":{},\"context\":{\"accessToken\":{\"scope\":\"openid\"}}}",
            b"{\"user\":{},\"context\":{}} trailing",
            b"\xff\xfe",
        ] {
            let out: Value = serde_json::from_slice(&run_json(drop_plan, input)).unwrap();
            assert_eq!(
                out["error"]["kind"],
                "sdk_error",
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let deep = format!(
            "{{\"user\":{{\"user_id\":\"u\",\"app_metadata\":{{\"plan\":{}{}}}}},\"context\":{{}}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        // Skipped lazily, then refused when the rule reads it: an empty value, not a crash —
        // and none of the keys the rule never saw is removed on its behalf.
        let out: Value = serde_json::from_slice(&run_json(drop_plan, deep.as_bytes())).unwrap();
        assert_eq!(
            out["user"]["user_metadata"],
            serde_json::json!({"seen": true})
        );
        assert_eq!(out["user"]["app_metadata"], serde_json::json!({}));
        // Required fields, as the host's serde types require them.
        for input in [
            &b"{}"[..],
            b"{\"user\":{\"user_id\":\"u\"}}",
            b"{\"user\":{},\"context\":{}}",
        ] {
            let out: Value = serde_json::from_slice(&run_json(read_all, input)).unwrap();
            assert_eq!(
                out["error"]["kind"],
                "sdk_error",
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    fn read_all(_: &mut User, context: &mut Context, _: &Configuration) -> Result<(), Deny> {
        let _ = context.request.ip.len();
        Ok(())
    }

    fn replace_metadata(user: &mut User, _: &mut Context, _: &Configuration) -> Result<(), Deny> {
        user.app_metadata = Map::from_iter([("plan".to_string(), Value::from("free"))]).into();
        Ok(())
    }

    #[test]
    fn assigning_a_whole_metadata_object_replaces_it() {
        let input =
            br#"{"user":{"user_id":"u","app_metadata":{"plan":"pro","roles":[]}},"context":{}}"#;
        let out: Value = serde_json::from_slice(&run_json(replace_metadata, input)).unwrap();
        assert_eq!(
            out["user"]["app_metadata"],
            serde_json::json!({"plan": "free", "roles": null})
        );
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
