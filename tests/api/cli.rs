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

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
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
            "--json",
        ],
    ));
    assert!(c["client_id"].as_str().unwrap().len() >= 20);
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
    refused(
        &wardstone(&db, &["tenant", "create", "Bad_Name"]),
        "invalid tenant name",
    );
    refused(
        &wardstone(&db, &["tenant", "create", "ab"]),
        "invalid tenant name",
    );
    refused(
        &wardstone(&db, &["tenant", "create", "acme"]),
        "already exists",
    );
    refused(
        &wardstone(
            &db,
            &[
                "client",
                "create",
                "--tenant",
                "nope",
                "--name",
                "x",
                "--callback",
                "https://a.example/cb",
            ],
        ),
        "does not exist",
    );
    refused(
        &wardstone(
            &db,
            &[
                "client",
                "create",
                "--tenant",
                "acme",
                "--name",
                "x",
                "--callback",
                "http://evil.example/cb",
            ],
        ),
        "callback",
    );
    refused(
        &wardstone(
            &db,
            &[
                "client",
                "create",
                "--tenant",
                "acme",
                "--name",
                "x",
                "--callback",
                "https://a.example/cb#f",
            ],
        ),
        "fragment",
    );
    refused(
        &wardstone(
            &db,
            &[
                "user",
                "create",
                "--tenant",
                "acme",
                "--email",
                "not-an-email",
                "--password",
                "long password",
            ],
        ),
        "email",
    );
    refused(
        &wardstone(
            &db,
            &[
                "user",
                "create",
                "--tenant",
                "acme",
                "--email",
                "a@b.example",
                "--password",
                "short",
            ],
        ),
        "password",
    );
    json(&wardstone(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "a@b.example",
            "--password",
            "long password",
            "--json",
        ],
    ));
    refused(
        &wardstone(
            &db,
            &[
                "user",
                "create",
                "--tenant",
                "acme",
                "--email",
                "A@b.example",
                "--password",
                "long password",
            ],
        ),
        "already exists",
    );
    refused(
        &wardstone(
            &db,
            &[
                "api",
                "create",
                "--tenant",
                "acme",
                "--identifier",
                "not a url",
            ],
        ),
        "identifier",
    );
    refused(
        &wardstone(&db, &["tenant", "create", "x", "--public-url", "ftp://x"]),
        "public URL",
    );

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
