//! Reading what Auth0's Deploy CLI (`a0deploy export`) writes — a directory of JSON files and
//! scripts, or one `tenant.yaml` — into one typed [`Auth0Export`], with the Deploy CLI's keyword
//! replacement. Nothing here touches the database; every error names the file (and the line
//! where the parser knows it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::service::AdminError;

mod defs;
pub use defs::*;

/// `--keyword KEY=VALUE` values. `##KEY##` inserts VALUE as typed; `@@KEY@@` inserts it
/// JSON-encoded (VALUE as JSON when it parses as JSON — a number, an array — else as a string),
/// as the Deploy CLI's `AUTH0_KEYWORD_REPLACE_MAPPINGS` do.
#[derive(Debug, Clone, Default)]
pub struct Keywords(BTreeMap<String, String>);

impl Keywords {
    /// Parses `KEY=VALUE` pairs.
    pub fn parse(pairs: &[String]) -> Result<Keywords, AdminError> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(AdminError::Invalid(format!(
                    "--keyword {pair:?} is not KEY=VALUE"
                )));
            };
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(AdminError::Invalid(format!(
                    "--keyword {key:?}: a key is letters, digits, '_', '-' or '.'"
                )));
            }
            map.insert(key.to_string(), value.to_string());
        }
        Ok(Keywords(map))
    }

    /// The text with every known `##KEY##` and `@@KEY@@` replaced; unknown ones stay, as the
    /// Deploy CLI leaves them.
    pub fn apply(&self, text: &str) -> String {
        if self.0.is_empty() || !(text.contains("##") || text.contains("@@")) {
            return text.to_string();
        }
        let mut out = text.to_string();
        for (key, value) in &self.0 {
            out = out.replace(&format!("##{key}##"), value);
            let json = match serde_json::from_str::<Value>(value) {
                Ok(v) => v.to_string(),
                Err(_) => Value::String(value.clone()).to_string(),
            };
            out = out.replace(&format!("@@{key}@@"), &json);
        }
        out
    }

    /// The keys given (the export writer's placeholders are checked against them in tests).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Largest file of an export read (a rule or a client is a few KiB).
const MAX_FILE: u64 = 4 << 20;

fn read_text(path: &Path, keywords: &Keywords) -> Result<String, AdminError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AdminError::Invalid(format!("{}: cannot read: {e}", path.display())))?;
    // A FIFO or a device reports no length: only regular files are read.
    if !meta.is_file() {
        return Err(AdminError::Invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(AdminError::Invalid(format!(
            "{}: larger than {} MiB",
            path.display(),
            MAX_FILE >> 20
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| AdminError::Invalid(format!("{}: cannot read: {e}", path.display())))?;
    Ok(keywords.apply(&text))
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, AdminError> {
    serde_json::from_str(text).map_err(|e| {
        AdminError::Invalid(format!(
            "{}:{}:{}: {}",
            path.display(),
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    keywords: &Keywords,
) -> Result<T, AdminError> {
    parse_json(path, &read_text(path, keywords)?)
}

/// JSON files of a folder of the export `root`, by name (the Deploy CLI's order is
/// alphabetical too). A file or folder that is a link out of the export is refused.
fn json_files(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, AdminError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let inside = std::fs::canonicalize(root)
        .map_err(|e| AdminError::Invalid(format!("{}: cannot read: {e}", root.display())))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| AdminError::Invalid(format!("{}: cannot read: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in &files {
        if !std::fs::canonicalize(f).is_ok_and(|real| real.starts_with(&inside)) {
            return Err(AdminError::Invalid(format!(
                "{}: links out of the export",
                f.display()
            )));
        }
    }
    Ok(files)
}

/// Finds a file an export names: the Deploy CLI writes paths relative to the export's root,
/// to the folder it ran in, or to the naming file. Only files inside the export are read
/// (symbolic links resolved): an export handed over by someone else cannot make the import
/// read `/etc/shadow` into a rule that its tenant admin can then download.
fn locate(named: &str, root: &Path, beside: &Path, fallback: &Path) -> Option<PathBuf> {
    let named = named.trim();
    let rel = named.strip_prefix("./").unwrap_or(named);
    let inside = std::fs::canonicalize(root).ok()?;
    let mut candidates = vec![root.join(rel), beside.join(rel)];
    if let Some(parent) = root.parent() {
        candidates.push(parent.join(rel));
    }
    // `directory/actions/x/code.js` (the export folder's own name first).
    if let Some((_, rest)) = rel.split_once('/') {
        candidates.push(root.join(rest));
    }
    candidates.push(fallback.to_path_buf());
    candidates.into_iter().find(|p| {
        p.is_file() && std::fs::canonicalize(p).is_ok_and(|real| real.starts_with(&inside))
    })
}

/// Folders and files of a directory export that Wardstone reads.
const READ_DIRS: &[&str] = &[
    "rules",
    "rules-configs",
    "actions",
    "triggers",
    "clients",
    "resource-servers",
    "roles",
    "grants",
];

fn unsupported_reason(kind: &str) -> &'static str {
    match kind {
        "connections" | "database-connections" | "databases" => {
            "Wardstone has one username-password store per tenant; users come with --users"
        }
        "emails" | "email-templates" | "emailTemplates" | "emailProvider" => {
            "Wardstone sends no email"
        }
        "pages" | "prompts" | "branding" | "themes" => {
            "Wardstone's login and consent pages are its own (templates/)"
        }
        "hooks" => "Hooks are retired by Auth0; move them to actions",
        "guardian" => "Wardstone has no MFA; a rule or action asking for it fails the login",
        "tenant" | "tenant.json" => {
            "tenant settings are Wardstone's own (wardstone tenant …, server flags)"
        }
        "action-modules" | "actionModules" => {
            "action modules are not supported; inline the code into the action"
        }
        _ => "Wardstone has no equivalent",
    }
}

impl Auth0Export {
    /// Reads a directory export or a `tenant.yaml` (a file path).
    pub fn read(path: &Path, keywords: &Keywords) -> Result<Auth0Export, AdminError> {
        if path.is_dir() {
            Self::read_directory(path, keywords)
        } else if path.is_file() {
            Self::read_yaml(path, keywords)
        } else {
            Err(AdminError::Invalid(format!(
                "{}: no such directory or file",
                path.display()
            )))
        }
    }

    fn read_directory(root: &Path, keywords: &Keywords) -> Result<Auth0Export, AdminError> {
        let mut export = Auth0Export::default();
        let rules_dir = root.join("rules");
        for file in json_files(root, &rules_dir)? {
            let mut rule: RuleDef = read_json(&file, keywords)?;
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            let script = rule.script.clone().unwrap_or_else(|| format!("{stem}.js"));
            let path = locate(
                &script,
                root,
                &rules_dir,
                &rules_dir.join(format!("{stem}.js")),
            )
            .ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{}: its script {script:?} does not exist",
                    file.display()
                ))
            })?;
            rule.code = read_text(&path, keywords)?;
            export.rules.push(Sourced {
                file: path.display().to_string(),
                value: rule,
            });
        }
        for file in json_files(root, &root.join("rules-configs"))? {
            let value: ConfigDef = read_json(&file, keywords)?;
            export.rules_configs.push(Sourced {
                file: file.display().to_string(),
                value,
            });
        }
        let actions_dir = root.join("actions");
        for file in json_files(root, &actions_dir)? {
            let mut action: ActionDef = read_json(&file, keywords)?;
            let fallback = actions_dir.join(&action.name).join("code.js");
            let named = action
                .code_file
                .clone()
                .unwrap_or_else(|| format!("actions/{}/code.js", action.name));
            let path = locate(&named, root, &actions_dir, &fallback).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{}: its code {named:?} does not exist",
                    file.display()
                ))
            })?;
            action.code = read_text(&path, keywords)?;
            export.actions.push(Sourced {
                file: path.display().to_string(),
                value: action,
            });
        }
        let triggers = root.join("triggers").join("triggers.json");
        if triggers.is_file() {
            json_files(root, &root.join("triggers"))?;
            export.triggers = Some(Sourced {
                file: triggers.display().to_string(),
                value: read_json(&triggers, keywords)?,
            });
        }
        for (dir, list) in [
            ("clients", &mut export.clients),
            ("resource-servers", &mut export.resource_servers),
        ] {
            for file in json_files(root, &root.join(dir))? {
                list.push(Sourced {
                    file: file.display().to_string(),
                    value: read_json(&file, keywords)?,
                });
            }
        }
        for file in json_files(root, &root.join("roles"))? {
            export.roles.push(Sourced {
                file: file.display().to_string(),
                value: read_json(&file, keywords)?,
            });
        }
        for file in json_files(root, &root.join("grants"))? {
            export.grants.push(Sourced {
                file: file.display().to_string(),
                value: read_json(&file, keywords)?,
            });
        }
        // Everything else the export holds is listed, so nothing is dropped unseen.
        let mut others: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|e| AdminError::Invalid(format!("{}: cannot read: {e}", root.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        others.sort();
        for other in others {
            let name = other
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if READ_DIRS.contains(&name.as_str()) || name.starts_with('.') {
                continue;
            }
            let kind = name.trim_end_matches(".json").to_string();
            let entries = if other.is_dir() {
                std::fs::read_dir(&other)
                    .map(|d| d.count())
                    .unwrap_or_default()
            } else {
                1
            };
            if entries == 0 {
                continue;
            }
            export.unsupported.push(Unsupported {
                reason: unsupported_reason(&kind).to_string(),
                kind,
                name: if other.is_dir() {
                    format!("{name}/")
                } else {
                    name
                },
            });
        }
        Ok(export)
    }

    fn read_yaml(file: &Path, keywords: &Keywords) -> Result<Auth0Export, AdminError> {
        let text = read_text(file, keywords)?;
        let doc: Value = serde_norway::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{}:{}:", l.line(), l.column()))
                .unwrap_or_default();
            AdminError::Invalid(format!("{}:{at} {e}", file.display()))
        })?;
        let Value::Object(doc) = doc else {
            return Err(AdminError::Invalid(format!(
                "{}: the YAML document is not a mapping",
                file.display()
            )));
        };
        // `tenant.yaml` given bare has an empty parent: the current folder.
        let base = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = file.display().to_string();
        let mut export = Auth0Export::default();
        let list = |key: &str| -> Result<Vec<Value>, AdminError> {
            match doc.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(AdminError::Invalid(format!(
                    "{name}: `{key}` is not a list"
                ))),
            }
        };
        fn item<T: serde::de::DeserializeOwned>(
            name: &str,
            key: &str,
            v: Value,
        ) -> Result<T, AdminError> {
            serde_json::from_value(v)
                .map_err(|e| AdminError::Invalid(format!("{name}: `{key}`: {e}")))
        }
        for v in list("rules")? {
            let mut rule: RuleDef = item(&name, "rules", v)?;
            let script = rule
                .script
                .clone()
                .unwrap_or_else(|| format!("rules/{}.js", rule.name));
            let path = locate(&script, base, base, &base.join(&script)).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{name}: rule {:?}: its script {script:?} does not exist",
                    rule.name
                ))
            })?;
            rule.code = read_text(&path, keywords)?;
            export.rules.push(Sourced {
                file: path.display().to_string(),
                value: rule,
            });
        }
        for v in list("rulesConfigs")? {
            export.rules_configs.push(Sourced {
                file: name.clone(),
                value: item(&name, "rulesConfigs", v)?,
            });
        }
        for v in list("actions")? {
            let mut action: ActionDef = item(&name, "actions", v)?;
            let named = action
                .code_file
                .clone()
                .unwrap_or_else(|| format!("actions/{}/code.js", action.name));
            let path = locate(&named, base, base, &base.join(&named)).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{name}: action {:?}: its code {named:?} does not exist",
                    action.name
                ))
            })?;
            action.code = read_text(&path, keywords)?;
            export.actions.push(Sourced {
                file: path.display().to_string(),
                value: action,
            });
        }
        if let Some(t) = doc.get("triggers").filter(|t| !t.is_null()) {
            export.triggers = Some(Sourced {
                file: name.clone(),
                value: item(&name, "triggers", t.clone())?,
            });
        }
        for v in list("clients")? {
            export.clients.push(Sourced {
                file: name.clone(),
                value: item(&name, "clients", v)?,
            });
        }
        for v in list("resourceServers")? {
            export.resource_servers.push(Sourced {
                file: name.clone(),
                value: item(&name, "resourceServers", v)?,
            });
        }
        for v in list("roles")? {
            export.roles.push(Sourced {
                file: name.clone(),
                value: item(&name, "roles", v)?,
            });
        }
        for v in list("clientGrants")? {
            export.grants.push(Sourced {
                file: name.clone(),
                value: item(&name, "clientGrants", v)?,
            });
        }
        const READ_KEYS: &[&str] = &[
            "rules",
            "rulesConfigs",
            "actions",
            "triggers",
            "clients",
            "resourceServers",
            "roles",
            "clientGrants",
        ];
        for (key, v) in &doc {
            let empty = match v {
                Value::Null => true,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if READ_KEYS.contains(&key.as_str()) || empty {
                continue;
            }
            export.unsupported.push(Unsupported {
                kind: key.clone(),
                name: format!("{name}: {key}"),
                reason: unsupported_reason(key).to_string(),
            });
        }
        Ok(export)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_read_only_from_inside_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("export");
        std::fs::create_dir_all(root.join("rules")).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
        std::fs::write(root.join("rules/ok.js"), "inside").unwrap();
        let rules = root.join("rules");
        let none = root.join("rules/none.js");
        assert!(locate("./ok.js", &root, &rules, &none).is_some());
        assert!(locate("rules/ok.js", &root, &rules, &none).is_some());
        assert!(locate("../secret.txt", &root, &rules, &none).is_none());
        assert!(locate("../../secret.txt", &root, &rules, &none).is_none());
        let absolute = dir.path().join("secret.txt");
        assert!(locate(absolute.to_str().unwrap(), &root, &rules, &none).is_none());
        assert!(locate("/etc/passwd", &root, &rules, &none).is_none());
    }

    #[test]
    fn keywords_replace_as_the_deploy_cli_does() {
        let k = Keywords::parse(&[
            "ENV=https://dev.example.com".into(),
            "TTL=120".into(),
            "URLS=[\"a\",\"b\"]".into(),
            "NAME=Dev app".into(),
        ])
        .unwrap();
        assert_eq!(
            k.apply(
                r###"{"u":"##ENV##/cb","t":@@TTL@@,"l":@@URLS@@,"n":@@NAME@@,"x":"##OTHER##"}"###
            ),
            r###"{"u":"https://dev.example.com/cb","t":120,"l":["a","b"],"n":"Dev app","x":"##OTHER##"}"###
        );
        assert!(Keywords::parse(&["novalue".into()]).is_err());
        assert!(Keywords::parse(&["=x".into()]).is_err());
    }
}
