//! The `wardstone` command line: parse, call the service layer, print. Bad input exits
//! non-zero with one line on stderr.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::clock::Clock;
use crate::config::{DEFAULT_DATABASE_URL, Lifetimes, PublicUrl, load_master_key};
use crate::service::{Admin, AdminError};
use crate::startup::{Application, ServerOptions, open_store, shutdown_signal};

mod actions;
mod admin;
mod import;
mod limits;
mod rules;

use admin::{ApiCommand, ClientCommand, KeysCommand, RoleCommand, TenantCommand, UserCommand};
use limits::RuleLimitArgs;
use rules::{RuleCommand, RulesCommand, RulesConfigCommand};

/// Wardstone authorization server.
#[derive(Parser, Debug)]
#[command(name = "wardstone", version, about)]
pub struct Cli {
    /// Database URL: sqlite://PATH (default, created if missing) or postgres://...
    #[arg(long, global = true, env = "WARDSTONE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Public base URL; issuers are {public_url}/t/{tenant}. Default: http://{bind}.
    #[arg(long, global = true, env = "WARDSTONE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Database connections per node (PostgreSQL: keep nodes × this under max_connections).
    #[arg(long, global = true, env = "WARDSTONE_DB_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    db_max_connections: u32,
    /// Log format on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(
        long,
        global = true,
        env = "WARDSTONE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(flatten)]
    limits: RuleLimitArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "WARDSTONE_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Create (if missing) a demo tenant, app and user and print how to log in.
        #[arg(long)]
        demo: bool,
        /// Reverse proxies (CIDR, comma-separated) whose X-Forwarded-For names the client;
        /// from any other peer the header is ignored.
        #[arg(long, env = "WARDSTONE_TRUSTED_PROXIES", value_delimiter = ',')]
        trusted_proxies: Vec<ipnet::IpNet>,
        /// Seconds after a refresh-token rotation during which the same client may retry with
        /// the previous token (a lost answer) without revoking the family; 0 turns it off.
        #[arg(long, env = "WARDSTONE_REFRESH_GRACE_SECONDS", default_value_t = 5,
              value_parser = clap::value_parser!(i64).range(0..=60))]
        refresh_grace_seconds: i64,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage applications (OAuth clients).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage APIs (resource servers).
    #[command(subcommand)]
    Api(ApiCommand),
    /// Manage roles and who holds them (RBAC).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Manage a tenant's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage a tenant's rules.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Manage Auth0 Actions (post-login, credentials-exchange) and what each trigger runs.
    #[command(subcommand, visible_alias = "actions")]
    Action(actions::ActionCommand),
    /// Set what a trigger runs, in order (as `action bind`).
    #[command(subcommand)]
    Bindings(actions::BindingsCommand),
    /// Manage rule settings (the `configuration` rules receive; values are encrypted and never printed).
    #[command(subcommand, name = "rules-config")]
    RulesConfig(RulesConfigCommand),
    /// Work with rule modules offline.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Bring a tenant over from Auth0 (a0deploy export, users with their password hashes).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Write a tenant in Auth0's Deploy CLI layout.
    #[command(subcommand)]
    Export(import::ExportCommand),
    /// Show a tenant's rule execution log, newest first.
    Logs {
        #[arg(long)]
        tenant: String,
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Args, Debug)]
pub(crate) struct Output {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = cli.log_format == LogFormat::Json;
    init_tracing(json_logs);
    let fail = |message: &str| fail(message, json_logs);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Room for a short rule pipeline's wasm stack on the request's own thread (see
        // `rules::executor`); only the pages used are ever committed.
        .thread_stack_size(4 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Admin(e)) => fail(&e.to_string()),
        Err(CliError::Other(e)) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str, json_logs: bool) -> ExitCode {
    let message = message.replace('\n', " ");
    if json_logs {
        // stderr holds only JSON lines in this mode.
        tracing::error!(%message, "command failed");
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::FAILURE
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WARDSTONE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

enum CliError {
    Admin(AdminError),
    Other(anyhow::Error),
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        CliError::Admin(e)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Other(e)
    }
}

fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string(value).expect("plain data serializes")
        );
    } else {
        println!("{}", human(value));
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let public_url = cli
        .public_url
        .as_deref()
        .map(PublicUrl::parse)
        .transpose()?;
    match cli.command {
        Command::Serve {
            bind,
            demo,
            trusted_proxies,
            refresh_grace_seconds,
        } => {
            let app = Application::build(
                ServerOptions {
                    database_url: cli.database_url,
                    db_max_connections: cli.db_max_connections,
                    bind,
                    public_url,
                    master_key: None,
                    demo,
                    lifetimes: Lifetimes {
                        refresh_reuse_grace: refresh_grace_seconds,
                        ..Lifetimes::default()
                    },
                    rule_limits: cli.limits.limits(),
                    trusted_proxies,
                },
                Clock::System,
            )
            .await?;
            tracing::info!(address = %app.local_addr(), "wardstone listening");
            if let Some(d) = app.demo() {
                println!(
                    "\nWardstone demo is ready.\n\n  Web app:   {}\n  API:       {}\n  Log in:    {} / {}\n\n  Issuer:    {}\n  Discovery: {}/.well-known/openid-configuration\n  Client:    {}\n  Secret:    {}\n  Or sign in without the app: {}\n",
                    d.webapp_url,
                    d.api_url,
                    d.email,
                    d.password,
                    d.issuer,
                    d.issuer,
                    d.client_id,
                    d.client_secret,
                    d.authorize_url,
                );
            }
            app.run_until(shutdown_signal()).await?;
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&cli.database_url, 4).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Rules(RulesCommand::Run { module, input }) => {
            rules::run_offline(&module, &input, cli.limits.limits()).await
        }
        Command::Action(actions::ActionCommand::Run {
            file,
            trigger,
            event,
        }) => actions::run_offline(&file, &trigger, event.as_deref(), cli.limits.limits()).await,
        other => {
            let public_url = match public_url {
                Some(u) => u,
                None => PublicUrl::parse("http://127.0.0.1:8080")?,
            };
            let master_key = load_master_key(
                std::env::var("WARDSTONE_MASTER_KEY").ok().as_deref(),
                &cli.database_url,
            )?;
            let store = open_store(&cli.database_url, 4).await?;
            let admin =
                Admin::standalone(store.clone(), master_key, public_url, cli.limits.limits())?;
            let result = admin_command(&admin, other).await;
            store.close().await;
            result
        }
    }
}

async fn admin_command(admin: &Admin, command: Command) -> Result<(), CliError> {
    match command {
        Command::Tenant(cmd) => admin::tenant_command(admin, cmd).await,
        Command::Client(cmd) => admin::client_command(admin, cmd).await,
        Command::User(cmd) => admin::user_command(admin, cmd).await,
        Command::Api(cmd) => admin::api_command(admin, cmd).await,
        Command::Role(cmd) => admin::role_command(admin, cmd).await,
        Command::Keys(cmd) => admin::keys_command(admin, cmd).await,
        Command::Rule(cmd) => rules::rule_command(admin, cmd).await,
        Command::RulesConfig(cmd) => rules::config_command(admin, cmd).await,
        Command::Logs { tenant, limit, out } => rules::logs(admin, tenant, limit, out).await,
        Command::Action(cmd) => actions::command(admin, cmd).await,
        Command::Bindings(actions::BindingsCommand::Set {
            tenant,
            trigger,
            actions,
            out,
        }) => {
            actions::command(
                admin,
                actions::ActionCommand::Bind {
                    tenant,
                    trigger,
                    actions,
                    out,
                },
            )
            .await
        }
        Command::Import(cmd) => import::import(admin, cmd).await,
        Command::Export(cmd) => import::export(admin, cmd).await,
        Command::Serve { .. } | Command::Migrate | Command::Rules(_) => {
            unreachable!("handled by run")
        }
    }
}
