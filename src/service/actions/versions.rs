//! Deploying: a draft becomes an immutable version; versions listed, and an earlier one
//! deployed again (a rollback is a new version).

use super::*;

pub(super) fn version_view(a: &ActionRecord, v: &ActionVersionRecord) -> ActionVersionView {
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

    pub(super) async fn deploy_code(
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
    pub(super) async fn action_and_version(
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
}
