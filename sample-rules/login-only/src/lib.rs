//! Acts only on interactive logins (`protocol == "oidc-basic-profile"`), not on token
//! refreshes: marks tokens minted right after a login.

use rules_sdk::{Configuration, Context, Deny, User};

/// The claim name.
pub const CLAIM: &str = "https://wardstone.dev/fresh_login";

/// The rule.
pub fn login_only(_user: &mut User, context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
    if context.protocol != "oidc-basic-profile" {
        rules_sdk::log::debug(&format!("skipped: protocol is {}", context.protocol));
        return Ok(());
    }
    context.id_token.set_claim(CLAIM, true);
    context.access_token.set_claim(CLAIM, true);
    Ok(())
}

rules_sdk::export_rule!(login_only);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_logins_are_marked() {
        let mut login = Context { protocol: "oidc-basic-profile".into(), ..Context::default() };
        login_only(&mut User::default(), &mut login, &Configuration::default()).unwrap();
        assert_eq!(login.id_token.claims[CLAIM], true);
        let mut refresh = Context { protocol: "oauth2-refresh-token".into(), ..Context::default() };
        login_only(&mut User::default(), &mut refresh, &Configuration::default()).unwrap();
        assert!(refresh.id_token.claims.is_empty());
    }
}
