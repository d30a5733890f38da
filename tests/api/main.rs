//! The one integration-test binary: each test starts a real server on port 0 with a fresh
//! database and drives it over HTTP like a browser and a relying party would.
//!
//! The behaviour suite runs on SQLite always (`sqlite::…`), and again on PostgreSQL
//! (`postgres::…`) when `WARDSTONE_TEST_POSTGRES_URL` names a server (see build.rs); each test
//! gets its own fresh database there.

mod browser;
mod cli;
mod helpers;
mod templates;

/// The behaviour suite, with `spawn_app` bound to one backend.
macro_rules! behaviour_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            pub use crate::helpers::*;

            pub async fn spawn_app() -> TestApp {
                spawn_app_on($backend, |_| {}).await
            }

            pub async fn spawn_app_signing(alg: SigningAlg) -> TestApp {
                spawn_app_signing_on($backend, alg, |_| {}).await
            }

            /// An app whose operator opened 127.0.0.1/32 to rules (`--rule-http-allow-private`),
            /// for tests with a loopback upstream.
            pub async fn spawn_app_reaching_loopback() -> TestApp {
                spawn_app_on($backend, |o| {
                    o.rule_limits.http_allow_private = loopback_opened();
                })
                .await
            }

            pub async fn spawn_app_with(
                tweak: impl FnOnce(&mut wardstone::startup::ServerOptions),
            ) -> TestApp {
                spawn_app_on($backend, tweak).await
            }

            mod actions {
                include!("actions.rs");
            }
            mod authorize {
                include!("authorize.rs");
            }
            mod demo {
                include!("demo.rs");
            }
            mod flow {
                include!("flow.rs");
            }
            mod languages {
                include!("languages.rs");
            }
            mod lifecycle {
                include!("lifecycle.rs");
            }
            mod recording {
                include!("recording.rs");
            }
            mod import {
                include!("import.rs");
            }
            mod javascript {
                include!("javascript.rs");
            }
            mod keys {
                include!("keys.rs");
            }
            mod roles {
                include!("roles.rs");
            }
            mod hostile {
                include!("hostile.rs");
            }
            mod lockout {
                include!("lockout.rs");
            }
            mod logout {
                include!("logout.rs");
            }
            mod management {
                include!("management.rs");
            }
            mod modules {
                include!("modules.rs");
            }
            mod metrics {
                include!("metrics.rs");
            }
            mod nodes {
                include!("nodes.rs");
            }
            mod relying_party {
                include!("relying_party.rs");
            }
            mod rules {
                include!("rules.rs");
            }
            mod rule_cache {
                include!("rule_cache.rs");
            }
            mod store {
                include!("store.rs");
            }
            mod tenant_isolation {
                include!("tenant_isolation.rs");
            }
            mod token {
                include!("token.rs");
            }
            mod userinfo {
                include!("userinfo.rs");
            }
        }
    };
}

behaviour_suite!(sqlite, Backend::Sqlite);
#[cfg(pg_tests)]
behaviour_suite!(postgres, Backend::Postgres);
#[cfg(pg_tests)]
mod schema;
