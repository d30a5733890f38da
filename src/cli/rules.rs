//! Rule commands: upload and lifecycle, settings, the execution log, offline runs.

use clap::Subcommand;

use super::{CliError, Output, print};
use crate::service::rules::RuleView;
use crate::service::{Admin, AdminError};

#[derive(Subcommand, Debug)]
pub(super) enum RuleCommand {
    /// Upload a rule (.js JavaScript, .wasm binary or .wat text); it is validated and
    /// compiled first.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// Position in the pipeline (ascending); default: after the last rule.
        #[arg(long)]
        order: Option<i64>,
        /// Upload without enabling it.
        #[arg(long)]
        disabled: bool,
        /// `deny` (a failure fails the login) or `skip` (a failure is logged, the login goes on).
        #[arg(long, default_value = "deny")]
        on_failure: String,
        #[command(flatten)]
        out: Output,
    },
    /// Replay a candidate for a rule on the tenant's newest recorded logins (recording must be
    /// on): what would change, before it ships. Nothing is stored or sent.
    Replay {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        /// The candidate (.js, .wasm or .wat).
        #[arg(long)]
        file: std::path::PathBuf,
        /// Newest recorded runs to replay on, 1 to 5000.
        #[arg(long, default_value_t = 100)]
        last: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Replace a rule's module (a new version) or change its failure mode.
    Update {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        /// New rule file (.js, .wasm or .wat).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// `deny` or `skip`.
        #[arg(long)]
        on_failure: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// List a rule's stored versions, newest first.
    Versions {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Make an earlier version current again (recorded as a new version).
    Rollback {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        version: i64,
        #[command(flatten)]
        out: Output,
    },
    /// List rules in pipeline order.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
    /// Enable a rule.
    Enable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Disable a rule.
    Disable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Delete a rule.
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum RulesConfigCommand {
    /// Set KEY to VALUE.
    Set {
        #[arg(long)]
        tenant: String,
        key: String,
        value: String,
        #[command(flatten)]
        out: Output,
    },
    /// Remove KEY.
    Unset {
        #[arg(long)]
        tenant: String,
        key: String,
        #[command(flatten)]
        out: Output,
    },
    /// List the keys (never the values).
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum RulesCommand {
    /// Run one rule module on an input file through the server's engine and limits.
    Run {
        /// The rule (.js, .wasm or .wat).
        #[arg(long)]
        module: std::path::PathBuf,
        /// ABI v1 input: {"user": {...}, "context": {...}, "configuration": {...}}.
        #[arg(long)]
        input: std::path::PathBuf,
    },
}

pub(super) async fn config_command(
    admin: &Admin,
    command: RulesConfigCommand,
) -> Result<(), CliError> {
    match command {
        RulesConfigCommand::Set {
            tenant,
            key,
            value,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            admin.set_rule_config(&tenant, &key, &value).await?;
            print(
                out.json,
                &serde_json::json!({"key": key, "set": true}),
                |_| format!("set {key}"),
            );
        }
        RulesConfigCommand::Unset { tenant, key, out } => {
            let tenant = admin.resolve(&tenant).await?;
            admin.unset_rule_config(&tenant, &key).await?;
            print(
                out.json,
                &serde_json::json!({"key": key, "set": false}),
                |_| format!("removed {key}"),
            );
        }
        RulesConfigCommand::List { tenant, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let keys = admin.rule_config_keys(&tenant).await?;
            print(out.json, &serde_json::json!({"keys": keys}), |_| {
                keys.join("\n")
            });
        }
    }
    Ok(())
}

/// `wardstone logs`.
pub(super) async fn logs(
    admin: &Admin,
    tenant: String,
    limit: i64,
    out: Output,
) -> Result<(), CliError> {
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::Invalid(format!("invalid limit {limit}: use 1 to 1000")).into());
    }
    let tenant = admin.resolve(&tenant).await?;
    let entries = admin.list_logs(&tenant, None, None, 0, limit).await?;
    print(out.json, &serde_json::json!({"logs": entries}), |_| {
        entries
            .iter()
            .map(|e| {
                let lines: Vec<String> = e
                    .logs
                    .iter()
                    .map(|l| format!("    [{}] {}", l.level, l.message))
                    .collect();
                let head = format!(
                    "{}  {}  {} ({})  {}  {} µs  {} fuel",
                    e.created_at,
                    e.id,
                    e.rule_name,
                    e.rule_id,
                    e.outcome.label(),
                    e.duration_us,
                    e.fuel
                );
                std::iter::once(head)
                    .chain(lines)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

pub(super) async fn rule_command(admin: &Admin, command: RuleCommand) -> Result<(), CliError> {
    let show = |r: &RuleView| {
        format!(
            "{}  order {}  {}  {}  ({} bytes, sha256 {})",
            r.id,
            r.order,
            if r.enabled { "enabled " } else { "disabled" },
            r.name,
            r.size,
            &r.sha256[..12]
        )
    };
    match command {
        RuleCommand::Add {
            tenant,
            name,
            file,
            order,
            disabled,
            on_failure,
            out,
        } => {
            let on_failure = crate::domain::OnFailure::parse(&on_failure)
                .map_err(crate::service::AdminError::from)?;
            let tenant = admin.resolve(&tenant).await?;
            let upload = read_upload(&file)?;
            let r = admin
                .add_rule_upload(&tenant, &name, upload, order, !disabled, on_failure)
                .await?;
            print(out.json, &r, |r| format!("added {}", show(r)));
        }
        RuleCommand::Replay {
            tenant,
            id,
            file,
            last,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let (wasm, wat, script) = api_fields(read_upload(&file)?);
            let request = crate::service::replay::RuleReplayRequest {
                last: Some(last),
                script,
                wasm,
                wat,
            };
            let report = admin.replay_rule(&tenant, &id, request).await?;
            print(out.json, &report, replay_table);
        }
        RuleCommand::Update {
            tenant,
            id,
            file,
            on_failure,
            out,
        } => {
            let on_failure = on_failure
                .as_deref()
                .map(crate::domain::OnFailure::parse)
                .transpose()
                .map_err(crate::service::AdminError::from)?;
            let tenant = admin.resolve(&tenant).await?;
            let mut patch = crate::service::rules::RulePatch {
                on_failure,
                ..Default::default()
            };
            if let Some(file) = &file {
                (patch.wasm, patch.wat, patch.script) = api_fields(read_upload(file)?);
            }
            let r = admin.update_rule(&tenant, &id, patch).await?;
            print(out.json, &r, |r| {
                format!(
                    "updated {} ({}): version {}, on_failure {}",
                    r.name,
                    r.id,
                    r.version,
                    r.on_failure.as_str()
                )
            });
        }
        RuleCommand::Versions { tenant, id, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let versions = admin.rule_versions(&tenant, &id).await?;
            print(out.json, &versions, |vs| {
                vs.iter()
                    .map(|v| {
                        format!(
                            "{}  {}  {} bytes  {}",
                            v.version, v.sha256, v.size, v.created_at
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RuleCommand::Rollback {
            tenant,
            id,
            version,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let r = admin.rollback_rule(&tenant, &id, version).await?;
            print(out.json, &r, |r| {
                format!(
                    "rolled back {} to version {version}'s module: now version {}",
                    r.id, r.version
                )
            });
        }
        RuleCommand::List { tenant, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let rules = admin.list_rules(&tenant).await?;
            print(out.json, &serde_json::json!({"rules": rules}), |_| {
                rules.iter().map(show).collect::<Vec<_>>().join("\n")
            });
        }
        RuleCommand::Enable { tenant, id, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let r = admin.set_rule_enabled(&tenant, &id, true).await?;
            print(out.json, &r, |r| format!("enabled {}", show(r)));
        }
        RuleCommand::Disable { tenant, id, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let r = admin.set_rule_enabled(&tenant, &id, false).await?;
            print(out.json, &r, |r| format!("disabled {}", show(r)));
        }
        RuleCommand::Remove { tenant, id, out } => {
            let tenant = admin.resolve(&tenant).await?;
            admin.remove_rule(&tenant, &id).await?;
            print(
                out.json,
                &serde_json::json!({"id": id, "removed": true}),
                |_| format!("removed {id}"),
            );
        }
    }
    Ok(())
}

/// An upload as the API's `wasm` (base64), `wat` and `script` fields.
fn api_fields(upload: crate::rules::Upload) -> (Option<String>, Option<String>, Option<String>) {
    match upload {
        crate::rules::Upload::Script(text) | crate::rules::Upload::Action(text) => {
            (None, None, Some(text))
        }
        crate::rules::Upload::Module(b) if b.starts_with(b"\0asm") => (
            Some(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &b,
            )),
            None,
            None,
        ),
        crate::rules::Upload::Module(b) => {
            (None, Some(String::from_utf8_lossy(&b).into_owned()), None)
        }
    }
}

/// A replay's answer as a table: the summary, then one line per input that differs.
pub(super) fn replay_table(r: &crate::rules::replay::ReplayReport) -> String {
    let s = &r.summary;
    let mut out = format!(
        "{} inputs: {} same, {} changed, {} newly denied, {} newly allowed, {} newly failing ({} of another trigger skipped, {} unreadable)",
        s.inputs,
        s.same,
        s.changed,
        s.newly_denied,
        s.newly_allowed,
        s.newly_failing,
        s.skipped,
        s.unreadable
    );
    if let (Some(live), Some(candidate)) = (&s.live, &s.candidate) {
        out.push_str(&format!(
            "\nfuel p50/p95/p99: live {}/{}/{} → candidate {}/{}/{}\nµs   p50/p95/p99: live {}/{}/{} → candidate {}/{}/{}",
            live.fuel.p50, live.fuel.p95, live.fuel.p99,
            candidate.fuel.p50, candidate.fuel.p95, candidate.fuel.p99,
            live.duration_us.p50, live.duration_us.p95, live.duration_us.p99,
            candidate.duration_us.p50, candidate.duration_us.p95, candidate.duration_us.p99,
        ));
    }
    out.push_str(&format!(
        "\n{:<14} {:<22} {:<24} {:<14} {:<10} {:<10} differences",
        "category", "recorded at", "user", "client", "live", "candidate"
    ));
    for i in r.inputs.iter().filter(|i| i.category != "same") {
        let at = time::OffsetDateTime::from_unix_timestamp(i.recorded_at)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| i.recorded_at.to_string());
        out.push_str(&format!(
            "\n{:<14} {:<22} {:<24} {:<14} {:<10} {:<10} {}",
            i.category,
            at.get(..19).unwrap_or(&at),
            i.user_id.as_deref().unwrap_or("-"),
            i.client_id,
            i.live.outcome,
            i.candidate.outcome,
            serde_json::Value::Object(i.differences.clone())
        ));
    }
    out
}

/// A rule file: `.js` is a JavaScript rule, anything else a module (.wasm or .wat).
fn read_upload(path: &std::path::Path) -> Result<crate::rules::Upload, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Other(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    crate::rules::Upload::from_file(path, bytes)
        .map_err(|e| CliError::Other(anyhow::anyhow!("rejected rule: {e}")))
}

/// `wardstone rules run`: the server's engine and default limits, no database.
pub(super) async fn run_offline(
    module: &std::path::Path,
    input: &std::path::Path,
    limits: crate::rules::Limits,
) -> Result<(), CliError> {
    let upload = read_upload(module)?;
    let input_bytes = std::fs::read(input)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
    let parsed: serde_json::Value = serde_json::from_slice(&input_bytes)
        .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", input.display()))?;
    // Every field a login gives a rule exists offline too; what the file says wins.
    let parsed = crate::rules::test_run::offline_rule_input(&parsed).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a rule input ({{user, context, configuration}}): {e}",
            input.display()
        )
    })?;
    let offline = crate::rules::test_run::Offline::new(limits)?;
    let compiled = offline
        .compile(upload)
        .await
        .map_err(|e| anyhow::anyhow!("rejected module: {e}"))?;
    let compact = crate::rules::test_run::rule_input_bytes(&parsed);
    let ran = offline.run_rule(compiled, compact).await?;
    let (outcome, error) = (ran.record.outcome, ran.error.clone());
    let report = serde_json::json!({
        "outcome": outcome,
        "output": ran.patch,
        "error": ran.error,
        "logs": ran.record.logs,
        "fuel": ran.record.fuel,
        "duration_us": ran.record.duration_us,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
    );
    if outcome.is_failure() {
        return Err(CliError::Other(anyhow::anyhow!(
            "the rule failed: {}",
            error
                .as_ref()
                .and_then(|e| e["message"].as_str())
                .unwrap_or_default()
        )));
    }
    Ok(())
}
