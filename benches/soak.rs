//! The soak benchmark: `cargo bench --bench soak`.
//!
//! Starts the release server as its own process and runs mixed load for `BENCH_SECONDS`
//! (default 60): 16 workers each loop login with a session (one SDK rule runs) → code exchange
//! → refresh (the rule runs again) → userinfo, and one more worker calls the Management API
//! (list users, read one, merge metadata, list rules, read the log). Reports, per step,
//! throughput, p50, p99 and errors, and the server's resident memory after warm-up and at the
//! end. `BENCH_DATABASE=postgres` runs it on a fresh database of the PostgreSQL server at
//! `BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const PASSWORD: &str = "bench password 123";
const WORKERS: usize = 16;

type Steps = Arc<Mutex<BTreeMap<&'static str, Samples>>>;

fn record(steps: &Steps, step: &'static str, started: Instant, ok: bool) {
    let mut steps = steps.lock().unwrap();
    let s = steps.entry(step).or_default();
    if ok {
        s.ok += 1;
        s.latencies.push(started.elapsed());
    } else {
        s.errors += 1;
    }
}

async fn database(kind: &str) -> (String, Option<tempfile::TempDir>) {
    if kind != "postgres" {
        let dir = tempfile::tempdir().unwrap();
        return (
            format!("sqlite://{}/soak.db", dir.path().display()),
            Some(dir),
        );
    }
    use sqlx::Connection;
    let base = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("ws_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    (url.to_string(), None)
}

fn main() {
    let seconds = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let kind = std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (database_url, _dir) = database(&kind).await;
        let master_key = random_master_key();
        // Set-up through the service layer on the database the server will open.
        let (admin, store) = admin(&database_url, &master_key, Default::default()).await;
        let created = admin.create_tenant("soak", Default::default()).await.unwrap();
        let tenant = admin.resolve("soak").await.unwrap();
        let client = admin
            .create_client(&tenant, "Soak App", &[CALLBACK.to_string()], false)
            .await
            .unwrap();
        for i in 0..WORKERS {
            admin
                .create_user(&tenant, &format!("user{i}@example.com"), PASSWORD, Some("Soak"), true)
                .await
                .unwrap();
        }
        admin.add_rule(&tenant, "roles", &sample("add-roles"), None, true).await.unwrap();
        store.close().await;

        let (server, _) = Server::start(&database_url, &master_key, &[]);
        let base = server.base.clone();
        let issuer = format!("{base}/t/soak");
        let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid profile email offline_access"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", challenge().as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let authorize = Arc::new(url.to_string());
        let secret = client.client_secret.unwrap();
        let mut browsers = Vec::new();
        for i in 0..WORKERS {
            let http = browser();
            let landed = login(&http, &authorize, &format!("user{i}@example.com"), PASSWORD).await;
            assert!(query(&landed).contains_key("code"));
            browsers.push(http);
        }

        let steps: Steps = Arc::default();
        let run = |duration: Duration, steps: Steps| {
            let started = Instant::now();
            let mut jobs = Vec::new();
            for http in browsers.clone() {
                let (authorize, steps, issuer) = (authorize.clone(), steps.clone(), issuer.clone());
                let (id, secret) = (client.client_id.clone(), secret.clone());
                jobs.push(tokio::spawn(async move {
                    let api = reqwest::Client::new();
                    while started.elapsed() < duration {
                        let t = Instant::now();
                        let code = match http.get(authorize.as_str()).send().await {
                            Ok(r) => r
                                .headers()
                                .get("location")
                                .and_then(|l| l.to_str().ok())
                                .and_then(|l| query(l).remove("code")),
                            Err(_) => None,
                        };
                        record(&steps, "1 login with a session (1 SDK rule)", t, code.is_some());
                        let Some(code) = code else { continue };
                        let t = Instant::now();
                        let token_url = format!("{issuer}/oauth/token");
                        let tokens: Option<Value> = match exchange_code(&api, &token_url, (&id, &secret), &code).await {
                            Ok(r) if r.status() == 200 => r.json().await.ok(),
                            _ => None,
                        };
                        record(&steps, "2 code exchange", t, tokens.is_some());
                        let Some(tokens) = tokens else { continue };
                        let t = Instant::now();
                        let refreshed: Option<Value> = match api
                            .post(format!("{issuer}/oauth/token"))
                            .basic_auth(&id, Some(&secret))
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", tokens["refresh_token"].as_str().unwrap_or("")),
                            ])
                            .send()
                            .await
                        {
                            Ok(r) if r.status() == 200 => r.json().await.ok(),
                            _ => None,
                        };
                        record(&steps, "3 refresh (1 SDK rule)", t, refreshed.is_some());
                        let Some(refreshed) = refreshed else { continue };
                        let t = Instant::now();
                        let ok = api
                            .get(format!("{issuer}/userinfo"))
                            .bearer_auth(refreshed["access_token"].as_str().unwrap_or(""))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200);
                        record(&steps, "4 userinfo", t, ok);
                    }
                }));
            }
            // One administrator at work.
            let (steps, issuer) = (steps.clone(), issuer.clone());
            let (mid, msecret) = (created.management.client_id.clone(), created.management.client_secret.clone());
            jobs.push(tokio::spawn(async move {
                let api = reqwest::Client::new();
                let token = management_token(&issuer, &mid, &msecret).await;
                let mut n = 0u64;
                while started.elapsed() < duration {
                    let t = Instant::now();
                    let users: Option<Value> = match api
                        .get(format!("{issuer}/api/v2/users?per_page=5"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => r.json().await.ok(),
                        _ => None,
                    };
                    let user = users.as_ref().and_then(|u| u[0]["user_id"].as_str()).unwrap_or("").to_string();
                    let ok = !user.is_empty()
                        && api
                            .get(format!("{issuer}/api/v2/users/{user}"))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                        && api
                            .patch(format!("{issuer}/api/v2/users/{user}"))
                            .bearer_auth(&token)
                            .json(&json!({"user_metadata": {"soak": n}}))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                        && api
                            .get(format!("{issuer}/api/v2/rules"))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                        && api
                            .get(format!("{issuer}/api/v2/logs?per_page=20"))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200);
                    record(&steps, "5 Management API round (5 calls)", t, ok);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
            async move {
                for j in jobs {
                    j.await.unwrap();
                }
                started.elapsed()
            }
        };
        // Warm-up, then the measured run.
        run(Duration::from_secs(5), Arc::default()).await;
        let rss_start = server.rss();
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_start));
        let sampler = {
            let (peak, pid) = (peak.clone(), server.pid);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                    let kb: u64 = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                        .unwrap_or(0);
                    peak.fetch_max(kb * 1024, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        let elapsed = run(seconds, steps.clone()).await;
        sampler.abort();
        let rss_end = server.rss();
        println!(
            "\n| soak, {kind}, {WORKERS} workers + 1 admin, {}s | per second | p50 | p99 | p99/p50 | errors |\n|---|---|---|---|---|---|",
            elapsed.as_secs()
        );
        for (step, s) in steps.lock().unwrap().iter_mut() {
            s.elapsed = elapsed;
            let (p50, p99) = (s.quantile(0.5), s.quantile(0.99));
            println!(
                "| {step} | {:.0} | {} | {} | {:.1}× | {} |",
                s.per_second(),
                ms(p50),
                ms(p99),
                p99.as_secs_f64() / p50.as_secs_f64().max(1e-9),
                s.errors
            );
        }
        println!(
            "| server RSS after warm-up → peak → end | {} → {} → {} MiB | | | | |",
            rss_start >> 20,
            peak.load(std::sync::atomic::Ordering::Relaxed) >> 20,
            rss_end >> 20
        );
        server.stop();
    });
}
