//! `wardstone import auth0`: an Auth0 Deploy CLI export (and a user export) made into a
//! Wardstone tenant, and `wardstone export auth0`, the way back (SPEC §16).
//!
//! An import runs in two phases. **Plan** reads the whole export, checks every object with the
//! same checks the Management API applies (rules and actions are compiled), resolves every
//! reference (a grant's client, a role's API, a binding's action) and compares each object with
//! what the tenant holds, by name: the report comes from the plan, and a dry run stops there.
//! Bad input therefore stops the import before anything is written. **Apply** then writes the
//! planned changes in dependency order (APIs, clients, grants, roles, settings, rules, actions,
//! bindings, users). Objects are matched by name, so running the same export again finds
//! everything unchanged and writes nothing.

pub mod export;
pub mod source;
pub mod users;

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use super::actions::{
    ActionPatch, BindingInput, BindingRef, BindingsInput, NewActionInput, SecretInput, TriggerRef,
};
use super::apis::{ApiPatch, NewApiInput};
use super::clients::{ClientPatch, KeptCredentials, NewClientGrant, NewClientInput};
use super::roles::{NewRoleInput, Permission, PermissionsInput, RolePatch};
use super::rules::{NewRuleInput, RulePatch};
use super::{Admin, AdminError};
use crate::domain::action::Dependency;
use crate::domain::{SigningAlg, Tenant, TokenDialect};
use crate::rules::Upload;
use crate::store::ScopeDefinition;
use source::{ActionDef, Auth0Export, Sourced};

/// What happened (or, in a dry run, would happen) to one object.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// New in the tenant.
    Created,
    /// Changed in place.
    Updated,
    /// Already as the export says.
    Unchanged,
    /// Not imported; `detail` says why.
    Skipped,
}

impl Status {
    /// The word shown.
    pub fn label(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Updated => "updated",
            Status::Unchanged => "unchanged",
            Status::Skipped => "skipped",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportItem {
    /// `rule`, `action`, `client`, ….
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// What happened.
    pub status: Status,
    /// Why (every skip has one), or what was dropped or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Credentials made by the import, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewCredentials {
    /// The client's name.
    pub name: String,
    pub client_id: String,
    /// Its secret (none for a public client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Counts by status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

/// The whole answer of an import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub tenant: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// The tenant did not exist and was (or would be) created.
    pub tenant_created: bool,
    /// The new tenant's Management API client, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_client: Option<NewCredentials>,
    /// Counts of `objects`.
    pub summary: Summary,
    /// Every object of the export, in the order applied.
    pub objects: Vec<ReportItem>,
    /// Clients created without credentials in the export: their new id and secret, once.
    pub credentials: Vec<NewCredentials>,
    /// The users' part, when `--users` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<users::UsersReport>,
}

/// What an import reads.
#[derive(Debug, Default)]
pub struct ImportRequest {
    /// The configuration export (`--from`).
    pub export: Option<Auth0Export>,
    /// The user file (`--users`).
    pub users: Option<std::path::PathBuf>,
    /// Write nothing.
    pub dry_run: bool,
    /// Where users without a password hash are checked at first login (`--lazy-from`, …).
    pub lazy: Option<crate::domain::migration::LazyMigration>,
}

/// One planned write.
enum Step {
    CreateApi(NewApiInput),
    UpdateApi(String, ApiPatch),
    CreateClient(Box<NewClientInput>, KeptCredentials),
    UpdateClient(String, Box<ClientPatch>),
    /// Client name, audience, scopes, the grant it replaces.
    Grant(String, String, Vec<String>, Option<String>),
    CreateRole(NewRoleInput, Vec<Permission>),
    UpdateRole(String, Option<String>, Vec<Permission>, Vec<Permission>),
    SetConfig(String, String),
    CreateRule(NewRuleInput),
    UpdateRule(String, RulePatch),
    CreateAction(Box<NewActionInput>, bool),
    UpdateAction(String, Option<Box<ActionPatch>>, bool),
    Bind(String, Vec<(String, Option<String>)>),
    Lazy(crate::domain::migration::LazyMigration),
    SetSecret(String, String),
}

struct Plan {
    items: Vec<ReportItem>,
    steps: Vec<Step>,
}

impl Plan {
    fn note(&mut self, kind: &str, name: &str, status: Status, detail: Option<String>) {
        self.items.push(ReportItem {
            kind: kind.into(),
            name: name.into(),
            status,
            detail,
        });
    }

    fn skip(&mut self, kind: &str, name: &str, why: impl Into<String>) {
        self.note(kind, name, Status::Skipped, Some(why.into()));
    }
}

/// Auth0 grant types Wardstone runs; the others are dropped from a client and reported.
const GRANTS_KEPT: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

/// Auth0's placeholder for values it never exports.
const NOT_SHOWN: &str = "_VALUE_NOT_SHOWN_";

fn str_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

fn invalid_in(file: &str, what: &str, e: AdminError) -> AdminError {
    AdminError::Invalid(format!("{file}: {what}: {e}"))
}

/// An Auth0 Management API audience (`https://TENANT.auth0.com/api/v2/`): Wardstone's own
/// Management API replaces it.
fn is_auth0_management_api(identifier: &str) -> bool {
    identifier.ends_with("/api/v2/") || identifier.ends_with("/api/v2")
}

impl Admin {
    /// Imports an export and/or a user file into `tenant_name` (created when missing). The
    /// plan checks everything first; see the module documentation.
    pub async fn import_auth0(
        &self,
        tenant_name: &str,
        request: ImportRequest,
    ) -> Result<ImportReport, AdminError> {
        let existing = match self.resolve(tenant_name).await {
            Ok(t) => Some(t),
            Err(AdminError::UnknownTenant(_)) => None,
            Err(e) => return Err(e),
        };
        if existing.is_none() {
            crate::domain::TenantName::parse(tenant_name)?;
        }
        // A tenant that does not exist yet is planned against an empty one: everything is new.
        let planning = existing.clone().unwrap_or_else(|| Tenant {
            id: format!("import-plan-{}", crate::crypto::random_token(8)),
            name: tenant_name.to_string(),
            issuer: self.public_url.issuer(tenant_name),
            rules_generation: 0,
            signing_alg: SigningAlg::Rs256,
            keys_generation: 0,
            clients_generation: 0,
        });
        let mut plan = match &request.export {
            Some(export) => self.plan(&planning, export, existing.is_some()).await?,
            None => Plan {
                items: Vec::new(),
                steps: Vec::new(),
            },
        };
        if let Some(lazy) = &request.lazy {
            let current = match &existing {
                Some(t) => self.lazy_migration_of(t).await?,
                None => None,
            };
            let label = format!("{} (realm {})", lazy.token_endpoint, lazy.realm);
            match current {
                Some(c) if c == *lazy => {
                    plan.note("lazy migration", &label, Status::Unchanged, None)
                }
                had => {
                    let status = if had.is_some() {
                        Status::Updated
                    } else {
                        Status::Created
                    };
                    plan.note(
                        "lazy migration",
                        &label,
                        status,
                        Some(
                            "users without a password hash are checked there at their first login"
                                .into(),
                        ),
                    );
                    plan.steps.push(Step::Lazy(lazy.clone()));
                }
            }
        }
        let role_names = self
            .role_names_after(&planning, existing.is_some(), request.export.as_ref())
            .await?;
        let users_checked = match &request.users {
            Some(path) => Some(users::check_file(path, &role_names).await?),
            None => None,
        };
        let mut report = ImportReport {
            tenant: tenant_name.to_string(),
            dry_run: request.dry_run,
            tenant_created: existing.is_none(),
            management_client: None,
            summary: Summary::default(),
            objects: plan.items,
            credentials: Vec::new(),
            users: users_checked.as_ref().map(|c| c.report(request.dry_run)),
        };
        let lazy_set = request.lazy.is_some()
            || match &existing {
                Some(t) => self.lazy_migration_of(t).await?.is_some(),
                None => false,
            };
        if let Some(u) = &mut report.users {
            u.lazy_migration = lazy_set;
        }
        if request.dry_run {
            report.summary = summarize(&report.objects);
            return Ok(report);
        }
        let tenant = match existing {
            Some(t) => t,
            None => {
                let created = self.create_tenant(tenant_name, SigningAlg::Rs256).await?;
                report.management_client = Some(NewCredentials {
                    name: "Management API client".into(),
                    client_id: created.management.client_id.clone(),
                    client_secret: Some(created.management.client_secret.clone()),
                });
                self.resolve(tenant_name).await?
            }
        };
        report.credentials = match self.apply(&tenant, plan.steps).await {
            Ok(c) => c,
            // The tenant was made by this run: its once-shown credentials must not be lost
            // with the error.
            Err(e) => match &report.management_client {
                Some(m) => {
                    return Err(AdminError::Invalid(format!(
                        "{e} (tenant {tenant_name} was created by this import; its Management API client: client_id {}, client_secret {}; running the import again finishes it)",
                        m.client_id,
                        m.client_secret.as_deref().unwrap_or("")
                    )));
                }
                None => return Err(e),
            },
        };
        if let (Some(path), Some(checked)) = (&request.users, users_checked) {
            let mut users = self.import_users(&tenant, path, checked).await?;
            users.lazy_migration = lazy_set;
            report.users = Some(users);
        }
        report.summary = summarize(&report.objects);
        Ok(report)
    }

    /// Role names known once the export is applied (the tenant's and the export's).
    async fn role_names_after(
        &self,
        tenant: &Tenant,
        exists: bool,
        export: Option<&Auth0Export>,
    ) -> Result<BTreeSet<String>, AdminError> {
        let mut names = BTreeSet::new();
        if exists {
            for r in self.list_roles(tenant, 0, 10_000).await? {
                names.insert(r.name);
            }
        }
        if let Some(export) = export {
            for r in &export.roles {
                names.insert(r.value.name.trim().to_string());
            }
        }
        Ok(names)
    }

    async fn plan(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
    ) -> Result<Plan, AdminError> {
        let mut plan = Plan {
            items: Vec::new(),
            steps: Vec::new(),
        };
        let apis = self.plan_apis(tenant, export, exists, &mut plan).await?;
        let clients = self.plan_clients(tenant, export, exists, &mut plan).await?;
        self.plan_grants(tenant, export, exists, &apis, &clients, &mut plan)
            .await?;
        self.plan_roles(tenant, export, exists, &apis, &mut plan)
            .await?;
        self.plan_configs(tenant, export, exists, &mut plan).await?;
        self.plan_rules(tenant, export, exists, &mut plan).await?;
        let actions = self.plan_actions(tenant, export, exists, &mut plan).await?;
        self.plan_bindings(tenant, export, exists, &actions, &mut plan)
            .await?;
        for u in &export.unsupported {
            plan.skip(&u.kind, &u.name, u.reason.clone());
        }
        Ok(plan)
    }

    /// APIs: identifier → the scopes it will define.
    async fn plan_apis(
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
            let scopes =
                super::apis::check_scopes(&scopes).map_err(|e| invalid_in(file, "scopes", e))?;
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
                super::apis::check_token_lifetime(l)
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

    /// Clients: name → whether it is confidential (may hold client grants).
    async fn plan_clients(
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
                    .partition(|t| t.as_str().is_some_and(|t| GRANTS_KEPT.contains(&t)));
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
                    .map_err(super::internal)?
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
                                .map_err(super::internal)?
                                .and_then(|r| r.secret_hash);
                            stored.as_deref() != Some(crate::crypto::hash_token(secret).as_slice())
                        }
                        None => false,
                    };
                    let same = (!given("callbacks") || c.callbacks == record.redirect_uris)
                        && (!given("allowed_logout_urls")
                            || c.allowed_logout_urls == record.logout_urls)
                        && (!given("grant_types") || c.grant_types == record.grant_types)
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
                                        .then(|| record.grant_types.clone()),
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

    async fn plan_grants(
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

    async fn plan_roles(
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

    async fn plan_configs(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        plan: &mut Plan,
    ) -> Result<(), AdminError> {
        let current: HashMap<String, String> = if exists {
            self.rule_config_values(tenant).await?
        } else {
            HashMap::new()
        };
        for Sourced { file, value: c } in &export.rules_configs {
            let value = match &c.value {
                Some(Value::String(s)) if s != NOT_SHOWN && !s.starts_with("##") => s.clone(),
                Some(Value::Null) | None => {
                    plan.skip("rules config", &c.key, "no value in the export (Auth0 never exports them): set it with `wardstone rules-config set` or --keyword");
                    continue;
                }
                Some(Value::String(s)) => {
                    plan.skip("rules config", &c.key, format!("its value is the placeholder {s:?}: give it with --keyword or `wardstone rules-config set`"));
                    continue;
                }
                Some(other) => other.to_string(),
            };
            super::rules::check_config(&c.key, &value)
                .map_err(|e| invalid_in(file, &format!("rules config {:?}", c.key), e))?;
            match current.get(&c.key) {
                Some(v) if *v == value => {
                    plan.note("rules config", &c.key, Status::Unchanged, None)
                }
                had => {
                    let status = if had.is_some() {
                        Status::Updated
                    } else {
                        Status::Created
                    };
                    plan.note("rules config", &c.key, status, None);
                    plan.steps.push(Step::SetConfig(c.key.clone(), value));
                }
            }
        }
        Ok(())
    }

    async fn plan_rules(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        plan: &mut Plan,
    ) -> Result<(), AdminError> {
        let current = if exists {
            self.list_rules(tenant).await?
        } else {
            Vec::new()
        };
        let mut seen = BTreeSet::new();
        for Sourced { file, value: r } in &export.rules {
            let name = r.name.trim().to_string();
            if !seen.insert(name.clone()) {
                return Err(AdminError::Invalid(format!(
                    "{file}: rule {name:?} is in the export twice"
                )));
            }
            let stage = r.stage.as_deref().unwrap_or("login_success");
            if stage != "login_success" {
                plan.skip(
                    "rule",
                    &name,
                    format!("stage {stage}: Wardstone runs login_success rules only"),
                );
                continue;
            }
            let enabled = r.enabled.unwrap_or(true);
            // Compiled now, so a syntax error stops the import before anything is written.
            self.compile_upload(tenant, Upload::Script(r.code.clone()))
                .await
                .map_err(|e| invalid_in(file, &format!("rule {name:?}"), e))?;
            match current.iter().find(|c| c.name == name) {
                None => {
                    plan.note("rule", &name, Status::Created, None);
                    plan.steps.push(Step::CreateRule(NewRuleInput {
                        name: name.clone(),
                        order: r.order,
                        enabled: Some(enabled),
                        wasm: None,
                        wat: None,
                        script: Some(r.code.clone()),
                        on_failure: None,
                    }));
                }
                Some(c) => {
                    let script = self.get_rule(tenant, &c.id, false).await?.script;
                    let same_code = script.as_deref() == Some(r.code.as_str());
                    let same = same_code
                        && (c.enabled == 1) == enabled
                        && r.order.is_none_or(|o| o == c.rule_order);
                    if same {
                        plan.note("rule", &name, Status::Unchanged, None);
                    } else {
                        plan.note("rule", &name, Status::Updated, None);
                        plan.steps.push(Step::UpdateRule(
                            c.id.clone(),
                            RulePatch {
                                name: None,
                                order: r.order,
                                enabled: Some(enabled),
                                wasm: None,
                                wat: None,
                                script: (!same_code).then(|| r.code.clone()),
                                on_failure: None,
                            },
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Actions: name → (trigger, deployed after the import).
    async fn plan_actions(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        plan: &mut Plan,
    ) -> Result<HashMap<String, (String, bool)>, AdminError> {
        let current = if exists {
            self.list_actions(tenant, None, None, None).await?.actions
        } else {
            Vec::new()
        };
        let mut known: HashMap<String, (String, bool)> = current
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    (
                        a.supported_triggers
                            .first()
                            .map(|t| t.id.clone())
                            .unwrap_or_default(),
                        a.deployed_version.is_some(),
                    ),
                )
            })
            .collect();
        let mut seen = BTreeSet::new();
        for Sourced { file, value: a } in &export.actions {
            let name = a.name.trim().to_string();
            if !seen.insert(name.clone()) {
                return Err(AdminError::Invalid(format!(
                    "{file}: action {name:?} is in the export twice"
                )));
            }
            let trigger = a
                .supported_triggers
                .first()
                .map(|t| t.id.as_str())
                .unwrap_or("");
            if !matches!(trigger, "post-login" | "credentials-exchange") {
                plan.skip(
                    "action",
                    &name,
                    format!(
                        "trigger {trigger:?}: Wardstone runs post-login and credentials-exchange"
                    ),
                );
                continue;
            }
            let outside: Vec<&str> = a
                .dependencies
                .iter()
                .filter(|d| !crate::rules::js::is_builtin(&d.name))
                .map(|d| d.name.as_str())
                .collect();
            if !outside.is_empty() {
                plan.skip("action", &name, format!(
                    "npm dependencies outside Wardstone's built-in modules: {} (see docs/writing-js-rules.md#built-in-modules)",
                    outside.join(", ")
                ));
                continue;
            }
            let had = current.iter().find(|c| c.name == name);
            let secrets = action_secrets_of(file, a, had.is_some())?;
            self.compile_action(tenant, &a.code)
                .await
                .map_err(|e| invalid_in(file, &format!("action {name:?}"), e))?;
            let deploy = a.is_deployed();
            let dependencies: Vec<Dependency> = a
                .dependencies
                .iter()
                .map(|d| Dependency {
                    name: d.name.clone(),
                    version: d.version.clone().unwrap_or_default(),
                    registry_url: None,
                })
                .collect();
            let triggers = vec![TriggerRef {
                id: trigger.to_string(),
                version: a.supported_triggers[0].version.clone(),
            }];
            match had {
                None => {
                    let detail = (!deploy)
                        .then(|| "not deployed in the export: created as a draft".to_string());
                    plan.note("action", &name, Status::Created, detail);
                    let input = NewActionInput {
                        name: name.clone(),
                        supported_triggers: triggers,
                        code: a.code.clone(),
                        dependencies,
                        runtime: a.runtime.clone(),
                        secrets,
                        modules: None,
                    };
                    super::actions::check_new_action(&input)
                        .map_err(|e| invalid_in(file, &format!("action {name:?}"), e))?;
                    plan.steps.push(Step::CreateAction(Box::new(input), deploy));
                }
                Some(c) => {
                    let stored = self.open_secrets(tenant, &c.id).await?;
                    let secrets_same = secrets.len() == stored.len()
                        && secrets.iter().all(|s| match &s.value {
                            Some(v) => {
                                stored.get(&s.name).and_then(Value::as_str) == Some(v.as_str())
                            }
                            None => stored.contains_key(&s.name),
                        });
                    let deps_same = serde_json::to_value(&c.dependencies).ok()
                        == serde_json::to_value(&dependencies).ok();
                    let draft_same = c.code == a.code && deps_same && secrets_same;
                    let live_same = c
                        .deployed_version
                        .as_ref()
                        .is_some_and(|v| v.code == a.code);
                    let needs_deploy =
                        deploy && !(draft_same && live_same && c.all_changes_deployed);
                    if draft_same && !needs_deploy {
                        plan.note("action", &name, Status::Unchanged, None);
                    } else {
                        plan.note("action", &name, Status::Updated, None);
                        let patch = (!draft_same).then(|| {
                            Box::new(ActionPatch {
                                name: None,
                                supported_triggers: Some(triggers),
                                code: Some(a.code.clone()),
                                dependencies: Some(dependencies),
                                runtime: a.runtime.clone(),
                                secrets: Some(secrets),
                                modules: None,
                            })
                        });
                        plan.steps
                            .push(Step::UpdateAction(c.id.clone(), patch, needs_deploy));
                    }
                }
            }
            let live = deploy || known.get(&name).is_some_and(|k| k.1);
            known.insert(name, (trigger.to_string(), live));
        }
        Ok(known)
    }

    async fn plan_bindings(
        &self,
        tenant: &Tenant,
        export: &Auth0Export,
        exists: bool,
        actions: &HashMap<String, (String, bool)>,
        plan: &mut Plan,
    ) -> Result<(), AdminError> {
        let Some(Sourced { file, value }) = &export.triggers else {
            return Ok(());
        };
        let skipped: BTreeSet<&str> = plan
            .items
            .iter()
            .filter(|i| i.kind == "action" && i.status == Status::Skipped)
            .map(|i| i.name.as_str())
            .collect::<BTreeSet<_>>();
        let skipped: BTreeSet<String> = skipped.into_iter().map(str::to_string).collect();
        for (trigger, bindings) in value {
            if !matches!(trigger.as_str(), "post-login" | "credentials-exchange") {
                if !bindings.is_empty() {
                    plan.skip("trigger", trigger, "a trigger Wardstone does not run");
                }
                continue;
            }
            let mut wanted = Vec::new();
            let mut dropped = Vec::new();
            for b in bindings {
                if skipped.contains(&b.action_name) {
                    dropped.push(b.action_name.clone());
                    continue;
                }
                match actions.get(&b.action_name) {
                    None => {
                        return Err(AdminError::Invalid(format!(
                            "{file}: {trigger}: action {:?} is neither in the export nor in the tenant",
                            b.action_name
                        )));
                    }
                    Some((t, _)) if t != trigger => {
                        return Err(AdminError::Invalid(format!(
                            "{file}: {trigger}: action {:?} is a {t} action",
                            b.action_name
                        )));
                    }
                    Some((_, false)) => {
                        return Err(AdminError::Invalid(format!(
                            "{file}: {trigger}: action {:?} is not deployed, so it cannot be bound",
                            b.action_name
                        )));
                    }
                    Some(_) => wanted.push((b.action_name.clone(), b.display_name.clone())),
                }
            }
            let current: Vec<(String, String)> = if exists {
                self.bindings(tenant, trigger)
                    .await?
                    .bindings
                    .into_iter()
                    .map(|b| (b.action.name, b.display_name))
                    .collect()
            } else {
                Vec::new()
            };
            let same = current.len() == wanted.len()
                && current.iter().zip(&wanted).all(|((a, d), (name, shown))| {
                    a == name && shown.as_deref().is_none_or(|s| s == d)
                });
            let detail = (!dropped.is_empty())
                .then(|| format!("skipped actions left out: {}", dropped.join(", ")));
            let label = format!("{trigger} bindings");
            if same {
                plan.note("bindings", &label, Status::Unchanged, detail);
            } else {
                let status = if current.is_empty() {
                    Status::Created
                } else {
                    Status::Updated
                };
                plan.note("bindings", &label, status, detail);
                plan.steps.push(Step::Bind(trigger.clone(), wanted));
            }
        }
        Ok(())
    }

    async fn apply(
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
                        .map_err(super::internal)?;
                }
                Step::Lazy(lazy) => {
                    let sealed = lazy.seal(&self.master_key, &tenant.id);
                    self.store
                        .set_lazy_migration(&tenant.id, &sealed, self.clock.now())
                        .await
                        .map_err(super::internal)?;
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
    async fn lazy_migration_of(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<crate::domain::migration::LazyMigration>, AdminError> {
        use crate::domain::migration::LazyMigration;
        let Some(sealed) = self
            .store
            .lazy_migration(&tenant.id)
            .await
            .map_err(super::internal)?
        else {
            return Ok(None);
        };
        LazyMigration::open(&self.master_key, &tenant.id, &sealed)
            .map(Some)
            .map_err(|e| AdminError::Internal(anyhow::Error::msg(e)))
    }

    /// The tenant's rule settings, opened (the importer compares them to the export's).
    async fn rule_config_values(
        &self,
        tenant: &Tenant,
    ) -> Result<HashMap<String, String>, AdminError> {
        let mut out = HashMap::new();
        for (key, sealed) in self
            .store
            .rule_configs(&tenant.id)
            .await
            .map_err(super::internal)?
        {
            let value =
                crate::rules::Rules::open_config(&self.master_key, &tenant.id, &key, &sealed)?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// An action's secrets as given, with `_VALUE_NOT_SHOWN_` kept from the stored action or,
/// for a new one, refused: an action must not go live with a secret it does not have.
fn action_secrets_of(
    file: &str,
    a: &ActionDef,
    exists: bool,
) -> Result<Vec<SecretInput>, AdminError> {
    let mut out = Vec::new();
    for s in &a.secrets {
        let missing = match &s.value {
            None => true,
            Some(v) => v == NOT_SHOWN || (v.starts_with("##") && v.ends_with("##")),
        };
        if missing && !exists {
            return Err(AdminError::Invalid(format!(
                "{file}: action {:?}: secret {:?} has no value in the export (Auth0 exports {NOT_SHOWN}); write it into the file as ##{}## and give --keyword {}=VALUE",
                a.name, s.name, s.name, s.name
            )));
        }
        out.push(SecretInput {
            name: s.name.clone(),
            value: if missing { None } else { s.value.clone() },
            updated_at: None,
        });
    }
    Ok(out)
}

fn summarize(items: &[ReportItem]) -> Summary {
    let mut s = Summary::default();
    for i in items {
        match i.status {
            Status::Created => s.created += 1,
            Status::Updated => s.updated += 1,
            Status::Unchanged => s.unchanged += 1,
            Status::Skipped => s.skipped += 1,
        }
    }
    s
}

/// The report as a table for people.
pub fn render_table(report: &ImportReport) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "would import"
    } else {
        "imported"
    };
    out.push_str(&format!(
        "{verb} into tenant {}{}\n",
        report.tenant,
        if report.tenant_created {
            if report.dry_run {
                " (to be created)"
            } else {
                " (created)"
            }
        } else {
            ""
        }
    ));
    let width = report
        .objects
        .iter()
        .map(|i| i.kind.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let name_width = report
        .objects
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    if !report.objects.is_empty() {
        out.push_str(&format!(
            "\n{:<width$}  {:<name_width$}  {:<9}  detail\n",
            "kind", "name", "status"
        ));
        for i in &report.objects {
            out.push_str(&format!(
                "{:<width$}  {:<name_width$}  {:<9}  {}\n",
                i.kind,
                i.name,
                i.status.label(),
                i.detail.as_deref().unwrap_or("")
            ));
        }
        let s = &report.summary;
        out.push_str(&format!(
            "\n{} created, {} updated, {} unchanged, {} skipped\n",
            s.created, s.updated, s.unchanged, s.skipped
        ));
        if s.created + s.updated == 0 && !report.dry_run {
            out.push_str("nothing changed\n");
        }
    }
    if let Some(u) = &report.users {
        out.push_str(&format!("\n{}\n", u.line()));
    }
    if let Some(m) = &report.management_client {
        out.push_str(&format!(
            "\nManagement API client of the new tenant (shown only now):\n  client_id: {}\n  client_secret: {}\n",
            m.client_id,
            m.client_secret.as_deref().unwrap_or("")
        ));
    }
    if !report.credentials.is_empty() {
        out.push_str("\nNew client credentials (shown only now):\n");
        for c in &report.credentials {
            out.push_str(&format!("  {}: client_id {}", c.name, c.client_id));
            if let Some(s) = &c.client_secret {
                out.push_str(&format!(", client_secret {s}"));
            }
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}
