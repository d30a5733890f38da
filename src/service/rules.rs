//! Rule administration: upload (validated and compiled before it is stored), list, enable,
//! disable, remove; rule settings; the execution log.

use serde::Serialize;

use super::{Admin, AdminError, internal};
use crate::crypto::random_token;
use crate::rules::Rules;
use crate::rules::engine::module_hash;
use crate::store::{ExecutionRow, RuleRecord, StoreError};

/// A rule name: 1–100 letters, digits, spaces, `-` or `_`.
fn check_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'));
    if !ok {
        return Err(AdminError::Invalid(format!(
            "invalid rule name {name:?}: use 1 to 100 letters, digits, spaces, '-' or '_'"
        )));
    }
    Ok(name.to_string())
}

/// A setting key: 1–100 letters, digits, `_` or `-`.
fn check_key(key: &str) -> Result<(), AdminError> {
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

/// One execution log entry as shown to the tenant.
#[derive(Debug, Serialize)]
pub struct LogEntry {
    /// Execution id.
    pub id: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule name.
    pub rule_name: String,
    /// Protocol.
    pub protocol: String,
    /// Outcome.
    pub outcome: String,
    /// Duration, µs.
    pub duration_us: i64,
    /// Fuel used.
    pub fuel: i64,
    /// Log lines.
    pub logs: serde_json::Value,
    /// Unix time.
    pub created_at: i64,
}

impl From<ExecutionRow> for LogEntry {
    fn from(r: ExecutionRow) -> Self {
        LogEntry {
            logs: serde_json::from_str(&r.logs).unwrap_or_default(),
            id: r.id,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            protocol: r.protocol,
            outcome: r.outcome,
            duration_us: r.duration_us,
            fuel: r.fuel,
            created_at: r.created_at,
        }
    }
}

impl Admin {
    fn rules_service(&self) -> &Rules {
        &self.rules
    }

    /// Validates, compiles and stores a rule. `upload` is a wasm binary or WAT text.
    pub async fn add_rule(
        &self,
        tenant: &str,
        name: &str,
        upload: &[u8],
        order: Option<i64>,
        enabled: bool,
    ) -> Result<RuleRecord, AdminError> {
        let name = check_name(name)?;
        if let Some(o) = order
            && !(0..=1_000_000).contains(&o)
        {
            return Err(AdminError::Invalid(format!(
                "invalid order {o}: use 0 to 1000000"
            )));
        }
        let tenant = self.tenant(tenant).await?;
        let engine = self.rules_service().engine();
        let module = engine
            .assemble(upload)
            .map_err(|e| AdminError::Invalid(format!("rejected module: {e}")))?;
        engine
            .prepare(&module)
            .await
            .map_err(|e| AdminError::Invalid(format!("rejected module: {e}")))?;
        let existing = self
            .store
            .rules(&tenant.id, false)
            .await
            .map_err(internal)?;
        let order =
            order.unwrap_or_else(|| existing.iter().map(|r| r.rule_order + 1).max().unwrap_or(1));
        let now = self.clock.now();
        let record = RuleRecord {
            id: format!("rul_{}", random_token(12)),
            tenant_id: tenant.id,
            name: name.clone(),
            rule_order: order,
            enabled: i64::from(enabled),
            sha256: module_hash(&module),
            size: module.len() as i64,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_rule(&record, &module).await {
            Ok(()) => Ok(record),
            Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
                "a rule named {name:?} already exists"
            ))),
            Err(e) => Err(internal(e)),
        }
    }

    /// The tenant's rules in pipeline order.
    pub async fn list_rules(&self, tenant: &str) -> Result<Vec<RuleRecord>, AdminError> {
        let tenant = self.tenant(tenant).await?;
        self.store.rules(&tenant.id, false).await.map_err(internal)
    }

    /// Enables or disables a rule; takes effect at the next login.
    pub async fn set_rule_enabled(
        &self,
        tenant: &str,
        id: &str,
        enabled: bool,
    ) -> Result<RuleRecord, AdminError> {
        let tenant = self.tenant(tenant).await?;
        if !self
            .store
            .set_rule_enabled(&tenant.id, id, enabled, self.clock.now())
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("rule {id:?} does not exist")));
        }
        self.store
            .rule(&tenant.id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("rule {id:?} does not exist")))
    }

    /// Deletes a rule.
    pub async fn remove_rule(&self, tenant: &str, id: &str) -> Result<(), AdminError> {
        let tenant = self.tenant(tenant).await?;
        if !self
            .store
            .delete_rule(&tenant.id, id)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("rule {id:?} does not exist")));
        }
        Ok(())
    }

    /// Sets a rule setting; the value is encrypted at rest and never shown again.
    pub async fn set_rule_config(
        &self,
        tenant: &str,
        key: &str,
        value: &str,
    ) -> Result<(), AdminError> {
        check_key(key)?;
        if value.len() > 10 * 1024 {
            return Err(AdminError::Invalid(
                "setting values are limited to 10 KiB".into(),
            ));
        }
        let tenant = self.tenant(tenant).await?;
        let sealed = self
            .master_key
            .seal(&Rules::config_aad(&tenant.id, key), value.as_bytes());
        self.store
            .set_rule_config(&tenant.id, key, &sealed, self.clock.now())
            .await
            .map_err(internal)
    }

    /// Removes a rule setting.
    pub async fn unset_rule_config(&self, tenant: &str, key: &str) -> Result<(), AdminError> {
        check_key(key)?;
        let tenant = self.tenant(tenant).await?;
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
    pub async fn rule_config_keys(&self, tenant: &str) -> Result<Vec<String>, AdminError> {
        let tenant = self.tenant(tenant).await?;
        Ok(self
            .store
            .rule_configs(&tenant.id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// The newest `limit` rule executions.
    pub async fn rule_logs(&self, tenant: &str, limit: i64) -> Result<Vec<LogEntry>, AdminError> {
        if !(1..=1000).contains(&limit) {
            return Err(AdminError::Invalid(format!(
                "invalid limit {limit}: use 1 to 1000"
            )));
        }
        let tenant = self.tenant(tenant).await?;
        Ok(self
            .store
            .executions(&tenant.id, limit)
            .await
            .map_err(internal)?
            .into_iter()
            .map(LogEntry::from)
            .collect())
    }
}
