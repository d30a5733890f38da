//! The attack benchmark: `cargo bench --bench attack`. Hostile traffic tried from outside against
//! the release server, each part reporting what an operator would watch:
//!
//! 1. **Login flood** — `BENCH_FLOOD` (default 1,000) concurrent `POST /login` with distinct
//!    usernames from distinct addresses (a botnet behind a trusted proxy, so the per-address
//!    throttle does not simply refuse them all): answers by status, slowest answer, peak resident
//!    memory, `/healthz` latency during the flood, and how long a real user's login takes right
//!    after.
//! 2. **Junk storage** — 300 `POST /authorize` carrying a 60 KB unknown parameter and 100 logins
//!    with 60 KB usernames: growth of the SQLite database file (measured after a clean shutdown,
//!    when the write-ahead log has been folded back into it).
//! 3. **Node loss during refresh rotation** — two nodes on one PostgreSQL database; 40 clients
//!    rotate refresh tokens through both; one node is killed with SIGKILL mid-rotation and each
//!    client whose answer was lost retries its token on the surviving node. Reports how many of
//!    the 40 chains survive, with the default grace period and with it turned off. Needs
//!    PostgreSQL at `BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//!    skipped with one line when it does not answer.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const PASSWORD: &str = "attack bench password";

struct Tenant {
    client_id: String,
    secret: String,
}

/// Creates tenant `acme` with one confidential client and `users` users on `database_url`.
async fn set_up(database_url: &str, master_key: &str, users: usize) -> Tenant {
    let (admin, store) = admin(database_url, master_key, Default::default()).await;
    admin
        .create_tenant("acme", Default::default())
        .await
        .unwrap();
    let tenant = admin.resolve("acme").await.unwrap();
    let client = admin
        .create_client(&tenant, "App", &[CALLBACK.to_string()], false)
        .await
        .unwrap();
    for i in 0..users {
        admin
            .create_user(
                &tenant,
                &format!("user{i}@example.com"),
                PASSWORD,
                Some("User"),
                true,
            )
            .await
            .unwrap();
    }
    store.close().await;
    Tenant {
        client_id: client.client_id,
        secret: client.client_secret.unwrap(),
    }
}

fn authorize_url(base: &str, client_id: &str) -> String {
    let mut url = url::Url::parse(&format!("{base}/t/acme/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", challenge().as_str()),
        ("code_challenge_method", "S256"),
    ]);
    url.to_string()
}

/// A browser whose requests name `ip` in `X-Forwarded-For`.
fn browser_from(ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn sqlite_url(dir: &tempfile::TempDir) -> (String, std::path::PathBuf) {
    let path = dir.path().join("attack.db");
    (format!("sqlite://{}", path.display()), path)
}

async fn flood() {
    let attackers: usize = std::env::var("BENCH_FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _) = sqlite_url(&dir);
    let master_key = random_master_key();
    let tenant = set_up(&database_url, &master_key, 1).await;
    let (server, _) = Server::start(
        &database_url,
        &master_key,
        &["--trusted-proxies", "127.0.0.1/32"],
    );
    let authorize = authorize_url(&server.base, &tenant.client_id);
    let rss_idle = server.rss();

    // Each attacker's login form first, so the flood itself is nothing but password posts.
    let mut posts = Vec::new();
    for i in 0..attackers {
        let http = browser_from(&format!(
            "10.{}.{}.{}",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        ));
        let next = location(&http.get(&authorize).send().await.unwrap());
        let html = http.get(&next).send().await.unwrap().text().await.unwrap();
        let (action, mut fields) = form(&html, &next);
        fields.retain(|(k, _)| k != "username" && k != "password");
        fields.push(("username".into(), format!("nobody{i}@example.com")));
        fields.push(("password".into(), "not the password".into()));
        posts.push((http, action, fields));
    }

    let peak = Arc::new(AtomicU64::new(server.rss()));
    let sampler = {
        let (peak, pid) = (peak.clone(), server.pid);
        tokio::spawn(async move {
            loop {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let kb: u64 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                peak.fetch_max(kb * 1024, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let flood: Vec<_> = posts
        .into_iter()
        .map(|(http, action, fields)| {
            tokio::spawn(async move {
                let t = Instant::now();
                let status = match http.post(&action).form(&fields).send().await {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(e) if e.is_timeout() => "timeout".to_string(),
                    Err(_) => "connection error".to_string(),
                };
                (status, t.elapsed())
            })
        })
        .collect();
    // /healthz while the flood runs.
    let health = {
        let base = server.base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut s = Samples::default();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let t = Instant::now();
                match http.get(format!("{base}/healthz")).send().await {
                    Ok(r) if r.status() == 200 => {
                        s.ok += 1;
                        s.latencies.push(t.elapsed());
                    }
                    _ => s.errors += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            s
        })
    };
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for job in flood {
        let (status, took) = job.await.unwrap();
        *statuses.entry(status).or_default() += 1;
        slowest = slowest.max(took);
    }
    let flood_took = started.elapsed();
    let health = health.await.unwrap();
    // A real user, from an address of their own, right after.
    let t = Instant::now();
    let landed = login(
        &browser_from("192.0.2.7"),
        &authorize,
        "user0@example.com",
        PASSWORD,
    )
    .await;
    let real_user = t.elapsed();
    sampler.abort();
    println!(
        "\n| login flood: {attackers} concurrent bogus logins, distinct users and addresses | |\n|---|---|"
    );
    let answers: Vec<String> = statuses.iter().map(|(k, v)| format!("{v}× {k}")).collect();
    println!("| answers | {} |", answers.join(", "));
    println!(
        "| whole flood answered in | {} (slowest answer {}) |",
        ms(flood_took),
        ms(slowest)
    );
    println!(
        "| server RSS idle → peak | {} → {} MiB |",
        rss_idle >> 20,
        peak.load(Ordering::Relaxed) >> 20
    );
    println!(
        "| /healthz during the flood | {} answered, {} failed, p50 {}, max {} |",
        health.ok,
        health.errors,
        ms(health.quantile(0.5)),
        ms(health.quantile(1.0))
    );
    println!(
        "| a real user's login right after | {} ({}) |",
        ms(real_user),
        if query(&landed).contains_key("code") {
            "got a code"
        } else {
            "FAILED"
        }
    );
    server.stop();
}

fn file_size(path: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            std::fs::metadata(format!("{}{suffix}", path.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

async fn storage() {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, path) = sqlite_url(&dir);
    let master_key = random_master_key();
    let tenant = set_up(&database_url, &master_key, 1).await;
    // Open and close once so that the baseline holds whatever a start writes.
    let (server, _) = Server::start(&database_url, &master_key, &[]);
    server.stop();
    let before = file_size(&path);

    let (server, _) = Server::start(&database_url, &master_key, &[]);
    let authorize = authorize_url(&server.base, &tenant.client_id);
    let junk = "j".repeat(60_000);
    let mut fields: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    fields.push(("junk".into(), junk.clone()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for _ in 0..300 {
        let r = http
            .post(format!("{}/t/acme/authorize", server.base))
            .form(&fields)
            .send()
            .await
            .unwrap();
        *statuses.entry(r.status().as_u16()).or_default() += 1;
    }
    let long_user = format!("{junk}@example.com");
    for _ in 0..100 {
        let http = browser();
        let next = location(&http.get(&authorize).send().await.unwrap());
        let html = http.get(&next).send().await.unwrap().text().await.unwrap();
        let (action, mut fields) = form(&html, &next);
        fields.retain(|(k, _)| k != "username" && k != "password");
        fields.push(("username".into(), long_user.clone()));
        fields.push(("password".into(), "x".into()));
        let r = http.post(&action).form(&fields).send().await.unwrap();
        *statuses.entry(r.status().as_u16()).or_default() += 1;
    }
    server.stop();
    let after = file_size(&path);
    let answers: Vec<String> = statuses.iter().map(|(k, v)| format!("{v}× {k}")).collect();
    println!(
        "\n| junk storage: 300 POST /authorize with 60 KB junk + 100 logins with 60 KB usernames | |\n|---|---|"
    );
    println!("| answers | {} |", answers.join(", "));
    println!(
        "| SQLite database before → after | {:.2} → {:.2} MB (grew {:.2} MB for 24 MB sent) |",
        before as f64 / 1e6,
        after as f64 / 1e6,
        after.saturating_sub(before) as f64 / 1e6
    );
}

async fn postgres_database() -> Option<String> {
    use sqlx::Connection;
    let base = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => {
            println!(
                "\nnode loss during refresh rotation: skipped, PostgreSQL at {base} does not answer ({e})"
            );
            return None;
        }
    };
    let name = format!("ws_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

const CHAINS: usize = 40;

/// One refresh: `Ok(Some(token))` rotated, `Ok(None)` refused, `Err` no answer.
async fn refresh(
    http: &reqwest::Client,
    base: &str,
    t: &Tenant,
    token: &str,
) -> Result<Option<String>, ()> {
    let resp = http
        .post(format!("{base}/t/acme/oauth/token"))
        .basic_auth(&t.client_id, Some(&t.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .map_err(|_| ())?;
    if resp.status() != 200 {
        return Ok(None);
    }
    let body: Value = resp.json().await.map_err(|_| ())?;
    Ok(body["refresh_token"].as_str().map(str::to_string))
}

/// Runs the node-loss scenario once; returns (chains alive, answers lost to the kill).
async fn node_loss(grace_seconds: &str) -> Option<(usize, usize)> {
    let database_url = postgres_database().await?;
    let master_key = random_master_key();
    let tenant = Arc::new(set_up(&database_url, &master_key, 1).await);
    let args = ["--refresh-grace-seconds", grace_seconds];
    let (survivor, _) = Server::start(&database_url, &master_key, &args);
    let (victim, _) = Server::start(&database_url, &master_key, &args);
    let authorize = authorize_url(&survivor.base, &tenant.client_id);

    // Each client's first refresh token, through a login of its own.
    let api = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for _ in 0..CHAINS {
        let landed = login(&browser(), &authorize, "user0@example.com", PASSWORD).await;
        let code = query(&landed).remove("code").expect("a code");
        let token_url = format!("{}/t/acme/oauth/token", survivor.base);
        let client = (tenant.client_id.as_str(), tenant.secret.as_str());
        let body: Value = exchange_code(&api, &token_url, client, &code)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(body["refresh_token"].as_str().unwrap().to_string());
    }

    let lost = Arc::new(AtomicU64::new(0));
    let bases = Arc::new([survivor.base.clone(), victim.base.clone()]);
    let mut chains = Vec::new();
    for (i, mut token) in tokens.into_iter().enumerate() {
        let (api, tenant, bases, lost) = (api.clone(), tenant.clone(), bases.clone(), lost.clone());
        chains.push(tokio::spawn(async move {
            // Alternate nodes for 1.5 s, then keep going on the survivor only.
            let started = Instant::now();
            let mut round = i;
            while started.elapsed() < Duration::from_millis(2500) {
                let node = if started.elapsed() < Duration::from_millis(1500) {
                    round % 2
                } else {
                    0
                };
                round += 1;
                match refresh(&api, &bases[node], &tenant, &token).await {
                    Ok(Some(next)) => token = next,
                    Ok(None) => return false,
                    Err(()) => {
                        // The answer was lost: the client retries the same token elsewhere.
                        lost.fetch_add(1, Ordering::Relaxed);
                        match refresh(&api, &bases[0], &tenant, &token).await {
                            Ok(Some(next)) => token = next,
                            _ => return false,
                        }
                    }
                }
            }
            // Alive if the chain still rotates.
            matches!(refresh(&api, &bases[0], &tenant, &token).await, Ok(Some(_)))
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &victim.pid.to_string()])
        .status();
    let mut alive = 0;
    for c in chains {
        if c.await.unwrap() {
            alive += 1;
        }
    }
    drop(victim);
    survivor.stop();
    Some((alive, lost.load(Ordering::Relaxed) as usize))
}

async fn failover() {
    let mut rows = Vec::new();
    for grace in ["5", "0"] {
        let Some((alive, lost)) = node_loss(grace).await else {
            return;
        };
        rows.push((grace, alive, lost));
    }
    println!(
        "\n| node loss: 2 nodes on PostgreSQL, {CHAINS} refresh chains, one node SIGKILLed | chains alive | refreshes that got no answer (retried on the survivor) |\n|---|---|---|"
    );
    for (grace, alive, lost) in rows {
        println!("| --refresh-grace-seconds {grace} | {alive}/{CHAINS} | {lost} |");
    }
}

fn main() {
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "flood,storage,failover".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for part in parts.split(',') {
            match part.trim() {
                "flood" => flood().await,
                "storage" => storage().await,
                "failover" => failover().await,
                other => panic!("unknown part {other}: flood, storage or failover"),
            }
        }
    });
}
