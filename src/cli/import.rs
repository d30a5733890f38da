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
        /// Lazy migration: the old Auth0 tenant (https://OLD.auth0.com) where users imported
        /// without a password hash are checked at their first login.
        #[arg(long, requires_all = ["lazy_client_id", "lazy_client_secret"])]
        lazy_from: Option<String>,
        /// A client of the old tenant allowed the password-realm grant.
        #[arg(long, requires = "lazy_from")]
        lazy_client_id: Option<String>,
        /// Its secret (env WARDSTONE_LAZY_CLIENT_SECRET keeps it out of the shell history).
        #[arg(
            long,
            env = "WARDSTONE_LAZY_CLIENT_SECRET",
            hide_env_values = true,
            requires = "lazy_from"
        )]
        lazy_client_secret: Option<String>,
        /// The old tenant's database connection (default Username-Password-Authentication).
        #[arg(long, requires = "lazy_from")]
        lazy_realm: Option<String>,
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
        lazy_from,
        lazy_client_id,
        lazy_client_secret,
        lazy_realm,
        out,
    } = command;
    let lazy = match (&lazy_from, &lazy_client_id, &lazy_client_secret) {
        (Some(from), Some(id), Some(secret)) => Some(
            crate::domain::migration::LazyMigration::parse(from, id, secret, lazy_realm.as_deref())
                .map_err(AdminError::from)?,
        ),
        _ => None,
    };
    if from.is_none() && users.is_none() && lazy.is_none() {
        return Err(AdminError::Invalid(
            "nothing to import: give --from (an a0deploy export), --users (a user file) and/or --lazy-from"
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
                lazy,
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
