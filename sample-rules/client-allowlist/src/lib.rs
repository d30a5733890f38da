//! Lets users log in only to the applications listed in the `ALLOWED_CLIENT_IDS` setting
//! (comma-separated). Without the setting, nobody gets in: an allow-list fails closed.

use rules_sdk::{Configuration, Context, Deny, User};

/// The setting holding the allowed client ids.
pub const SETTING: &str = "ALLOWED_CLIENT_IDS";

/// The rule.
pub fn client_allowlist(_user: &mut User, context: &mut Context, config: &Configuration) -> Result<(), Deny> {
    let Some(list) = config.get(SETTING) else {
        rules_sdk::log::error("ALLOWED_CLIENT_IDS is not set; denying");
        return Err(Deny::new("This application is not allowed to sign users in."));
    };
    if list.split(',').map(str::trim).any(|id| id == context.client_id) {
        Ok(())
    } else {
        Err(Deny::new(format!("Application {} is not allowed to sign users in.", context.client_name)))
    }
}

rules_sdk::export_rule!(client_allowlist);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(list: &str) -> Configuration {
        Configuration([(SETTING.to_string(), list.to_string())].into_iter().collect())
    }

    #[test]
    fn only_listed_clients_pass() {
        let mut context = Context { client_id: "abc".into(), ..Context::default() };
        assert!(client_allowlist(&mut User::default(), &mut context, &config("x, abc")).is_ok());
        assert!(client_allowlist(&mut User::default(), &mut context, &config("x,y")).is_err());
        assert!(client_allowlist(&mut User::default(), &mut context, &Configuration::default()).is_err());
    }
}
