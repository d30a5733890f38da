//! `wardstone action …`: Auth0 Actions from the command line (the Management API's
//! `/actions` under the hood: same checks, same errors), and `action run`, which runs an action
//! file on an event offline.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{CliError, Output, print};
use crate::domain::TriggerId;
use crate::service::actions::{
    ActionPatch, ActionVersionView, ActionView, BindingInput, BindingRef, BindingsInput,
    NewActionInput, SecretInput, TriggerRef,
};
use crate::service::{Admin, AdminError};

#[derive(Subcommand, Debug)]
pub(super) enum ActionCommand {
    /// Create an action from a file (a draft: `deploy` makes it live, `bind` runs it).
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// `post-login` or `credentials-exchange`.
        #[arg(long, default_value = "post-login")]
        trigger: String,
        /// The action's source (`exports.onExecutePostLogin = async (event, api) => {…}`).
        #[arg(long)]
        file: PathBuf,
        /// A secret, NAME=VALUE (repeatable; `event.secrets.NAME`).
        #[arg(long = "secret", value_name = "NAME=VALUE")]
        secrets: Vec<String>,
        /// Deploy it at once.
        #[arg(long)]
        deploy: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Replace an action's draft code, or set secrets (secrets are live at once).
    Update {
        #[arg(long)]
        tenant: String,
        /// Action id or name.
        #[arg(long)]
        id: String,
        #[arg(long)]
        file: Option<PathBuf>,
        /// A secret to add or replace, NAME=VALUE (repeatable; others keep their values).
        #[arg(long = "secret", value_name = "NAME=VALUE")]
        secrets: Vec<String>,
        /// Deploy the draft after the change.
        #[arg(long)]
        deploy: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Replay a candidate (--file, else the draft) on the tenant's newest recorded runs of the
    /// action's trigger (recording must be on): what would change, before it ships.
    Replay {
        #[arg(long)]
        tenant: String,
        /// Action id or name.
        #[arg(long)]
        id: String,
        /// The candidate's code; the action's draft when absent.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Newest recorded runs to replay on, 1 to 5000.
        #[arg(long, default_value_t = 100)]
        last: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Deploy the draft: a new version, live wherever the action is bound.
    Deploy {
        #[arg(long)]
        tenant: String,
        /// Action id or name.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// List actions.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
    /// List an action's versions, newest first.
    Versions {
        #[arg(long)]
        tenant: String,
        /// Action id or name.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Deploy an earlier version again (recorded as a new version).
    Rollback {
        #[arg(long)]
        tenant: String,
        /// Action id or name.
        #[arg(long)]
        id: String,
        /// The version's id or number.
        #[arg(long)]
        version: String,
        #[command(flatten)]
        out: Output,
    },
    /// Delete an action (a bound one only with --force; its bindings go with it).
    Remove {
        #[arg(long)]
        tenant: String,
        /// Action id or name.
        #[arg(long)]
        id: String,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Set what a trigger runs, in order (the whole list; none empties it).
    Bind {
        #[arg(long)]
        tenant: String,
        /// `post-login` or `credentials-exchange`.
        #[arg(long, default_value = "post-login")]
        trigger: String,
        /// Action names or ids, in execution order.
        actions: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Run an action file on an event through the server's engine and limits, offline (no
    /// database, no network).
    Run {
        /// The action's source.
        #[arg(long)]
        file: PathBuf,
        /// `post-login` or `credentials-exchange`.
        #[arg(long, default_value = "post-login")]
        trigger: String,
        /// The event (JSON); fields it leaves out take sample values.
        #[arg(long)]
        event: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum BindingsCommand {
    /// Set what a trigger runs, in order (the whole list; none empties it).
    Set {
        #[arg(long)]
        tenant: String,
        /// `post-login` or `credentials-exchange`.
        #[arg(long, default_value = "post-login")]
        trigger: String,
        /// Action names or ids, in execution order.
        actions: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
}

fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Other(anyhow::anyhow!("cannot read {}: {e}", path.display())))
}

fn parse_secrets(given: &[String]) -> Result<Vec<SecretInput>, CliError> {
    given
        .iter()
        .map(|s| match s.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(SecretInput {
                name: name.into(),
                value: Some(value.into()),
                updated_at: None,
            }),
            // The argument is not echoed: it may be a bare secret value typed by mistake.
            _ => Err(AdminError::Invalid("invalid --secret: use NAME=VALUE".into()).into()),
        })
        .collect()
}

/// An action named by id or, failing that, by name (an id always wins: a name spelled like
/// another action's id never redirects a command to it).
async fn find(
    admin: &Admin,
    tenant: &crate::domain::Tenant,
    id: &str,
) -> Result<ActionView, CliError> {
    match admin.get_action(tenant, id).await {
        Ok(a) => Ok(a),
        Err(AdminError::NotFound(why)) => match admin.action_by_name(tenant, id).await? {
            Some(a) => Ok(a),
            None => Err(AdminError::NotFound(why).into()),
        },
        Err(e) => Err(e.into()),
    }
}

fn show(a: &ActionView) -> String {
    let live = match &a.deployed_version {
        Some(v) if a.all_changes_deployed => format!("version {} live", v.number),
        Some(v) => format!("version {} live, draft changed", v.number),
        None => "not deployed".into(),
    };
    let trigger = a
        .supported_triggers
        .first()
        .map(|t| t.id.as_str())
        .unwrap_or_default();
    format!("{}  {}  {}  {}", a.id, trigger, live, a.name)
}

fn show_version(v: &ActionVersionView) -> String {
    format!(
        "{}  version {}{}  {}",
        v.id,
        v.number,
        if v.deployed { "  live" } else { "" },
        v.created_at
    )
}

pub(super) async fn command(admin: &Admin, command: ActionCommand) -> Result<(), CliError> {
    match command {
        ActionCommand::Add {
            tenant,
            name,
            trigger,
            file,
            secrets,
            deploy,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let code = read_text(&file)?;
            let mut a = admin
                .create_action(
                    &tenant,
                    NewActionInput {
                        name,
                        supported_triggers: vec![TriggerRef {
                            id: trigger,
                            version: None,
                        }],
                        code,
                        dependencies: vec![],
                        runtime: None,
                        secrets: parse_secrets(&secrets)?,
                        modules: None,
                    },
                )
                .await?;
            if deploy {
                admin.deploy_action(&tenant, &a.id).await?;
                a = admin.get_action(&tenant, &a.id).await?;
            }
            print(out.json, &a, |a| format!("added {}", show(a)));
        }
        ActionCommand::Update {
            tenant,
            id,
            file,
            secrets,
            deploy,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let current = find(admin, &tenant, &id).await?;
            let secrets = if secrets.is_empty() {
                None
            } else {
                // The API takes the whole list; the CLI adds to it (names without a value keep
                // theirs).
                let mut list = parse_secrets(&secrets)?;
                for name in &current.secrets {
                    if !list.iter().any(|s| s.name == name.name) {
                        list.push(SecretInput {
                            name: name.name.clone(),
                            value: None,
                            updated_at: None,
                        });
                    }
                }
                Some(list)
            };
            let code = file.as_deref().map(read_text).transpose()?;
            let mut a = admin
                .update_action(
                    &tenant,
                    &current.id,
                    ActionPatch {
                        code,
                        secrets,
                        ..Default::default()
                    },
                )
                .await?;
            if deploy {
                admin.deploy_action(&tenant, &a.id).await?;
                a = admin.get_action(&tenant, &a.id).await?;
            }
            print(out.json, &a, |a| format!("updated {}", show(a)));
        }
        ActionCommand::Replay {
            tenant,
            id,
            file,
            last,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let a = find(admin, &tenant, &id).await?;
            let code = file.as_deref().map(read_text).transpose()?;
            let request = crate::service::replay::ActionReplayRequest {
                last: Some(last),
                code,
            };
            let report = admin.replay_action(&tenant, &a.id, request).await?;
            print(out.json, &report, super::rules::replay_table);
        }
        ActionCommand::Deploy { tenant, id, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let a = find(admin, &tenant, &id).await?;
            let v = admin.deploy_action(&tenant, &a.id).await?;
            print(out.json, &v, |v| {
                format!("deployed {} as version {}", a.name, v.number)
            });
        }
        ActionCommand::List { tenant, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let list = admin.list_actions(&tenant, None, None, None).await?;
            print(out.json, &list, |l| {
                l.actions.iter().map(show).collect::<Vec<_>>().join("\n")
            });
        }
        ActionCommand::Versions { tenant, id, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let a = find(admin, &tenant, &id).await?;
            let list = admin.action_versions(&tenant, &a.id).await?;
            print(out.json, &list, |l| {
                l.versions
                    .iter()
                    .map(show_version)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ActionCommand::Rollback {
            tenant,
            id,
            version,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let a = find(admin, &tenant, &id).await?;
            // The version is an id or a number: the service takes either.
            let v = admin
                .deploy_action_version(&tenant, &a.id, &version)
                .await?;
            print(out.json, &v, |v| {
                format!(
                    "rolled {} back to version {version}'s code: now version {}",
                    a.name, v.number
                )
            });
        }
        ActionCommand::Remove {
            tenant,
            id,
            force,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let a = find(admin, &tenant, &id).await?;
            admin.delete_action(&tenant, &a.id, force).await?;
            print(
                out.json,
                &serde_json::json!({"id": a.id, "removed": true}),
                |_| format!("removed {}", a.name),
            );
        }
        ActionCommand::Bind {
            tenant,
            trigger,
            actions,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let mut bindings = Vec::with_capacity(actions.len());
            for name in actions {
                let a = find(admin, &tenant, &name).await?;
                bindings.push(BindingInput {
                    reference: BindingRef {
                        kind: "action_id".into(),
                        value: a.id,
                    },
                    display_name: None,
                    secrets: None,
                });
            }
            let list = admin
                .set_bindings(&tenant, &trigger, BindingsInput { bindings })
                .await?;
            print(out.json, &list, |l| {
                if l.bindings.is_empty() {
                    format!("{trigger} runs no action")
                } else {
                    format!(
                        "{trigger} runs: {}",
                        l.bindings
                            .iter()
                            .map(|b| b.action.name.as_str())
                            .collect::<Vec<_>>()
                            .join(" → ")
                    )
                }
            });
        }
        ActionCommand::Run { .. } => unreachable!("run offline before opening the database"),
    }
    Ok(())
}

/// `wardstone action run`: the server's engine and limits on one action, no database.
pub(super) async fn run_offline(
    file: &Path,
    trigger: &str,
    event: Option<&Path>,
    limits: crate::rules::Limits,
) -> Result<(), CliError> {
    let trigger = TriggerId::parse(trigger).map_err(AdminError::from)?;
    let code = read_text(file)?;
    let event = match event {
        Some(path) => {
            let text = read_text(path)?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                CliError::Other(anyhow::anyhow!("{} is not JSON: {e}", path.display()))
            })?;
            if !value.is_object() {
                return Err(CliError::Other(anyhow::anyhow!(
                    "{} is not an event: expected a JSON object",
                    path.display()
                )));
            }
            value
        }
        None => serde_json::json!({}),
    };
    let offline = crate::rules::test_run::Offline::new(limits)?;
    let compiled = offline
        .compile(crate::rules::Upload::Action(code))
        .await
        .map_err(|e| anyhow::anyhow!("rejected action: {e}"))?;
    let ran = offline.run_action(compiled, trigger, event).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&ran).map_err(anyhow::Error::from)?
    );
    if ran.record.outcome.is_failure() {
        return Err(CliError::Other(anyhow::anyhow!(
            "the action failed: {}",
            ran.error
                .as_ref()
                .and_then(|e| e["message"].as_str())
                .unwrap_or_default()
        )));
    }
    Ok(())
}
