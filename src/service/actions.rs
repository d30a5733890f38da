//! Auth0 Actions administration (SPEC §15), in Auth0's Management API shapes so the Deploy CLI's
//! and Terraform's calls make sense: a draft is created and edited, `deploy` makes it an
//! immutable version that runs wherever the action is bound, an earlier version can be
//! deployed again (a rollback is a new version), and bindings order a trigger's actions.
//!
//! Secrets are sealed with the master key and never shown (names only). Writing code is
//! checked like a rule upload: the source is compiled before anything is stored, and a module
//! outside the built-in set is refused naming it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Admin, AdminError, internal};
use crate::clock::rfc3339;
use crate::crypto::random_token;
use crate::domain::action::{Dependency, SecretName};
use crate::domain::{Tenant, TriggerId};
use crate::rules::{Rules, TestOutcome, Upload};
use crate::store::{ActionRecord, ActionVersionRecord, ActionWriteError, BindingRecord, JsonText};

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

/// Every check of a new action that needs no database (name, trigger, runtime, dependencies,
/// secrets, the source's shape); compiling is separate.
pub(crate) fn check_new_action(input: &NewActionInput) -> Result<(), AdminError> {
    check_action_name(&input.name)?;
    let (trigger, _) = check_trigger(&input.supported_triggers)?;
    check_runtime(input.runtime.as_deref())?;
    check_dependencies(&input.dependencies)?;
    merge_secrets(&input.secrets, &Map::new(), 0, &[])?;
    check_code(&input.code, trigger)
}

fn check_action_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= 100
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\'));
    if !ok {
        return Err(AdminError::Invalid(format!(
            "invalid action name {name:?}: use 1 to 100 characters, no control characters or slashes"
        )));
    }
    Ok(name.to_string())
}

fn check_trigger(refs: &[TriggerRef]) -> Result<(TriggerId, String), AdminError> {
    let [only] = refs else {
        return Err(AdminError::Invalid(
            "supported_triggers must name exactly one trigger: post-login or credentials-exchange"
                .into(),
        ));
    };
    let trigger = TriggerId::parse(&only.id)?;
    let version = only
        .version
        .clone()
        .unwrap_or_else(|| trigger.current_version().to_string());
    if version.len() > 10 {
        return Err(AdminError::Invalid("invalid trigger version".into()));
    }
    Ok((trigger, version))
}

fn check_runtime(runtime: Option<&str>) -> Result<String, AdminError> {
    match runtime {
        None => Ok(DEFAULT_RUNTIME.into()),
        Some(r) if RUNTIMES.contains(&r) => Ok(r.into()),
        Some(r) => Err(AdminError::Invalid(format!(
            "unsupported runtime {r:?}; use one of {}",
            RUNTIMES.join(", ")
        ))),
    }
}

/// npm dependencies must be built-in modules (there is no npm at run time).
fn check_dependencies(deps: &[Dependency]) -> Result<(), AdminError> {
    let outside: Vec<&str> = deps
        .iter()
        .filter(|d| !crate::rules::js::is_builtin(&d.name))
        .map(|d| d.name.as_str())
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    let set = if crate::rules::js::BUILTIN_MODULES.is_empty() {
        "Wardstone has no npm modules yet".to_string()
    } else {
        format!(
            "the built-in modules are {}",
            crate::rules::js::BUILTIN_MODULES.join(", ")
        )
    };
    Err(AdminError::Invalid(format!(
        "dependencies not available in Wardstone: {}; {set}",
        outside.join(", ")
    )))
}

/// The source's checks beyond compiling: size, and the handler its trigger calls.
fn check_code(code: &str, trigger: TriggerId) -> Result<(), AdminError> {
    if code.len() > MAX_CODE_BYTES {
        return Err(AdminError::InvalidModule(format!(
            "the code is {} bytes, larger than the {MAX_CODE_BYTES} byte limit",
            code.len()
        )));
    }
    if !code.contains(trigger.entry_point()) {
        return Err(AdminError::InvalidModule(format!(
            "the code does not export {} (exports.{} = async (event, api) => {{ ... }})",
            trigger.entry_point(),
            trigger.entry_point()
        )));
    }
    Ok(())
}

/// Merges the secrets given with the stored ones (PATCH keeps the value of a secret given
/// without one); checks names, sizes and count.
fn merge_secrets(
    given: &[SecretInput],
    stored: &Map<String, Value>,
    now: i64,
    stored_names: &[SecretName],
) -> Result<(Map<String, Value>, Vec<SecretName>), AdminError> {
    if given.len() > MAX_SECRETS {
        return Err(AdminError::Invalid(format!(
            "at most {MAX_SECRETS} secrets per action, not {}",
            given.len()
        )));
    }
    let mut values = Map::new();
    let mut names = Vec::new();
    for s in given {
        let name = s.name.trim();
        if name.is_empty()
            || name.len() > MAX_SECRET_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(AdminError::Invalid(format!(
                "invalid secret name {name:?}: 1 to {MAX_SECRET_NAME} letters, digits, '_', '-' or '.'"
            )));
        }
        if values.contains_key(name) {
            return Err(AdminError::Invalid(format!(
                "secret {name:?} is given twice"
            )));
        }
        let (value, updated) = match &s.value {
            Some(v) => {
                if v.len() > MAX_SECRET_VALUE {
                    return Err(AdminError::Invalid(format!(
                        "secret {name:?} is longer than {MAX_SECRET_VALUE} bytes"
                    )));
                }
                (Value::String(v.clone()), rfc3339(now))
            }
            None => match stored.get(name) {
                Some(v) => (
                    v.clone(),
                    stored_names
                        .iter()
                        .find(|n| n.name == name)
                        .map(|n| n.updated_at.clone())
                        .unwrap_or_else(|| rfc3339(now)),
                ),
                None => {
                    return Err(AdminError::Invalid(format!("secret {name:?} has no value")));
                }
            },
        };
        values.insert(name.to_string(), value);
        names.push(SecretName {
            name: name.to_string(),
            updated_at: updated,
        });
    }
    Ok((values, names))
}

fn trigger_refs(a: &ActionRecord) -> Vec<TriggerRef> {
    vec![TriggerRef {
        id: a.trigger_id.as_str().into(),
        version: Some(a.trigger_version.clone()),
    }]
}

fn version_view(a: &ActionRecord, v: &ActionVersionRecord) -> ActionVersionView {
    ActionVersionView {
        id: v.id.clone(),
        action_id: v.action_id.clone(),
        number: v.number,
        code: v.code.clone(),
        dependencies: v.dependencies.0.clone(),
        runtime: v.runtime.clone(),
        deployed: a.deployed_version == Some(v.number),
        status: "built",
        supported_triggers: trigger_refs(a),
        secrets: a.secret_names.0.clone(),
        created_at: rfc3339(v.created_at),
        updated_at: rfc3339(v.created_at),
        built_at: rfc3339(v.created_at),
    }
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

    /// Deploys the draft: a new immutable version, live wherever the action is bound.
    pub async fn deploy_action(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<ActionVersionView, AdminError> {
        let a = self.action_record(tenant, id).await?;
        self.deploy_code(
            tenant,
            &a,
            a.code.clone(),
            a.dependencies.0.clone(),
            a.runtime.clone(),
        )
        .await
    }

    async fn deploy_code(
        &self,
        tenant: &Tenant,
        a: &ActionRecord,
        code: String,
        dependencies: Vec<Dependency>,
        runtime: String,
    ) -> Result<ActionVersionView, AdminError> {
        check_dependencies(&dependencies)?;
        let prepared = self.compile_action(tenant, &code).await?;
        let version = ActionVersionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.id.clone(),
            action_id: a.id.clone(),
            number: 0,
            code,
            sha256: prepared.compiled.sha256.clone(),
            dependencies: JsonText(dependencies),
            runtime,
            created_at: self.clock.now(),
        };
        let keep = self.actions_rules().engine().limits().versions_kept;
        let stored = self
            .store
            .deploy_action(&version, &prepared.artifact, keep)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("action {:?} does not exist", a.id)))?;
        self.actions_rules().installed(prepared);
        tracing::info!(tenant = %tenant.name, action = %a.name, version = stored.number, "action deployed");
        let a = self.action_record(tenant, &a.id).await?;
        Ok(version_view(&a, &stored))
    }

    /// An action's versions, newest first.
    pub async fn action_versions(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<VersionList, AdminError> {
        let a = self.action_record(tenant, id).await?;
        let versions: Vec<ActionVersionView> = self
            .store
            .action_versions(&tenant.id, id)
            .await
            .map_err(internal)?
            .iter()
            .map(|v| version_view(&a, v))
            .collect();
        Ok(VersionList {
            total: versions.len(),
            per_page: versions.len().max(50),
            page: 0,
            versions,
        })
    }

    /// One version of an action (by id or number).
    pub async fn action_version(
        &self,
        tenant: &Tenant,
        id: &str,
        version: &str,
    ) -> Result<ActionVersionView, AdminError> {
        let (a, v) = self.action_and_version(tenant, id, version).await?;
        Ok(version_view(&a, &v))
    }

    /// Deploys an earlier version's code again (a rollback, itself a new version).
    pub async fn deploy_action_version(
        &self,
        tenant: &Tenant,
        id: &str,
        version: &str,
    ) -> Result<ActionVersionView, AdminError> {
        let (a, v) = self.action_and_version(tenant, id, version).await?;
        self.deploy_code(tenant, &a, v.code, v.dependencies.0, v.runtime)
            .await
    }

    /// An action and one of its versions (by id or number), or 404 naming what is missing.
    async fn action_and_version(
        &self,
        tenant: &Tenant,
        id: &str,
        version: &str,
    ) -> Result<(ActionRecord, ActionVersionRecord), AdminError> {
        let a = self.action_record(tenant, id).await?;
        let v = self
            .store
            .action_version(&tenant.id, id, version)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                AdminError::NotFound(format!("action {id:?} has no version {version:?}"))
            })?;
        Ok((a, v))
    }

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
