//! Plan: the export's rule settings, rules, actions and trigger bindings against the tenant's.

use super::*;

impl Admin {
    pub(super) async fn plan_configs(
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
            crate::service::rules::check_config(&c.key, &value)
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

    pub(super) async fn plan_rules(
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
                    let same =
                        same_code && c.enabled == enabled && r.order.is_none_or(|o| o == c.order);
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
    pub(super) async fn plan_actions(
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
                    crate::service::actions::check_new_action(&input)
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

    pub(super) async fn plan_bindings(
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
}

/// An action's secrets as given, with `_VALUE_NOT_SHOWN_` kept from the stored action or,
/// for a new one, refused: an action must not go live with a secret it does not have.
pub(super) fn action_secrets_of(
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
