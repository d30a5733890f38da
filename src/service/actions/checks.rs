//! Checks of an action that need no database: name, trigger, runtime, dependencies, the
//! source's shape, and secrets merged with the stored ones.

use super::*;

/// Every check of a new action that needs no database (name, trigger, runtime, dependencies,
/// secrets, the source's shape); compiling is separate.
pub(crate) fn check_new_action(input: &NewActionInput) -> Result<(), AdminError> {
    check_action_name(&input.name)?;
    let (trigger, _) = check_trigger(&input.supported_triggers)?;
    check_runtime(input.runtime.as_deref())?;
    check_dependencies(&input.dependencies)?;
    merge_secrets(&input.secrets, &Map::new(), 0, &[])?;
    check_code(&input.code, trigger)
}

pub(super) fn check_action_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= 100
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\'));
    if !ok {
        return Err(AdminError::Invalid(format!(
            "invalid action name {name:?}: use 1 to 100 characters, no control characters or slashes"
        )));
    }
    Ok(name.to_string())
}

pub(super) fn check_trigger(refs: &[TriggerRef]) -> Result<(TriggerId, String), AdminError> {
    let [only] = refs else {
        return Err(AdminError::Invalid(
            "supported_triggers must name exactly one trigger: post-login or credentials-exchange"
                .into(),
        ));
    };
    let trigger = TriggerId::parse(&only.id)?;
    let version = only
        .version
        .clone()
        .unwrap_or_else(|| trigger.current_version().to_string());
    if version.len() > 10 {
        return Err(AdminError::Invalid("invalid trigger version".into()));
    }
    Ok((trigger, version))
}

pub(super) fn check_runtime(runtime: Option<&str>) -> Result<String, AdminError> {
    match runtime {
        None => Ok(DEFAULT_RUNTIME.into()),
        Some(r) if RUNTIMES.contains(&r) => Ok(r.into()),
        Some(r) => Err(AdminError::Invalid(format!(
            "unsupported runtime {r:?}; use one of {}",
            RUNTIMES.join(", ")
        ))),
    }
}

/// npm dependencies must be built-in modules (there is no npm at run time).
pub(super) fn check_dependencies(deps: &[Dependency]) -> Result<(), AdminError> {
    let outside: Vec<&str> = deps
        .iter()
        .filter(|d| !crate::rules::js::is_builtin(&d.name))
        .map(|d| d.name.as_str())
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    let set = if crate::rules::js::BUILTIN_MODULES.is_empty() {
        "Wardstone has no npm modules yet".to_string()
    } else {
        format!(
            "the built-in modules are {}",
            crate::rules::js::BUILTIN_MODULES.join(", ")
        )
    };
    Err(AdminError::Invalid(format!(
        "dependencies not available in Wardstone: {}; {set}",
        outside.join(", ")
    )))
}

/// The source's checks beyond compiling: size, and the handler its trigger calls.
pub(super) fn check_code(code: &str, trigger: TriggerId) -> Result<(), AdminError> {
    if code.len() > MAX_CODE_BYTES {
        return Err(AdminError::InvalidModule(format!(
            "the code is {} bytes, larger than the {MAX_CODE_BYTES} byte limit",
            code.len()
        )));
    }
    if !code.contains(trigger.entry_point()) {
        return Err(AdminError::InvalidModule(format!(
            "the code does not export {} (exports.{} = async (event, api) => {{ ... }})",
            trigger.entry_point(),
            trigger.entry_point()
        )));
    }
    Ok(())
}

/// Merges the secrets given with the stored ones (PATCH keeps the value of a secret given
/// without one); checks names, sizes and count.
pub(super) fn merge_secrets(
    given: &[SecretInput],
    stored: &Map<String, Value>,
    now: i64,
    stored_names: &[SecretName],
) -> Result<(Map<String, Value>, Vec<SecretName>), AdminError> {
    if given.len() > MAX_SECRETS {
        return Err(AdminError::Invalid(format!(
            "at most {MAX_SECRETS} secrets per action, not {}",
            given.len()
        )));
    }
    let mut values = Map::new();
    let mut names = Vec::new();
    for s in given {
        let name = s.name.trim();
        if name.is_empty()
            || name.len() > MAX_SECRET_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(AdminError::Invalid(format!(
                "invalid secret name {name:?}: 1 to {MAX_SECRET_NAME} letters, digits, '_', '-' or '.'"
            )));
        }
        if values.contains_key(name) {
            return Err(AdminError::Invalid(format!(
                "secret {name:?} is given twice"
            )));
        }
        let (value, updated) = match &s.value {
            Some(v) => {
                if v.len() > MAX_SECRET_VALUE {
                    return Err(AdminError::Invalid(format!(
                        "secret {name:?} is longer than {MAX_SECRET_VALUE} bytes"
                    )));
                }
                (Value::String(v.clone()), rfc3339(now))
            }
            None => match stored.get(name) {
                Some(v) => (
                    v.clone(),
                    stored_names
                        .iter()
                        .find(|n| n.name == name)
                        .map(|n| n.updated_at.clone())
                        .unwrap_or_else(|| rfc3339(now)),
                ),
                None => {
                    return Err(AdminError::Invalid(format!("secret {name:?} has no value")));
                }
            },
        };
        values.insert(name.to_string(), value);
        names.push(SecretName {
            name: name.to_string(),
            updated_at: updated,
        });
    }
    Ok((values, names))
}
