//! Plan: the export's roles and their permissions against the tenant's.

use super::*;

impl Admin {
    pub(super) async fn plan_roles(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        apis: &HashMap<String, BTreeSet<String>>,
        plan: &mut Plan,
    ) -> Result<(), AdminError> {
        let current = if exists {
            self.list_roles(tenant, 0, 10_000).await?
        } else {
            Vec::new()
        };
        for Sourced { file, value: r } in &export.roles {
            let name = crate::domain::DisplayName::parse("role name", &r.name)
                .map_err(|e| invalid_in(file, "name", e.into()))?
                .as_str()
                .to_string();
            let description = r.description.clone().unwrap_or_default();
            let mut wanted = BTreeSet::new();
            let mut dropped = 0usize;
            for p in &r.permissions {
                if is_auth0_management_api(&p.resource_server_identifier) {
                    dropped += 1;
                    continue;
                }
                let Some(scopes) = apis.get(&p.resource_server_identifier) else {
                    return Err(AdminError::Invalid(format!(
                        "{file}: role {name:?}: API {:?} is neither in the export nor in the tenant",
                        p.resource_server_identifier
                    )));
                };
                if !scopes.contains(&p.permission_name) {
                    return Err(AdminError::Invalid(format!(
                        "{file}: role {name:?}: {:?} is not a scope of {}",
                        p.permission_name, p.resource_server_identifier
                    )));
                }
                wanted.insert((
                    p.resource_server_identifier.clone(),
                    p.permission_name.clone(),
                ));
            }
            let as_permissions = |set: &BTreeSet<(String, String)>| -> Vec<Permission> {
                set.iter()
                    .map(|(api, scope)| Permission {
                        resource_server_identifier: api.clone(),
                        permission_name: scope.clone(),
                    })
                    .collect()
            };
            let detail = (dropped > 0).then(|| {
                format!("{dropped} permission(s) on Auth0's Management API left out (Wardstone's Management API is used with its own client)")
            });
            match current.iter().find(|c| c.name == name) {
                None => {
                    plan.note("role", &name, Status::Created, detail);
                    plan.steps.push(Step::CreateRole(
                        NewRoleInput {
                            name: name.clone(),
                            description,
                        },
                        as_permissions(&wanted),
                    ));
                }
                Some(c) => {
                    let had: BTreeSet<(String, String)> = self
                        .role_permissions(tenant, &c.id)
                        .await?
                        .into_iter()
                        .map(|p| (p.resource_server_identifier, p.permission_name))
                        .collect();
                    let add: BTreeSet<_> = wanted.difference(&had).cloned().collect();
                    let remove: BTreeSet<_> = had.difference(&wanted).cloned().collect();
                    let new_description = (c.description != description).then_some(description);
                    if add.is_empty() && remove.is_empty() && new_description.is_none() {
                        plan.note("role", &name, Status::Unchanged, detail);
                    } else {
                        plan.note("role", &name, Status::Updated, detail);
                        plan.steps.push(Step::UpdateRole(
                            c.id.clone(),
                            new_description,
                            as_permissions(&add),
                            as_permissions(&remove),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
