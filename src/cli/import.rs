//! `wardstone import auth0` and `wardstone export auth0` (SPEC §16).

use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, Output, print};
use crate::service::import::source::{Auth0Export, Keywords};
use crate::service::import::{ImportRequest, render_table};
use crate::service::{Admin, AdminError};

#[derive(Subcommand, Debug)]
pub(crate) enum ImportCommand {
    /// An Auth0 Deploy CLI export (a directory or a tenant.yaml) and/or Auth0 users (JSON
    /// array or NDJSON) into a tenant, created when missing. Objects are matched by name: a
    /// second import of the same export changes nothing.
    Auth0 {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// What `a0deploy export` wrote: a directory or a tenant.yaml.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Auth0's user export (NDJSON) or bulk-import file (JSON array).
        #[arg(long)]
        users: Option<PathBuf>,
        /// KEY=VALUE for `##KEY##` (as typed) and `@@KEY@@` (JSON-encoded) in the export.
        #[arg(long = "keyword", value_name = "KEY=VALUE")]
        keywords: Vec<String>,
        /// Check and report; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ExportCommand {
    /// A tenant as a Deploy CLI directory (secrets as ##KEYWORD## placeholders).
    Auth0 {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The directory to write (created if missing).
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        out: Output,
    },
}

pub(crate) async fn import(admin: &Admin, command: ImportCommand) -> Result<(), CliError> {
    let ImportCommand::Auth0 {
        tenant,
        from,
        users,
        keywords,
        dry_run,
        out,
    } = command;
    if from.is_none() && users.is_none() {
        return Err(AdminError::Invalid(
            "nothing to import: give --from (an a0deploy export) and/or --users (a user file)"
                .into(),
        )
        .into());
    }
    let keywords = Keywords::parse(&keywords)?;
    let export = match &from {
        Some(path) => {
            let path = path.clone();
            Some(
                tokio::task::spawn_blocking(move || Auth0Export::read(&path, &keywords))
                    .await
                    .map_err(|e| CliError::Other(e.into()))??,
            )
        }
        None => None,
    };
    let report = admin
        .import_auth0(
            &tenant,
            ImportRequest {
                export,
                users,
                dry_run,
            },
        )
        .await?;
    print(out.json, &report, render_table);
    Ok(())
}

pub(crate) async fn export(admin: &Admin, command: ExportCommand) -> Result<(), CliError> {
    let ExportCommand::Auth0 { tenant, to, out } = command;
    let tenant = admin.resolve(&tenant).await?;
    let report = admin.export_auth0(&tenant, &to).await?;
    print(out.json, &report, |r| {
        let mut s = format!("wrote {} files to {}", r.files.len(), r.directory);
        if !r.keywords.is_empty() {
            s.push_str(&format!(
                "\nvalues not exported (give them to the import as --keyword NAME=VALUE):\n  {}",
                r.keywords.join("\n  ")
            ));
        }
        s
    });
    Ok(())
}
