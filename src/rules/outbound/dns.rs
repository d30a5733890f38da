//! Name resolution for rules' outbound requests, bounded so that no name can pin a thread.
//!
//! The system resolver (`getaddrinfo`) cannot be cancelled: a lookup whose server never
//! answers holds its thread for as long as libc keeps retrying, and ureq's default resolver
//! spawns one such thread per lookup with a deadline — a tenant could leak threads at will.
//! Here lookups are futures of hickory's resolver, driven by one small runtime on a thread of
//! its own; each lookup is dropped (and its socket closed) at the rule's deadline, and at most
//! `slots` lookups are in flight per node: beyond, a lookup is refused at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::sync::Semaphore;

/// Why a name has no addresses for the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The deadline passed first.
    #[error("DNS lookup of {0} did not finish within the rule's deadline")]
    Timeout(String),
    /// Every lookup slot of this node is taken.
    #[error("too many DNS lookups are in progress on this server; try again")]
    Busy,
    /// The name does not resolve (or the resolver is not configured).
    #[error("DNS lookup of {0} failed: {1}")]
    Failed(String, String),
}

/// The node's resolver for rules.
pub struct Dns {
    resolver: Option<TokioResolver>,
    /// Why there is no resolver, when there is none.
    broken: Option<String>,
    runtime: tokio::runtime::Handle,
    slots: Arc<Semaphore>,
    /// Ends the runtime's thread when the resolver goes.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("slots", &self.slots.available_permits())
            .finish()
    }
}

impl Dns {
    /// A resolver asking `servers` (the system's, from `/etc/resolv.conf`, when empty), with at
    /// most `slots` lookups in flight.
    pub fn new(servers: &[SocketAddr], slots: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("wardstone-dns".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })?;
        let built = {
            let _entered = handle.enter();
            build(servers)
        };
        let (resolver, broken) = match built {
            Ok(r) => (Some(r), None),
            Err(why) => {
                tracing::warn!(error = %why, "rules' DNS resolver is not configured; names will not resolve");
                (None, Some(why))
            }
        };
        Ok(Dns {
            resolver,
            broken,
            runtime: handle,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            _stop: stop,
        })
    }

    /// The addresses of `name`, or why not, by `deadline`. Blocking: called on the rule's
    /// executor thread, never on an async worker.
    pub fn lookup(&self, name: &str, deadline: Instant) -> Result<Vec<IpAddr>, DnsError> {
        let Some(resolver) = self.resolver.clone() else {
            return Err(DnsError::Failed(
                name.into(),
                self.broken.clone().unwrap_or_default(),
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DnsError::Timeout(name.into()));
        }
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| DnsError::Busy)?;
        // Absolute: no search domain of the host turns a tenant's name into an internal one.
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let owned = name.to_string();
        self.runtime.spawn(async move {
            let _permit = permit;
            let answer = match tokio::time::timeout(left, resolver.lookup_ip(fqdn)).await {
                Ok(Ok(found)) => Ok(found.iter().collect::<Vec<_>>()),
                Ok(Err(e)) => Err(DnsError::Failed(owned, e.to_string())),
                Err(_) => Err(DnsError::Timeout(owned)),
            };
            let _ = tx.send(answer);
        });
        // The task ends by `left` on its own; the margin covers its scheduling.
        rx.recv_timeout(left + Duration::from_millis(100))
            .unwrap_or_else(|_| Err(DnsError::Timeout(name.into())))
    }

    /// Lookups that may start now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }
}

fn build(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| e.to_string())?
    } else {
        let config = ResolverConfig::from_name_servers(
            servers
                .iter()
                .map(|s| {
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    for c in &mut ns.connections {
                        c.port = s.port();
                    }
                    ns
                })
                .collect(),
        );
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(ResolverOpts::default())
    };
    let options = builder.options_mut();
    // The rule's deadline bounds a lookup; these bound one question to one server.
    options.timeout = Duration::from_secs(2);
    options.attempts = 2;
    options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    builder.build().map_err(|e| e.to_string())
}
