//! ABI v1 glue: reading the input, calling the rule, writing the output.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Configuration, Context, Deny, RuleErrorBody, RuleInput, User};

/// The signature of a rule.
pub type RuleFn = fn(&mut User, &mut Context, &Configuration) -> Result<(), Deny>;

#[derive(Serialize)]
struct UserPatch<'a> {
    app_metadata: &'a serde_json::Map<String, Value>,
    user_metadata: &'a serde_json::Map<String, Value>,
}

#[derive(Serialize)]
struct ContextPatch<'a> {
    #[serde(rename = "idToken")]
    id_token: &'a crate::IdToken,
    #[serde(rename = "accessToken")]
    access_token: &'a crate::AccessToken,
}

#[derive(Serialize)]
struct Patch<'a> {
    user: UserPatch<'a>,
    context: ContextPatch<'a>,
}

/// Runs a rule on ABI v1 input JSON and returns ABI v1 output JSON, exactly as the wasm export
/// does. Useful to test a rule end to end without a server.
///
/// The output carries only what the server honours (metadata, token claims and scopes), which
/// keeps it small.
pub fn run_json(rule: RuleFn, input: &[u8]) -> Vec<u8> {
    let mut input: RuleInput = match serde_json::from_slice(input) {
        Ok(i) => i,
        Err(e) => return error_json(&format!("the rule could not read its input: {e}")),
    };
    // Keys present before the rule ran: a key the rule removed goes out as `null`, which the
    // merge patch turns into a removal.
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<String>>();
    let before = [
        keys(&input.user.app_metadata),
        keys(&input.user.user_metadata),
        keys(&input.context.id_token.claims),
        keys(&input.context.access_token.claims),
    ];
    match rule(&mut input.user, &mut input.context, &input.configuration) {
        Ok(()) => {
            let RuleInput {
                mut user,
                mut context,
                ..
            } = input;
            for (map, before) in [
                (&mut user.app_metadata, &before[0]),
                (&mut user.user_metadata, &before[1]),
                (&mut context.id_token.claims, &before[2]),
                (&mut context.access_token.claims, &before[3]),
            ] {
                for k in before {
                    if !map.contains_key(k) {
                        map.insert(k.clone(), Value::Null);
                    }
                }
            }
            serde_json::to_vec(&Patch {
                user: UserPatch {
                    app_metadata: &user.app_metadata,
                    user_metadata: &user.user_metadata,
                },
                context: ContextPatch {
                    id_token: &context.id_token,
                    access_token: &context.access_token,
                },
            })
            .unwrap_or_else(|e| {
                error_json(&format!("the rule's output could not be serialized: {e}"))
            })
        }
        Err(deny) => serde_json::to_vec(&serde_json::json!({
            "error": RuleErrorBody { kind: "unauthorized".into(), message: deny.message }
        }))
        .unwrap_or_default(),
    }
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
