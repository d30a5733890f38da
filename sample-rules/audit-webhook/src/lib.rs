//! Tells an audit service about every login (`POST {AUDIT_URL}` with the user, application and
//! address). A login must not wait for, or fail because of, an audit service: upload this rule
//! with `--on-failure skip` (API: `"on_failure": "skip"`). When the call fails, the rule
//! *fails* — so the failure is in the execution log with `skipped: true` and counted in
//! `wardstone_rule_failures_skipped` — and the login goes on without this rule.

use rules_sdk::http::{self, Request};
use rules_sdk::{Configuration, Context, Deny, User, json};

/// The rule.
pub fn audit_webhook(user: &mut User, context: &mut Context, config: &Configuration) -> Result<(), Deny> {
    let url = config.get("AUDIT_URL").expect("AUDIT_URL is set");
    let event = json!({
        "type": "login",
        "user_id": user.user_id,
        "client_id": context.client_id,
        "ip": context.request.ip,
        "protocol": context.protocol,
    });
    match http::fetch(&Request::post_json(url, &event)) {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        // Failing (not denying) is the point: with on_failure "skip" the login goes on and
        // the log keeps why.
        Ok(r) => panic!("the audit service answered {}", r.status),
        Err(e) => panic!("the audit service is unreachable: {e}"),
    }
}

rules_sdk::export_rule!(audit_webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use rules_sdk::http::Response;

    #[test]
    fn posts_the_login_and_fails_when_the_service_does() {
        let config = Configuration([("AUDIT_URL".to_string(), "https://audit.example.com/e".to_string())].into());
        http::mock(|r| {
            assert_eq!(r.method, "POST");
            assert!(r.body.as_deref().unwrap().contains("\"type\":\"login\""));
            Ok(Response { status: 204, headers: Default::default(), body: String::new() })
        });
        audit_webhook(&mut User::default(), &mut Context::default(), &config).unwrap();
        http::mock(|_| Err("refused".into()));
        let failed = std::panic::catch_unwind(|| {
            audit_webhook(&mut User::default(), &mut Context::default(), &config)
        });
        assert!(failed.is_err());
    }
}
