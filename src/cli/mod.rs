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
mod import;

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

#[derive(Subcommand, Debug)]
enum RuleCommand {
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
enum RulesConfigCommand {
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
enum RulesCommand {
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

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant with its own issuer and signing key.
    Create {
        /// 3–63 lowercase letters, digits or '-'.
        name: String,
        /// JWS algorithm of its tokens: RS256 (accepted everywhere), ES256 or EdDSA (much
        /// faster to sign).
        #[arg(long, default_value = "RS256")]
        signing_alg: String,
        #[command(flatten)]
        out: Output,
    },
    /// Let the tenant's rules call HOST[:PORT] through wardstone.http_fetch.
    AllowHost {
        #[arg(long)]
        tenant: String,
        /// `host` (default port of the URL's scheme) or `host:port`.
        host: String,
        #[command(flatten)]
        out: Output,
    },
    /// Take HOST[:PORT] off the allow-list.
    DisallowHost {
        #[arg(long)]
        tenant: String,
        host: String,
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
        /// Where the browser may be sent after logging out (RP-Initiated Logout), matched
        /// exactly (repeatable).
        #[arg(long = "logout-url")]
        logout_urls: Vec<String>,
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
        /// Grant only the scopes the user's roles permit (RBAC).
        #[arg(long)]
        enforce_policies: bool,
        /// `access_token`, or `access_token_authz` to put the user's permissions in its tokens.
        #[arg(long, default_value = "access_token")]
        token_dialect: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
enum RoleCommand {
    /// Create a role.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        out: Output,
    },
    /// List roles.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
    /// Delete a role (its users lose it at their next login or refresh).
    Delete {
        #[arg(long)]
        tenant: String,
        /// Role id.
        #[arg(long)]
        id: String,
    },
    /// Give a role permissions: scopes of one API.
    AddPermission {
        #[arg(long)]
        tenant: String,
        /// Role id.
        #[arg(long)]
        role: String,
        /// The API's identifier.
        #[arg(long)]
        api: String,
        /// A scope the API defines (repeatable).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// Assign roles to a user.
    Assign {
        #[arg(long)]
        tenant: String,
        /// User id.
        #[arg(long)]
        user: String,
        /// Role id (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Take roles away from a user.
    Unassign {
        #[arg(long)]
        tenant: String,
        /// User id.
        #[arg(long)]
        user: String,
        /// Role id (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// List the tenant's signing keys.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
    /// Rotate: the next key starts signing; a new next key is published (a tenant from before
    /// rotation existed first gets a next key published, and switches at the next rotation).
    Rotate {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke a key that is not current: tokens it signed stop verifying.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        kid: String,
        #[command(flatten)]
        out: Output,
    },
}

/// Sandbox limits of rules, server-wide (defaults in `rules::Limits`).
#[derive(Args, Debug)]
struct RuleLimitArgs {
    /// Instructions (fuel) per rule execution.
    #[arg(long, global = true, env = "WARDSTONE_RULE_FUEL", value_parser = clap::value_parser!(u64).range(10_000..=10_000_000_000))]
    rule_fuel: Option<u64>,
    /// Wall-clock deadline per rule, milliseconds.
    #[arg(long, global = true, env = "WARDSTONE_RULE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    rule_timeout_ms: Option<u64>,
    /// Wall-clock deadline per pipeline, milliseconds.
    #[arg(long, global = true, env = "WARDSTONE_PIPELINE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pipeline_timeout_ms: Option<u64>,
    /// Linear memory per rule instance, MiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_MEMORY_MIB", value_parser = clap::value_parser!(u64).range(1..=1024))]
    rule_memory_mib: Option<u64>,
    /// Wasm stack per rule execution, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_STACK_KIB", value_parser = clap::value_parser!(u64).range(64..=8192))]
    rule_stack_kib: Option<u64>,
    /// Largest rule output, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_OUTPUT_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_output_kib: Option<u64>,
    /// Largest rule module accepted at upload, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_MODULE_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_module_kib: Option<u64>,
    /// Memory for compiled rule modules on this node, MiB (least recently used out first).
    #[arg(long, global = true, env = "WARDSTONE_RULE_CACHE_MIB", value_parser = clap::value_parser!(u64).range(8..=65536))]
    rule_cache_mib: Option<u64>,
    /// Threads that run rule pipelines (default: 2 × cores).
    #[arg(long, global = true, env = "WARDSTONE_RULE_THREADS", value_parser = clap::value_parser!(u64).range(1..=1024))]
    rule_threads: Option<u64>,
    /// Rules one tenant may have.
    #[arg(long, global = true, env = "WARDSTONE_RULE_MAX_PER_TENANT", value_parser = clap::value_parser!(i64).range(1..=10_000))]
    rule_max_per_tenant: Option<i64>,
    /// Rule settings one tenant may have.
    #[arg(long, global = true, env = "WARDSTONE_RULE_SETTINGS_MAX", value_parser = clap::value_parser!(i64).range(1..=10_000))]
    rule_settings_max: Option<i64>,
    /// Bytes all of one tenant's rule setting values may take together, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_SETTINGS_MAX_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_settings_max_kib: Option<u64>,
    /// Versions kept per rule (older ones are pruned; never the current).
    #[arg(long, global = true, env = "WARDSTONE_RULE_VERSIONS_KEPT", value_parser = clap::value_parser!(i64).range(1..=1000))]
    rule_versions_kept: Option<i64>,
    /// Deadline of a rule that imports wardstone.http_fetch, milliseconds (within the pipeline's).
    #[arg(long, global = true, env = "WARDSTONE_RULE_HTTP_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    rule_http_timeout_ms: Option<u64>,
    /// Largest response body wardstone.http_fetch hands a rule, KiB.
    #[arg(long, global = true, env = "WARDSTONE_RULE_HTTP_BODY_KIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    rule_http_body_kib: Option<u64>,
    /// A non-public range (CIDR) rules may reach over HTTP, e.g. a trusted upstream inside the
    /// network (repeatable; env: comma-separated). Without it, tenants can list and reach only
    /// public addresses.
    #[arg(long = "rule-http-allow-private", global = true, env = "WARDSTONE_RULE_HTTP_ALLOW_PRIVATE", value_delimiter = ',', value_name = "CIDR", value_parser = parse_cidr)]
    rule_http_allow_private: Vec<ipnet::IpNet>,
    /// DNS server (IP:PORT) that resolves names for rules' HTTP requests (repeatable; env:
    /// comma-separated); default: the system's (/etc/resolv.conf).
    #[arg(
        long = "rule-http-dns",
        global = true,
        env = "WARDSTONE_RULE_HTTP_DNS",
        value_delimiter = ',',
        value_name = "IP:PORT"
    )]
    rule_http_dns: Vec<SocketAddr>,
}

/// A CIDR range, or one address (a /32 or /128).
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR range (e.g. 10.0.0.0/8) or an IP address"))
}

impl RuleLimitArgs {
    fn limits(&self) -> crate::rules::Limits {
        use std::time::Duration;
        let mut l = crate::rules::Limits::default();
        if let Some(v) = self.rule_fuel {
            l.fuel = v;
        }
        if let Some(v) = self.rule_timeout_ms {
            l.rule_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.pipeline_timeout_ms {
            l.pipeline_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.rule_memory_mib {
            l.memory_bytes = (v as usize) << 20;
        }
        if let Some(v) = self.rule_stack_kib {
            l.stack_bytes = (v as usize) << 10;
        }
        if let Some(v) = self.rule_output_kib {
            l.output_bytes = (v as usize) << 10;
        }
        if let Some(v) = self.rule_module_kib {
            l.module_bytes = (v as usize) << 10;
        }
        if let Some(v) = self.rule_cache_mib {
            l.module_cache_bytes = (v as usize) << 20;
        }
        if let Some(v) = self.rule_threads {
            l.max_concurrent = v as usize;
        }
        if let Some(v) = self.rule_max_per_tenant {
            l.rules_per_tenant = v;
        }
        if let Some(v) = self.rule_settings_max {
            l.configs_per_tenant = v;
        }
        if let Some(v) = self.rule_settings_max_kib {
            l.config_bytes_per_tenant = (v as usize) << 10;
        }
        if let Some(v) = self.rule_versions_kept {
            l.versions_kept = v;
        }
        if let Some(v) = self.rule_http_timeout_ms {
            l.http_rule_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.rule_http_body_kib {
            l.http_body_bytes = (v as usize) << 10;
        }
        l.http_allow_private =
            crate::domain::PrivateRanges::new(self.rule_http_allow_private.clone());
        l.dns_servers = self.rule_http_dns.clone();
        l
    }
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
            run_offline(&module, &input, cli.limits.limits()).await
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
            let rules =
                crate::rules::Rules::new(store.clone(), master_key.clone(), cli.limits.limits())?;
            let admin = Admin::new(
                store.clone(),
                master_key,
                public_url,
                Clock::System,
                rules,
                crate::passwords::Passwords::default(),
            );
            let result = admin_command(&admin, other).await;
            store.close().await;
            result
        }
    }
}

async fn admin_command(admin: &Admin, command: Command) -> Result<(), CliError> {
    match command {
        Command::Tenant(TenantCommand::Create {
            name,
            signing_alg,
            out,
        }) => {
            let alg = crate::domain::SigningAlg::parse(&signing_alg)
                .map_err(crate::service::AdminError::from)?;
            let t = admin.create_tenant(&name, alg).await?;
            print(out.json, &t, |t| {
                format!(
                    "created tenant {}\nissuer: {}\nManagement API client (shown only now):\n  client_id: {}\n  client_secret: {}\n  audience: {}",
                    t.name,
                    t.issuer,
                    t.management.client_id,
                    t.management.client_secret,
                    t.management.audience
                )
            });
        }
        Command::Client(ClientCommand::Create {
            tenant,
            name,
            callbacks,
            logout_urls,
            public,
            out,
        }) => {
            let tenant = admin.resolve(&tenant).await?;
            let c = admin
                .create_client_with(
                    &tenant,
                    crate::service::clients::NewClientInput {
                        name,
                        callbacks,
                        allowed_logout_urls: logout_urls,
                        grant_types: None,
                        token_endpoint_auth_method: Some(
                            if public {
                                "none"
                            } else {
                                "client_secret_basic"
                            }
                            .into(),
                        ),
                        ..Default::default()
                    },
                )
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
            let tenant = admin.resolve(&tenant).await?;
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
            enforce_policies,
            token_dialect,
            out,
        }) => {
            let tenant = admin.resolve(&tenant).await?;
            let token_dialect = crate::domain::TokenDialect::parse(&token_dialect)
                .map_err(crate::service::AdminError::from)?;
            let a = admin
                .create_api_with(
                    &tenant,
                    crate::service::apis::NewApiInput {
                        identifier,
                        name,
                        scopes: crate::service::apis::scope_args(&scopes),
                        token_lifetime: None,
                        enforce_policies,
                        token_dialect,
                    },
                )
                .await?;
            print(out.json, &a, |a| {
                format!("created API {} ({})", a.name, a.identifier)
            });
        }
        Command::Tenant(TenantCommand::AllowHost { tenant, host, out }) => {
            let tenant = admin.resolve(&tenant).await?;
            let s = admin.allow_host(&tenant, &host, true).await?;
            print(out.json, &s, allowed_hosts_line);
        }
        Command::Tenant(TenantCommand::DisallowHost { tenant, host, out }) => {
            let tenant = admin.resolve(&tenant).await?;
            let s = admin.allow_host(&tenant, &host, false).await?;
            print(out.json, &s, allowed_hosts_line);
        }
        Command::Rule(cmd) => rule_command(admin, cmd).await?,
        Command::Action(cmd) => actions::command(admin, cmd).await?,
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
            .await?
        }
        Command::Role(cmd) => role_command(admin, cmd).await?,
        Command::Import(cmd) => import::import(admin, cmd).await?,
        Command::Export(cmd) => import::export(admin, cmd).await?,
        Command::Keys(cmd) => keys_command(admin, cmd).await?,
        Command::RulesConfig(RulesConfigCommand::Set {
            tenant,
            key,
            value,
            out,
        }) => {
            let tenant = admin.resolve(&tenant).await?;
            admin.set_rule_config(&tenant, &key, &value).await?;
            print(
                out.json,
                &serde_json::json!({"key": key, "set": true}),
                |_| format!("set {key}"),
            );
        }
        Command::RulesConfig(RulesConfigCommand::Unset { tenant, key, out }) => {
            let tenant = admin.resolve(&tenant).await?;
            admin.unset_rule_config(&tenant, &key).await?;
            print(
                out.json,
                &serde_json::json!({"key": key, "set": false}),
                |_| format!("removed {key}"),
            );
        }
        Command::RulesConfig(RulesConfigCommand::List { tenant, out }) => {
            let tenant = admin.resolve(&tenant).await?;
            let keys = admin.rule_config_keys(&tenant).await?;
            print(out.json, &serde_json::json!({"keys": keys}), |_| {
                keys.join("\n")
            });
        }
        Command::Logs { tenant, limit, out } => {
            if !(1..=1000).contains(&limit) {
                return Err(
                    AdminError::Invalid(format!("invalid limit {limit}: use 1 to 1000")).into(),
                );
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
        }
        Command::Serve { .. } | Command::Migrate | Command::Rules(_) => {
            unreachable!("handled by run")
        }
    }
    Ok(())
}

fn allowed_hosts_line(s: &crate::service::tenants::TenantSettings) -> String {
    let hosts: Vec<String> = s
        .rules
        .allowed_hosts
        .iter()
        .map(|h| h.to_string())
        .collect();
    if hosts.is_empty() {
        "rules may call no host".into()
    } else {
        format!("rules may call: {}", hosts.join(", "))
    }
}

async fn role_command(admin: &Admin, command: RoleCommand) -> Result<(), CliError> {
    use crate::service::roles::{NewRoleInput, Permission, PermissionsInput, RolesInput};
    match command {
        RoleCommand::Create {
            tenant,
            name,
            description,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let r = admin
                .create_role(&tenant, NewRoleInput { name, description })
                .await?;
            print(out.json, &r, |r| {
                format!("created role {} ({})", r.name, r.id)
            });
        }
        RoleCommand::List { tenant, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let roles = admin.list_roles(&tenant, 0, 100).await?;
            print(out.json, &roles, |roles| {
                roles
                    .iter()
                    .map(|r| format!("{}  {}  {}", r.id, r.name, r.description))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RoleCommand::Delete { tenant, id } => {
            let tenant = admin.resolve(&tenant).await?;
            admin.delete_role(&tenant, &id).await?;
            println!("deleted role {id}");
        }
        RoleCommand::AddPermission {
            tenant,
            role,
            api,
            permissions,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let permissions = permissions
                .into_iter()
                .map(|p| Permission {
                    resource_server_identifier: api.clone(),
                    permission_name: p,
                })
                .collect();
            admin
                .add_role_permissions(&tenant, &role, PermissionsInput { permissions })
                .await?;
            println!("role {role} now has those permissions of {api}");
        }
        RoleCommand::Assign {
            tenant,
            user,
            roles,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            admin
                .assign_user_roles(&tenant, &user, RolesInput { roles })
                .await?;
            println!("assigned");
        }
        RoleCommand::Unassign {
            tenant,
            user,
            roles,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            admin
                .remove_user_roles(&tenant, &user, RolesInput { roles })
                .await?;
            println!("unassigned");
        }
    }
    Ok(())
}

async fn keys_command(admin: &Admin, command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::List { tenant, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let keys = admin.signing_keys(&tenant).await?;
            print(out.json, &keys, |keys| {
                keys.iter()
                    .map(|k| format!("{}  {}  {}", k.kid, k.alg, k.status))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCommand::Rotate { tenant, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let k = admin.rotate_signing_key(&tenant).await?;
            print(out.json, &k, |k| {
                format!("rotated: {} ({}) signs from now on", k.kid, k.alg)
            });
        }
        KeysCommand::Revoke { tenant, kid, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let k = admin.revoke_signing_key(&tenant, &kid).await?;
            print(out.json, &k, |k| format!("revoked {}", k.kid));
        }
    }
    Ok(())
}

async fn rule_command(admin: &Admin, command: RuleCommand) -> Result<(), CliError> {
    let show = |r: &crate::store::RuleRecord| {
        format!(
            "{}  order {}  {}  {}  ({} bytes, sha256 {})",
            r.id,
            r.rule_order,
            if r.enabled == 1 {
                "enabled "
            } else {
                "disabled"
            },
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
            match file.as_deref().map(read_upload).transpose()? {
                Some(crate::rules::Upload::Script(text) | crate::rules::Upload::Action(text)) => {
                    patch.script = Some(text)
                }
                Some(crate::rules::Upload::Module(b)) if b.starts_with(b"\0asm") => {
                    patch.wasm = Some(base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &b,
                    ))
                }
                Some(crate::rules::Upload::Module(b)) => {
                    patch.wat = Some(String::from_utf8_lossy(&b).into_owned())
                }
                None => {}
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

/// A rule file: `.js` is a JavaScript rule, anything else a module (.wasm or .wat).
fn read_upload(path: &std::path::Path) -> Result<crate::rules::Upload, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Other(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    crate::rules::Upload::from_file(path, bytes)
        .map_err(|e| CliError::Other(anyhow::anyhow!("rejected rule: {e}")))
}

/// `wardstone rules run`: the server's engine and default limits, no database.
async fn run_offline(
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
    let compact = serde_json::to_vec(&parsed).map_err(anyhow::Error::from)?;
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
