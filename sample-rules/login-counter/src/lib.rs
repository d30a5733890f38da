//! Counts the user's logins in `user_metadata.login_count` (refreshes are not logins).

use rules_sdk::{Configuration, Context, Deny, User, Value};

/// The rule.
pub fn login_counter(user: &mut User, context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
    if context.protocol != "oidc-basic-profile" {
        return Ok(());
    }
    let count = user.user_metadata.get("login_count").and_then(Value::as_i64).unwrap_or(0) + 1;
    user.user_metadata.insert("login_count".into(), count.into());
    rules_sdk::log::info(&format!("login number {count}"));
    Ok(())
}

rules_sdk::export_rule!(login_counter);

#[cfg(test)]
mod tests {
    use rules_sdk::json;

    use super::*;

    #[test]
    fn logins_are_counted_but_refreshes_are_not() {
        let mut user = User::default();
        let mut login = Context { protocol: "oidc-basic-profile".into(), ..Context::default() };
        login_counter(&mut user, &mut login, &Configuration::default()).unwrap();
        login_counter(&mut user, &mut login, &Configuration::default()).unwrap();
        let mut refresh = Context { protocol: "oauth2-refresh-token".into(), ..Context::default() };
        login_counter(&mut user, &mut refresh, &Configuration::default()).unwrap();
        assert_eq!(user.user_metadata["login_count"], json!(2));
    }
}
