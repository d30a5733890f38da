//! Rule administration: upload (validated and compiled before it is stored), list, enable,
//! disable, remove; rule settings; tests; the execution log. Every operation takes the tenant
//! its caller already resolved.

mod runs;
mod settings;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, internal};
use crate::crypto::random_token;
use crate::domain::{OnFailure, Tenant};
use crate::rules::{ExecutionRecord, Outcome, Rules, TestError, TestOutcome, Upload};
use crate::store::{RuleRecord, RuleVersionRecord, RuleWriteError, StoreError};
pub use runs::MAX_LOG_DEPTH;
pub(crate) use settings::check_config;

/// WAT assembly of up to 4 MiB of text takes real CPU: keep it off the async workers.
async fn assemble_blocking(
    engine: &std::sync::Arc<crate::rules::RuleEngine>,
    upload: Upload,
) -> Result<Vec<u8>, AdminError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || engine.assemble(upload))
        .await
        .map_err(|e| AdminError::Internal(e.into()))?
        .map_err(|e| AdminError::InvalidModule(e.0))
}

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

/// One stored version of a rule's module.
#[warn(missing_docs)]
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleVersionView {
    /// 1, 2, …
    pub version: i64,
    /// Hex SHA-256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: i64,
    /// When it was made (Unix time).
    pub created_at: i64,
}

impl From<RuleVersionRecord> for RuleVersionView {
    fn from(r: RuleVersionRecord) -> Self {
        RuleVersionView {
            version: r.version,
            sha256: r.sha256,
            size: r.size,
            created_at: r.created_at,
        }
    }
}

impl Admin {
    fn rules_service(&self) -> &Rules {
        &self.rules
    }

    /// Assembles and compiles an upload for `tenant` (bounded per tenant and node-wide).
    pub(crate) async fn compile_upload(
        &self,
        tenant: &Tenant,
        upload: Upload,
    ) -> Result<(Vec<u8>, crate::rules::modules::Prepared), AdminError> {
        let engine = self.rules_service().engine();
        let module = assemble_blocking(engine, upload).await?;
        let prepared = self
            .rules_service()
            .prepare_upload(&tenant.id, module.clone())
            .await
            .map_err(|e| AdminError::InvalidModule(e.0))?;
        Ok((module, prepared))
    }

    /// Validates, compiles and stores a rule. `upload` is a wasm binary or WAT text. A refused
    /// upload (bad module, name taken) leaves nothing stored and nothing cached.
    pub async fn add_rule(
        &self,
        tenant: &Tenant,
        name: &str,
        upload: &[u8],
        order: Option<i64>,
        enabled: bool,
    ) -> Result<RuleView, AdminError> {
        self.add_rule_with(tenant, name, upload, order, enabled, OnFailure::Deny)
            .await
    }

    /// [`Admin::add_rule`] with a failure mode.
    pub async fn add_rule_with(
        &self,
        tenant: &Tenant,
        name: &str,
        upload: &[u8],
        order: Option<i64>,
        enabled: bool,
        on_failure: OnFailure,
    ) -> Result<RuleView, AdminError> {
        let upload = Upload::Module(upload.to_vec());
        self.add_rule_upload(tenant, name, upload, order, enabled, on_failure)
            .await
    }

    /// Validates, compiles and stores a rule from a module or a JavaScript source.
    pub async fn add_rule_upload(
        &self,
        tenant: &Tenant,
        name: &str,
        upload: Upload,
        order: Option<i64>,
        enabled: bool,
        on_failure: OnFailure,
    ) -> Result<RuleView, AdminError> {
        let name = check_name(name)?;
        check_order(order)?;
        let (module, prepared) = self.compile_upload(tenant, upload).await?;
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
            tenant_id: tenant.id.clone(),
            name: name.clone(),
            rule_order: order,
            enabled: enabled.into(),
            sha256: prepared.compiled.sha256.clone(),
            size: module.len() as i64,
            created_at: now,
            updated_at: now,
            version: 1,
            on_failure,
        };
        let max = self.rules_service().engine().limits().rules_per_tenant;
        match self
            .store
            .insert_rule(&record, &module, &prepared.artifact, max)
            .await
            .map_err(internal)?
        {
            Ok(()) => {
                self.rules_service().installed(prepared);
                Ok(record.into())
            }
            Err(RuleWriteError::Conflict) => Err(AdminError::Conflict(format!(
                "a rule named {name:?} already exists"
            ))),
            Err(RuleWriteError::TooManyRules(max)) => Err(AdminError::LimitReached(format!(
                "this tenant already has {max} rules, the most allowed; delete one first"
            ))),
        }
    }

    /// The tenant's rules in pipeline order.
    pub async fn list_rules(&self, tenant: &Tenant) -> Result<Vec<RuleView>, AdminError> {
        let rules = self
            .store
            .rules(&tenant.id, false)
            .await
            .map_err(internal)?;
        Ok(rules.into_iter().map(RuleView::from).collect())
    }

    pub(super) async fn rule_record(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<RuleRecord, AdminError> {
        self.store
            .rule(&tenant.id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("rule {id:?} does not exist")))
    }

    /// Enables or disables a rule; takes effect at the next login on every node.
    pub async fn set_rule_enabled(
        &self,
        tenant: &Tenant,
        id: &str,
        enabled: bool,
    ) -> Result<RuleView, AdminError> {
        if !self
            .store
            .set_rule_enabled(&tenant.id, id, enabled, self.clock.now())
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("rule {id:?} does not exist")));
        }
        Ok(self.rule_record(tenant, id).await?.into())
    }

    pub async fn remove_rule(&self, tenant: &Tenant, id: &str) -> Result<(), AdminError> {
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
}

fn check_order(order: Option<i64>) -> Result<(), AdminError> {
    match order {
        Some(o) if !(0..=1_000_000).contains(&o) => Err(AdminError::Invalid(format!(
            "invalid order {o}: use 0 to 1000000"
        ))),
        _ => Ok(()),
    }
}

/// A rule in an API body: `script` (JavaScript), `wasm` (base64 of the binary) or `wat`
/// (text), exactly one of them.
pub(super) fn upload_of(
    wasm: &Option<String>,
    wat: &Option<String>,
    script: &Option<String>,
) -> Result<Option<Upload>, AdminError> {
    match (wasm, wat, script) {
        (Some(b64), None, None) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(|b| Some(Upload::Module(b)))
            .map_err(|_| {
                AdminError::Invalid("wasm must be standard base64 of a wasm binary".into())
            }),
        (None, Some(text), None) => Ok(Some(Upload::Module(text.clone().into_bytes()))),
        (None, None, Some(text)) => Ok(Some(Upload::Script(text.clone()))),
        (None, None, None) => Ok(None),
        _ => Err(AdminError::Invalid(
            "give the rule as one of script, wasm or wat, not several".into(),
        )),
    }
}

/// What creating a rule over the API takes.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuleInput {
    /// Unique name.
    pub name: String,
    /// Pipeline position (ascending); default after the last rule.
    pub order: Option<i64>,
    /// Default true.
    pub enabled: Option<bool>,
    /// The module binary, base64.
    pub wasm: Option<String>,
    /// The module as WAT text.
    pub wat: Option<String>,
    /// An Auth0-style JavaScript rule: `function (user, context, callback) { ... }`.
    pub script: Option<String>,
    /// `deny` (default: a failure fails the login) or `skip` (a failure is logged and the
    /// login goes on without this rule).
    #[schema(value_type = Option<String>)]
    pub on_failure: Option<OnFailure>,
}

/// What updating a rule may change. A new module replaces the old one atomically.
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    /// New name.
    pub name: Option<String>,
    /// New order.
    pub order: Option<i64>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New module, base64.
    pub wasm: Option<String>,
    /// New module, WAT.
    pub wat: Option<String>,
    /// New JavaScript source.
    pub script: Option<String>,
    /// New failure mode.
    #[schema(value_type = Option<String>)]
    pub on_failure: Option<OnFailure>,
}

/// `{"version": N}`: the version to make current again.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    /// A stored version of this rule.
    pub version: i64,
}

/// A rule as shown, with its module only when asked for.
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// `rul_...` id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Pipeline position.
    pub order: i64,
    /// Whether it runs.
    pub enabled: bool,
    /// Hex SHA-256 of the module.
    pub sha256: String,
    /// Module size in bytes.
    pub size: i64,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// The current version.
    pub version: i64,
    /// `deny` or `skip`.
    #[schema(value_type = String)]
    pub on_failure: OnFailure,
    /// The module binary, base64 (only with `?include_module=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasm: Option<String>,
    /// A JavaScript rule's source (always, for such rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

impl From<RuleRecord> for RuleView {
    fn from(r: RuleRecord) -> Self {
        RuleView {
            id: r.id,
            name: r.name,
            order: r.rule_order,
            enabled: *r.enabled,
            sha256: r.sha256,
            size: r.size,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            on_failure: r.on_failure,
            wasm: None,
            script: None,
        }
    }
}

/// What testing a rule takes: the input objects (configuration defaults to the tenant's).
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTestInput {
    /// The user object.
    #[schema(value_type = Object)]
    pub user: serde_json::Value,
    /// The context object.
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    /// Configuration to use instead of the tenant's.
    #[schema(value_type = Option<Object>)]
    pub configuration: Option<serde_json::Value>,
}

impl Admin {
    /// Uploads a rule given over the API.
    pub async fn create_rule(
        &self,
        tenant: &Tenant,
        input: NewRuleInput,
    ) -> Result<RuleView, AdminError> {
        let Some(upload) = upload_of(&input.wasm, &input.wat, &input.script)? else {
            return Err(AdminError::Invalid(
                "the rule is missing: give script (JavaScript), wasm (base64) or wat".into(),
            ));
        };
        self.add_rule_upload(
            tenant,
            &input.name,
            upload,
            input.order,
            input.enabled.unwrap_or(true),
            input.on_failure.unwrap_or_default(),
        )
        .await
    }

    /// One rule, with its module bytes when `include_module`.
    pub async fn get_rule(
        &self,
        tenant: &Tenant,
        id: &str,
        include_module: bool,
    ) -> Result<RuleView, AdminError> {
        let record = self.rule_record(tenant, id).await?;
        let mut view = RuleView::from(record);
        let bytes = self
            .store
            .rule_module_of(&tenant.id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("rule {id:?} does not exist")))?;
        match Upload::stored(bytes) {
            Upload::Script(text) | Upload::Action(text) => view.script = Some(text),
            Upload::Module(bytes) if include_module => {
                view.wasm = Some(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Upload::Module(_) => {}
        }
        Ok(view)
    }

    /// Changes a rule's name, order, enabled flag or module (validated and compiled first; the
    /// swap is one statement).
    pub async fn update_rule(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: RulePatch,
    ) -> Result<RuleView, AdminError> {
        let name = patch.name.as_deref().map(check_name).transpose()?;
        check_order(patch.order)?;
        let upload = upload_of(&patch.wasm, &patch.wat, &patch.script)?;
        let mut record = self.rule_record(tenant, id).await?;
        let module = match upload {
            Some(bytes) => {
                let (module, prepared) = self.compile_upload(tenant, bytes).await?;
                // The same module again is not a new version: nothing to roll back to.
                if prepared.compiled.sha256 == record.sha256 {
                    None
                } else {
                    record.sha256 = prepared.compiled.sha256.clone();
                    record.size = module.len() as i64;
                    Some((module, prepared))
                }
            }
            None => None,
        };
        if let Some(f) = patch.on_failure {
            record.on_failure = f;
        }
        if let Some(n) = name {
            record.name = n;
        }
        if let Some(o) = patch.order {
            record.rule_order = o;
        }
        if let Some(e) = patch.enabled {
            record.enabled = e.into();
        }
        record.updated_at = self.clock.now();
        let stored = self
            .store
            .update_rule(
                &record,
                module.as_ref().map(|(m, p)| (m.as_slice(), &p.artifact)),
                self.rules_service().engine().limits().versions_kept,
            )
            .await;
        match stored {
            Ok(true) => {
                if let Some((_, prepared)) = module {
                    self.rules_service().installed(prepared);
                }
                Ok(self.rule_record(tenant, id).await?.into())
            }
            Ok(false) => Err(AdminError::NotFound(format!("rule {id:?} does not exist"))),
            Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
                "a rule named {:?} already exists",
                record.name
            ))),
            Err(e) => Err(internal(e)),
        }
    }

    /// The stored versions of a rule, newest first.
    pub async fn rule_versions(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Vec<RuleVersionView>, AdminError> {
        self.rule_record(tenant, id).await?;
        let versions = self
            .store
            .rule_versions(&tenant.id, id)
            .await
            .map_err(internal)?;
        Ok(versions.into_iter().map(RuleVersionView::from).collect())
    }

    /// Makes version `version`'s module current again, as a new version (compiled and
    /// checked like an upload: the engine may have changed since).
    pub async fn rollback_rule(
        &self,
        tenant: &Tenant,
        id: &str,
        version: i64,
    ) -> Result<RuleView, AdminError> {
        let record = self.rule_record(tenant, id).await?;
        let Some(module) = self
            .store
            .rule_version_module(&tenant.id, id, version)
            .await
            .map_err(internal)?
        else {
            return Err(AdminError::NotFound(format!(
                "rule {id:?} has no version {version} (see GET /rules/{id}/versions)"
            )));
        };
        if version == record.version {
            return Err(AdminError::Invalid(format!(
                "version {version} is already the current version"
            )));
        }
        let (module, prepared) = self.compile_upload(tenant, Upload::stored(module)).await?;
        // Compiling takes a while: take the other fields as they are now, so a change made
        // meanwhile (say, disabling the rule) is not undone by the rollback.
        let mut record = self.rule_record(tenant, id).await?;
        record.sha256 = prepared.compiled.sha256.clone();
        record.size = module.len() as i64;
        record.updated_at = self.clock.now();
        if !self
            .store
            .update_rule(
                &record,
                Some((&module, &prepared.artifact)),
                self.rules_service().engine().limits().versions_kept,
            )
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!("rule {id:?} does not exist")));
        }
        self.rules_service().installed(prepared);
        tracing::info!(tenant = %tenant.name, rule = %id, version, "rule rolled back");
        Ok(self.rule_record(tenant, id).await?.into())
    }
}
