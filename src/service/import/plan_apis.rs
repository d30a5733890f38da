//! Plan: the export's APIs (resource servers) against the tenant's.

use super::*;

impl Admin {
    /// APIs: identifier → the scopes it will define.
    pub(super) async fn plan_apis(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        plan: &mut Plan,
    ) -> Result<HashMap<String, BTreeSet<String>>, AdminError> {
        let current = if exists {
            self.list_apis(tenant).await?
        } else {
            Vec::new()
        };
        let mut defined: HashMap<String, BTreeSet<String>> = current
            .iter()
            .filter(|a| !a.is_system)
            .map(|a| {
                (
                    a.identifier.clone(),
                    a.scopes.iter().map(|s| s.value.clone()).collect(),
                )
            })
            .collect();
        let mut seen = BTreeSet::new();
        for Sourced { file, value: rs } in &export.resource_servers {
            let Some(identifier) = str_field(rs, "identifier") else {
                return Err(AdminError::Invalid(format!(
                    "{file}: a resource server has no identifier"
                )));
            };
            let name = str_field(rs, "name").unwrap_or_else(|| identifier.clone());
            if is_auth0_management_api(&identifier) {
                plan.skip(
                    "api",
                    &name,
                    "Auth0's Management API: Wardstone's own is at {issuer}/api/v2/ (tenant create makes its client)",
                );
                continue;
            }
            if !seen.insert(identifier.clone()) {
                return Err(AdminError::Invalid(format!(
                    "{file}: API {identifier:?} is in the export twice"
                )));
            }
            let scopes: Vec<ScopeDefinition> = match rs.get("scopes") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => serde_json::from_value::<Vec<Value>>(v.clone())
                    .map_err(|e| AdminError::Invalid(format!("{file}: scopes: {e}")))?
                    .into_iter()
                    .map(|s| ScopeDefinition {
                        value: s
                            .get("value")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        description: s
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                    .collect(),
            };
            let mut notes = Vec::new();
            let token_dialect = match str_field(rs, "token_dialect").as_deref() {
                None | Some("access_token") => TokenDialect::AccessToken,
                Some("access_token_authz") => TokenDialect::AccessTokenAuthz,
                Some("rfc9068_profile") => {
                    notes.push("token_dialect rfc9068_profile → access_token (Wardstone's access tokens follow RFC 9068)");
                    TokenDialect::AccessToken
                }
                Some("rfc9068_profile_authz") => {
                    notes.push("token_dialect rfc9068_profile_authz → access_token_authz");
                    TokenDialect::AccessTokenAuthz
                }
                Some(other) => {
                    return Err(AdminError::Invalid(format!(
                        "{file}: token_dialect {other:?} is not one Wardstone knows"
                    )));
                }
            };
            let mut token_lifetime = rs.get("token_lifetime").and_then(Value::as_i64);
            if let Some(l) = token_lifetime
                && l > 86_400
            {
                notes.push("token_lifetime above 86400 s (Wardstone's most) set to 86400");
                token_lifetime = Some(86_400);
            }
            let enforce_policies = rs
                .get("enforce_policies")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let known = [
                "name",
                "identifier",
                "scopes",
                "token_dialect",
                "token_lifetime",
                "enforce_policies",
                "id",
            ];
            let ignored: Vec<&str> = rs
                .keys()
                .map(String::as_str)
                .filter(|k| !known.contains(k))
                .collect();
            let ignored_note = (!ignored.is_empty()).then(|| {
                format!(
                    "Auth0 settings with no Wardstone equivalent ignored: {}",
                    ignored.join(", ")
                )
            });
            let mut notes: Vec<String> = notes.into_iter().map(str::to_string).collect();
            notes.extend(ignored_note);
            let detail = (!notes.is_empty()).then(|| notes.join("; "));
            // The service's own checks, without writing.
            crate::domain::ApiIdentifier::parse(&identifier)
                .map_err(|e| invalid_in(file, "identifier", e.into()))?;
            crate::domain::DisplayName::parse("API name", &name)
                .map_err(|e| invalid_in(file, "name", e.into()))?;
            // Compared as stored (trimmed, a missing description filled in), so a second run
            // finds them equal.
            let scopes = crate::service::apis::check_scopes(&scopes)
                .map_err(|e| invalid_in(file, "scopes", e))?;
            if identifier == crate::domain::management::url(tenant)
                || identifier
                    .to_ascii_lowercase()
                    .starts_with(crate::domain::management::RESERVED_PREFIX)
            {
                return Err(AdminError::Invalid(format!(
                    "{file}: identifier {identifier:?} is reserved by Wardstone"
                )));
            }
            if let Some(l) = token_lifetime {
                crate::service::apis::check_token_lifetime(l)
                    .map_err(|e| invalid_in(file, "token_lifetime", e))?;
            }
            let scope_values: BTreeSet<String> = scopes.iter().map(|s| s.value.clone()).collect();
            match current
                .iter()
                .find(|a| !a.is_system && a.identifier == identifier)
            {
                None => {
                    plan.note("api", &name, Status::Created, detail);
                    plan.steps.push(Step::CreateApi(NewApiInput {
                        identifier: identifier.clone(),
                        name: Some(name.clone()),
                        scopes,
                        token_lifetime,
                        enforce_policies,
                        token_dialect,
                    }));
                }
                Some(a) => {
                    let same = a.name == name
                        && a.scopes == scopes
                        && a.enforce_policies == enforce_policies
                        && a.token_dialect == token_dialect
                        && token_lifetime.is_none_or(|l| l == a.token_lifetime);
                    if same {
                        plan.note("api", &name, Status::Unchanged, detail);
                    } else {
                        plan.note("api", &name, Status::Updated, detail);
                        plan.steps.push(Step::UpdateApi(
                            a.id.clone(),
                            ApiPatch {
                                name: Some(name.clone()),
                                scopes: Some(scopes),
                                token_lifetime,
                                enforce_policies: Some(enforce_policies),
                                token_dialect: Some(token_dialect),
                            },
                        ));
                    }
                }
            }
            defined.insert(identifier, scope_values);
        }
        Ok(defined)
    }
}
