//! Auth0 Actions administration (SPEC §15), in Auth0's Management API shapes so the Deploy CLI's
//! and Terraform's calls make sense: a draft is created and edited, `deploy` makes it an
//! immutable version that runs wherever the action is bound, an earlier version can be
//! deployed again (a rollback is a new version), and bindings order a trigger's actions.
//!
//! Secrets are sealed with the master key and never shown (names only). Writing code is
//! checked like a rule upload: the source is compiled before anything is stored, and a module
//! outside the built-in set is refused naming it.

mod bindings;
mod checks;
mod versions;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Admin, AdminError, internal};
use crate::clock::rfc3339;
use crate::crypto::random_token;
use crate::domain::action::{Dependency, SecretName};
use crate::domain::{Tenant, TriggerId};
use crate::rules::{Rules, TestOutcome, Upload};
use crate::store::{ActionRecord, ActionVersionRecord, ActionWriteError, BindingRecord, JsonText};
pub use bindings::{
    BindingInput, BindingList, BindingRef, BindingView, BindingsInput, TriggerView,
};
pub(crate) use checks::check_new_action;
use checks::*;
use versions::version_view;

/// Largest action source (Auth0's limit).
pub const MAX_CODE_BYTES: usize = 100 * 1024;
/// Secrets one action may have (Auth0's limit).
pub const MAX_SECRETS: usize = 30;
/// Actions one trigger may run (Auth0's limit).
pub const MAX_BINDINGS: usize = 20;
const MAX_SECRET_NAME: usize = 128;
const MAX_SECRET_VALUE: usize = 4096;
/// The runtimes Auth0 offers; Wardstone runs every action on its own JavaScript runtime.
const RUNTIMES: &[&str] = &["node12", "node16", "node18", "node18-actions", "node22"];
const DEFAULT_RUNTIME: &str = "node22";

/// A trigger an action supports (Auth0's `{id, version}`).
#[warn(missing_docs)]
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriggerRef {
    /// `post-login` or `credentials-exchange`.
    pub id: String,
    /// Auth0's trigger version (`v3`, `v2`, …); kept as given.
    #[serde(default)]
    pub version: Option<String>,
}

/// A secret as given: a name and a value (PATCH: a secret without a value keeps its value).
#[warn(missing_docs)]
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretInput {
    /// `event.secrets.NAME`.
    pub name: String,
    /// The value (encrypted at rest, never returned).
    #[serde(default)]
    pub value: Option<String>,
    /// Auth0 shows it; ignored when given.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<Value>,
}

/// `POST /actions/actions`.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActionInput {
    /// Unique name in the tenant.
    pub name: String,
    /// Exactly one trigger Wardstone runs.
    pub supported_triggers: Vec<TriggerRef>,
    /// The source (`exports.onExecutePostLogin = async (event, api) => {...}`).
    #[serde(default)]
    pub code: String,
    /// npm modules: only the built-in set is accepted.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Auth0's runtime name (kept; every action runs on Wardstone's runtime).
    #[serde(default)]
    pub runtime: Option<String>,
    /// Secrets.
    #[serde(default)]
    pub secrets: Vec<SecretInput>,
    /// Auth0 marketplace fields: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub modules: Option<Value>,
}

/// `PATCH /actions/actions/{id}`: edits the draft (nothing live changes until a deploy, but
/// secrets, which are live).
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionPatch {
    /// New name.
    pub name: Option<String>,
    /// Must name the action's trigger (an action cannot move to another trigger).
    pub supported_triggers: Option<Vec<TriggerRef>>,
    /// New draft source.
    pub code: Option<String>,
    /// New dependencies.
    pub dependencies: Option<Vec<Dependency>>,
    /// New runtime name.
    pub runtime: Option<String>,
    /// The whole list of secrets: those not listed are removed; one without a value keeps its
    /// value.
    pub secrets: Option<Vec<SecretInput>>,
    /// Accepted and ignored.
    #[schema(value_type = Option<Object>)]
    pub modules: Option<Value>,
}

/// An action version, as Auth0 shows it.
#[warn(missing_docs)]
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionVersionView {
    /// Version id.
    pub id: String,
    /// The action.
    pub action_id: String,
    /// 1, 2, …
    pub number: i64,
    /// The code.
    pub code: String,
    /// The dependencies.
    pub dependencies: Vec<Dependency>,
    /// The runtime name.
    pub runtime: String,
    /// Whether this is the live version.
    pub deployed: bool,
    /// Always `built` (compiled at deploy).
    pub status: &'static str,
    /// The action's trigger.
    pub supported_triggers: Vec<TriggerRef>,
    /// The action's secrets (names).
    pub secrets: Vec<SecretName>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339.
    pub built_at: String,
}

/// An action and its draft, as Auth0 shows it.
#[warn(missing_docs)]
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionView {
    /// Action id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its trigger.
    pub supported_triggers: Vec<TriggerRef>,
    /// The draft's code.
    pub code: String,
    /// The draft's dependencies.
    pub dependencies: Vec<Dependency>,
    /// The runtime name.
    pub runtime: String,
    /// Secret names (values are never returned).
    pub secrets: Vec<SecretName>,
    /// The live version, if deployed.
    pub deployed_version: Option<ActionVersionView>,
    /// Whether the draft is what is deployed.
    pub all_changes_deployed: bool,
    /// Always `built`: a draft that does not compile is refused.
    pub status: &'static str,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339.
    pub built_at: String,
}

/// A page of actions (Auth0's list shape).
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionList {
    /// The actions.
    pub actions: Vec<ActionView>,
    /// How many.
    pub total: usize,
    /// Page (0).
    pub page: usize,
    /// Page size.
    pub per_page: usize,
}

/// A page of versions.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub versions: Vec<ActionVersionView>,
    /// How many.
    pub total: usize,
    /// Page (0).
    pub page: usize,
    /// Page size.
    pub per_page: usize,
}

fn trigger_refs(a: &ActionRecord) -> Vec<TriggerRef> {
    vec![TriggerRef {
        id: a.trigger_id.as_str().into(),
        version: Some(a.trigger_version.clone()),
    }]
}

impl Admin {
    fn actions_rules(&self) -> &Rules {
        &self.rules
    }

    fn seal_secrets(
        &self,
        tenant: &Tenant,
        action_id: &str,
        secrets: &Map<String, Value>,
    ) -> Vec<u8> {
        self.master_key.seal(
            &Rules::secrets_aad(&tenant.id, action_id),
            Value::Object(secrets.clone()).to_string().as_bytes(),
        )
    }

    pub(crate) async fn open_secrets(
        &self,
        tenant: &Tenant,
        action_id: &str,
    ) -> Result<Map<String, Value>, AdminError> {
        let Some(sealed) = self
            .store
            .action_secrets(&tenant.id, action_id)
            .await
            .map_err(internal)?
        else {
            return Ok(Map::new());
        };
        let plain = self
            .master_key
            .open(&Rules::secrets_aad(&tenant.id, action_id), &sealed)
            .map_err(|e| {
                AdminError::Internal(anyhow::anyhow!("cannot open action secrets: {e:?}"))
            })?;
        match serde_json::from_slice(&plain) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(AdminError::Internal(anyhow::anyhow!(
                "stored action secrets are not a JSON object"
            ))),
        }
    }

    /// Compiles an action's source (refused with line and column when it does not compile).
    pub(crate) async fn compile_action(
        &self,
        tenant: &Tenant,
        code: &str,
    ) -> Result<crate::rules::modules::Prepared, AdminError> {
        let engine = self.actions_rules().engine().clone();
        let upload = Upload::Action(code.to_string());
        let module = tokio::task::spawn_blocking(move || engine.assemble(upload))
            .await
            .map_err(|e| AdminError::Internal(e.into()))?
            .map_err(|e| AdminError::InvalidModule(e.0))?;
        self.actions_rules()
            .prepare_upload(&tenant.id, module)
            .await
            .map_err(|e| AdminError::InvalidModule(e.0))
    }

    pub(super) async fn action_record(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<ActionRecord, AdminError> {
        self.store
            .action(&tenant.id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("action {id:?} does not exist")))
    }

    async fn action_view(
        &self,
        tenant: &Tenant,
        a: &ActionRecord,
    ) -> Result<ActionView, AdminError> {
        let deployed = match a.deployed_version {
            Some(n) => self
                .store
                .action_version(&tenant.id, &a.id, &n.to_string())
                .await
                .map_err(internal)?,
            None => None,
        };
        let all_changes_deployed = deployed.as_ref().is_some_and(|v| {
            v.code == a.code && v.dependencies == a.dependencies && v.runtime == a.runtime
        });
        Ok(ActionView {
            id: a.id.clone(),
            name: a.name.clone(),
            supported_triggers: trigger_refs(a),
            code: a.code.clone(),
            dependencies: a.dependencies.0.clone(),
            runtime: a.runtime.clone(),
            secrets: a.secret_names.0.clone(),
            deployed_version: deployed.as_ref().map(|v| version_view(a, v)),
            all_changes_deployed,
            status: "built",
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
            built_at: rfc3339(a.updated_at),
        })
    }

    /// Creates an action (a draft: not live until deployed and bound).
    pub async fn create_action(
        &self,
        tenant: &Tenant,
        input: NewActionInput,
    ) -> Result<ActionView, AdminError> {
        let name = check_action_name(&input.name)?;
        let (trigger, trigger_version) = check_trigger(&input.supported_triggers)?;
        let runtime = check_runtime(input.runtime.as_deref())?;
        check_dependencies(&input.dependencies)?;
        let now = self.clock.now();
        let (secrets, secret_names) = merge_secrets(&input.secrets, &Map::new(), now, &[])?;
        check_code(&input.code, trigger)?;
        self.compile_action(tenant, &input.code).await?;
        let record = ActionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.id.clone(),
            name: name.clone(),
            trigger_id: trigger,
            trigger_version,
            runtime,
            code: input.code,
            dependencies: JsonText(input.dependencies),
            secret_names: JsonText(secret_names),
            deployed_version: None,
            latest_version: 0,
            created_at: now,
            updated_at: now,
        };
        let sealed = self.seal_secrets(tenant, &record.id, &secrets);
        let max = self.actions_rules().engine().limits().actions_per_tenant;
        match self
            .store
            .insert_action(&record, Some(&sealed), max)
            .await
            .map_err(internal)?
        {
            Ok(()) => self.action_view(tenant, &record).await,
            Err(ActionWriteError::Conflict) => Err(AdminError::Conflict(format!(
                "an action named {name:?} already exists"
            ))),
            Err(ActionWriteError::TooMany(max)) => Err(AdminError::LimitReached(format!(
                "this tenant already has {max} actions, the most allowed; delete one first"
            ))),
            Err(ActionWriteError::Bound) => Err(AdminError::Internal(anyhow::anyhow!(
                "unexpected binding conflict"
            ))),
        }
    }

    /// The tenant's actions by name, optionally of one trigger, with one name, or only the
    /// deployed ones.
    pub async fn list_actions(
        &self,
        tenant: &Tenant,
        trigger: Option<&str>,
        name: Option<&str>,
        deployed: Option<bool>,
    ) -> Result<ActionList, AdminError> {
        let trigger = trigger.map(TriggerId::parse).transpose()?;
        let mut actions = Vec::new();
        for a in self
            .store
            .actions(&tenant.id, trigger)
            .await
            .map_err(internal)?
        {
            if name.is_some_and(|n| n != a.name)
                || deployed.is_some_and(|d| d != a.deployed_version.is_some())
            {
                continue;
            }
            actions.push(self.action_view(tenant, &a).await?);
        }
        Ok(ActionList {
            total: actions.len(),
            per_page: actions.len().max(50),
            page: 0,
            actions,
        })
    }

    pub async fn get_action(&self, tenant: &Tenant, id: &str) -> Result<ActionView, AdminError> {
        let a = self.action_record(tenant, id).await?;
        self.action_view(tenant, &a).await
    }

    /// Finds an action by name (the CLI's and the importer's handle).
    pub async fn action_by_name(
        &self,
        tenant: &Tenant,
        name: &str,
    ) -> Result<Option<ActionView>, AdminError> {
        Ok(self
            .list_actions(tenant, None, Some(name), None)
            .await?
            .actions
            .into_iter()
            .next())
    }

    /// Edits an action's draft (and its secrets, which are live at once).
    pub async fn update_action(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: ActionPatch,
    ) -> Result<ActionView, AdminError> {
        let mut a = self.action_record(tenant, id).await?;
        if let Some(name) = &patch.name {
            a.name = check_action_name(name)?;
        }
        if let Some(refs) = &patch.supported_triggers {
            let (trigger, version) = check_trigger(refs)?;
            if trigger != a.trigger_id {
                return Err(AdminError::Invalid(format!(
                    "an action cannot change trigger ({} → {trigger}); create another action",
                    a.trigger_id
                )));
            }
            a.trigger_version = version;
        }
        if let Some(runtime) = &patch.runtime {
            a.runtime = check_runtime(Some(runtime))?;
        }
        if let Some(deps) = patch.dependencies {
            check_dependencies(&deps)?;
            a.dependencies = JsonText(deps);
        }
        let now = self.clock.now();
        let sealed = match &patch.secrets {
            None => None,
            Some(given) => {
                let stored = self.open_secrets(tenant, id).await?;
                let (values, names) = merge_secrets(given, &stored, now, &a.secret_names.0)?;
                a.secret_names = JsonText(names);
                Some(self.seal_secrets(tenant, id, &values))
            }
        };
        if let Some(code) = patch.code {
            check_code(&code, a.trigger_id)?;
            self.compile_action(tenant, &code).await?;
            a.code = code;
        }
        a.updated_at = now;
        match self
            .store
            .update_action(&a, sealed.as_ref().map(|s| Some(s.as_slice())))
            .await
            .map_err(internal)?
        {
            Ok(true) => self.action_view(tenant, &a).await,
            Ok(false) => Err(AdminError::NotFound(format!(
                "action {id:?} does not exist"
            ))),
            Err(_) => Err(AdminError::Conflict(format!(
                "an action named {:?} already exists",
                a.name
            ))),
        }
    }

    /// Deletes an action; a bound one only with `force` (its bindings go with it).
    pub async fn delete_action(
        &self,
        tenant: &Tenant,
        id: &str,
        force: bool,
    ) -> Result<(), AdminError> {
        match self
            .store
            .delete_action(&tenant.id, id, force)
            .await
            .map_err(internal)?
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(AdminError::NotFound(format!(
                "action {id:?} does not exist"
            ))),
            Err(_) => Err(AdminError::Conflict(format!(
                "action {id:?} is bound to a trigger; unbind it first, or delete with force=true"
            ))),
        }
    }

    /// Runs an action's draft on an event (missing fields take sample values) and returns what
    /// it asked of the `api`, its logs, fuel and time. Recorded in the log as a `test`.
    pub async fn test_action(
        &self,
        tenant: &Tenant,
        id: &str,
        payload: &Value,
    ) -> Result<TestOutcome, AdminError> {
        let a = self.action_record(tenant, id).await?;
        let prepared = self.compile_action(tenant, &a.code).await?;
        let secrets = Value::Object(self.open_secrets(tenant, id).await?).to_string();
        self.actions_rules()
            .test_action(
                &tenant.id,
                tenant.rules_generation,
                (&a.id, &a.name, a.deployed_version.unwrap_or(0)),
                a.trigger_id,
                prepared.compiled,
                payload,
                &secrets,
                self.clock.now(),
            )
            .await
            .map_err(|e| match e {
                crate::rules::TestError::Module(m) => AdminError::InvalidModule(m),
                crate::rules::TestError::Busy => AdminError::Busy(e.to_string()),
                crate::rules::TestError::Internal(e) => AdminError::Internal(e),
            })
    }
}
