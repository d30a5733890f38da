// Rule lifecycle (SPEC §12): versions and rollback, fail-open rules, outbound HTTP through the
// tenant's allow-list, per-tenant caps.

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

fn wasm_b64(module: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(module)
}

async fn create_rule(
    app: &TestApp,
    token: &str,
    name: &str,
    wat: &[u8],
    on_failure: &str,
) -> String {
    let (status, body) = app
        .api(
            "POST",
            "/rules",
            token,
            Some(json!({"name": name, "wat": String::from_utf8_lossy(wat), "on_failure": on_failure})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

const TRAP: &[u8] = br#"(module (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "rule") (param i32 i32) (result i64) unreachable))"#;

#[tokio::test]
async fn every_module_change_is_a_version_and_rollback_is_one_call() {
    let app = spawn_app_with(|o| o.rule_limits.versions_kept = 3).await;
    let mgmt = app.mgmt_token(None).await;
    let id = create_rule(&app, &mgmt, "tagger", &tag_rule("v1"), "deny").await;
    let patch = |tag: &str| json!({"wat": String::from_utf8_lossy(&tag_rule(tag))});
    let (status, v2) = app
        .api("PATCH", &format!("/rules/{id}"), &mgmt, Some(patch("v2")))
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);
    // The same module again is no new version.
    let (_, same) = app
        .api("PATCH", &format!("/rules/{id}"), &mgmt, Some(patch("v2")))
        .await;
    assert_eq!(same["version"], 2);
    let (_, versions) = app
        .api("GET", &format!("/rules/{id}/versions"), &mgmt, None)
        .await;
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    assert!(versions[0]["sha256"].is_string() && versions[0]["size"].is_i64());
    assert_eq!(
        login_claims(&app).await.unwrap()["https://example.com/tag"],
        "v2"
    );
    let logs = app.logs(1).await;
    assert_eq!(logs[0].rule_version, 2);

    // Roll back to version 1: one call, recorded as version 3.
    let (status, rolled) = app
        .api(
            "POST",
            &format!("/rules/{id}/rollback"),
            &mgmt,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["version"], 3);
    assert_eq!(
        login_claims(&app).await.unwrap()["https://example.com/tag"],
        "v1"
    );
    assert_eq!(app.logs(1).await[0].rule_version, 3);

    // Bad rollbacks: a missing version, the current one, a malformed body, another tenant's rule.
    for (body, want) in [
        (json!({"version": 99}), StatusCode::NOT_FOUND),
        (json!({"version": 3}), StatusCode::BAD_REQUEST),
        (json!({"version": "one"}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
    ] {
        let (status, answer) = app
            .api("POST", &format!("/rules/{id}/rollback"), &mgmt, Some(body))
            .await;
        assert_eq!(status, want, "{answer}");
    }
    let other = app
        .admin
        .create_tenant("other", Default::default())
        .await
        .unwrap();
    let other = app.admin.resolve(&other.name).await.unwrap();
    let foreign = app
        .admin
        .add_rule(&other, "theirs", &tag_rule("x"), None, true)
        .await
        .unwrap();
    let (status, _) = app
        .api(
            "POST",
            &format!("/rules/{}/rollback", foreign.id),
            &mgmt,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's rule");
    let (status, _) = app
        .api(
            "GET",
            &format!("/rules/{}/versions", foreign.id),
            &mgmt,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Old versions are pruned beyond the configured count; the current one never is.
    for tag in ["v4", "v5", "v6"] {
        app.api("PATCH", &format!("/rules/{id}"), &mgmt, Some(patch(tag)))
            .await;
    }
    let (_, versions) = app
        .api("GET", &format!("/rules/{id}/versions"), &mgmt, None)
        .await;
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [6, 5, 4]);
    let (status, _) = app
        .api(
            "POST",
            &format!("/rules/{id}/rollback"),
            &mgmt,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "pruned");
}

#[tokio::test]
async fn a_skip_rule_fails_open_and_a_deny_rule_fails_closed() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let (status, body) = app
        .api(
            "POST",
            "/rules",
            &mgmt,
            Some(json!({"name": "x", "wat": "(module)", "on_failure": "maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let flaky = create_rule(&app, &mgmt, "flaky", TRAP, "skip").await;
    create_rule(&app, &mgmt, "tagger", &tag_rule("after"), "deny").await;
    let claims = login_claims(&app).await.expect("the login goes on");
    assert_eq!(
        claims["https://example.com/tag"], "after",
        "later rules still ran"
    );
    let logs = app.logs(2).await;
    let failed = logs.iter().find(|l| l.rule_id == flaky).unwrap();
    assert_eq!(failed.outcome.label(), "failed:trap");
    assert!(failed.skipped);
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("wardstone_rule_failures_skipped_total 1"),
        "{metrics}"
    );
    // The API shows the log entry as skipped.
    let (_, entries) = app.api("GET", "/logs?per_page=5", &mgmt, None).await;
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["skipped"] == true && e["rule_id"] == flaky.as_str())
    );

    // The same rule set to deny fails the login closed.
    let (status, updated) = app
        .api(
            "PATCH",
            &format!("/rules/{flaky}"),
            &mgmt,
            Some(json!({"on_failure": "deny"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["on_failure"], "deny");
    assert_eq!(updated["version"], 1, "no module change, no version");
    let error = login_claims(&app).await.unwrap_err();
    assert_eq!(error["error"], "server_error");

    // A denial by a skip-rule still denies.
    app.api("DELETE", &format!("/rules/{flaky}"), &mgmt, None)
        .await;
    create_rule(&app, &mgmt, "denier", &wat_sample("deny.wat"), "skip").await;
    let error = login_claims(&app).await.unwrap_err();
    assert_eq!(error["error"], "access_denied");
}

#[tokio::test]
async fn per_tenant_caps_refuse_clearly_and_write_nothing() {
    let app = spawn_app_with(|o| {
        o.rule_limits.rules_per_tenant = 2;
        o.rule_limits.configs_per_tenant = 2;
        o.rule_limits.config_bytes_per_tenant = 100;
    })
    .await;
    let mgmt = app.mgmt_token(None).await;
    create_rule(&app, &mgmt, "one", &tag_rule("1"), "deny").await;
    create_rule(&app, &mgmt, "two", &tag_rule("2"), "deny").await;
    let (status, body) = app
        .api("POST", "/rules", &mgmt, Some(json!({"name": "three", "wasm": wasm_b64(&wat::parse_bytes(&tag_rule("3")).unwrap())})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errorCode"], "too_many_entities");
    assert!(body["message"].as_str().unwrap().contains("2 rules"));
    let (_, rules) = app.api("GET", "/rules", &mgmt, None).await;
    assert_eq!(rules.as_array().unwrap().len(), 2);

    let set = |key: &str, value: &str| {
        let key = key.to_string();
        let value = value.to_string();
        let app = &app;
        let mgmt = mgmt.clone();
        async move {
            app.api(
                "PUT",
                &format!("/rules-configs/{key}"),
                &mgmt,
                Some(json!({"value": value})),
            )
            .await
        }
    };
    assert_eq!(set("A", "x").await.0, StatusCode::OK);
    let (status, body) = set("B", &"y".repeat(120)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("bytes"));
    assert_eq!(set("B", "y").await.0, StatusCode::OK);
    let (status, body) = set("C", "z").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        set("A", "replaced").await.0,
        StatusCode::OK,
        "replacing is not adding"
    );
    let (_, keys) = app.api("GET", "/rules-configs", &mgmt, None).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
}

// ---- outbound HTTP ----

/// A local HTTP service on loopback for the rules to call.
async fn crm() -> String {
    use axum::routing::get;
    let router = axum::Router::new()
        .route(
            "/people/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    axum::Json(json!({"tier": "gold", "id": id}))
                },
            ),
        )
        .route(
            "/redirect",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "http://169.254.169.254/")],
                    "",
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/huge", get(|| async { "x".repeat(1 << 20) }))
        .route(
            "/endless",
            get(|| async {
                let stream = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"drip")),
                        (),
                    ))
                });
                axum::body::Body::from_stream(stream)
            }),
        )
        .route(
            "/echo",
            axum::routing::post(|body: String| async move { body }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

async fn allow(app: &TestApp, mgmt: &str, hosts: Value) -> (StatusCode, Value) {
    app.api(
        "PATCH",
        "/tenants/settings",
        mgmt,
        Some(json!({"rules": {"allowed_hosts": hosts}})),
    )
    .await
}

/// What the host answered the probe rule's `request`.
async fn probe_answer(app: &TestApp, mgmt: &str, request: &str) -> Value {
    let (_, rules) = app.api("GET", "/rules", mgmt, None).await;
    for r in rules.as_array().unwrap() {
        app.api(
            "DELETE",
            &format!("/rules/{}", r["id"].as_str().unwrap()),
            mgmt,
            None,
        )
        .await;
    }
    create_rule(app, mgmt, "probe", &probe(request, false), "deny").await;
    let claims = login_claims(app).await.expect("the probe rule passes");
    claims["a"].clone()
}

#[tokio::test]
async fn rules_call_allowed_hosts_and_every_refusal_is_an_answer_to_the_rule() {
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let host = crm().await;
    let port = host.rsplit_once(':').unwrap().1.to_string();
    let url = |path: &str| format!("http://{host}{path}");
    let req = |path: &str| json!({"url": url(path)}).to_string();

    // Empty by default: refused, and the rule decides (this one passes the answer on).
    let (_, settings) = app.api("GET", "/tenants/settings", &mgmt, None).await;
    assert_eq!(
        settings,
        json!({"rules": {"allowed_hosts": []}, "recording": {"enabled": false, "keep": 0}})
    );
    let answer = probe_answer(&app, &mgmt, &req("/people/1")).await;
    assert!(
        answer["error"].as_str().unwrap().contains("allow-list"),
        "{answer}"
    );

    // Bad settings are refused and change nothing.
    for bad in [
        json!(["https://api.example.com/x"]),
        json!(["a b"]),
        json!("host"),
        json!([1]),
    ] {
        let (status, body) = allow(&app, &mgmt, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, settings) = allow(&app, &mgmt, json!([host, "api.example.com"])).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(
        settings["rules"]["allowed_hosts"],
        json!([host, "api.example.com"])
    );

    let answer = probe_answer(&app, &mgmt, &req("/people/7")).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap()["tier"],
        "gold"
    );
    assert_eq!(answer["headers"]["content-type"], "application/json");
    let post =
        json!({"method": "POST", "url": url("/echo"), "headers": {"x-a": "1"}, "body": "hello"})
            .to_string();
    assert_eq!(probe_answer(&app, &mgmt, &post).await["body"], "hello");

    // No redirect is followed: the rule sees the 302 itself.
    let answer = probe_answer(&app, &mgmt, &req("/redirect")).await;
    assert_eq!(answer["status"], 302, "{answer}");
    assert_eq!(answer["headers"]["location"], "http://169.254.169.254/");

    for (request, needle) in [
        (req("/huge"), "larger than"),
        (req("/slow"), "timeout"),
        (req("/endless"), "timeout"),
        ("[1, 2]".to_string(), "JSON object"),
        (json!({"url": "not a url"}).to_string(), "invalid URL"),
        (json!({"url": "file:///etc/passwd"}).to_string(), "scheme"),
        (
            json!({"url": format!("http://127.0.0.1:{}/", port.parse::<u16>().unwrap() + 1)})
                .to_string(),
            "allow-list",
        ),
        (
            json!({"url": format!("http://localhost:{port}/people/1")}).to_string(),
            "allow-list",
        ),
    ] {
        let started = std::time::Instant::now();
        let answer = probe_answer(&app, &mgmt, &request).await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{request}: {answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{request} took {:?}",
            started.elapsed()
        );
    }

    // localhost is the server itself: never on a tenant's list.
    let (status, body) = allow(&app, &mgmt, json!([format!("localhost:{port}")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("localhost"),
        "{body}"
    );

    // A guest whose alloc traps while the host writes the answer fails closed.
    allow(&app, &mgmt, json!([host])).await;
    let (_, rules) = app.api("GET", "/rules", &mgmt, None).await;
    for r in rules.as_array().unwrap() {
        app.api(
            "DELETE",
            &format!("/rules/{}", r["id"].as_str().unwrap()),
            &mgmt,
            None,
        )
        .await;
    }
    create_rule(
        &app,
        &mgmt,
        "bad alloc",
        &probe(&req("/people/1"), true),
        "deny",
    )
    .await;
    let error = login_claims(&app).await.unwrap_err();
    assert_eq!(error["error"], "server_error");
    assert_eq!(app.logs(1).await[0].outcome.label(), "failed:trap");
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the server is healthy");
}

#[tokio::test]
async fn the_crm_sample_enriches_tokens_and_goes_on_without_its_crm() {
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let host = crm().await;
    app.add_rule("crm", &sample_rule("crm-enrich")).await;
    let (status, _) = app
        .api(
            "PUT",
            "/rules-configs/CRM_URL",
            &mgmt,
            Some(json!({"value": format!("http://{host}/people")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Not allowed yet: the rule logs why and the login goes on without the claim.
    let claims = login_claims(&app).await.unwrap();
    assert!(claims.get("https://wardstone.dev/tier").is_none());
    assert!(
        app.logs(1).await[0]
            .logs
            .iter()
            .any(|l| l.message.contains("allow-list"))
    );
    // Through the CLI-equivalent service call.
    let t = app.t().await;
    app.admin.allow_host(&t, &host, true).await.unwrap();
    let claims = login_claims(&app).await.unwrap();
    assert_eq!(claims["https://wardstone.dev/tier"], "gold");
}

#[tokio::test]
async fn the_audit_sample_fails_open_when_its_service_is_down() {
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let t = app.t().await;
    app.admin
        .add_rule_with(
            &t,
            "audit",
            &sample_rule("audit-webhook"),
            None,
            true,
            wardstone::domain::OnFailure::Skip,
        )
        .await
        .unwrap();
    // Nothing listens on this port, and it is allowed: the call fails, the rule fails, the
    // login goes on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    app.admin
        .allow_host(&t, &format!("127.0.0.1:{dead}"), true)
        .await
        .unwrap();
    app.api(
        "PUT",
        "/rules-configs/AUDIT_URL",
        &mgmt,
        Some(json!({"value": format!("http://127.0.0.1:{dead}/events")})),
    )
    .await;
    assert!(login_claims(&app).await.is_ok());
    let log = &app.logs(1).await[0];
    assert!(log.skipped);
    assert_eq!(log.outcome.label(), "failed:trap");
}
