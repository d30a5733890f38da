//! Refuses users whose email address is not verified.

use rules_sdk::{Configuration, Context, Deny, User};

/// The rule.
pub fn require_verified_email(user: &mut User, _context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
    if !user.email_verified {
        rules_sdk::log::info("denied: email not verified");
        return Err(Deny::new("Please verify your email address before logging in."));
    }
    Ok(())
}

rules_sdk::export_rule!(require_verified_email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_users_are_denied() {
        let mut user = User::default();
        let err = require_verified_email(&mut user, &mut Context::default(), &Configuration::default()).unwrap_err();
        assert!(err.message.contains("verify"));
        user.email_verified = true;
        assert!(require_verified_email(&mut user, &mut Context::default(), &Configuration::default()).is_ok());
    }
}
