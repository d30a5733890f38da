//! Apply: the planned writes, in dependency order.

use super::*;

impl Admin {
    pub(super) async fn apply(
        &self,
        tenant: &Tenant,
        steps: Vec<Step>,
    ) -> Result<Vec<NewCredentials>, AdminError> {
        let mut credentials = Vec::new();
        let mut client_ids: HashMap<String, String> = self
            .list_clients(tenant, 0, 10_000)
            .await?
            .into_iter()
            .map(|c| (c.name, c.client_id))
            .collect();
        for step in steps {
            match step {
                Step::CreateApi(input) => {
                    self.create_api_with(tenant, input).await?;
                }
                Step::UpdateApi(id, patch) => {
                    self.update_api(tenant, &id, patch).await?;
                }
                Step::CreateClient(input, kept) => {
                    let name = input.name.clone();
                    let given_secret = kept.client_secret.is_some();
                    let given_id = kept.client_id.is_some();
                    let (record, secret) = self.new_client_record(tenant, *input, kept)?;
                    let view = self.insert_new_client(tenant, record, secret).await?;
                    if !(given_secret && given_id) {
                        credentials.push(NewCredentials {
                            name: name.clone(),
                            client_id: view.client_id.clone(),
                            client_secret: if given_secret {
                                None
                            } else {
                                view.client_secret
                            },
                        });
                    }
                    client_ids.insert(name, view.client_id);
                }
                Step::UpdateClient(id, patch) => {
                    self.update_client(tenant, &id, *patch).await?;
                }
                Step::Grant(client, audience, scope, replaces) => {
                    let client_id = client_ids.get(&client).cloned().ok_or_else(|| {
                        AdminError::Internal(anyhow::anyhow!(
                            "client {client:?} vanished during the import"
                        ))
                    })?;
                    if let Some(old) = replaces {
                        self.delete_client_grant(tenant, &old).await?;
                    }
                    self.create_client_grant(
                        tenant,
                        NewClientGrant {
                            client_id,
                            audience,
                            scope,
                        },
                    )
                    .await?;
                }
                Step::CreateRole(input, permissions) => {
                    let role = self.create_role(tenant, input).await?;
                    for chunk in permissions.chunks(100) {
                        self.add_role_permissions(
                            tenant,
                            &role.id,
                            PermissionsInput {
                                permissions: chunk.to_vec(),
                            },
                        )
                        .await?;
                    }
                }
                Step::UpdateRole(id, description, add, remove) => {
                    if let Some(description) = description {
                        self.update_role(
                            tenant,
                            &id,
                            RolePatch {
                                name: None,
                                description: Some(description),
                            },
                        )
                        .await?;
                    }
                    for chunk in add.chunks(100) {
                        self.add_role_permissions(
                            tenant,
                            &id,
                            PermissionsInput {
                                permissions: chunk.to_vec(),
                            },
                        )
                        .await?;
                    }
                    for chunk in remove.chunks(100) {
                        self.remove_role_permissions(
                            tenant,
                            &id,
                            PermissionsInput {
                                permissions: chunk.to_vec(),
                            },
                        )
                        .await?;
                    }
                }
                Step::SetConfig(key, value) => self.set_rule_config(tenant, &key, &value).await?,
                Step::CreateRule(input) => {
                    self.create_rule(tenant, input).await?;
                }
                Step::UpdateRule(id, patch) => {
                    self.update_rule(tenant, &id, patch).await?;
                }
                Step::CreateAction(input, deploy) => {
                    let view = self.create_action(tenant, *input).await?;
                    if deploy {
                        self.deploy_action(tenant, &view.id).await?;
                    }
                }
                Step::UpdateAction(id, patch, deploy) => {
                    if let Some(patch) = patch {
                        self.update_action(tenant, &id, *patch).await?;
                    }
                    if deploy {
                        self.deploy_action(tenant, &id).await?;
                    }
                }
                Step::SetSecret(client_id, secret) => {
                    self.store
                        .set_client_secret(
                            &tenant.id,
                            &client_id,
                            &crate::crypto::hash_token(&secret),
                        )
                        .await
                        .map_err(crate::service::internal)?;
                }
                Step::Lazy(lazy) => {
                    let sealed = lazy.seal(&self.master_key, &tenant.id);
                    self.store
                        .set_lazy_migration(&tenant.id, &sealed, self.clock.now())
                        .await
                        .map_err(crate::service::internal)?;
                }
                Step::Bind(trigger, names) => {
                    let bindings = names
                        .into_iter()
                        .map(|(name, display_name)| BindingInput {
                            reference: BindingRef {
                                kind: "action_name".into(),
                                value: name,
                            },
                            display_name,
                            secrets: None,
                        })
                        .collect();
                    self.set_bindings(tenant, &trigger, BindingsInput { bindings })
                        .await?;
                }
            }
        }
        Ok(credentials)
    }

    /// The tenant's lazy-migration settings, opened.
    pub(super) async fn lazy_migration_of(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<crate::domain::migration::LazyMigration>, AdminError> {
        use crate::domain::migration::LazyMigration;
        let Some(sealed) = self
            .store
            .lazy_migration(&tenant.id)
            .await
            .map_err(crate::service::internal)?
        else {
            return Ok(None);
        };
        LazyMigration::open(&self.master_key, &tenant.id, &sealed)
            .map(Some)
            .map_err(|e| AdminError::Internal(anyhow::Error::msg(e)))
    }

    /// The tenant's rule settings, opened (the importer compares them to the export's).
    pub(super) async fn rule_config_values(
        &self,
        tenant: &Tenant,
    ) -> Result<HashMap<String, String>, AdminError> {
        let mut out = HashMap::new();
        for (key, sealed) in self
            .store
            .rule_configs(&tenant.id)
            .await
            .map_err(crate::service::internal)?
        {
            let value =
                crate::rules::Rules::open_config(&self.master_key, &tenant.id, &key, &sealed)?;
            out.insert(key, value);
        }
        Ok(out)
    }
}
