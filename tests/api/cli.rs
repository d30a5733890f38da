//! The `wardstone` command line: exact commands, JSON output, and clean failures.

use std::process::Command;

fn wardstone(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args(args)
        .env("WARDSTONE_DATABASE_URL", db)
        .env("WARDSTONE_LOG", "error")
        .env_remove("WARDSTONE_MASTER_KEY")
        .output()
        .unwrap()
}

/// [`wardstone`] with the arguments of a line split at spaces.
fn wardstone_line(db: &str, line: &str) -> std::process::Output {
    wardstone(db, &line.split(' ').collect::<Vec<_>>())
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// Starts `wardstone serve` on a free port over `db` with `args`, logging at `log` to
/// `stderr`, and waits until it is ready. Returns the process and its base URL.
async fn serve(
    db: &str,
    args: &[&str],
    log: &str,
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let server = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args(["serve", "--bind", &bind])
        .args(args)
        .env("WARDSTONE_DATABASE_URL", db)
        .env("WARDSTONE_LOG", log)
        .env_remove("WARDSTONE_MASTER_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let base = format!("http://{bind}");
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "the server never got ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (server, base)
}

fn refused(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line on stderr: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn admin_commands_create_what_a_login_needs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/data/w.db", dir.path().display());
    let t = json(&wardstone(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--json",
            "--public-url",
            "https://id.example.com",
        ],
    ));
    assert_eq!(t["name"], "acme");
    assert_eq!(t["issuer"], "https://id.example.com/t/acme");
    assert!(
        dir.path().join("data/w.db").exists(),
        "the database and its folders are created"
    );
    let key = dir.path().join("data/w.db.key");
    assert!(key.exists(), "a master key file beside the database");

    let c = json(&wardstone(
        &db,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Web",
            "--callback",
            "https://app.example.com/cb",
            "--callback",
            "http://localhost:3000/cb",
            "--logout-url",
            "https://app.example.com/goodbye",
            "--json",
        ],
    ));
    assert!(c["client_id"].as_str().unwrap().len() >= 20);
    assert_eq!(
        c["allowed_logout_urls"],
        serde_json::json!(["https://app.example.com/goodbye"])
    );
    assert!(c["client_secret"].as_str().unwrap().len() >= 43);
    let p = json(&wardstone(
        &db,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "SPA",
            "--callback",
            "https://app.example.com/cb",
            "--public",
            "--json",
        ],
    ));
    assert!(p.get("client_secret").is_none());

    let u = json(&wardstone(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "Bob@Example.com",
            "--password",
            "long password",
            "--name",
            "Bob",
            "--email-verified",
            "--json",
        ],
    ));
    assert!(u["user_id"].as_str().unwrap().starts_with("auth0|"));
    assert_eq!(u["email"], "bob@example.com");

    let a = json(&wardstone(
        &db,
        &[
            "api",
            "create",
            "--tenant",
            "acme",
            "--identifier",
            "https://api.example.com/",
            "--name",
            "API",
            "--scope",
            "read:x=Read X",
            "--json",
        ],
    ));
    assert_eq!(a["scopes"][0]["value"], "read:x");

    let human = wardstone(&db, &["tenant", "create", "beta"]);
    assert!(human.status.success());
    assert!(String::from_utf8_lossy(&human.stdout).contains("issuer"));
}

#[test]
fn bad_input_exits_non_zero_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let user = "user create --tenant acme --email";
    let client = "client create --tenant acme --name x --callback";
    for (line, needle) in [
        ("tenant create Bad_Name".to_string(), "invalid tenant name"),
        ("tenant create ab".into(), "invalid tenant name"),
        ("tenant create acme".into(), "already exists"),
        (
            "client create --tenant nope --name x --callback https://a.example/cb".into(),
            "does not exist",
        ),
        (
            format!("{client} https://a.example/cb --logout-url http://evil.example/after"),
            "use https",
        ),
        (format!("{client} http://evil.example/cb"), "callback"),
        (format!("{client} https://a.example/cb#f"), "fragment"),
        (
            format!("{user} not-an-email --password long-password"),
            "email",
        ),
        (format!("{user} a@b.example --password short"), "password"),
    ] {
        refused(&wardstone_line(&db, &line), needle);
    }
    json(&wardstone_line(
        &db,
        &format!("{user} a@b.example --password long-password --json"),
    ));
    for (line, needle) in [
        (
            format!("{user} A@b.example --password long-password"),
            "already exists",
        ),
        (
            "api create --tenant acme --identifier not-a-url".into(),
            "identifier",
        ),
        ("tenant create x --public-url ftp://x".into(), "public URL"),
    ] {
        refused(&wardstone_line(&db, &line), needle);
    }

    // Nothing half-written: one tenant, one user.
    let listed = wardstone(&db, &["tenant", "create", "acme"]);
    refused(&listed, "already exists");
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args(["tenant", "create"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "missing arguments are a usage error");
}

#[test]
fn migrate_applies_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let out = wardstone(&db, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = wardstone(&db, &["migrate"]);
    assert!(again.status.success(), "migrations are idempotent");
}

fn repo(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn rule_commands_manage_a_tenants_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let claim = repo("sample-rules/wat/static-claim.wat");
    let deny = repo("sample-rules/wat/deny.wat");
    let a = json(&wardstone(
        &db,
        &[
            "rule", "add", "--tenant", "acme", "--name", "tier", "--file", &claim, "--json",
        ],
    ));
    assert!(a["id"].as_str().unwrap().starts_with("rul_"));
    assert_eq!(a["enabled"], true);
    assert_eq!(a["order"], 1);
    let b = json(&wardstone(
        &db,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--name",
            "deny",
            "--file",
            &deny,
            "--order",
            "0",
            "--disabled",
            "--json",
        ],
    ));
    assert_eq!(b["enabled"], false);
    let list = json(&wardstone(
        &db,
        &["rule", "list", "--tenant", "acme", "--json"],
    ));
    let names: Vec<&str> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deny", "tier"], "pipeline order");
    assert!(list["rules"][0].get("module").is_none(), "never the bytes");

    let id = b["id"].as_str().unwrap();
    assert_eq!(
        json(&wardstone(
            &db,
            &["rule", "enable", "--tenant", "acme", "--id", id, "--json"]
        ))["enabled"],
        true
    );
    assert_eq!(
        json(&wardstone(
            &db,
            &["rule", "disable", "--tenant", "acme", "--id", id, "--json"]
        ))["enabled"],
        false
    );
    json(&wardstone(
        &db,
        &["rule", "remove", "--tenant", "acme", "--id", id, "--json"],
    ));
    refused(
        &wardstone(&db, &["rule", "remove", "--tenant", "acme", "--id", id]),
        "does not exist",
    );

    let set = wardstone(
        &db,
        &[
            "rules-config",
            "set",
            "--tenant",
            "acme",
            "API_KEY",
            "s3cr3t-value",
            "--json",
        ],
    );
    assert!(set.status.success());
    assert!(
        !String::from_utf8_lossy(&set.stdout).contains("s3cr3t-value"),
        "values are never printed"
    );
    let keys = json(&wardstone(
        &db,
        &["rules-config", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(keys["keys"], serde_json::json!(["API_KEY"]));
    json(&wardstone(
        &db,
        &[
            "rules-config",
            "unset",
            "--tenant",
            "acme",
            "API_KEY",
            "--json",
        ],
    ));
    refused(
        &wardstone(
            &db,
            &["rules-config", "unset", "--tenant", "acme", "API_KEY"],
        ),
        "not set",
    );
    refused(
        &wardstone(
            &db,
            &["rules-config", "set", "--tenant", "acme", "bad key!", "v"],
        ),
        "invalid setting key",
    );

    let logs = json(&wardstone(
        &db,
        &["logs", "--tenant", "acme", "--json", "--limit", "5"],
    ));
    assert_eq!(logs["logs"], serde_json::json!([]));
    refused(
        &wardstone(&db, &["logs", "--tenant", "acme", "--limit", "0"]),
        "invalid limit",
    );
}

#[test]
fn rule_add_refuses_bad_modules_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let wasi = dir.path().join("wasi.wat");
    std::fs::write(
        &wasi,
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
           (memory (export "memory") 1)
           (func (export "alloc") (param i32) (result i32) (i32.const 0))
           (func (export "rule") (param i32 i32) (result i64) (i64.const 0)))"#,
    )
    .unwrap();
    let path = wasi.display().to_string();
    refused(
        &wardstone(
            &db,
            &[
                "rule", "add", "--tenant", "acme", "--name", "x", "--file", &path,
            ],
        ),
        "import wasi_snapshot_preview1::fd_write is not allowed",
    );
    refused(
        &wardstone(
            &db,
            &[
                "rule",
                "add",
                "--tenant",
                "acme",
                "--name",
                "x",
                "--file",
                "/nonexistent.wasm",
            ],
        ),
        "cannot read",
    );
    refused(
        &wardstone(
            &db,
            &[
                "rule",
                "add",
                "--tenant",
                "acme",
                "--name",
                "bad/name",
                "--file",
                &repo("sample-rules/wat/deny.wat"),
            ],
        ),
        "invalid rule name",
    );
    let list = json(&wardstone(
        &db,
        &["rule", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(list["rules"], serde_json::json!([]));
}

#[test]
fn rules_run_executes_a_module_offline() {
    let input = repo("sample-rules/example-input.json");
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args([
            "rules",
            "run",
            "--module",
            &repo("sample-rules/wat/static-claim.wat"),
            "--input",
            &input,
        ])
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(report["outcome"], "ok");
    assert_eq!(
        report["output"]["context"]["idToken"]["https://wardstone.dev/tier"],
        "gold"
    );
    assert_eq!(report["logs"][0]["message"], "adding the static tier claim");
    assert!(report["fuel"].as_u64().unwrap() > 0);
    assert!(report["duration_us"].as_u64().is_some());

    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args([
            "rules",
            "run",
            "--module",
            &repo("sample-rules/wat/deny.wat"),
            "--input",
            &input,
        ])
        .output()
        .unwrap();
    assert_eq!(json(&out)["outcome"], "denied");

    let dir = tempfile::tempdir().unwrap();
    let looping = dir.path().join("loop.wat");
    std::fs::write(
        &looping,
        r#"(module (memory (export "memory") 1)
           (func (export "alloc") (param i32) (result i32) (i32.const 1024))
           (func (export "rule") (param i32 i32) (result i64) (loop (br 0)) (i64.const 0)))"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args([
            "rules",
            "run",
            "--module",
            &looping.display().to_string(),
            "--input",
            &input,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a failing rule exits non-zero");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "failed:fuel");

    // Server-wide limits are flags (and environment variables) of every command.
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args([
            "rules",
            "run",
            "--rule-fuel",
            "20000",
            "--module",
            &looping.display().to_string(),
            "--input",
            &input,
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "failed:fuel");
    assert!(report["fuel"].as_u64().unwrap() <= 20_000);
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args(["serve", "--rule-fuel", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "absurd limits are refused");

    let bad_input = dir.path().join("input.json");
    std::fs::write(&bad_input, "{\"user\": 1}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args([
            "rules",
            "run",
            "--module",
            &looping.display().to_string(),
            "--input",
            &bad_input.display().to_string(),
        ])
        .output()
        .unwrap();
    refused(&out, "is not a rule input");
}

/// A whole login against `serve --log-format json` at the most verbose level: stderr holds only
/// JSON objects, and none of them carries the password, the code or any token.
#[tokio::test]
async fn json_logs_of_a_whole_login_carry_no_secret() {
    use crate::helpers::{
        Browser, CALLBACK, VERIFIER, challenge, form, location, query_of, set_field,
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let password = "a very secret password 9";
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let client = json(&wardstone(
        &db,
        &[
            "client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Web",
            "--callback",
            CALLBACK,
            "--json",
        ],
    ));
    json(&wardstone(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ann@example.com",
            "--password",
            password,
            "--email-verified",
            "--json",
        ],
    ));
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_string(),
        client["client_secret"].as_str().unwrap().to_string(),
    );
    let stderr_path = dir.path().join("stderr.log");
    let (mut server, base) = serve(
        &db,
        &["--log-format", "json"],
        "debug",
        std::fs::File::create(&stderr_path).unwrap().into(),
    )
    .await;
    let issuer = format!("{base}/t/acme");
    let http = reqwest::Client::new();

    let mut authorize = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", "st"),
        ("code_challenge", challenge(VERIFIER).as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let browser = Browser::new();
    let login_url = location(&browser.get(authorize.as_str()).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    let (action, mut fields) = form(&html, &login_url);
    set_field(&mut fields, "username", "ann@example.com");
    set_field(&mut fields, "password", password);
    let consent_url = location(&browser.post_form(&action, &fields).await);
    let html = browser.get(&consent_url).await.text().await.unwrap();
    let (action, mut fields) = form(&html, &consent_url);
    set_field(&mut fields, "decision", "allow");
    let callback = location(&browser.post_form(&action, &fields).await);
    let code = query_of(&callback).remove("code").expect("a code");
    let tokens: serde_json::Value = http
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refreshed: serde_json::Value = http
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    let userinfo = http
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let _ = server.kill();
    let _ = server.wait();

    let logs = std::fs::read_to_string(&stderr_path).unwrap();
    let mut lines = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed.is_object(), "{line}");
        lines += 1;
    }
    assert!(
        lines > 10,
        "the debug level logged the flow ({lines} lines)"
    );
    assert!(logs.contains("wardstone listening"));
    let mut secrets = vec![password.to_string(), code, secret];
    for t in [&tokens, &refreshed] {
        for k in ["access_token", "refresh_token", "id_token"] {
            if let Some(v) = t[k].as_str() {
                secrets.push(v.to_string());
                // Nor any recognisable part of a JWT (its signature).
                if let Some(sig) = v.rsplit('.').next() {
                    secrets.push(sig.to_string());
                }
            }
        }
    }
    for s in secrets {
        assert!(!logs.contains(&s), "a secret reached the logs: {s}");
    }
}

#[test]
fn role_and_key_commands_manage_rbac_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    refused(
        &wardstone(&db, &["tenant", "create", "acme", "--signing-alg", "HS256"]),
        "unsupported signing algorithm",
    );
    let t = json(&wardstone(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--signing-alg",
            "ES256",
            "--json",
        ],
    ));
    assert_eq!(t["signing_alg"], "ES256");
    let keys = json(&wardstone(
        &db,
        &["keys", "list", "--tenant", "acme", "--json"],
    ));
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["alg"] == "ES256"));
    let next = keys.iter().find(|k| k["next"] == true).unwrap()["kid"].clone();
    let current = keys.iter().find(|k| k["current"] == true).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    refused(
        &wardstone(
            &db,
            &["keys", "revoke", "--tenant", "acme", "--kid", &current],
        ),
        "current key",
    );
    let rotated = json(&wardstone(
        &db,
        &["keys", "rotate", "--tenant", "acme", "--json"],
    ));
    assert_eq!(rotated["kid"], next);
    let revoked = json(&wardstone(
        &db,
        &[
            "keys", "revoke", "--tenant", "acme", "--kid", &current, "--json",
        ],
    ));
    assert_eq!(revoked["revoked"], true);

    json(&wardstone(
        &db,
        &[
            "api",
            "create",
            "--tenant",
            "acme",
            "--identifier",
            "https://api.example.com/",
            "--scope",
            "read:x=Read",
            "--enforce-policies",
            "--token-dialect",
            "access_token_authz",
            "--json",
        ],
    ));
    refused(
        &wardstone(
            &db,
            &[
                "api",
                "create",
                "--tenant",
                "acme",
                "--identifier",
                "https://b.example.com/",
                "--token-dialect",
                "jwt",
            ],
        ),
        "token_dialect",
    );
    let role = json(&wardstone(
        &db,
        &[
            "role", "create", "--tenant", "acme", "--name", "reader", "--json",
        ],
    ));
    let role_id = role["id"].as_str().unwrap();
    refused(
        &wardstone(
            &db,
            &["role", "create", "--tenant", "acme", "--name", "reader"],
        ),
        "already exists",
    );
    refused(
        &wardstone(
            &db,
            &[
                "role",
                "add-permission",
                "--tenant",
                "acme",
                "--role",
                role_id,
                "--api",
                "https://api.example.com/",
                "--permission",
                "write:x",
            ],
        ),
        "does not define",
    );
    let out = wardstone(
        &db,
        &[
            "role",
            "add-permission",
            "--tenant",
            "acme",
            "--role",
            role_id,
            "--api",
            "https://api.example.com/",
            "--permission",
            "read:x",
        ],
    );
    assert!(out.status.success());
    let user = json(&wardstone(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "a@example.com",
            "--password",
            "correct horse battery",
            "--json",
        ],
    ));
    let user_id = user["user_id"].as_str().unwrap();
    refused(
        &wardstone(
            &db,
            &[
                "role", "assign", "--tenant", "acme", "--user", user_id, "--role", "rol_nope",
            ],
        ),
        "does not exist",
    );
    let out = wardstone(
        &db,
        &[
            "role", "assign", "--tenant", "acme", "--user", user_id, "--role", role_id,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let roles = json(&wardstone(
        &db,
        &["role", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(roles[0]["name"], "reader");
}

#[test]
fn rule_lifecycle_commands_version_roll_back_and_allow_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let v1 = dir.path().join("v1.wat");
    let v2 = dir.path().join("v2.wat");
    std::fs::write(&v1, crate::helpers::tag_rule("one")).unwrap();
    std::fs::write(&v2, crate::helpers::tag_rule("two")).unwrap();
    refused(
        &wardstone(
            &db,
            &[
                "rule",
                "add",
                "--tenant",
                "acme",
                "--name",
                "t",
                "--file",
                v1.to_str().unwrap(),
                "--on-failure",
                "maybe",
            ],
        ),
        "on_failure",
    );
    let r = json(&wardstone(
        &db,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--name",
            "t",
            "--file",
            v1.to_str().unwrap(),
            "--on-failure",
            "skip",
            "--json",
        ],
    ));
    assert_eq!(r["on_failure"], "skip");
    let id = r["id"].as_str().unwrap().to_string();
    let u = json(&wardstone(
        &db,
        &[
            "rule",
            "update",
            "--tenant",
            "acme",
            "--id",
            &id,
            "--file",
            v2.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(u["version"], 2);
    let versions = json(&wardstone(
        &db,
        &[
            "rule", "versions", "--tenant", "acme", "--id", &id, "--json",
        ],
    ));
    assert_eq!(versions.as_array().unwrap().len(), 2);
    refused(
        &wardstone(
            &db,
            &[
                "rule",
                "rollback",
                "--tenant",
                "acme",
                "--id",
                &id,
                "--version",
                "7",
            ],
        ),
        "no version 7",
    );
    let back = json(&wardstone(
        &db,
        &[
            "rule",
            "rollback",
            "--tenant",
            "acme",
            "--id",
            &id,
            "--version",
            "1",
            "--json",
        ],
    ));
    assert_eq!(back["version"], 3);

    refused(
        &wardstone(
            &db,
            &[
                "tenant",
                "allow-host",
                "--tenant",
                "acme",
                "http://x.example/",
            ],
        ),
        "invalid allowed host",
    );
    // Only the operator opens private ranges: the CLI refuses them like the API, naming the
    // entry, unless the server's flag opens the range.
    for entry in [
        "169.254.169.254",
        "10.0.0.5:6379",
        "127.1:8080",
        "[::ffff:a9fe:a9fe]",
    ] {
        refused(
            &wardstone(&db, &["tenant", "allow-host", "--tenant", "acme", entry]),
            entry,
        );
    }
    let opened = json(&wardstone(
        &db,
        &[
            "--rule-http-allow-private",
            "10.0.0.0/8",
            "tenant",
            "allow-host",
            "--tenant",
            "acme",
            "10.0.0.5:6379",
            "--json",
        ],
    ));
    assert_eq!(
        opened["rules"]["allowed_hosts"],
        serde_json::json!(["10.0.0.5:6379"])
    );
    let bad = wardstone(
        &db,
        &[
            "--rule-http-allow-private",
            "not-a-range",
            "tenant",
            "allow-host",
            "--tenant",
            "acme",
            "api.example.com",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a CIDR range"));
    json(&wardstone(
        &db,
        &[
            "--rule-http-allow-private",
            "10.0.0.0/8",
            "tenant",
            "disallow-host",
            "--tenant",
            "acme",
            "10.0.0.5:6379",
            "--json",
        ],
    ));
    let s = json(&wardstone(
        &db,
        &[
            "tenant",
            "allow-host",
            "--tenant",
            "acme",
            "crm.example.com:8443",
            "--json",
        ],
    ));
    assert_eq!(
        s["rules"]["allowed_hosts"],
        serde_json::json!(["crm.example.com:8443"])
    );
    refused(
        &wardstone(
            &db,
            &[
                "tenant",
                "disallow-host",
                "--tenant",
                "acme",
                "other.example.com",
            ],
        ),
        "not on the allow-list",
    );
    let s = json(&wardstone(
        &db,
        &[
            "tenant",
            "disallow-host",
            "--tenant",
            "acme",
            "crm.example.com:8443",
            "--json",
        ],
    ));
    assert_eq!(s["rules"]["allowed_hosts"], serde_json::json!([]));
}

#[test]
fn javascript_rules_run_offline_and_upload_from_a_js_file() {
    if !wardstone::rules::js::AVAILABLE {
        assert!(
            !std::env::var("WARDSTONE_REQUIRE_TOOLCHAINS").is_ok_and(|v| v == "1"),
            "the server was built without the JavaScript runtime"
        );
        return;
    }
    let input = repo("sample-rules/example-input.json");
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args([
            "rules",
            "run",
            "--module",
            &repo("sample-rules/js/add-roles.js"),
            "--input",
            &input,
        ])
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(report["outcome"], "ok");
    assert_eq!(
        report["output"]["context"]["idToken"]["https://wardstone.dev/roles"],
        serde_json::json!(["admin", "billing"])
    );

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let added = json(&wardstone(
        &db,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--name",
            "roles",
            "--file",
            &repo("sample-rules/js/add-roles.js"),
            "--json",
        ],
    ));
    assert!(added["id"].as_str().unwrap().starts_with("rul_"));

    let bad = dir.path().join("bad.js");
    std::fs::write(
        &bad,
        "function (user, context, callback) {\n  callback(null, user, context;\n}\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    refused(
        &wardstone(
            &db,
            &[
                "rule", "add", "--tenant", "acme", "--name", "bad", "--file", &bad,
            ],
        ),
        "(line 2, column",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wardstone"))
        .args(["rules", "run", "--module", &bad, "--input", &input])
        .output()
        .unwrap();
    refused(&out, "(line 2, column");
    let list = json(&wardstone(
        &db,
        &["rule", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(
        list["rules"].as_array().unwrap().len(),
        1,
        "the refused rule was not stored"
    );
}

/// Threads of a process (Linux `/proc`) but SQLite's connection threads, which sqlx's pool
/// opens as load grows. A thread started from a rule's executor thread would carry its name.
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| !name.starts_with("sqlx-sqlite"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_that_never_answers_leaves_no_thread_behind_in_the_server() {
    use crate::helpers::{probe, silent_dns};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let tenant = json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    json(&wardstone(
        &db,
        &[
            "tenant",
            "allow-host",
            "--tenant",
            "acme",
            "never.example.com",
            "--json",
        ],
    ));
    let probe_file = dir.path().join("probe.wat");
    std::fs::write(
        &probe_file,
        probe(
            &serde_json::json!({"url": "http://never.example.com/"}).to_string(),
            false,
        ),
    )
    .unwrap();
    let rule = json(&wardstone(
        &db,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--name",
            "probe",
            "--file",
            probe_file.to_str().unwrap(),
            "--disabled",
            "--json",
        ],
    ));
    let dns = silent_dns().await;
    let dns = dns.to_string();
    let (mut server, base) = serve(
        &db,
        &["--rule-http-dns", &dns, "--rule-http-timeout-ms", "300"],
        "error",
        std::process::Stdio::null(),
    )
    .await;
    let issuer = format!("{base}/t/acme");
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(
            tenant["management"]["client_id"].as_str().unwrap(),
            tenant["management"]["client_secret"].as_str(),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", &format!("{issuer}/api/v2/")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let test = || {
        let (http, token) = (http.clone(), token.clone());
        let url = format!(
            "{issuer}/api/v2/rules/{}/test",
            rule["id"].as_str().unwrap()
        );
        async move {
            let outcome: serde_json::Value = http
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"user": {"user_id": "u"}, "context": {"idToken": {}, "accessToken": {"scope": []}}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            outcome["patch"]["context"]["idToken"]["a"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    // Warm the server (its executor threads, the resolver's runtime), then measure.
    assert!(test().await.contains("did not finish"));
    let before = threads_of(server.id());
    for _ in 0..5 {
        let errors = futures_util::future::join_all((0..8).map(|_| test())).await;
        assert!(
            errors
                .iter()
                .all(|e| e.contains("did not finish") || e.contains("too many DNS lookups")),
            "{errors:?}"
        );
    }
    let after = threads_of(server.id());
    server.kill().unwrap();
    let _ = server.wait();
    assert!(before > 0);
    assert!(
        after <= before,
        "40 lookups that never got an answer left threads behind: {before} → {after}"
    );
}

#[test]
fn action_commands_add_deploy_bind_roll_back_and_run_offline() {
    if !wardstone::rules::js::AVAILABLE {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("sample-rules/actions/post-login-add-roles.js");
    let sample = sample.to_str().unwrap();
    let a = json(&wardstone(
        &db,
        &[
            "action",
            "add",
            "--tenant",
            "acme",
            "--name",
            "add-roles",
            "--file",
            sample,
            "--secret",
            "KEY=v1",
            "--deploy",
            "--json",
        ],
    ));
    assert_eq!(a["name"], "add-roles");
    assert_eq!(a["deployed_version"]["number"], 1);
    assert!(
        !a.to_string().contains("v1\""),
        "secret values are never printed"
    );
    let b = json(&wardstone(
        &db,
        &[
            "bindings",
            "set",
            "--tenant",
            "acme",
            "--trigger",
            "post-login",
            "add-roles",
            "--json",
        ],
    ));
    assert_eq!(b["bindings"][0]["action"]["name"], "add-roles");
    let changed = dir.path().join("changed.js");
    std::fs::write(
        &changed,
        "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x.example/v', 2); };",
    )
    .unwrap();
    let u = json(&wardstone(
        &db,
        &[
            "action",
            "update",
            "--tenant",
            "acme",
            "--id",
            "add-roles",
            "--file",
            changed.to_str().unwrap(),
            "--secret",
            "OTHER=v2",
            "--deploy",
            "--json",
        ],
    ));
    assert_eq!(u["deployed_version"]["number"], 2);
    assert_eq!(
        u["secrets"].as_array().unwrap().len(),
        2,
        "KEY kept, OTHER added"
    );
    let r = json(&wardstone(
        &db,
        &[
            "action",
            "rollback",
            "--tenant",
            "acme",
            "--id",
            "add-roles",
            "--version",
            "1",
            "--json",
        ],
    ));
    assert_eq!(r["number"], 3);
    assert!(r["code"].as_str().unwrap().contains("roles"));
    let list = json(&wardstone(
        &db,
        &["action", "list", "--tenant", "acme", "--json"],
    ));
    assert_eq!(list["total"], 1);

    // Bad input: one line on stderr, non-zero exit, nothing changed.
    refused(
        &wardstone(
            &db,
            &[
                "action",
                "add",
                "--tenant",
                "acme",
                "--name",
                "x",
                "--trigger",
                "pre-user-registration",
                "--file",
                sample,
            ],
        ),
        "pre-user-registration",
    );
    refused(
        &wardstone(
            &db,
            &[
                "action", "add", "--tenant", "acme", "--name", "x", "--file", sample, "--secret",
                "novalue",
            ],
        ),
        "NAME=VALUE",
    );
    refused(
        &wardstone(
            &db,
            &["action", "remove", "--tenant", "acme", "--id", "add-roles"],
        ),
        "bound",
    );
    refused(
        &wardstone(
            &db,
            &["action", "deploy", "--tenant", "acme", "--id", "nope"],
        ),
        "nope",
    );

    // Offline: the sample event where the given one is silent; a denial is an outcome.
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"user": {"email_verified": false}}"#).unwrap();
    let gate = root.join("sample-rules/actions/post-login-require-verified-email.js");
    let out = wardstone(
        &db,
        &[
            "actions",
            "run",
            "--file",
            gate.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
        ],
    );
    let ran = json(&out);
    assert_eq!(ran["outcome"], "denied");
    assert_eq!(
        ran["error"]["reason"],
        "Please verify your email before logging in."
    );
    let broken = dir.path().join("broken.js");
    std::fs::write(
        &broken,
        "exports.onExecutePostLogin = async (event, api) => {\n  throw new Error('boom');\n};",
    )
    .unwrap();
    let out = wardstone(&db, &["action", "run", "--file", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("boom"));
    std::fs::write(&event, "[1, 2]").unwrap();
    refused(
        &wardstone(
            &db,
            &[
                "action",
                "run",
                "--file",
                gate.to_str().unwrap(),
                "--event",
                event.to_str().unwrap(),
            ],
        ),
        "not an event",
    );
}

#[test]
fn import_auth0_prints_a_report_and_refuses_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let export =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth0-export");
    let export = export.to_str().unwrap();
    let keywords = [
        "--keyword",
        "APP_URL=https://orders.example.com",
        "--keyword",
        "WEB_CLIENT_ID=orders-web-0001",
        "--keyword",
        "WEB_CLIENT_SECRET=0123456789abcdef0123456789abcdef",
        "--keyword",
        "DEFAULT_PLAN=gold",
        "--keyword",
        "DEFAULT_DEPARTMENT=sales",
    ];
    let args = |extra: &[&'static str]| -> Vec<&str> {
        let mut a = vec!["import", "auth0", "--tenant", "orders", "--from", export];
        a.extend_from_slice(&keywords);
        a.extend_from_slice(extra);
        a
    };
    // A dry run prints the table and creates nothing, not even the tenant.
    let out = wardstone(&db, &args(&["--dry-run"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("would import into tenant orders (to be created)"),
        "{table}"
    );
    assert!(
        table.contains("Count-failures") && table.contains("login_failure"),
        "{table}"
    );
    refused(
        &wardstone(
            &db,
            &["tenant", "allow-host", "--tenant", "orders", "example.com"],
        ),
        "orders",
    );

    let report = json(&wardstone(&db, &args(&["--json"])));
    assert_eq!(report["tenant_created"], true);
    assert_eq!(report["summary"]["created"], 16);
    assert!(report["management_client"]["client_secret"].is_string());
    let again = wardstone(&db, &args(&[]));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing changed"));

    // Bad input: one line naming the problem, non-zero, nothing on stdout.
    refused(
        &wardstone(&db, &["import", "auth0", "--tenant", "orders"]),
        "nothing to import",
    );
    refused(
        &wardstone(
            &db,
            &[
                "import",
                "auth0",
                "--tenant",
                "orders",
                "--from",
                "/no/such/export",
            ],
        ),
        "/no/such/export",
    );
    refused(
        &wardstone(
            &db,
            &[
                "import",
                "auth0",
                "--tenant",
                "orders",
                "--from",
                export,
                "--keyword",
                "novalue",
            ],
        ),
        "KEY=VALUE",
    );
    let users = dir.path().join("users.ndjson");
    std::fs::write(&users, "{\"email\":\"a@example.com\"}\nnot json\n").unwrap();
    refused(
        &wardstone(
            &db,
            &[
                "import",
                "auth0",
                "--tenant",
                "orders",
                "--users",
                users.to_str().unwrap(),
            ],
        ),
        "users.ndjson:2:",
    );
    refused(
        &wardstone(
            &db,
            &[
                "import",
                "auth0",
                "--tenant",
                "orders",
                "--lazy-from",
                "not a url",
                "--lazy-client-id",
                "x",
                "--lazy-client-secret",
                "y",
            ],
        ),
        "--lazy-from",
    );

    // And back out: the same layout, secrets as placeholders.
    let out_dir = dir.path().join("out");
    let out = json(&wardstone(
        &db,
        &[
            "export",
            "auth0",
            "--tenant",
            "orders",
            "--to",
            out_dir.to_str().unwrap(),
            "--json",
        ],
    ));
    assert!(
        out["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "rules/Plan-from-config.js")
    );
    let web = std::fs::read_to_string(out_dir.join("clients/Orders Web.json")).unwrap();
    assert!(
        web.contains("##CLIENT_SECRET_ORDERS_WEB##") && !web.contains("0123456789abcdef"),
        "{web}"
    );
}

#[test]
fn tenant_usage_prints_every_day_and_refuses_bad_dates() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let days = json(&wardstone(
        &db,
        &["tenant", "usage", "--tenant", "acme", "--json"],
    ));
    assert_eq!(days.as_array().unwrap().len(), 30);
    let two = json(&wardstone(
        &db,
        &[
            "tenant",
            "usage",
            "--tenant",
            "acme",
            "--from",
            "2026-02-28",
            "--to",
            "20260301",
            "--json",
        ],
    ));
    assert_eq!(
        two,
        serde_json::json!([
            {"date": "2026-02-28", "logins": 0, "token_grants": {"authorization_code": 0, "refresh_token": 0, "client_credentials": 0},
             "rule_executions": 0, "action_executions": 0, "failures": 0, "denials": 0, "fuel": 0},
            {"date": "2026-03-01", "logins": 0, "token_grants": {"authorization_code": 0, "refresh_token": 0, "client_credentials": 0},
             "rule_executions": 0, "action_executions": 0, "failures": 0, "denials": 0, "fuel": 0}
        ])
    );
    let table = wardstone(
        &db,
        &[
            "tenant",
            "usage",
            "--tenant",
            "acme",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-01",
        ],
    );
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("date"), "{text}");
    assert!(
        text.lines().nth(1).unwrap().starts_with("2026-12-01"),
        "{text}"
    );
    refused(
        &wardstone(
            &db,
            &[
                "tenant",
                "usage",
                "--tenant",
                "acme",
                "--from",
                "12/01/2026",
            ],
        ),
        "from must be a date",
    );
    refused(
        &wardstone(
            &db,
            &[
                "tenant",
                "usage",
                "--tenant",
                "acme",
                "--from",
                "2026-12-02",
                "--to",
                "2026-12-01",
            ],
        ),
        "after",
    );
    refused(
        &wardstone(&db, &["tenant", "usage", "--tenant", "nope"]),
        "nope",
    );
}

#[test]
fn tenant_recording_turns_on_with_a_bound_and_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let on = json(&wardstone(
        &db,
        &[
            "tenant",
            "recording",
            "--tenant",
            "acme",
            "--keep",
            "20",
            "--json",
        ],
    ));
    assert_eq!(
        on["recording"],
        serde_json::json!({"enabled": true, "keep": 20})
    );
    let text = wardstone(
        &db,
        &["tenant", "recording", "--tenant", "acme", "--keep", "7"],
    );
    assert!(String::from_utf8_lossy(&text.stdout).contains("recording the last 7 pipeline runs"));
    refused(
        &wardstone(
            &db,
            &["tenant", "recording", "--tenant", "acme", "--keep", "0"],
        ),
        "recording.keep must be 1 to 5000",
    );
    refused(
        &wardstone(
            &db,
            &["tenant", "recording", "--tenant", "acme", "--keep", "5001"],
        ),
        "recording.keep must be 1 to 5000",
    );
    assert!(
        !wardstone(&db, &["tenant", "recording", "--tenant", "acme"])
            .status
            .success()
    );
    assert!(
        !wardstone(
            &db,
            &[
                "tenant",
                "recording",
                "--tenant",
                "acme",
                "--keep",
                "3",
                "--off"
            ]
        )
        .status
        .success()
    );
    let off = json(&wardstone(
        &db,
        &["tenant", "recording", "--tenant", "acme", "--off", "--json"],
    ));
    assert_eq!(
        off["recording"],
        serde_json::json!({"enabled": false, "keep": 0})
    );
    // The allow-list was left as it was by both.
    assert_eq!(off["rules"]["allowed_hosts"], serde_json::json!([]));
}

#[test]
fn rule_replay_says_clearly_when_nothing_is_recorded_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    let rule = dir.path().join("r.js");
    std::fs::write(
        &rule,
        "function (user, context, callback) { callback(null, user, context); }",
    )
    .unwrap();
    let file = rule.to_str().unwrap();
    let added = json(&wardstone(
        &db,
        &[
            "rule", "add", "--tenant", "acme", "--name", "r", "--file", file, "--json",
        ],
    ));
    let id = added["id"].as_str().unwrap();
    refused(
        &wardstone(
            &db,
            &[
                "rule", "replay", "--tenant", "acme", "--id", id, "--file", file,
            ],
        ),
        "recording is off",
    );
    json(&wardstone(
        &db,
        &[
            "tenant",
            "recording",
            "--tenant",
            "acme",
            "--keep",
            "10",
            "--json",
        ],
    ));
    refused(
        &wardstone(
            &db,
            &[
                "rule", "replay", "--tenant", "acme", "--id", id, "--file", file,
            ],
        ),
        "nothing is recorded yet",
    );
    refused(
        &wardstone(
            &db,
            &[
                "rule", "replay", "--tenant", "acme", "--id", id, "--file", file, "--last", "0",
            ],
        ),
        "last must be 1 to 5000",
    );
    refused(
        &wardstone(
            &db,
            &[
                "rule", "replay", "--tenant", "acme", "--id", "rul_nope", "--file", file,
            ],
        ),
        "rul_nope",
    );
    refused(
        &wardstone(
            &db,
            &[
                "rule",
                "replay",
                "--tenant",
                "acme",
                "--id",
                id,
                "--file",
                "/nonexistent.js",
            ],
        ),
        "nonexistent",
    );
}

#[test]
fn a_key_id_that_begins_with_a_hyphen_is_an_id_not_an_option() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/w.db", dir.path().display());
    json(&wardstone(&db, &["tenant", "create", "acme", "--json"]));
    refused(
        &wardstone(
            &db,
            &["keys", "revoke", "--tenant", "acme", "--kid", "-NotAKey"],
        ),
        "-NotAKey",
    );
}
