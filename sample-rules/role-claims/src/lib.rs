//! Puts the names of the user's roles (assigned with the Management API's `/users/{id}/roles`)
//! into both tokens, and refuses users holding the role `suspended`: the RBAC pattern of Auth0
//! rules, on `context.authorization.roles`.

use rules_sdk::{Configuration, Context, Deny, User};

/// The claim name.
pub const CLAIM: &str = "https://wardstone.dev/roles";

/// The rule.
pub fn role_claims(_user: &mut User, context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
    let roles = context.authorization.roles.clone();
    if roles.iter().any(|r| r == "suspended") {
        return Err(Deny::new("this account is suspended"));
    }
    context.id_token.set_claim(CLAIM, roles.clone());
    context.access_token.set_claim(CLAIM, roles);
    Ok(())
}

rules_sdk::export_rule!(role_claims);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_become_claims_and_suspended_is_refused() {
        let mut context = Context::default();
        context.authorization.roles = vec!["admin".into()];
        role_claims(&mut User::default(), &mut context, &Configuration::default()).unwrap();
        assert_eq!(context.id_token.claims[CLAIM], serde_json::json!(["admin"]));
        context.authorization.roles.push("suspended".into());
        assert!(role_claims(&mut User::default(), &mut context, &Configuration::default()).is_err());
    }
}
