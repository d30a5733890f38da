//! Plan: the export's clients and their grants against the tenant's.

use super::*;
use crate::domain::GrantType;

impl Admin {
    /// Clients: name → whether it is confidential (may hold client grants).
    pub(super) async fn plan_clients(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        plan: &mut Plan,
    ) -> Result<HashMap<String, bool>, AdminError> {
        let current = if exists {
            self.list_clients(tenant, 0, 10_000).await?
        } else {
            Vec::new()
        };
        let mut known: HashMap<String, bool> = current
            .iter()
            .map(|c| (c.name.clone(), c.token_endpoint_auth_method != "none"))
            .collect();
        let mut seen = BTreeSet::new();
        for Sourced { file, value } in &export.clients {
            let mut body = value.clone();
            let name = str_field(&body, "name")
                .ok_or_else(|| AdminError::Invalid(format!("{file}: a client has no name")))?;
            if !seen.insert(name.clone()) {
                return Err(AdminError::Invalid(format!(
                    "{file}: client {name:?} is in the export twice"
                )));
            }
            if name == "Wardstone Management API client" || name == "auth0-deploy-cli-extension" {
                plan.skip("client", &name, "a deployment tool's client: Wardstone's tenant has its own Management API client");
                continue;
            }
            let kept = KeptCredentials {
                client_id: str_field(&body, "client_id"),
                client_secret: str_field(&body, "client_secret"),
            };
            for (field, v) in [
                ("client_id", &kept.client_id),
                ("client_secret", &kept.client_secret),
            ] {
                if let Some(v) = v
                    && (v.contains("##") || v.contains("@@") || v == NOT_SHOWN)
                {
                    return Err(AdminError::Invalid(format!(
                        "{file}: {field} of {name:?} is a placeholder ({v:?}); give its value with --keyword, or remove the field for fresh credentials"
                    )));
                }
            }
            body.remove("client_secret");
            body.remove("client_id");
            let mut notes = Vec::new();
            if let Some(Value::Array(types)) = body.get("grant_types").cloned() {
                let (kept_types, dropped): (Vec<Value>, Vec<Value>) = types
                    .into_iter()
                    .partition(|t| t.as_str().and_then(GrantType::parse).is_some());
                if !dropped.is_empty() {
                    let dropped: Vec<String> = dropped
                        .iter()
                        .map(|d| d.as_str().unwrap_or("?").to_string())
                        .collect();
                    notes.push(format!(
                        "grant types Wardstone does not run dropped: {}",
                        dropped.join(", ")
                    ));
                }
                body.insert("grant_types".into(), Value::Array(kept_types));
            }
            // Auth0 exports fields the Management API does not take back; what Wardstone
            // cannot honour is listed in the report instead of refusing the import.
            let allowed = [
                "name",
                "callbacks",
                "allowed_logout_urls",
                "grant_types",
                "token_endpoint_auth_method",
                "client_metadata",
                "app_type",
                "is_first_party",
                "oidc_conformant",
                "description",
                "logo_uri",
                "jwt_configuration",
            ];
            let ignored: Vec<String> = body
                .keys()
                .filter(|k| !allowed.contains(&k.as_str()))
                .cloned()
                .collect();
            for k in &ignored {
                body.remove(k);
            }
            if !ignored.is_empty() {
                notes.push(format!(
                    "Auth0 settings with no Wardstone equivalent ignored: {}",
                    ignored.join(", ")
                ));
            }
            if let Some(Value::Object(jwt)) = body.get_mut("jwt_configuration") {
                jwt.retain(|k, _| k == "lifetime_in_seconds");
            }
            if body.get("oidc_conformant") == Some(&Value::Bool(false)) {
                notes.push(
                    "oidc_conformant false → true (Wardstone speaks only OIDC-conformant flows)"
                        .into(),
                );
                body.remove("oidc_conformant");
            }
            if body
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| d.chars().count() > 140)
            {
                notes.push("description cut to 140 characters".into());
                let cut: String = body["description"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(140)
                    .collect();
                body.insert("description".into(), Value::String(cut));
            }
            if body
                .get("app_type")
                .and_then(Value::as_str)
                .is_some_and(|t| !matches!(t, "regular_web" | "spa" | "native" | "non_interactive"))
            {
                notes.push(format!(
                    "app_type {} not known here: left unset",
                    body["app_type"]
                ));
                body.remove("app_type");
            }
            let input: NewClientInput = serde_json::from_value(Value::Object(body))
                .map_err(|e| AdminError::Invalid(format!("{file}: client {name:?}: {e}")))?;
            // The whole check of a new client, without writing (the update uses the same one).
            let probe = NewClientInput {
                name: input.name.clone(),
                callbacks: input.callbacks.clone(),
                allowed_logout_urls: input.allowed_logout_urls.clone(),
                grant_types: input.grant_types.clone(),
                token_endpoint_auth_method: input.token_endpoint_auth_method.clone(),
                client_metadata: input.client_metadata.clone(),
                app_type: input.app_type,
                is_first_party: input.is_first_party,
                oidc_conformant: input.oidc_conformant,
                description: input.description.clone(),
                logo_uri: input.logo_uri.clone(),
                jwt_configuration: input.jwt_configuration.clone(),
            };
            let (record, _) = self
                .new_client_record(tenant, probe, kept.clone())
                .map_err(|e| invalid_in(file, &format!("client {name:?}"), e))?;
            let confidential = record.secret_hash.is_some();
            let detail = (!notes.is_empty()).then(|| notes.join("; "));
            let existing = current.iter().find(|c| c.name == name);
            // A kept client_id is unique on the whole server, not only in this tenant.
            if let Some(id) = &kept.client_id
                && existing.is_none_or(|c| c.client_id != *id)
                && self
                    .store
                    .client_id_taken(id)
                    .await
                    .map_err(crate::service::internal)?
            {
                return Err(AdminError::Invalid(format!(
                    "{file}: client_id {id:?} of {name:?} is already used on this server; remove client_id from the file for fresh credentials"
                )));
            }
            match existing {
                None => {
                    plan.note("client", &name, Status::Created, detail);
                    plan.steps.push(Step::CreateClient(Box::new(input), kept));
                }
                Some(c) => {
                    if (c.token_endpoint_auth_method != "none") != confidential {
                        return Err(AdminError::Invalid(format!(
                            "{file}: client {name:?} exists as a {} client; a client cannot change between public and confidential",
                            if confidential {
                                "public"
                            } else {
                                "confidential"
                            }
                        )));
                    }
                    if let Some(id) = &kept.client_id
                        && *id != c.client_id
                    {
                        return Err(AdminError::Invalid(format!(
                            "{file}: client {name:?} exists with client_id {:?}, the export says {id:?}; a client's id never changes",
                            c.client_id
                        )));
                    }
                    // Only what the export states is compared and changed: a field it leaves
                    // out keeps the tenant's value (so a second run finds nothing to do).
                    let given = |k: &str| value.contains_key(k);
                    let lifetime = c
                        .jwt_configuration
                        .get("lifetime_in_seconds")
                        .and_then(Value::as_i64);
                    let jwt_given = value
                        .get("jwt_configuration")
                        .is_some_and(|j| j.get("lifetime_in_seconds").is_some());
                    let secret_changed = match &kept.client_secret {
                        Some(secret) => {
                            let stored = self
                                .store
                                .client(&tenant.id, &c.client_id)
                                .await
                                .map_err(crate::service::internal)?
                                .and_then(|r| r.secret_hash);
                            stored.as_deref() != Some(crate::crypto::hash_token(secret).as_slice())
                        }
                        None => false,
                    };
                    let same = (!given("callbacks") || c.callbacks == record.redirect_uris)
                        && (!given("allowed_logout_urls")
                            || c.allowed_logout_urls == record.logout_urls)
                        && (!given("grant_types") || c.grant_types == names(&record.grant_types))
                        && (!given("client_metadata")
                            || c.client_metadata == Value::Object(record.metadata.clone()))
                        && (!given("app_type") || c.app_type == record.app_type)
                        && (!given("is_first_party") || c.is_first_party == record.is_first_party)
                        && (!given("description") || c.description == record.description)
                        && (!given("logo_uri") || c.logo_uri == record.logo_uri)
                        && (!jwt_given || lifetime == record.id_token_lifetime);
                    if same && !secret_changed {
                        plan.note("client", &name, Status::Unchanged, detail);
                    } else {
                        let mut detail = detail;
                        if secret_changed {
                            let note = "client_secret replaced by the export's".to_string();
                            detail = Some(match detail {
                                Some(d) => format!("{d}; {note}"),
                                None => note,
                            });
                        }
                        plan.note("client", &name, Status::Updated, detail);
                        if !same {
                            plan.steps.push(Step::UpdateClient(
                                c.client_id.clone(),
                                Box::new(ClientPatch {
                                    name: None,
                                    callbacks: given("callbacks").then_some(input.callbacks),
                                    allowed_logout_urls: given("allowed_logout_urls")
                                        .then_some(input.allowed_logout_urls),
                                    grant_types: given("grant_types")
                                        .then(|| names(&record.grant_types)),
                                    client_metadata: given("client_metadata")
                                        .then(|| Value::Object(record.metadata.clone())),
                                    token_endpoint_auth_method: None,
                                    app_type: input.app_type,
                                    is_first_party: given("is_first_party")
                                        .then_some(record.is_first_party),
                                    oidc_conformant: None,
                                    description: given("description")
                                        .then(|| record.description.clone()),
                                    logo_uri: input.logo_uri,
                                    jwt_configuration: input.jwt_configuration,
                                }),
                            ));
                        }
                        if secret_changed && let Some(secret) = &kept.client_secret {
                            plan.steps
                                .push(Step::SetSecret(c.client_id.clone(), secret.clone()));
                        }
                    }
                }
            }
            known.insert(name, confidential);
        }
        Ok(known)
    }

    pub(super) async fn plan_grants(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        apis: &HashMap<String, BTreeSet<String>>,
        clients: &HashMap<String, bool>,
        plan: &mut Plan,
    ) -> Result<(), AdminError> {
        let current = if exists {
            self.list_client_grants(tenant).await?
        } else {
            Vec::new()
        };
        let client_names: HashMap<String, String> = if exists {
            self.list_clients(tenant, 0, 10_000)
                .await?
                .into_iter()
                .map(|c| (c.client_id, c.name))
                .collect()
        } else {
            HashMap::new()
        };
        for Sourced { file, value: g } in &export.grants {
            // The Deploy CLI writes the client's name; an id of this tenant works too.
            let client = client_names
                .get(&g.client_id)
                .cloned()
                .unwrap_or_else(|| g.client_id.clone());
            let label = format!("{client} → {}", g.audience);
            if is_auth0_management_api(&g.audience) {
                plan.skip("client grant", &label, "a grant to Auth0's Management API: Wardstone's Management API has its own client");
                continue;
            }
            let Some(&confidential) = clients.get(&client) else {
                return Err(AdminError::Invalid(format!(
                    "{file}: client {client:?} is neither in the export nor in the tenant"
                )));
            };
            let Some(scopes) = apis.get(&g.audience) else {
                return Err(AdminError::Invalid(format!(
                    "{file}: API {:?} is neither in the export nor in the tenant",
                    g.audience
                )));
            };
            if !confidential {
                return Err(AdminError::Invalid(format!(
                    "{file}: client {client:?} is public and cannot use client_credentials"
                )));
            }
            if let Some(s) = g.scope.iter().find(|s| !scopes.contains(*s)) {
                return Err(AdminError::Invalid(format!(
                    "{file}: scope {s:?} is not defined by {}",
                    g.audience
                )));
            }
            let had = current.iter().find(|c| {
                client_names.get(&c.client_id) == Some(&client) && c.audience == g.audience
            });
            match had {
                Some(c)
                    if {
                        let a: BTreeSet<&String> = c.scope.iter().collect();
                        let b: BTreeSet<&String> = g.scope.iter().collect();
                        a == b
                    } =>
                {
                    plan.note("client grant", &label, Status::Unchanged, None)
                }
                Some(c) => {
                    plan.note("client grant", &label, Status::Updated, None);
                    plan.steps.push(Step::Grant(
                        client,
                        g.audience.clone(),
                        g.scope.clone(),
                        Some(c.id.clone()),
                    ));
                }
                None => {
                    plan.note("client grant", &label, Status::Created, None);
                    plan.steps.push(Step::Grant(
                        client,
                        g.audience.clone(),
                        g.scope.clone(),
                        None,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Grant types as the wire names them.
fn names(types: &[GrantType]) -> Vec<String> {
    types.iter().map(|g| g.as_str().to_string()).collect()
}
