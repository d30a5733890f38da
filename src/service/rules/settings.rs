//! Rule settings (Auth0's rules configs): sealed key/value pairs every rule of the tenant reads.

use super::*;

/// A setting's key and value as `set_rule_config` accepts them.
pub(crate) fn check_config(key: &str, value: &str) -> Result<(), AdminError> {
    check_key(key)?;
    if value.len() > 10 * 1024 {
        return Err(AdminError::Invalid(
            "setting values are limited to 10 KiB".into(),
        ));
    }
    Ok(())
}

/// A setting key: 1–100 letters, digits, `_` or `-`.
pub(super) fn check_key(key: &str) -> Result<(), AdminError> {
    let ok = !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(AdminError::Invalid(format!(
            "invalid setting key {key:?}: use 1 to 100 letters, digits, '_' or '-'"
        )));
    }
    Ok(())
}

impl Admin {
    /// Sets a rule setting; the value is encrypted at rest and never shown again.
    pub async fn set_rule_config(
        &self,
        tenant: &Tenant,
        key: &str,
        value: &str,
    ) -> Result<(), AdminError> {
        check_config(key, value)?;
        let sealed = self
            .master_key
            .seal(&Rules::config_aad(&tenant.id, key), value.as_bytes());
        let limits = self.rules_service().engine().limits();
        self.store
            .set_rule_config(
                &tenant.id,
                key,
                &sealed,
                (sealed.len() - value.len()) as i64,
                limits.configs_per_tenant,
                limits.config_bytes_per_tenant as i64,
                self.clock.now(),
            )
            .await
            .map_err(internal)?
            .map_err(AdminError::LimitReached)
    }

    /// Removes a rule setting.
    pub async fn unset_rule_config(&self, tenant: &Tenant, key: &str) -> Result<(), AdminError> {
        check_key(key)?;
        if !self
            .store
            .unset_rule_config(&tenant.id, key)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("setting {key:?} is not set")));
        }
        Ok(())
    }

    /// The keys of the tenant's rule settings (never the values).
    pub async fn rule_config_keys(&self, tenant: &Tenant) -> Result<Vec<String>, AdminError> {
        Ok(self
            .store
            .rule_configs(&tenant.id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
}
