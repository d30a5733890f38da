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
    #[command(subcommand)]
    command: Command,
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
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant with its own issuer and signing key.
    Create {
        /// 3–63 lowercase letters, digits or '-'.
        name: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Register an application; prints its client_id and (once) its secret.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Allowed callback URL, matched exactly (repeatable).
        #[arg(long = "callback", required = true)]
        callbacks: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email_verified: bool,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
enum ApiCommand {
    /// Register an API: the audience of access tokens and the scopes it defines.
    Create {
        #[arg(long)]
        tenant: String,
        /// Absolute URL used as the access token's aud.
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        name: Option<String>,
        /// VALUE=DESCRIPTION (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Args, Debug)]
struct Output {
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
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

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WARDSTONE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
        Command::Serve { bind, demo } => {
            let app = Application::build(
                ServerOptions {
                    database_url: cli.database_url,
                    bind,
                    public_url,
                    master_key: None,
                    demo,
                    lifetimes: Lifetimes::default(),
                },
                Clock::System,
            )
            .await?;
            tracing::info!(address = %app.local_addr(), "wardstone listening");
            if let Some(d) = app.demo() {
                println!(
                    "\nWardstone demo is ready.\n\n  Open:      {}\n  Log in:    {} / {}\n\n  Client:    {}\n  Secret:    {}\n  Issuer:    {}\n  Discovery: {}/.well-known/openid-configuration\n",
                    d.authorize_url,
                    d.email,
                    d.password,
                    d.client_id,
                    d.client_secret,
                    d.issuer,
                    d.issuer
                );
            }
            app.run_until(shutdown_signal()).await?;
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&cli.database_url).await?;
            store.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        other => {
            let public_url = match public_url {
                Some(u) => u,
                None => PublicUrl::parse("http://127.0.0.1:8080")?,
            };
            let master_key = load_master_key(
                std::env::var("WARDSTONE_MASTER_KEY").ok().as_deref(),
                &cli.database_url,
            )?;
            let store = open_store(&cli.database_url).await?;
            let admin = Admin::new(store.clone(), master_key, public_url, Clock::System);
            let result = admin_command(&admin, other).await;
            store.close().await;
            result
        }
    }
}

async fn admin_command(admin: &Admin, command: Command) -> Result<(), CliError> {
    match command {
        Command::Tenant(TenantCommand::Create { name, out }) => {
            let t = admin.create_tenant(&name).await?;
            print(out.json, &t, |t| {
                format!("created tenant {}\nissuer: {}", t.name, t.issuer)
            });
        }
        Command::Client(ClientCommand::Create {
            tenant,
            name,
            callbacks,
            public,
            out,
        }) => {
            let c = admin
                .create_client(&tenant, &name, &callbacks, public)
                .await?;
            print(out.json, &c, |c| match &c.client_secret {
                Some(s) => format!(
                    "client_id: {}\nclient_secret: {s}\n(the secret is shown only now)",
                    c.client_id
                ),
                None => format!(
                    "client_id: {} (public client: no secret, PKCE required)",
                    c.client_id
                ),
            });
        }
        Command::User(UserCommand::Create {
            tenant,
            email,
            password,
            name,
            email_verified,
            out,
        }) => {
            let u = admin
                .create_user(&tenant, &email, &password, name.as_deref(), email_verified)
                .await?;
            print(out.json, &u, |u| {
                format!("created user {} ({})", u.user_id, u.email)
            });
        }
        Command::Api(ApiCommand::Create {
            tenant,
            identifier,
            name,
            scopes,
            out,
        }) => {
            let a = admin
                .create_api(&tenant, &identifier, name.as_deref(), &scopes)
                .await?;
            print(out.json, &a, |a| {
                format!("created API {} ({})", a.name, a.identifier)
            });
        }
        Command::Serve { .. } | Command::Migrate => unreachable!("handled by run"),
    }
    Ok(())
}
