//! Tenant settings (Auth0's `tenants/settings` shape): what rules may reach over HTTP and
//! whether pipeline inputs are recorded for replay; and the tenant's usage per day (SPEC §18).

use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, internal};
use crate::domain::usage::{Day, Metric, UsageDay};
use crate::domain::{AllowedHost, Tenant};
use crate::store::MAX_RECORDING_KEEP;

/// Hosts one tenant may list.
pub const MAX_ALLOWED_HOSTS: usize = 100;

/// The settings shown and changed: a change names the parts it replaces; what it does not
/// name stays as it is. Shown, every part is there.
#[warn(missing_docs)]
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Rule settings.
    #[serde(default)]
    pub rules: Option<RuleSettings>,
    /// Recording of pipeline inputs for replay (off by default).
    #[serde(default)]
    pub recording: Option<RecordingSettings>,
}

/// Whether the inputs of the tenant's last `keep` pipeline runs (rules and actions of logins,
/// refreshes and client credentials grants) are kept, sealed, for replaying a change on them.
#[warn(missing_docs)]
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingSettings {
    /// On or off. Turning it off deletes what was recorded.
    pub enabled: bool,
    /// Runs kept, 1 to 5,000 (default 500); shown 0 when off.
    #[serde(default)]
    pub keep: Option<i64>,
}

/// Runs kept when recording is turned on without `keep`.
pub const DEFAULT_RECORDING_KEEP: i64 = 500;

/// What rules may do.
#[warn(missing_docs)]
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// `host` or `host:port` entries `wardstone.http_fetch` may reach (empty: none). Literal
    /// addresses must be public unless the operator opened their range.
    #[schema(value_type = Vec<String>)]
    pub allowed_hosts: Vec<AllowedHost>,
}

/// Most days one usage answer covers.
pub const USAGE_MAX_DAYS: i64 = 366;

impl Admin {
    pub async fn tenant_settings(&self, tenant: &Tenant) -> Result<TenantSettings, AdminError> {
        let keep = self
            .store
            .recording_keep(&tenant.id)
            .await
            .map_err(internal)?;
        Ok(TenantSettings {
            rules: Some(RuleSettings {
                allowed_hosts: self
                    .store
                    .allowed_hosts(&tenant.id)
                    .await
                    .map_err(internal)?,
            }),
            recording: Some(RecordingSettings {
                enabled: keep > 0,
                keep: Some(keep),
            }),
        })
    }

    /// Replaces the settings given.
    pub async fn update_tenant_settings(
        &self,
        tenant: &Tenant,
        settings: TenantSettings,
    ) -> Result<TenantSettings, AdminError> {
        // Everything is checked before anything is stored.
        let hosts = settings
            .rules
            .map(|rules| {
                let opened = self.rules.engine().outbound().opened();
                let mut hosts = Vec::new();
                for h in rules.allowed_hosts {
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
                Ok(hosts)
            })
            .transpose()?;
        let keep = match settings.recording {
            None => None,
            Some(r) => Some(match (r.enabled, r.keep) {
                (false, None | Some(0)) => 0,
                (false, Some(_)) => {
                    return Err(AdminError::Invalid(
                        "recording.keep is only for enabled recording: give enabled: true, or no keep"
                            .into(),
                    ));
                }
                // Turned on again without a bound: what it keeps now, else the default.
                (true, None) => match self
                    .store
                    .recording_keep(&tenant.id)
                    .await
                    .map_err(internal)?
                {
                    0 => DEFAULT_RECORDING_KEEP,
                    current => current,
                },
                (true, Some(k)) if (1..=MAX_RECORDING_KEEP).contains(&k) => k,
                (true, Some(k)) => {
                    return Err(AdminError::Invalid(format!(
                        "recording.keep must be 1 to {MAX_RECORDING_KEEP}, not {k}"
                    )));
                }
            }),
        };
        if let Some(hosts) = hosts {
            self.store
                .set_allowed_hosts(&tenant.id, &hosts)
                .await
                .map_err(internal)?;
            tracing::info!(tenant = %tenant.name, hosts = hosts.len(), "rules' allowed hosts changed");
        }
        if let Some(keep) = keep {
            self.store
                .set_recording_keep(&tenant.id, keep)
                .await
                .map_err(internal)?;
            tracing::info!(tenant = %tenant.name, keep, "recording changed");
        }
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
        let mut hosts = self
            .store
            .allowed_hosts(&tenant.id)
            .await
            .map_err(internal)?;
        let present = hosts.contains(&host);
        match (allow, present) {
            (true, false) => hosts.push(host),
            (false, true) => hosts.retain(|h| *h != host),
            (false, false) => {
                return Err(AdminError::NotFound(format!(
                    "{host} is not on the allow-list"
                )));
            }
            (true, true) => return self.tenant_settings(tenant).await,
        }
        let change = TenantSettings {
            rules: Some(RuleSettings {
                allowed_hosts: hosts,
            }),
            recording: None,
        };
        self.update_tenant_settings(tenant, change).await
    }

    /// Turns recording on, keeping the last `keep` runs, or off (`None`).
    pub async fn set_recording(
        &self,
        tenant: &Tenant,
        keep: Option<i64>,
    ) -> Result<TenantSettings, AdminError> {
        let change = TenantSettings {
            rules: None,
            recording: Some(RecordingSettings {
                enabled: keep.is_some(),
                keep,
            }),
        };
        self.update_tenant_settings(tenant, change).await
    }

    /// The tenant's usage per day, `from..=to` (`YYYY-MM-DD` or `YYYYMMDD`, UTC; by default
    /// the 30 days to today), every day listed. What this node counted is written first;
    /// another node's counts arrive within a second.
    pub async fn usage(
        &self,
        tenant: &Tenant,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<UsageDay>, AdminError> {
        let parse = |name: &str, text: &str| {
            Day::parse(text).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{name} must be a date, YYYY-MM-DD or YYYYMMDD (got {text:?})"
                ))
            })
        };
        let to = match to {
            Some(t) => parse("to", t)?,
            None => Day::of(self.clock.now()),
        };
        let from = match from {
            Some(f) => parse("from", f)?,
            None => Day(to.0 - 29),
        };
        if from > to {
            return Err(AdminError::Invalid(format!(
                "from ({}) is after to ({})",
                from.render(),
                to.render()
            )));
        }
        if to.0 - from.0 >= USAGE_MAX_DAYS {
            return Err(AdminError::Invalid(format!(
                "at most {USAGE_MAX_DAYS} days at a time ({} to {} is {} days)",
                from.render(),
                to.render(),
                to.0 - from.0 + 1
            )));
        }
        self.rules.journal().flush().await;
        let counts = self
            .store
            .usage(&tenant.id, from.0, to.0)
            .await
            .map_err(internal)?;
        let mut days: Vec<UsageDay> = (from.0..=to.0).map(|d| UsageDay::empty(Day(d))).collect();
        for (day, key, value) in counts {
            // A metric of a later version (written by a newer node) is left out.
            let slot = usize::try_from(day - from.0)
                .ok()
                .and_then(|i| days.get_mut(i));
            if let (Some(metric), Some(d)) = (Metric::parse(&key), slot) {
                d.add(metric, value);
            }
        }
        Ok(days)
    }
}
