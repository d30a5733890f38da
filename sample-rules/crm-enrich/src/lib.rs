//! Enriches both tokens from the tenant's own CRM over HTTP (`wardstone.http_fetch`): the most
//! common Auth0 rule pattern, done through the tenant's allow-list.
//!
//! Settings: `CRM_URL` (e.g. `https://crm.example.com/people`; its host must be on the tenant's
//! allow-list). `GET {CRM_URL}/{user_id}` answering `{"tier": "gold"}` puts
//! `https://wardstone.dev/tier` in both tokens; `{"blocked": true}` denies the login. When the
//! CRM is unreachable or answers an error, the rule logs a warning and lets the login go on
//! without the claim — this rule chooses to fail open on the CRM's failures itself.

use rules_sdk::http::{self, Request};
use rules_sdk::{Configuration, Context, Deny, User};

/// The claim name.
pub const CLAIM: &str = "https://wardstone.dev/tier";

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The rule.
pub fn crm_enrich(user: &mut User, context: &mut Context, config: &Configuration) -> Result<(), Deny> {
    let Some(base) = config.get("CRM_URL") else {
        rules_sdk::log::warn("CRM_URL is not set; no enrichment");
        return Ok(());
    };
    let url = format!("{}/{}", base.trim_end_matches('/'), percent_encode(&user.user_id));
    let response = match http::fetch(&Request::get(url).header("accept", "application/json")) {
        Ok(r) => r,
        Err(e) => {
            rules_sdk::log::warn(&format!("CRM unreachable, going on without it: {e}"));
            return Ok(());
        }
    };
    match response.status {
        200 => {}
        404 => return Ok(()),
        other => {
            rules_sdk::log::warn(&format!("CRM answered {other}; going on without it"));
            return Ok(());
        }
    }
    let person: serde_json::Value = match response.json() {
        Ok(v) => v,
        Err(e) => {
            rules_sdk::log::warn(&e);
            return Ok(());
        }
    };
    if person["blocked"] == true {
        return Err(Deny::new("This account is closed."));
    }
    if let Some(tier) = person["tier"].as_str() {
        context.id_token.set_claim(CLAIM, tier);
        context.access_token.set_claim(CLAIM, tier);
    }
    Ok(())
}

rules_sdk::export_rule!(crm_enrich);

#[cfg(test)]
mod tests {
    use super::*;
    use rules_sdk::http::Response;

    fn config() -> Configuration {
        Configuration([("CRM_URL".to_string(), "https://crm.example.com/people/".to_string())].into())
    }

    #[test]
    fn a_tier_becomes_a_claim_and_a_closed_account_is_denied() {
        http::mock(|r| {
            assert_eq!(r.url, "https://crm.example.com/people/auth0%7Cabc");
            Ok(Response { status: 200, headers: Default::default(), body: r#"{"tier":"gold"}"#.into() })
        });
        let mut user = User { user_id: "auth0|abc".into(), ..User::default() };
        let mut context = Context::default();
        crm_enrich(&mut user, &mut context, &config()).unwrap();
        assert_eq!(context.id_token.claims[CLAIM], "gold");

        http::mock(|_| Ok(Response { status: 200, headers: Default::default(), body: r#"{"blocked":true}"#.into() }));
        assert!(crm_enrich(&mut user, &mut Context::default(), &config()).is_err());
    }

    #[test]
    fn an_unreachable_crm_lets_the_login_go_on() {
        http::mock(|_| Err("timeout".into()));
        let mut context = Context::default();
        crm_enrich(&mut User::default(), &mut context, &config()).unwrap();
        assert!(context.id_token.claims.is_empty());
    }
}
