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

mod apply;
pub mod export;
mod plan_apis;
mod plan_clients;
mod plan_code;
mod plan_roles;
pub mod source;
mod stream;
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
