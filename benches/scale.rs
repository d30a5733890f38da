//! The scale part of the whole-login benchmark: `cargo bench --bench scale`.
//!
//! Starts the release server as its own process on a fresh SQLite database and measures:
//! 1. **Restart**: with `BENCH_RESTART_TENANTS` (default 334) tenants × 3 distinct SDK rules
//!    stored (1,002 rules), how long a restarted node takes to answer `/readyz`, and what the
//!    first login of a tenant after the restart costs against a warm one (sequential, c=1).
//! 2. **Spread**: logins with a session at concurrency 16, round-robin over 10 tenants and then
//!    over 200 tenants (3 distinct SDK rules each: 30 and 600 distinct modules).
//! 3. **Many tenants**: `BENCH_MANY_TENANTS` (default 10,000) tenants × 3 distinct WAT rules,
//!    one login each, then one login with the session each (every rule runs once); the server's
//!    resident memory at the end.
//!
//! `BENCH_SECONDS` per measured phase (default 5). `BENCH_PARTS=restart,spread,many` to run a
//! subset. Prints a Markdown table for the README.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

const PASSWORD: &str = "bench password 123";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone)]
struct Tenant {
    name: String,
    client_id: String,
}

fn authorize_url(base: &str, t: &Tenant) -> String {
    let mut url = url::Url::parse(&format!("{base}/t/{}/authorize", t.name)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", t.client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email"),
        ("state", "s"),
        ("nonce", "n"),
    ]);
    url.to_string()
}

/// Set-up's rule engine: two compile slots, four compiles per tenant.
fn set_up_limits() -> wardstone::rules::Limits {
    wardstone::rules::Limits {
        compile_slots: 2,
        compiles_per_tenant: 4,
        ..Default::default()
    }
}

/// Creates `count` tenants named `{prefix}{i}`, each with a client, one user and three rules
/// made by `rule(tenant, i)`, two tenants at a time.
async fn create_tenants(
    admin: &wardstone::service::Admin,
    prefix: &str,
    count: usize,
    rule: impl Fn(usize, usize) -> Vec<u8> + Send + Sync + 'static,
) -> Vec<Tenant> {
    let rule = Arc::new(rule);
    let started = Instant::now();
    let mut out = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(2) {
        let jobs: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let (admin, rule, name) = (admin.clone(), rule.clone(), format!("{prefix}{i}"));
                tokio::spawn(async move {
                    admin
                        .create_tenant(&name, Default::default())
                        .await
                        .unwrap();
                    let tenant = admin.resolve(&name).await.unwrap();
                    let client = admin
                        .create_client(&tenant, "Bench App", &[CALLBACK.to_string()], false)
                        .await
                        .unwrap();
                    admin
                        .create_user(&tenant, "user@example.com", PASSWORD, Some("User"), true)
                        .await
                        .unwrap();
                    for r in 0..3 {
                        admin
                            .add_rule(&tenant, &format!("rule {r}"), &rule(i, r), None, true)
                            .await
                            .unwrap();
                    }
                    Tenant {
                        name,
                        client_id: client.client_id,
                    }
                })
            })
            .collect();
        for j in jobs {
            out.push(j.await.unwrap());
        }
        if out.len() % 500 == 0 {
            eprintln!(
                "  {} tenants created ({:.0} s)",
                out.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    out
}

/// A WAT rule unique to (tenant, index) that adds a claim.
fn wat_rule(tenant: usize, index: usize) -> Vec<u8> {
    let out =
        format!(r#"{{"context":{{"idToken":{{"https://example.com/r{index}":"t{tenant}"}}}}}}"#);
    format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 1024) "{}")
          (func (export "alloc") (param i32) (result i32)
            (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1)))) (i32.const 65536))
          (func (export "rule") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {}))))"#,
        out.replace('"', "\\\""),
        out.len()
    )
    .into_bytes()
}

/// Signs `browser` in to every tenant (one password login each, `parallel` at a time).
async fn sign_in(base: &str, browser: &reqwest::Client, tenants: &[Tenant], parallel: usize) {
    for chunk in tenants.chunks(parallel) {
        let jobs: Vec<_> = chunk
            .iter()
            .map(|t| {
                let (http, url) = (browser.clone(), authorize_url(base, t));
                tokio::spawn(async move {
                    let landed = login(&http, &url, "user@example.com", PASSWORD).await;
                    assert!(
                        query(&landed).contains_key("code"),
                        "login failed: {landed}"
                    );
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap();
        }
    }
}

/// One login with a session; its latency, or None if no code came back.
async fn sso(http: &reqwest::Client, url: &str) -> Option<Duration> {
    let t = Instant::now();
    let resp = http.get(url).send().await.ok()?;
    let landed = resp.headers().get("location")?.to_str().ok()?.to_string();
    query(&landed).contains_key("code").then(|| t.elapsed())
}

/// Logins with a session for `seconds`, each of `browsers` going round-robin over `tenants`.
async fn spread(
    base: &str,
    browsers: &[reqwest::Client],
    tenants: &[Tenant],
    seconds: Duration,
) -> Samples {
    let urls: Arc<Vec<String>> = Arc::new(tenants.iter().map(|t| authorize_url(base, t)).collect());
    let started = Instant::now();
    let jobs: Vec<_> = browsers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, http)| {
            let urls = urls.clone();
            tokio::spawn(async move {
                let mut s = Samples::default();
                let mut next = i;
                while started.elapsed() < seconds {
                    match sso(&http, &urls[next % urls.len()]).await {
                        Some(l) => {
                            s.ok += 1;
                            s.latencies.push(l);
                        }
                        None => s.errors += 1,
                    }
                    next += 1;
                }
                s
            })
        })
        .collect();
    let mut all = Samples::default();
    for j in jobs {
        all.merge(j.await.unwrap());
    }
    all.elapsed = started.elapsed();
    all
}

fn main() {
    let seconds = Duration::from_secs(env_or("BENCH_SECONDS", 5));
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "restart,spread,many".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let add_roles = sample("add-roles");
    let mut rows: Vec<String> = Vec::new();
    runtime.block_on(async {
        if parts.contains("restart") || parts.contains("spread") {
            let count = env_or("BENCH_RESTART_TENANTS", 334) as usize;
            let dir = tempfile::tempdir().unwrap();
            let database_url = format!("sqlite://{}/bench.db", dir.path().display());
            let master_key = random_master_key();
            let (admin, store) = admin(&database_url, &master_key, set_up_limits()).await;
            eprintln!("creating {count} tenants with 3 distinct SDK rules each…");
            let sdk = add_roles.clone();
            let tenants = create_tenants(&admin, "sdk", count.max(200), move |t, r| distinct(&sdk, &format!("{t}-{r}"))).await;
            store.close().await;
            drop(admin);

            // Sessions made on a first node survive its restart (they live in the database).
            let (server, _) = Server::start(&database_url, &master_key, &[]);
            let browsers: Vec<reqwest::Client> = (0..16).map(|_| browser()).collect();
            eprintln!("signing 16 browsers in to 200 tenants…");
            for b in &browsers {
                sign_in(&server.base, b, &tenants[..200], 8).await;
            }
            server.stop();

            let (server, ready) = Server::start(&database_url, &master_key, &[]);
            eprintln!("restarted with {} rules stored: ready in {ready:?}", tenants.len() * 3);
            rows.push(format!(
                "| restart with {} rules stored: `/readyz` answers after | {:.0} ms |",
                tenants.len() * 3,
                ready.as_secs_f64() * 1000.0
            ));
            if parts.contains("restart") {
                let (mut first, mut warm) = (Vec::new(), Vec::new());
                for t in &tenants[..20] {
                    let url = authorize_url(&server.base, t);
                    first.push(sso(&browsers[0], &url).await.expect("first login after restart"));
                    warm.push(sso(&browsers[0], &url).await.expect("warm login"));
                }
                first.sort();
                warm.sort();
                let (f, w) = (first[first.len() / 2], warm[warm.len() / 2]);
                eprintln!("first login of a tenant after restart {f:?}, warm {w:?}");
                rows.push(format!(
                    "| first login of a tenant after the restart (3 SDK rules loaded from artifacts), c=1, median of 20 | {} ({:.1}× a warm login: {}) |",
                    ms(f),
                    f.as_secs_f64() / w.as_secs_f64(),
                    ms(w)
                ));
            }
            if parts.contains("spread") {
                // Warm both sets first so the comparison is of steady states.
                spread(&server.base, &browsers, &tenants[..200], Duration::from_secs(3)).await;
                let few = spread(&server.base, &browsers, &tenants[..10], seconds).await;
                let many = spread(&server.base, &browsers, &tenants[..200], seconds).await;
                eprintln!("10 tenants {:.0}/s, 200 tenants {:.0}/s", few.per_second(), many.per_second());
                rows.push(format!(
                    "| logins with a session, c=16, round-robin over 10 tenants (30 modules) | {:.0}/s, p50 {}, p99 {} |",
                    few.per_second(), ms(few.quantile(0.5)), ms(few.quantile(0.99))
                ));
                rows.push(format!(
                    "| … over 200 tenants (600 modules) | {:.0}/s ({:.0} % of 10 tenants), p50 {}, p99 {}, errors {} |",
                    many.per_second(),
                    100.0 * many.per_second() / few.per_second(),
                    ms(many.quantile(0.5)),
                    ms(many.quantile(0.99)),
                    many.errors + few.errors
                ));
            }
            server.stop();
        }
        if parts.contains("many") {
            let count = env_or("BENCH_MANY_TENANTS", 10_000) as usize;
            let dir = tempfile::tempdir().unwrap();
            let database_url = format!("sqlite://{}/bench.db", dir.path().display());
            let master_key = random_master_key();
            let (admin, store) = admin(&database_url, &master_key, set_up_limits()).await;
            eprintln!("creating {count} tenants with 3 distinct WAT rules each…");
            let tenants = create_tenants(&admin, "wat", count, wat_rule).await;
            store.close().await;
            drop(admin);
            let (server, _) = Server::start(&database_url, &master_key, &[]);
            let idle = server.rss();
            let http = browser();
            eprintln!("one login per tenant…");
            sign_in(&server.base, &http, &tenants, 8).await;
            eprintln!("RSS after password logins: {} MiB", server.rss() >> 20);
            if std::env::var("BENCH_PAUSE").is_ok() {
                eprintln!("pausing 60 s: server pid {}", server.pid);
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            eprintln!("one login with a session per tenant…");
            let started = Instant::now();
            let mut errors = 0;
            for chunk in tenants.chunks(16) {
                let jobs: Vec<_> = chunk
                    .iter()
                    .map(|t| {
                        let (http, url) = (http.clone(), authorize_url(&server.base, t));
                        tokio::spawn(async move { sso(&http, &url).await })
                    })
                    .collect();
                for j in jobs {
                    if j.await.unwrap().is_none() {
                        errors += 1;
                    }
                }
            }
            let rss = server.rss();
            eprintln!("RSS idle {} MiB, after {} MiB ({:?})", idle >> 20, rss >> 20, started.elapsed());
            rows.push(format!(
                "| {count} tenants × 3 distinct rules, every tenant's rules run once: server RSS | {} MiB (idle after start: {} MiB), errors {errors} |",
                rss >> 20,
                idle >> 20
            ));
            server.stop();
        }
    });
    println!("\n| scale (release server, SQLite, this machine) | result |\n|---|---|");
    for r in rows {
        println!("{r}");
    }
}
