// Rules in the token pipeline, end to end through real logins.

use reqwest::StatusCode;
use serde_json::json;

use super::*;

const ROLES: &str = "https://wardstone.dev/roles";

#[tokio::test]
async fn add_roles_rule_puts_roles_in_both_tokens() {
    let app = spawn_app().await;
    app.set_metadata(
        &app.user_id,
        json!({"roles": ["admin", "billing"]}),
        json!({}),
    )
    .await;
    app.add_rule("add roles", &sample_rule("add-roles")).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (id, at) = app.claims_of(&tokens).await;
    assert_eq!(id[ROLES], json!(["admin", "billing"]));
    assert_eq!(at[ROLES], json!(["admin", "billing"]));
    // Claims survive a refresh: the rules run again.
    let refreshed: serde_json::Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let (id, at) = app.claims_of(&refreshed).await;
    assert_eq!(id[ROLES], json!(["admin", "billing"]));
    assert_eq!(at[ROLES], json!(["admin", "billing"]));
}

#[tokio::test]
async fn require_verified_email_rule_denies_unverified_users() {
    let app = spawn_app().await;
    app.add_rule("verified only", &sample_rule("require-verified-email"))
        .await;
    let unverified = app
        .admin
        .create_user(&app.t().await, "new@example.com", PASSWORD, None, false)
        .await
        .unwrap();
    let browser = Browser::new();
    let resp = app
        .submit_login(
            &browser,
            &app.authorize_url(&[]),
            "new@example.com",
            PASSWORD,
        )
        .await;
    let resp = app
        .submit_consent(&browser, &location(&resp), "allow")
        .await;
    let q = query_of(&location(&resp));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(
        q["error_description"],
        "Please verify your email address before logging in."
    );
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.issuer);
    assert!(!q.contains_key("code"));
    // The verified user gets through.
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    let _ = unverified;
}

#[tokio::test]
async fn client_allowlist_rule_reads_the_tenant_configuration() {
    let app = spawn_app().await;
    app.add_rule("allow-list", &sample_rule("client-allowlist"))
        .await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(
        q["error"], "access_denied",
        "no allow-list configured: fail closed"
    );

    app.admin
        .set_rule_config(
            &app.t().await,
            "ALLOWED_CLIENT_IDS",
            &format!("other, {}", app.client_id),
        )
        .await
        .unwrap();
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );

    app.admin
        .set_rule_config(&app.t().await, "ALLOWED_CLIENT_IDS", "someone-else")
        .await
        .unwrap();
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].contains("Acme Web"));
}

#[tokio::test]
async fn login_counter_rule_persists_metadata_only_when_the_pipeline_succeeds() {
    let app = spawn_app().await;
    app.add_rule("count logins", &sample_rule("login-counter"))
        .await;
    app.code(&Browser::new(), &[]).await;
    app.code(&Browser::new(), &[]).await;
    let user = app.user_record(&app.user_id).await;
    let meta: serde_json::Value = serde_json::Value::Object(user.user_metadata.0.clone());
    assert_eq!(meta["login_count"], 2);

    // A later rule denies: the first rule's metadata change must not be saved.
    app.add_rule("maintenance", &wat_sample("deny.wat")).await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "Logins are closed for maintenance.");
    let meta: serde_json::Value =
        serde_json::Value::Object(app.user_record(&app.user_id).await.user_metadata.0.clone());
    assert_eq!(meta["login_count"], 2);
}

#[tokio::test]
async fn rules_see_the_protocol_of_the_code_grant_and_of_refresh() {
    let app = spawn_app().await;
    app.add_rule("login only", &sample_rule("login-only")).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (id, at) = app.claims_of(&tokens).await;
    assert_eq!(id["https://wardstone.dev/fresh_login"], true);
    assert_eq!(at["https://wardstone.dev/fresh_login"], true);
    let refreshed: serde_json::Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let (id, _) = app.claims_of(&refreshed).await;
    assert!(
        id.get("https://wardstone.dev/fresh_login").is_none(),
        "not a login: the rule stays out"
    );
    let logs = app.logs(10).await;
    assert_eq!(logs[0].trigger.label(), "oauth2-refresh-token");
    assert_eq!(logs[1].trigger.label(), "oidc-basic-profile");
    assert!(
        serde_json::to_string(&logs[0].logs)
            .unwrap()
            .contains("skipped: protocol is oauth2-refresh-token")
    );
}

#[tokio::test]
async fn wat_rules_work_like_any_other() {
    let app = spawn_app().await;
    app.add_rule("tier", &wat_sample("static-claim.wat")).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (id, at) = app.claims_of(&tokens).await;
    assert_eq!(id["https://wardstone.dev/tier"], "gold");
    assert_eq!(at["https://wardstone.dev/tier"], "gold");
    let logs = app.logs(1).await;
    assert_eq!(logs[0].outcome.label(), "ok");
    assert_eq!(logs[0].logs[0].message, "adding the static tier claim");
    assert!(logs[0].fuel > 0);
}

#[tokio::test]
async fn rules_run_in_order_and_the_first_denial_stops_the_pipeline() {
    let app = spawn_app().await;
    app.admin
        .add_rule(
            &app.t().await,
            "second",
            &wat_sample("static-claim.wat"),
            Some(20),
            true,
        )
        .await
        .unwrap();
    app.admin
        .add_rule(
            &app.t().await,
            "first",
            &wat_sample("deny.wat"),
            Some(10),
            true,
        )
        .await
        .unwrap();
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "access_denied");
    let logs = app.logs(10).await;
    assert_eq!(logs.len(), 1, "the rule after the denial never ran");
    assert_eq!(logs[0].rule_name, "first");
    assert_eq!(logs[0].outcome.label(), "denied");
}

#[tokio::test]
async fn disabled_and_removed_rules_do_not_run() {
    let app = spawn_app().await;
    let id = app.add_rule("maintenance", &wat_sample("deny.wat")).await;
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );
    app.admin
        .set_rule_enabled(&app.t().await, &id, false)
        .await
        .unwrap();
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    app.admin
        .set_rule_enabled(&app.t().await, &id, true)
        .await
        .unwrap();
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );
    app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
}

#[tokio::test]
async fn a_rule_can_narrow_but_not_widen_the_scope() {
    let app = spawn_app().await;
    let narrow = with_output(r#"{"context":{"accessToken":{"scope":["openid","admin:all"]}}}"#);
    app.add_rule("narrow", narrow.as_bytes()).await;
    let tokens = app.tokens(&Browser::new()).await;
    assert_eq!(
        tokens["scope"], "openid",
        "narrowed to openid; admin:all was never granted"
    );
}

#[tokio::test]
async fn a_denial_at_refresh_is_access_denied_and_a_failure_is_server_error() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let id = app.add_rule("maintenance", &wat_sample("deny.wat")).await;
    let (status, error, body) = error_of(app.refresh(rt).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "access_denied")
    );
    assert_eq!(
        body["error_description"],
        "Logins are closed for maintenance."
    );

    // The denial did not spend the refresh token: once the rule is gone it works.
    app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    let loop_rule = hostile("(loop (br 0))");
    let id = app.add_rule("loop", loop_rule.as_bytes()).await;
    let (status, error, body) = error_of(app.refresh(rt).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("execution")
    );
    app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    assert_eq!(
        app.refresh(rt).await.status(),
        StatusCode::OK,
        "neither outcome burned the token"
    );
}

/// A module that returns `json` whatever its input.
fn with_output(json: &str) -> String {
    let escaped = json.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 1024) "{escaped}")
          (func (export "alloc") (param i32) (result i32)
            (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1)))) (i32.const 65536))
          (func (export "rule") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {}))))"#,
        json.len()
    )
}

/// A module that follows the ABI but whose `rule` body is `body` (locals: none; it must leave
/// an i64 on the stack or never return).
fn hostile(body: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "not json at all")
  (data (i32.const 64) "[1,2,3]")
  (func $recurse (param i32) (result i32) (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "alloc") (param i32) (result i32)
    (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1))))
    (i32.const 65536))
  (func (export "rule") (param i32 i32) (result i64)
    {body}
    (i64.const 0)))"#
    )
}

/// Logs in with one rule installed and checks it fails closed: `server_error` with an execution
/// id the tenant can look up, with `outcome`, and nothing of the host's internals.
#[tokio::test]
async fn hostile_rules_fail_closed_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let cases: &[(&str, String, &str)] = &[
        ("infinite loop", hostile("(loop (br 0))"), "failed:fuel"),
        (
            "unbounded recursion",
            hostile("(drop (call $recurse (i32.const 0)))"),
            "failed:stack_overflow",
        ),
        (
            "memory growth to the cap",
            hostile(
                "(loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable",
            ),
            "failed:memory",
        ),
        (
            "output out of bounds",
            hostile(
                "(return (i64.or (i64.shl (i64.const 4294967200) (i64.const 32)) (i64.const 500)))",
            ),
            "failed:bad_output",
        ),
        (
            "output length out of bounds",
            hostile(
                "(return (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 4294967295)))",
            ),
            "failed:bad_output",
        ),
        (
            "invalid JSON output",
            hostile("(return (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 15)))"),
            "failed:bad_output",
        ),
        (
            "output not an object",
            hostile("(return (i64.or (i64.shl (i64.const 64) (i64.const 32)) (i64.const 7)))"),
            "failed:bad_output",
        ),
        ("empty output", hostile(""), "failed:bad_output"),
        ("unreachable trap", hostile("unreachable"), "failed:trap"),
        (
            "out-of-bounds load",
            hostile("(drop (i32.load (i32.const -8)))"),
            "failed:trap",
        ),
        (
            "division by zero",
            hostile("(drop (i32.div_u (i32.const 1) (i32.const 0)))"),
            "failed:trap",
        ),
    ];
    for (name, wat, outcome) in cases {
        let id = app.add_rule(&name.replace(' ', "-"), wat.as_bytes()).await;
        assert_fails_closed(&app, outcome).await;
        app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn a_rule_past_its_deadline_is_stopped() {
    let app = spawn_app_with(|o| o.rule_limits.fuel = u64::MAX / 2).await;
    app.add_rule("spin", hostile("(loop (br 0))").as_bytes())
        .await;
    assert_fails_closed(&app, "failed:timeout").await;
    let logs = app.logs(1).await;
    assert!(
        logs[0].duration_us >= 50_000 && logs[0].duration_us < 1_000_000,
        "{} µs",
        logs[0].duration_us
    );
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn garbage_outputs_of_an_abi_shape_fail_closed() {
    let app = spawn_app().await;
    for output in [
        r#"{"error":{"kind":"teapot","message":"x"}}"#,
        r#"{"error":"denied"}"#,
        r#"{"user":[1]}"#,
        r#"{"user":{"app_metadata":"x"}}"#,
        r#"{"context":{"accessToken":{"scope":"openid"}}}"#,
        r#"{"context":{"idToken":null}}"#,
    ] {
        let id = app
            .add_rule("garbage", with_output(output).as_bytes())
            .await;
        assert_fails_closed(&app, "failed:bad_output").await;
        app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn restricted_claims_are_dropped_and_the_login_succeeds() {
    let app = spawn_app().await;
    let patch = r#"{"context":{"idToken":{"sub":"evil","iss":"https://evil","aud":"x","https://ok/claim":1},"accessToken":{"sub":"evil","aud":"https://evil","scope":["openid","email","profile","offline_access"]},"protocol":"hacked"},"user":{"user_id":"evil","email":"evil@x.y"}}"#;
    let wat = with_output(patch);
    app.add_rule("sneaky", wat.as_bytes()).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (id, at) = app.claims_of(&tokens).await;
    assert_eq!(id["sub"], app.user_id);
    assert_eq!(id["iss"], app.issuer);
    assert_eq!(id["aud"], app.client_id);
    assert_eq!(id["https://ok/claim"], 1);
    assert_eq!(at["sub"], app.user_id);
    assert_eq!(at["aud"], app.url("/userinfo"));
    let logs = app.logs(1).await;
    assert_eq!(logs[0].outcome.label(), "ok");
    let text = serde_json::to_string(&logs[0].logs).unwrap();
    for warning in [
        "\\\"sub\\\" is restricted",
        "\\\"iss\\\" is restricted",
        "\\\"aud\\\" is restricted",
        "context.protocol is owned",
        "user.email is owned",
    ] {
        assert!(text.contains(warning), "missing warning {warning}: {text}");
    }
    assert_eq!(
        app.user_record(&app.user_id).await.email,
        EMAIL,
        "host-owned fields are not persisted"
    );
}

#[tokio::test]
async fn bad_modules_are_refused_at_upload_with_the_reason() {
    let app = spawn_app().await;
    let refuse = |module: Vec<u8>, needle: &'static str| {
        let app = &app;
        async move {
            let err = app
                .admin
                .add_rule(&app.t().await, "bad", &module, None, true)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    };
    refuse(b"(module (memory (export \"memory\") 1) (func (export \"rule\") (param i32 i32) (result i64) (i64.const 0)))".to_vec(), "missing export alloc(i32) -> i32").await;
    refuse(b"(module (func (export \"alloc\") (param i32) (result i32) (i32.const 0)) (func (export \"rule\") (param i32 i32) (result i64) (i64.const 0)))".to_vec(), "missing export memory").await;
    refuse(b"(module (memory (export \"memory\") 1) (func (export \"alloc\") (param i32) (result i32) (i32.const 0)) (func (export \"rule\") (param i32) (result i32) (i32.const 0)))".to_vec(), "ABI v1 requires rule(i32, i32) -> i64").await;
    refuse(
        b"(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32))) (memory (export \"memory\") 1) (func (export \"alloc\") (param i32) (result i32) (i32.const 0)) (func (export \"rule\") (param i32 i32) (result i64) (i64.const 0)))".to_vec(),
        "import wasi_snapshot_preview1::fd_write is not allowed",
    )
    .await;
    refuse(b"(module (import \"wardstone\" \"log\" (func (param i32))) (memory (export \"memory\") 1))".to_vec(), "wardstone::log must have the signature").await;
    refuse(b"\0asm\x01\0\0\0garbage".to_vec(), "invalid wasm module").await;
    refuse(
        b"(module (func (export \"x\") unknown_instr))".to_vec(),
        "invalid WAT",
    )
    .await;
    refuse(b"(component)".to_vec(), "components are not supported").await;
    // Oversized module.
    let big = format!(
        "(module (memory 1) (data (i32.const 0) \"{}\"))",
        "a".repeat(4 << 20)
    );
    refuse(big.into_bytes(), "larger than the 4194304 byte limit").await;
    // A huge function body (a compile bomb) is refused before compilation.
    let body = "(drop (i32.const 0))".repeat(400_000);
    let bomb = format!(
        "(module (memory (export \"memory\") 1) (func (export \"alloc\") (param i32) (result i32) (i32.const 0)) (func (export \"rule\") (param i32 i32) (result i64) {body} (i64.const 0)))"
    );
    let bomb = wat::parse_str(&bomb).unwrap();
    assert!(bomb.len() < 4 << 20, "a binary under the module size limit");
    refuse(bomb, "byte body, larger than the").await;
    assert!(
        app.admin
            .list_rules(&app.t().await)
            .await
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn compilation_has_a_deadline() {
    let app =
        spawn_app_with(|o| o.rule_limits.compile_timeout = std::time::Duration::from_millis(1))
            .await;
    let body = "(drop (i32.add (local.get 0) (i32.const 1)))".repeat(30_000);
    let slow = format!(
        "(module (memory (export \"memory\") 1) (func (export \"alloc\") (param i32) (result i32) (i32.const 0)) (func (export \"rule\") (param i32 i32) (result i64) {body} (i64.const 0)))"
    );
    let err = app
        .admin
        .add_rule(&app.t().await, "slow", slow.as_bytes(), None, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("compilation took longer than 1 ms"), "{err}");
    assert_eq!(
        reqwest::get(format!("{}/healthz", app.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_tenants_looping_rule_does_not_stall_another_tenants_logins() {
    let app = spawn_app_with(|o| o.rule_limits.fuel = u64::MAX / 2).await;
    // Tenant "noisy" with a rule that spins until its 50 ms deadline.
    app.admin
        .create_tenant("noisy", Default::default())
        .await
        .unwrap();
    let noisy_client = app
        .admin
        .create_client(
            &app.admin.resolve("noisy").await.unwrap(),
            "Noisy",
            &[CALLBACK.into()],
            false,
        )
        .await
        .unwrap();
    app.admin
        .create_user(
            &app.admin.resolve("noisy").await.unwrap(),
            EMAIL,
            PASSWORD,
            None,
            true,
        )
        .await
        .unwrap();
    app.admin
        .add_rule(
            &app.admin.resolve("noisy").await.unwrap(),
            "spin",
            hostile("(loop (br 0))").as_bytes(),
            None,
            true,
        )
        .await
        .unwrap();
    // The quiet tenant (acme) has a normal rule.
    app.add_rule("tier", &wat_sample("static-claim.wat")).await;

    // Log the noisy tenant's browsers in up to the consent page first, so the burst below is
    // nothing but rule executions.
    let noisy_url = |state: usize| {
        format!(
            "{}/t/noisy/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state={state}",
            app.base,
            noisy_client.client_id,
            url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
        )
    };
    // 24 logins × 50 ms: a margin over the quiet tenant's three logins even when the machine
    // is loaded by the rest of the suite (12 proved too few on two cores).
    const NOISY: usize = 24;
    let mut pending = Vec::new();
    for i in 0..NOISY {
        let browser = Browser::new();
        let resp = app
            .submit_login(&browser, &noisy_url(i), EMAIL, PASSWORD)
            .await;
        let consent_url = location(&resp);
        let html = browser.get(&consent_url).await.text().await.unwrap();
        let (action, mut fields) = form(&html, &consent_url);
        set_field(&mut fields, "decision", "allow");
        pending.push((browser, action, fields));
    }
    let quiet_browsers: Vec<Browser> = (0..3).map(|_| Browser::new()).collect();
    for b in &quiet_browsers {
        app.submit_login(b, &app.authorize_url(&[]), EMAIL, PASSWORD)
            .await;
    }

    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut burst = Vec::new();
    for (browser, action, fields) in pending {
        let finished = finished.clone();
        burst.push(tokio::spawn(async move {
            let resp = browser.post_form(&action, &fields).await;
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            query_of(&location(&resp))
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // With one execution slot per tenant, the noisy burst needs NOISY × 50 ms; the quiet
    // tenant's logins must not queue behind it.
    for b in &quiet_browsers {
        let q = app.authorize_outcome(b, &[]).await;
        assert!(q.contains_key("code"), "{q:?}");
    }
    let done_when_quiet_finished = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        done_when_quiet_finished < NOISY,
        "the quiet tenant finished while the noisy burst was still running"
    );
    for task in burst {
        let q = task.await.unwrap();
        assert_eq!(q["error"], "server_error", "each noisy login fails closed");
    }
}

#[tokio::test]
async fn a_rules_log_is_bounded_in_lines_and_size() {
    let app = spawn_app().await;
    // Logs a 3000-byte line 500 times, then returns an empty patch.
    let chatty = format!(
        r#"(module
  (import "wardstone" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{{}}")
  (data (i32.const 2048) "{}")
  (func (export "alloc") (param i32) (result i32)
    (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1)))) (i32.const 65536))
  (func (export "rule") (param i32 i32) (result i64) (local $i i32)
    (loop $again
      (call $log (i32.const 1) (i32.const 2048) (i32.const 3000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 500))))
    (call $log (i32.const 3) (i32.const 60000) (i32.const 100000))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 2))))"#,
        "x".repeat(3000)
    );
    app.add_rule("chatty", chatty.as_bytes()).await;
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    let logs = app.logs(1).await;
    let lines = &logs[0].logs;
    assert_eq!(
        lines.len(),
        101,
        "100 lines kept, then a note of how many were dropped"
    );
    assert!(lines[0].message.len() <= 1024 + 3, "each line is capped");
    assert!(
        lines[100]
            .message
            .contains("401 more log lines were dropped")
    );
}

#[tokio::test]
async fn old_execution_records_are_pruned() {
    let app = spawn_app().await;
    app.add_rule("tier", &wat_sample("static-claim.wat")).await;
    app.code(&Browser::new(), &[]).await;
    app.clock.advance(8 * 24 * 3600);
    app.code(&Browser::new(), &[]).await;
    assert_eq!(app.logs(10).await.len(), 2);
    let now = app.clock.now();
    app.store
        .prune_executions(now - 7 * 24 * 3600, 10_000)
        .await
        .unwrap();
    assert_eq!(app.logs(10).await.len(), 1, "older than a week: gone");
    app.code(&Browser::new(), &[]).await;
    assert_eq!(
        app.logs(10).await.len(),
        2,
        "the newest login's execution is written"
    );
    app.store
        .prune_executions(now - 7 * 24 * 3600, 1)
        .await
        .unwrap();
    let kept = app.logs(10).await;
    assert_eq!(kept.len(), 1, "at most `keep` per tenant, the newest");
}

#[tokio::test]
async fn metadata_a_rule_bloats_fails_the_login_and_is_not_saved() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"user":{{"user_metadata":{{"blob":"{}"}}}}}}"#,
        "a".repeat(20_000)
    );
    app.add_rule("bloat", with_output(&big).as_bytes()).await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "server_error");
    let logs = app.logs(1).await;
    assert_eq!(logs[0].outcome.label(), "failed:metadata_too_large");
    assert!(app.user_record(&app.user_id).await.user_metadata.is_empty());
}

#[tokio::test]
async fn a_rule_writes_only_the_metadata_keys_it_changed() {
    let app = spawn_app().await;
    app.set_metadata(&app.user_id, json!({}), json!({"theme": "dark"}))
        .await;
    app.add_rule("count logins", &sample_rule("login-counter"))
        .await;
    // Saved as a first-level merge of what the rule changed, under the row lock (see
    // Store::update_user), so other keys written meanwhile are kept.
    let browser = Browser::new();
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    let consent = location(&resp);
    app.admin
        .update_user(
            &app.t().await,
            &app.user_id,
            serde_json::from_value(json!({"user_metadata": {"theme": "light"}})).unwrap(),
        )
        .await
        .unwrap();
    let callback = location(&app.submit_consent(&browser, &consent, "allow").await);
    assert!(query_of(&callback).contains_key("code"));
    let meta: serde_json::Value =
        serde_json::Value::Object(app.user_record(&app.user_id).await.user_metadata.0.clone());
    assert_eq!(meta, json!({"theme": "light", "login_count": 1}));
}

/// A WAT rule that counts down from `n` (about a nanosecond a turn) before it tags the ID
/// token with `tag`.
fn slow_tag_rule(n: u32, tag: &str) -> Vec<u8> {
    let out = format!(r#"{{"context":{{"idToken":{{"https://example.com/tag":"{tag}"}}}}}}"#);
    format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 1024) "{}")
          (func (export "alloc") (param i32) (result i32)
            (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1)))) (i32.const 65536))
          (func (export "rule") (param i32 i32) (result i64) (local $n i32)
            (local.set $n (i32.const {n}))
            (loop $turn (br_if $turn (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
            (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {}))))"#,
        out.replace('"', "\\\""),
        out.len()
    )
    .into_bytes()
}

/// Short pipelines run on the request's own thread; one that takes longer than the few
/// milliseconds allowed there is abandoned — nothing of it kept — and run again on the
/// executor, where it succeeds; the tenant's next logins go straight to the executor.
#[test]
fn a_short_pipeline_runs_on_the_requests_thread_and_a_long_one_moves_to_the_executor() {
    on_a_roomy_thread(short_and_long_pipelines);
}

async fn short_and_long_pipelines() {
    // A roomier bound than the default 5 ms, so that a loaded machine does not make the short
    // run overrun; the slow rule is far past it either way.
    let app = spawn_app_with(|o| {
        o.rule_limits.inline_budget = std::time::Duration::from_millis(100);
        o.rule_limits.fuel = 9_000_000_000;
        o.rule_limits.rule_timeout = std::time::Duration::from_secs(30);
        o.rule_limits.pipeline_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    let runs = |text: &str, place: &str| {
        super::metrics::sample(
            text,
            &format!(r#"wardstone_rule_runs_total{{place="{place}"}}"#),
        )
        .unwrap_or(0.0)
    };
    app.add_rule("fast", &tag_rule("fast")).await;
    let (_, id_token, _) = app.login_claims().await;
    assert_eq!(id_token["https://example.com/tag"], "fast");
    let text = super::metrics::scrape(&app).await;
    assert_eq!(runs(&text, "request_thread"), 1.0, "{text}");
    assert_eq!(runs(&text, "executor"), 0.0);

    // ≈ 1 s of counting down: far past the 100 ms this run may take on the request's thread.
    app.add_rule("slow", &slow_tag_rule(1_000_000_000, "slow"))
        .await;
    let (_, id_token, _) = app.login_claims().await;
    assert_eq!(id_token["https://example.com/tag"], "slow");
    let text = super::metrics::scrape(&app).await;
    assert_eq!(runs(&text, "executor_after_overrun"), 1.0, "{text}");
    assert_eq!(runs(&text, "executor"), 1.0);
    // The abandoned attempt left no record: one entry per rule for the login, both ok.
    let logs = app.logs(10).await;
    let slow: Vec<_> = logs.iter().filter(|r| r.rule_name == "slow").collect();
    assert_eq!(slow.len(), 1, "{logs:?}");
    assert_eq!(slow[0].outcome.label(), "ok");
    assert_eq!(logs.iter().filter(|r| r.rule_name == "fast").count(), 2);

    // The tenant's next login is not tried on the request's thread again.
    let (_, id_token, _) = app.login_claims().await;
    assert_eq!(id_token["https://example.com/tag"], "slow");
    let text = super::metrics::scrape(&app).await;
    assert_eq!(runs(&text, "executor_after_overrun"), 1.0);
    assert_eq!(runs(&text, "executor"), 2.0);
    assert_eq!(runs(&text, "request_thread"), 1.0);
}
