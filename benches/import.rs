//! Importing Auth0 users: `cargo bench --bench import`.
//!
//! Writes `BENCH_USERS` (default 100,000) users in the shape of Auth0's user-export job
//! (NDJSON, profile, metadata, identities, a bcrypt `custom_password_hash`, every tenth with a
//! role), then times the release binary's `wardstone import auth0 --users` on a fresh SQLite
//! database and on a fresh database of the PostgreSQL server at `BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; skipped when it does not answer): the first
//! import, and the same file again (every user already there). Then the release server is
//! started on the SQLite database and one imported user logs in twice: the first login verifies
//! bcrypt and stores argon2id, the second is an ordinary login. Prints a Markdown table.

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// bcrypt (cost 10) of "bench password 123".
const PASSWORD: &str = "bench password 123";

fn users_file(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let path = dir.join("users.ndjson");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        let mut user = serde_json::json!({
            "user_id": format!("auth0|{i:024x}"),
            "email": format!("user{i}@example.com"),
            "email_verified": true,
            "name": format!("User {i}"),
            "given_name": "User",
            "family_name": format!("{i}"),
            "nickname": format!("user{i}"),
            "picture": "https://s.gravatar.com/avatar/00000000000000000000000000000000?s=480",
            "created_at": "2021-03-04T05:06:07.000Z",
            "updated_at": "2024-03-04T05:06:07.000Z",
            "last_login": "2026-11-01T05:06:07.000Z",
            "logins_count": 42,
            "app_metadata": {"plan": "gold", "customer_id": format!("cus_{i}")},
            "user_metadata": {"lang": "en", "theme": "dark"},
            "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0", "user_id": format!("{i:024x}"), "isSocial": false}],
            "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": hash}},
        });
        if i % 10 == 0 {
            user["roles"] = serde_json::json!(["Reader"]);
        }
        writeln!(out, "{user}").unwrap();
    }
    out.flush().unwrap();
    path
}

fn wardstone(binary: &std::path::Path, db: &str, key: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(binary)
        .args(args)
        .env("WARDSTONE_DATABASE_URL", db)
        .env("WARDSTONE_MASTER_KEY", key)
        .env("WARDSTONE_LOG", "error")
        .output()
        .expect("the binary runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "wardstone {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

async fn postgres_database() -> Option<String> {
    use sqlx::Connection;
    let base = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
    let name = format!("ws_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .ok()?;
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// Logs in as `email` through the release server's pages; how long the password POST took.
async fn login(base: &str, client_id: &str, email: &str) -> Duration {
    let browser = browser();
    let authorize = format!(
        "{base}/t/bench/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let resp = browser.get(&authorize).send().await.unwrap();
    let login_url = location(&resp);
    let page = browser
        .get(&login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (action, mut fields) = form(&page, &login_url);
    for (k, v) in fields.iter_mut() {
        if k == "username" {
            *v = email.into();
        } else if k == "password" {
            *v = PASSWORD.into();
        }
    }
    let started = Instant::now();
    let resp = browser.post(&action).form(&fields).send().await.unwrap();
    let took = started.elapsed();
    assert!(
        resp.status().is_redirection(),
        "the imported user logs in: {}",
        resp.status()
    );
    took
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let binary = server_binary();
    let dir = tempfile::tempdir().unwrap();
    let file = users_file(dir.path(), n);
    let size_mib = std::fs::metadata(&file).unwrap().len() as f64 / (1 << 20) as f64;
    let key = random_master_key();
    let mut rows = Vec::new();
    let mut sqlite_db = None;
    for backend in ["SQLite", "PostgreSQL"] {
        let db = match backend {
            "SQLite" => format!("sqlite://{}/bench.db", dir.path().display()),
            _ => match postgres_database().await {
                Some(url) => url,
                None => {
                    println!("PostgreSQL does not answer: its rows are skipped");
                    continue;
                }
            },
        };
        wardstone(&binary, &db, &key, &["tenant", "create", "bench"]);
        wardstone(
            &binary,
            &db,
            &key,
            &["role", "create", "--tenant", "bench", "--name", "Reader"],
        );
        let path = file.to_str().unwrap();
        let first = wardstone(
            &binary,
            &db,
            &key,
            &["import", "auth0", "--tenant", "bench", "--users", path],
        );
        let again = wardstone(
            &binary,
            &db,
            &key,
            &["import", "auth0", "--tenant", "bench", "--users", path],
        );
        rows.push((backend, first, again));
        if backend == "SQLite" {
            sqlite_db = Some(db);
        }
    }
    let db = sqlite_db.unwrap();
    let client = {
        let out = Command::new(&binary)
            .args([
                "client",
                "create",
                "--tenant",
                "bench",
                "--name",
                "Bench",
                "--callback",
                "http://127.0.0.1:9/callback",
                "--public",
                "--json",
            ])
            .env("WARDSTONE_DATABASE_URL", &db)
            .env("WARDSTONE_MASTER_KEY", &key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["client_id"].as_str().unwrap().to_string()
    };
    let (server, _) = Server::start(&db, &key, &[]);
    let email = format!("user{}@example.com", n / 2);
    let first_login = login(&server.base, &client, &email).await;
    let second_login = login(&server.base, &client, &email).await;
    server.stop();

    println!(
        "\n{n} Auth0 users ({size_mib:.0} MiB of NDJSON, bcrypt cost 10), release build, this machine:\n"
    );
    println!("| backend | first import | users/s | same file again (all unchanged) |");
    println!("|---|---|---|---|");
    for (backend, first, again) in rows {
        println!(
            "| {backend} | {:.1} s | {:.0} | {:.1} s |",
            first.as_secs_f64(),
            n as f64 / first.as_secs_f64(),
            again.as_secs_f64()
        );
    }
    println!(
        "\nFirst login of an imported user (verifies bcrypt, stores argon2id): {}; the next login: {}",
        ms(first_login),
        ms(second_login)
    );
}
