//! Triggers and their bindings: which deployed actions a trigger runs, in order.

use super::*;

/// A trigger binding, as Auth0 shows it.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BindingView {
    /// Binding id.
    pub id: String,
    /// The trigger.
    pub trigger_id: String,
    /// The bound action.
    pub action: ActionView,
    /// The name shown for it.
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A trigger's bindings in execution order.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BindingList {
    /// In execution order.
    pub bindings: Vec<BindingView>,
    /// How many.
    pub total: usize,
    /// Page (0).
    pub page: usize,
    /// Page size.
    pub per_page: usize,
}

/// Which action a binding names: `{type: "action_name" | "action_id", value}`.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingRef {
    /// `action_name` or `action_id`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or id.
    pub value: String,
}

/// One binding of `PATCH /actions/triggers/{id}/bindings`.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingInput {
    /// The action.
    #[serde(rename = "ref")]
    pub reference: BindingRef,
    /// The name shown (default: the action's name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Auth0 marketplace fields: refused (Wardstone has no integrations).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
}

/// `PATCH /actions/triggers/{id}/bindings`.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingsInput {
    /// The whole list, in execution order.
    pub bindings: Vec<BindingInput>,
}

/// A trigger Wardstone runs (Auth0's `GET /actions/triggers` shape).
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerView {
    /// `post-login` or `credentials-exchange`.
    pub id: &'static str,
    /// Its current version.
    pub version: &'static str,
    /// `CURRENT`.
    pub status: &'static str,
    /// The runtime names accepted.
    pub runtimes: Vec<&'static str>,
    /// The default runtime name.
    pub default_runtime: &'static str,
}

impl Admin {
    /// The triggers Wardstone runs.
    pub fn action_triggers(&self) -> Vec<TriggerView> {
        TriggerId::ALL
            .iter()
            .map(|t| TriggerView {
                id: t.as_str(),
                version: t.current_version(),
                status: "CURRENT",
                runtimes: RUNTIMES.to_vec(),
                default_runtime: DEFAULT_RUNTIME,
            })
            .collect()
    }

    /// A trigger's bindings in execution order.
    pub async fn bindings(
        &self,
        tenant: &Tenant,
        trigger: &str,
    ) -> Result<BindingList, AdminError> {
        let trigger = TriggerId::parse(trigger)?;
        let rows: Vec<BindingRecord> = self
            .store
            .bindings(&tenant.id, trigger)
            .await
            .map_err(internal)?;
        let mut bindings = Vec::with_capacity(rows.len());
        for b in rows {
            let action = self.action_record(tenant, &b.action_id).await?;
            bindings.push(BindingView {
                id: b.id,
                trigger_id: b.trigger_id.as_str().into(),
                action: self.action_view(tenant, &action).await?,
                display_name: b.display_name,
                created_at: rfc3339(b.created_at),
                updated_at: rfc3339(b.created_at),
            });
        }
        Ok(BindingList {
            total: bindings.len(),
            per_page: bindings.len().max(50),
            page: 0,
            bindings,
        })
    }

    /// Replaces a trigger's bindings (order = execution order), all or nothing: every action
    /// must exist, be written for this trigger and be deployed.
    pub async fn set_bindings(
        &self,
        tenant: &Tenant,
        trigger: &str,
        input: BindingsInput,
    ) -> Result<BindingList, AdminError> {
        let trigger_id = TriggerId::parse(trigger)?;
        if input.bindings.len() > MAX_BINDINGS {
            return Err(AdminError::Invalid(format!(
                "at most {MAX_BINDINGS} actions per trigger, not {}",
                input.bindings.len()
            )));
        }
        let all = self
            .store
            .actions(&tenant.id, None)
            .await
            .map_err(internal)?;
        let mut rows = Vec::with_capacity(input.bindings.len());
        for b in &input.bindings {
            if b.secrets.is_some() {
                return Err(AdminError::Invalid(
                    "binding secrets belong to marketplace integrations, which Wardstone does not have"
                        .into(),
                ));
            }
            let found = match b.reference.kind.as_str() {
                "action_name" => all.iter().find(|a| a.name == b.reference.value),
                "action_id" => all.iter().find(|a| a.id == b.reference.value),
                other => {
                    return Err(AdminError::Invalid(format!(
                        "unsupported binding ref type {other:?}; use action_name or action_id"
                    )));
                }
            };
            let Some(action) = found else {
                return Err(AdminError::NotFound(format!(
                    "no action {} {:?}",
                    b.reference.kind.replace('_', " "),
                    b.reference.value
                )));
            };
            if action.trigger_id != trigger_id {
                return Err(AdminError::Invalid(format!(
                    "action {:?} is written for {}, not {trigger_id}",
                    action.name, action.trigger_id
                )));
            }
            if action.deployed_version.is_none() {
                return Err(AdminError::Invalid(format!(
                    "action {:?} has never been deployed; deploy it before binding it",
                    action.name
                )));
            }
            if rows
                .iter()
                .any(|(_, id, _): &(String, String, String)| *id == action.id)
            {
                return Err(AdminError::Invalid(format!(
                    "action {:?} is bound twice",
                    action.name
                )));
            }
            let display = b
                .display_name
                .clone()
                .unwrap_or_else(|| action.name.clone());
            if display.chars().count() > 100 {
                return Err(AdminError::Invalid(
                    "display_name is longer than 100 characters".into(),
                ));
            }
            rows.push((random_token(12), action.id.clone(), display));
        }
        let bound = self
            .store
            .set_bindings(&tenant.id, trigger_id, &rows, self.clock.now())
            .await
            .map_err(internal)?;
        if !bound {
            // An action was deleted (or changed) between the checks above and the write.
            return Err(AdminError::NotFound(
                "an action of the list no longer exists or is no longer deployed for this trigger; nothing was changed".into(),
            ));
        }
        tracing::info!(tenant = %tenant.name, trigger = %trigger_id, actions = rows.len(), "trigger bindings changed");
        self.bindings(tenant, trigger).await
    }
}
