//! Administrative commands: tenants, clients, users, APIs, roles, signing keys.

use clap::Subcommand;

use super::{CliError, Output, print};
use crate::service::Admin;

#[derive(Subcommand, Debug)]
pub(super) enum TenantCommand {
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
    /// Record the inputs of the last N pipeline runs for replay (--keep N), or stop and delete
    /// them (--off).
    Recording {
        #[arg(long)]
        tenant: String,
        /// Runs kept, 1 to 5000.
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        keep: Option<i64>,
        /// Stop recording and delete what was recorded.
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Usage per day: logins, token grants, rule and action executions, failures, fuel.
    Usage {
        #[arg(long)]
        tenant: String,
        /// First day, YYYY-MM-DD (UTC); default 29 days before --to.
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (UTC); default today.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum ClientCommand {
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
pub(super) enum UserCommand {
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
pub(super) enum ApiCommand {
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
pub(super) enum RoleCommand {
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
pub(super) enum KeysCommand {
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
        /// The key's id (ids may begin with '-': they are random base64url).
        #[arg(long, allow_hyphen_values = true)]
        kid: String,
        #[command(flatten)]
        out: Output,
    },
}

pub(super) async fn tenant_command(admin: &Admin, command: TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Create {
            name,
            signing_alg,
            out,
        } => {
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
        TenantCommand::AllowHost { tenant, host, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let s = admin.allow_host(&tenant, &host, true).await?;
            print(out.json, &s, allowed_hosts_line);
        }
        TenantCommand::DisallowHost { tenant, host, out } => {
            let tenant = admin.resolve(&tenant).await?;
            let s = admin.allow_host(&tenant, &host, false).await?;
            print(out.json, &s, allowed_hosts_line);
        }
        TenantCommand::Recording {
            tenant,
            keep,
            off: _,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let s = admin.set_recording(&tenant, keep).await?;
            print(out.json, &s, |s| {
                match s.recording.as_ref().and_then(|r| r.keep) {
                    Some(n) if n > 0 => format!("recording the last {n} pipeline runs"),
                    _ => "recording is off".into(),
                }
            });
        }
        TenantCommand::Usage {
            tenant,
            from,
            to,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let days = admin.usage(&tenant, from.as_deref(), to.as_deref()).await?;
            print(out.json, &days, |days| usage_table(days));
        }
    }
    Ok(())
}

pub(super) async fn client_command(admin: &Admin, command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Create {
            tenant,
            name,
            callbacks,
            logout_urls,
            public,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let c = admin
                .create_client_with(
                    &tenant,
                    crate::service::clients::NewClientInput {
                        allowed_logout_urls: logout_urls,
                        ..crate::service::clients::NewClientInput::interactive(
                            name, callbacks, public,
                        )
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
    }
    Ok(())
}

pub(super) async fn user_command(admin: &Admin, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            tenant,
            email,
            password,
            name,
            email_verified,
            out,
        } => {
            let tenant = admin.resolve(&tenant).await?;
            let u = admin
                .create_user(&tenant, &email, &password, name.as_deref(), email_verified)
                .await?;
            print(out.json, &u, |u| {
                format!("created user {} ({})", u.user_id, u.email)
            });
        }
    }
    Ok(())
}

pub(super) async fn api_command(admin: &Admin, command: ApiCommand) -> Result<(), CliError> {
    match command {
        ApiCommand::Create {
            tenant,
            identifier,
            name,
            scopes,
            enforce_policies,
            token_dialect,
            out,
        } => {
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
    }
    Ok(())
}

fn usage_table(days: &[crate::domain::usage::UsageDay]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>14}",
        "date",
        "logins",
        "code",
        "refresh",
        "client",
        "rules",
        "actions",
        "failed",
        "denied",
        "fuel"
    );
    for d in days {
        let g = &d.token_grants;
        out.push_str(&format!(
            "\n{:<10} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>14}",
            d.date,
            d.logins,
            g.authorization_code,
            g.refresh_token,
            g.client_credentials,
            d.rule_executions,
            d.action_executions,
            d.failures,
            d.denials,
            d.fuel
        ));
    }
    out
}

fn allowed_hosts_line(s: &crate::service::tenants::TenantSettings) -> String {
    let hosts: Vec<String> = s
        .rules
        .iter()
        .flat_map(|r| &r.allowed_hosts)
        .map(|h| h.to_string())
        .collect();
    if hosts.is_empty() {
        "rules may call no host".into()
    } else {
        format!("rules may call: {}", hosts.join(", "))
    }
}

pub(super) async fn role_command(admin: &Admin, command: RoleCommand) -> Result<(), CliError> {
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

pub(super) async fn keys_command(admin: &Admin, command: KeysCommand) -> Result<(), CliError> {
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
