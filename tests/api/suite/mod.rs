//! The behaviour suite, compiled twice (main.rs): as `sqlite`, and as `postgres` when
//! `WARDSTONE_TEST_POSTGRES_URL` names a server. Its files are ordinary modules, so rustfmt and
//! rust-analyzer read them; `spawn_app` and its siblings start the backend this copy is for.

pub use crate::helpers::*;

/// The backend of this copy of the suite, from the module path main.rs gave it.
fn backend() -> Backend {
    if module_path!().ends_with("::postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(backend(), |_| {}).await
}

pub async fn spawn_app_signing(alg: SigningAlg) -> TestApp {
    spawn_app_signing_on(backend(), alg, |_| {}).await
}

/// An app whose operator opened 127.0.0.1/32 to rules (`--rule-http-allow-private`),
/// for tests with a loopback upstream.
pub async fn spawn_app_reaching_loopback() -> TestApp {
    spawn_app_on(backend(), |o| {
        o.rule_limits.http_allow_private = loopback_opened();
    })
    .await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut wardstone::startup::ServerOptions)) -> TestApp {
    spawn_app_on(backend(), tweak).await
}

mod actions;
mod authorize;
mod demo;
mod flow;
mod hostile;
mod import;
mod javascript;
mod keys;
mod languages;
mod lifecycle;
mod lockout;
mod logout;
mod management;
mod metrics;
mod modules;
mod nodes;
mod recording;
mod relying_party;
mod roles;
mod rule_cache;
mod rules;
mod store;
mod tenant_isolation;
mod token;
mod userinfo;
