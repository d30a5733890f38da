//! Adds the user's roles (`app_metadata.roles`) to the ID and access tokens as a namespaced claim.

use rules_sdk::{Configuration, Context, Deny, User, Value};

/// The claim name. Custom claims are namespaced so they never collide with registered ones.
pub const CLAIM: &str = "https://wardstone.dev/roles";

/// The rule.
pub fn add_roles(user: &mut User, context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
    let roles = match user.app_metadata.get("roles") {
        Some(Value::Array(roles)) => roles.iter().filter(|r| r.is_string()).cloned().collect(),
        _ => Vec::new(),
    };
    context.id_token.set_claim(CLAIM, roles.clone());
    context.access_token.set_claim(CLAIM, roles);
    Ok(())
}

rules_sdk::export_rule!(add_roles);

#[cfg(test)]
mod tests {
    use rules_sdk::json;

    use super::*;

    #[test]
    fn roles_go_into_both_tokens() {
        let mut user = User::default();
        user.app_metadata.insert("roles".into(), json!(["admin", 7, "editor"]));
        let mut context = Context::default();
        add_roles(&mut user, &mut context, &Configuration::default()).unwrap();
        assert_eq!(context.id_token.claims[CLAIM], json!(["admin", "editor"]));
        assert_eq!(context.access_token.claims[CLAIM], json!(["admin", "editor"]));
    }

    #[test]
    fn no_roles_means_an_empty_list() {
        let mut context = Context::default();
        add_roles(&mut User::default(), &mut context, &Configuration::default()).unwrap();
        assert_eq!(context.id_token.claims[CLAIM], json!([]));
    }
}
