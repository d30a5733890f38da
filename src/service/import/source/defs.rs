//! The typed form of an export: what each of its files holds, read by `source`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// A value with the file it came from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    /// The file, as the operator named it.
    pub file: String,
    pub value: T,
}

/// A rule of the export.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleDef {
    /// Name (the match key).
    pub name: String,
    /// The script file, relative to the file that names it.
    #[serde(default)]
    pub script: Option<String>,
    /// `login_success` (the only stage Wardstone runs), `login_failure`, `pre_authorize`, ….
    #[serde(default)]
    pub stage: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Pipeline position.
    #[serde(default)]
    pub order: Option<i64>,
    /// The source, read from `script`.
    #[serde(skip)]
    pub code: String,
}

/// A rules-config entry.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigDef {
    /// `configuration.KEY`.
    pub key: String,
    /// The value; the Deploy CLI cannot export it (Auth0 never shows it), so it is often absent.
    #[serde(default)]
    pub value: Option<Value>,
}

/// A secret of an action.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretDef {
    /// `event.secrets.NAME`.
    pub name: String,
    /// The value (`_VALUE_NOT_SHOWN_` in a raw export).
    #[serde(default)]
    pub value: Option<String>,
}

/// A dependency as the export lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct DependencyDef {
    pub name: String,
    /// Version as given.
    #[serde(default)]
    pub version: Option<String>,
}

/// A trigger an action supports.
#[derive(Debug, Clone, Deserialize)]
pub struct TriggerDef {
    /// `post-login`, `credentials-exchange`, ….
    pub id: String,
    /// `v3`, `v2`, ….
    #[serde(default)]
    pub version: Option<String>,
}

/// An action of the export.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionDef {
    /// Name (the match key).
    pub name: String,
    /// The export's `code` key: the file (relative to the export) holding the source.
    #[serde(default, rename = "code")]
    pub code_file: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<DependencyDef>,
    /// Secrets with their values.
    #[serde(default)]
    pub secrets: Vec<SecretDef>,
    /// Auth0's runtime name.
    #[serde(default)]
    pub runtime: Option<String>,
    /// The triggers (exactly one in practice).
    #[serde(default)]
    pub supported_triggers: Vec<TriggerDef>,
    /// Whether the export says the action is deployed.
    #[serde(default)]
    pub deployed: Option<bool>,
    /// Present when Auth0 had a deployed version.
    #[serde(default)]
    pub current_version: Option<Value>,
    /// The source, read from `code`.
    #[serde(skip)]
    pub code: String,
}

impl ActionDef {
    /// Whether the export wants the action live.
    pub fn is_deployed(&self) -> bool {
        self.deployed.unwrap_or(self.current_version.is_some())
    }
}

/// One binding of `triggers.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct BindingDef {
    pub action_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A role of the export.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleDef {
    /// Name (the match key).
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
}

/// A role's permission.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PermissionDef {
    /// The scope.
    pub permission_name: String,
    /// The API.
    pub resource_server_identifier: String,
}

/// A client grant; `client_id` is the client's *name*, as the Deploy CLI writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct GrantDef {
    /// The client's name (or its id).
    pub client_id: String,
    /// The API identifier.
    pub audience: String,
    #[serde(default)]
    pub scope: Vec<String>,
}

/// Something of the export Wardstone does not import, and why.
#[derive(Debug, Clone)]
pub struct Unsupported {
    /// Kind (`connection`, `email template`, …).
    pub kind: String,
    /// Name or file.
    pub name: String,
    /// Why, and what to do instead.
    pub reason: String,
}

/// Everything of an export Wardstone reads.
#[derive(Debug, Clone, Default)]
pub struct Auth0Export {
    pub rules: Vec<Sourced<RuleDef>>,
    pub rules_configs: Vec<Sourced<ConfigDef>>,
    /// Actions with their code.
    pub actions: Vec<Sourced<ActionDef>>,
    /// Bindings per trigger id, in order.
    pub triggers: Option<Sourced<BTreeMap<String, Vec<BindingDef>>>>,
    /// Clients, as Auth0 objects.
    pub clients: Vec<Sourced<Map<String, Value>>>,
    /// Resource servers, as Auth0 objects.
    pub resource_servers: Vec<Sourced<Map<String, Value>>>,
    pub roles: Vec<Sourced<RoleDef>>,
    pub grants: Vec<Sourced<GrantDef>>,
    /// What is in the export and not imported.
    pub unsupported: Vec<Unsupported>,
}
