//! `wardstone export auth0`: a tenant written in the Deploy CLI's directory layout, so it can be
//! diffed, kept in git and imported elsewhere. Values Wardstone never shows (rule settings,
//! action secrets, client secrets) are written as `##KEYWORD##` placeholders, never in clear.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::Tenant;
use crate::service::{Admin, AdminError};

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The folder.
    pub directory: String,
    /// Files written, relative to it.
    pub files: Vec<String>,
    /// The `--keyword` names an import of this folder needs (settings and secrets).
    pub keywords: Vec<String>,
}

/// A name made safe as a file name (the Deploy CLI's own sanitizing is similar).
fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "_".into() } else { s }
}

/// A keyword name for a placeholder: upper case, `_` for anything else.
fn keyword(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

struct Writer<'a> {
    root: &'a Path,
    files: Vec<String>,
    taken: std::collections::HashSet<String>,
}

impl Writer<'_> {
    /// A file name not yet used in `folder` (two names that sanitize alike get `-2`, `-3`).
    fn unique(&mut self, folder: &str, name: &str) -> String {
        let base = file_name(name);
        let mut candidate = base.clone();
        let mut n = 1;
        while !self
            .taken
            .insert(format!("{folder}/{}", candidate.to_lowercase()))
        {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        candidate
    }

    fn write(&mut self, rel: &str, contents: &[u8]) -> Result<(), AdminError> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                AdminError::Invalid(format!("{}: cannot create: {e}", parent.display()))
            })?;
        }
        std::fs::write(&path, contents)
            .map_err(|e| AdminError::Invalid(format!("{}: cannot write: {e}", path.display())))?;
        self.files.push(rel.to_string());
        Ok(())
    }

    fn json(&mut self, rel: &str, v: &Value) -> Result<(), AdminError> {
        let mut text = serde_json::to_string_pretty(v).expect("plain JSON");
        text.push('\n');
        self.write(rel, text.as_bytes())
    }
}

impl Admin {
    /// Writes `tenant` as a Deploy CLI directory under `dir` (created if missing; files of the
    /// same names are replaced).
    pub async fn export_auth0(
        &self,
        tenant: &Tenant,
        dir: &Path,
    ) -> Result<ExportReport, AdminError> {
        // Files of an earlier export would come back on import as objects that no longer
        // exist: write into an empty (or new) folder only.
        if let Ok(mut entries) = std::fs::read_dir(dir)
            && entries.next().is_some()
        {
            return Err(AdminError::Invalid(format!(
                "{}: not empty; export into a new or empty folder",
                dir.display()
            )));
        }
        let mut w = Writer {
            root: dir,
            files: Vec::new(),
            taken: Default::default(),
        };
        let mut keywords: Vec<String> = Vec::new();
        let mut unique_keyword = |parts: &[&str]| -> String {
            let base = keyword(parts);
            let mut candidate = base.clone();
            let mut n = 1;
            while keywords.contains(&candidate) {
                n += 1;
                candidate = format!("{base}_{n}");
            }
            keywords.push(candidate.clone());
            candidate
        };
        for rule in self.list_rules(tenant).await? {
            let view = self.get_rule(tenant, &rule.id, false).await?;
            let Some(script) = view.script else {
                // A wasm rule has no Auth0 form; it stays in Wardstone (reported on stderr).
                tracing::warn!(rule = %rule.name, "a WebAssembly rule is not exported");
                continue;
            };
            let base = w.unique("rules", &rule.name);
            w.write(&format!("rules/{base}.js"), script.as_bytes())?;
            w.json(
                &format!("rules/{base}.json"),
                &json!({
                    "name": rule.name,
                    "script": format!("./{base}.js"),
                    "stage": "login_success",
                    "enabled": rule.enabled,
                    "order": rule.order,
                }),
            )?;
        }
        for key in self.rule_config_keys(tenant).await? {
            let kw = unique_keyword(&["RULES_CONFIG", &key]);
            let base = w.unique("rules-configs", &key);
            w.json(
                &format!("rules-configs/{base}.json"),
                &json!({"key": key, "value": format!("##{kw}##")}),
            )?;
        }
        let actions = self.list_actions(tenant, None, None, None).await?.actions;
        for a in &actions {
            let base = w.unique("actions", &a.name);
            // What runs is what is exported as deployed: the live version's code, not a draft
            // edited since (which an import would otherwise deploy).
            let code = match &a.deployed_version {
                Some(v) => &v.code,
                None => &a.code,
            };
            w.write(&format!("actions/{base}/code.js"), code.as_bytes())?;
            let secrets: Vec<Value> = a
                .secrets
                .iter()
                .map(|s| {
                    let name = serde_json::to_value(s)
                        .ok()
                        .and_then(|v| {
                            v.get("name")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .or_else(|| v.as_str().map(str::to_string))
                        })
                        .unwrap_or_default();
                    let kw = unique_keyword(&["ACTION", &a.name, &name]);
                    json!({"name": name, "value": format!("##{kw}##")})
                })
                .collect();
            w.json(
                &format!("actions/{base}.json"),
                &json!({
                    "name": a.name,
                    "code": format!("./actions/{base}/code.js"),
                    "dependencies": a.dependencies,
                    "secrets": secrets,
                    "runtime": a.runtime,
                    "supported_triggers": a.supported_triggers,
                    "deployed": a.deployed_version.is_some(),
                    "status": "built",
                }),
            )?;
        }
        let mut triggers = serde_json::Map::new();
        for trigger in ["post-login", "credentials-exchange"] {
            let bindings: Vec<Value> = self
                .bindings(tenant, trigger)
                .await?
                .bindings
                .into_iter()
                .map(|b| json!({"action_name": b.action.name, "display_name": b.display_name}))
                .collect();
            triggers.insert(trigger.into(), Value::Array(bindings));
        }
        w.json("triggers/triggers.json", &Value::Object(triggers))?;
        let clients = self.list_clients(tenant, 0, 10_000).await?;
        let mut names = std::collections::HashMap::new();
        for c in &clients {
            if self.is_management_client(tenant, &c.client_id).await? {
                continue;
            }
            names.insert(c.client_id.clone(), c.name.clone());
            let mut v = serde_json::to_value(c).expect("plain JSON");
            let obj = v.as_object_mut().expect("an object");
            obj.remove("created_at");
            if c.token_endpoint_auth_method != "none" {
                let kw = unique_keyword(&["CLIENT_SECRET", &c.name]);
                obj.insert("client_secret".into(), Value::String(format!("##{kw}##")));
            } else {
                obj.remove("client_secret");
            }
            let base = w.unique("clients", &c.name);
            w.json(&format!("clients/{base}.json"), &v)?;
        }
        for api in self.list_apis(tenant).await? {
            if api.is_system {
                continue;
            }
            let base = w.unique("resource-servers", &api.name);
            w.json(
                &format!("resource-servers/{base}.json"),
                &json!({
                    "name": api.name,
                    "identifier": api.identifier,
                    "scopes": api.scopes,
                    "enforce_policies": api.enforce_policies,
                    "token_dialect": api.token_dialect,
                    "token_lifetime": api.token_lifetime,
                }),
            )?;
        }
        for role in self.list_roles(tenant, 0, 10_000).await? {
            let permissions = self.role_permissions(tenant, &role.id).await?;
            let base = w.unique("roles", &role.name);
            w.json(
                &format!("roles/{base}.json"),
                &json!({
                    "name": role.name,
                    "description": role.description,
                    "permissions": permissions,
                }),
            )?;
        }
        for g in self.list_client_grants(tenant).await? {
            let Some(client) = names.get(&g.client_id) else {
                continue;
            };
            let api = g
                .audience
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let base = w.unique("grants", &format!("{client}-{api}"));
            w.json(
                &format!("grants/{base}.json"),
                &json!({"client_id": client, "audience": g.audience, "scope": g.scope}),
            )?;
        }
        keywords.sort();
        Ok(ExportReport {
            directory: dir.display().to_string(),
            files: w.files,
            keywords,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_file_names_and_keywords() {
        assert_eq!(file_name("../etc/passwd"), "_etc_passwd");
        assert_eq!(file_name("My App"), "My App");
        assert_eq!(
            keyword(&["ACTION", "send sms", "api-key"]),
            "ACTION_SEND_SMS_API_KEY"
        );
    }
}
