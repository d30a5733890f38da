//! Tenant settings (Auth0's `tenants/settings` shape): what rules may reach over HTTP.

use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, internal};
use crate::domain::{AllowedHost, Tenant};

/// Hosts one tenant may list.
pub const MAX_ALLOWED_HOSTS: usize = 100;

/// The settings shown and changed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Rule settings.
    pub rules: RuleSettings,
}

/// What rules may do.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// `host` or `host:port` entries `wardstone.http_fetch` may reach (empty: none). Literal
    /// addresses must be public unless the operator opened their range.
    #[schema(value_type = Vec<String>)]
    pub allowed_hosts: Vec<AllowedHost>,
}

impl Admin {
    /// The tenant's settings.
    pub async fn tenant_settings(&self, tenant: &Tenant) -> Result<TenantSettings, AdminError> {
        Ok(TenantSettings {
            rules: RuleSettings {
                allowed_hosts: self
                    .store
                    .allowed_hosts(&tenant.id)
                    .await
                    .map_err(internal)?,
            },
        })
    }

    /// Replaces the settings given.
    pub async fn update_tenant_settings(
        &self,
        tenant: &Tenant,
        settings: TenantSettings,
    ) -> Result<TenantSettings, AdminError> {
        let opened = self.rules.engine().outbound().opened();
        let mut hosts = Vec::new();
        for h in settings.rules.allowed_hosts {
            h.check_reach(opened)?;
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        if hosts.len() > MAX_ALLOWED_HOSTS {
            return Err(AdminError::Invalid(format!(
                "at most {MAX_ALLOWED_HOSTS} allowed hosts, not {}",
                hosts.len()
            )));
        }
        self.store
            .set_allowed_hosts(&tenant.id, &hosts)
            .await
            .map_err(internal)?;
        tracing::info!(tenant = %tenant.name, hosts = hosts.len(), "rules' allowed hosts changed");
        self.tenant_settings(tenant).await
    }

    /// Adds (`allow`) or removes one host of the allow-list.
    pub async fn allow_host(
        &self,
        tenant: &Tenant,
        host: &str,
        allow: bool,
    ) -> Result<TenantSettings, AdminError> {
        let host = AllowedHost::parse(host)?;
        let mut current = self.tenant_settings(tenant).await?;
        let hosts = &mut current.rules.allowed_hosts;
        let present = hosts.contains(&host);
        match (allow, present) {
            (true, false) => hosts.push(host),
            (false, true) => hosts.retain(|h| *h != host),
            (false, false) => {
                return Err(AdminError::NotFound(format!(
                    "{host} is not on the allow-list"
                )));
            }
            (true, true) => return Ok(current),
        }
        self.update_tenant_settings(tenant, current).await
    }
}
