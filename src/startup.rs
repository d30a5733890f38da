//! Builds the application (pool, migrations, provider, router), binds, and runs it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::{Lifetimes, PublicUrl};
use crate::crypto::MasterKey;
use crate::http::{AppState, router};
use crate::oauth::Provider;
use crate::service::Admin;
use crate::service::demo::Demo;
use crate::store::Store;

/// What starting a server needs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub database_url: String,
    /// Connections in the database pool of this node.
    pub db_max_connections: u32,
    /// Listen address (port 0 picks a free port).
    pub bind: SocketAddr,
    /// Public base URL; `http://{bound address}` when absent.
    pub public_url: Option<PublicUrl>,
    /// Master key; `None` reads `WARDSTONE_MASTER_KEY` or the key file beside a SQLite database.
    pub master_key: Option<MasterKey>,
    /// Create the demo tenant, client and user.
    pub demo: bool,
    /// Lifetimes and limits.
    pub lifetimes: Lifetimes,
    /// Sandbox limits of rules.
    pub rule_limits: crate::rules::Limits,
    /// Reverse proxies whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    provider: Provider,
    demo: Option<Arc<Demo>>,
    demo_apps: Option<DemoApps>,
}

/// `serve --demo`'s sample web app and API, bound and configured.
struct DemoApps {
    webapp: TcpListener,
    webapp_config: wardstone_demo_webapp::Config,
    api: TcpListener,
    api_config: wardstone_demo_api::Config,
}

/// A listener on `port + offset` of `near`'s address, or any free port when that one is taken.
async fn bind_near(near: SocketAddr, offset: u16) -> anyhow::Result<TcpListener> {
    let preferred = SocketAddr::new(near.ip(), near.port().saturating_add(offset));
    match TcpListener::bind(preferred).await {
        Ok(l) if near.port() != 0 => Ok(l),
        _ => Ok(TcpListener::bind(SocketAddr::new(near.ip(), 0)).await?),
    }
}

/// Opens the database and applies migrations.
pub async fn open_store(database_url: &str, max_connections: u32) -> anyhow::Result<Store> {
    let store = Store::connect(database_url, max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

impl Application {
    /// Connects, migrates, binds and builds the router.
    pub async fn build(options: ServerOptions, clock: Clock) -> anyhow::Result<Application> {
        let master_key = match options.master_key {
            Some(k) => k,
            None => crate::config::load_master_key(
                std::env::var("WARDSTONE_MASTER_KEY").ok().as_deref(),
                &options.database_url,
            )?,
        };
        let store = open_store(&options.database_url, options.db_max_connections).await?;
        let listener = TcpListener::bind(options.bind)
            .await
            .with_context(|| format!("cannot listen on {}", options.bind))?;
        let local = listener.local_addr()?;
        let public_url = match options.public_url {
            Some(u) => u,
            None => PublicUrl::parse(&format!("http://{local}"))?,
        };
        let rules =
            crate::rules::Rules::new(store.clone(), master_key.clone(), options.rule_limits)?;
        let passwords = crate::passwords::Passwords::default();
        let provider = Provider::new(
            store.clone(),
            master_key.clone(),
            clock.clone(),
            public_url.clone(),
            options.lifetimes,
            rules,
            passwords.clone(),
        );
        let admin = Admin::new(
            store.clone(),
            master_key,
            public_url.clone(),
            clock,
            provider.rules().clone(),
            passwords,
        );
        let (demo, demo_apps) = if options.demo {
            // The sample web app and API on ports of their own next to the server's.
            let webapp = bind_near(local, 1).await?;
            let api = bind_near(local, 2).await?;
            let webapp_base = format!("http://{}", webapp.local_addr()?);
            let api_url = format!("http://{}/", api.local_addr()?);
            let demo = Arc::new(
                crate::service::demo::ensure(&admin, &store, &webapp_base, &api_url)
                    .await
                    .context("cannot set up the demo")?,
            );
            let apps = DemoApps {
                webapp_config: wardstone_demo_webapp::Config {
                    issuer: demo.issuer.clone(),
                    client_id: demo.client_id.clone(),
                    client_secret: demo.client_secret.clone(),
                    base_url: webapp_base,
                    api_url: api_url.clone(),
                    audience: crate::service::demo::API_IDENTIFIER.into(),
                    scope: crate::service::demo::API_SCOPE.into(),
                },
                api_config: wardstone_demo_api::Config {
                    issuer: demo.issuer.clone(),
                    audience: crate::service::demo::API_IDENTIFIER.into(),
                    scope: crate::service::demo::API_SCOPE.into(),
                },
                webapp,
                api,
            };
            (Some(demo), Some(apps))
        } else {
            (None, None)
        };
        let state = AppState {
            pages: Arc::new(crate::http::pages_for(&public_url)),
            provider: provider.clone(),
            demo: demo.clone(),
            admin,
            openapi: crate::http::management_openapi(),
            trusted_proxies: Arc::new(options.trusted_proxies),
            metrics: crate::metrics::Metrics::new(
                provider.rules().metrics(),
                &provider.cache_counters(),
            ),
        };
        Ok(Application {
            listener,
            router: router(state),
            store,
            provider,
            demo,
            demo_apps,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The demo, when enabled.
    pub fn demo(&self) -> Option<&Demo> {
        self.demo.as_deref()
    }

    /// The provider (tests use it to reach the store).
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(apps) = self.demo_apps {
            tokio::spawn(wardstone_demo_webapp::serve(
                apps.webapp,
                apps.webapp_config,
            ));
            tokio::spawn(wardstone_demo_api::serve(apps.api, apps.api_config));
        }
        let warm_up = {
            let rules = self.provider.rules().clone();
            tokio::spawn(async move { rules.warm_up().await })
        };
        let pruner = {
            let provider = self.provider.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
                loop {
                    every.tick().await;
                    let now = provider.now();
                    provider.rules().modules().record_use(now).await;
                    if let Err(e) = provider
                        .store()
                        .prune_expired(now, provider.lifetimes().refresh_token + 3600)
                        .await
                    {
                        tracing::warn!(error = %e, "pruning expired rows failed");
                    }
                    if let Err(e) = provider
                        .store()
                        .prune_executions(now - 7 * 24 * 3600, 10_000)
                        .await
                    {
                        tracing::warn!(error = %e, "pruning the rule execution log failed");
                    }
                    if let Err(e) = provider
                        .store()
                        .prune_login_failures(
                            now - provider.lifetimes().throttle_window,
                            now - 180 * 24 * 3600,
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "pruning login attempt counts failed");
                    }
                    let runtime_keys = [false, true].map(crate::rules::js::runtime_artifact_key_of);
                    let fingerprint = provider.rules().engine().fingerprint().to_string();
                    if let Err(e) = provider
                        .store()
                        .prune_rule_artifacts([&runtime_keys[0], &runtime_keys[1]], &fingerprint)
                        .await
                    {
                        tracing::warn!(error = %e, "pruning unused rule artifacts failed");
                    }
                }
            })
        };
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Responses are written whole; Nagle's algorithm would only hold a small one back
        // until the client's ACK of the previous segment.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        pruner.abort();
        warm_up.abort();
        // What this node held is what its successor warms up with.
        self.provider
            .rules()
            .modules()
            .record_use(self.provider.now())
            .await;
        // Executions recorded by the last requests are written before the pool closes.
        self.provider.rules().journal().flush().await;
        self.store.close().await;
        result.context("server failed")
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
