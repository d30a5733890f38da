// Tenant admins are untrusted (SPEC §17): nothing a tenant configures or uploads reaches the
// host or its network unless the operator opened it; no security requirement of a rule is
// silently dropped; the shared origin is no open redirector; rule code is as strong as the
// rule settings it can read.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

async fn set_hosts(app: &TestApp, mgmt: &str, hosts: Value) -> (StatusCode, Value) {
    app.api(
        "PATCH",
        "/tenants/settings",
        mgmt,
        Some(json!({"rules": {"allowed_hosts": hosts}})),
    )
    .await
}

/// A loopback HTTP service answering `{"secret": "host-only"}` (what a metadata service or an
/// internal database would hold).
async fn internal_service() -> u16 {
    let router = axum::Router::new().route(
        "/{*path}",
        axum::routing::get(|| async { axum::Json(json!({"secret": "host-only"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

/// Uploads (disabled) the probe rule that sends `request` to `wardstone.http_fetch`.
async fn create_probe(app: &TestApp, mgmt: &str, request: &Value) -> String {
    let (status, rule) = app
        .api(
            "POST",
            "/rules",
            mgmt,
            Some(
                json!({"name": format!("probe-{}", uuid::Uuid::new_v4().simple()),
                        "wat": String::from_utf8(probe(&request.to_string(), false)).unwrap(),
                        "enabled": false}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    rule["id"].as_str().unwrap().to_string()
}

/// Runs a probe rule through the rule test endpoint: the host's answer to the rule.
async fn test_probe(app: &TestApp, mgmt: &str, id: &str) -> Value {
    let (status, outcome) = app
        .api(
            "POST",
            &format!("/rules/{id}/test"),
            mgmt,
            Some(
                json!({"user": {"user_id": "u1", "app_metadata": {}, "user_metadata": {}},
                        "context": {"idToken": {}, "accessToken": {"scope": []}}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    outcome["patch"]["context"]["idToken"]["a"].clone()
}

/// What the host answers a rule that fetches `request` (through the rule test endpoint,
/// which returns the whole answer).
async fn fetch_through_test_endpoint(app: &TestApp, mgmt: &str, request: &Value) -> Value {
    let id = create_probe(app, mgmt, request).await;
    let answer = test_probe(app, mgmt, &id).await;
    app.api("DELETE", &format!("/rules/{id}"), mgmt, None).await;
    answer
}

#[tokio::test]
async fn the_allow_list_refuses_every_non_public_address_and_names_the_entry() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    for entry in [
        "169.254.169.254",
        "10.0.0.5:6379",
        "192.168.1.1",
        "100.64.0.1",
        "[fd00::1]",
        "[::ffff:169.254.169.254]",
        "0.0.0.0",
        "127.0.0.1:8080",
        "127.1:8080",
        "2130706433:8080",
        "0x7f.0.0.1",
        "[::1]",
        "[64:ff9b:1::a9fe:a9fe]",
        "[2002:a9fe:a9fe::]",
        "224.0.0.1",
        "localhost:8080",
    ] {
        let (status, body) = set_hosts(&app, &mgmt, json!(["api.example.com", entry])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{entry}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(entry), "{entry}: {message}");
    }
    // Nothing of a refused change is stored.
    let (_, settings) = app.api("GET", "/tenants/settings", &mgmt, None).await;
    assert_eq!(settings["rules"]["allowed_hosts"], json!([]));
    let (status, _) = set_hosts(
        &app,
        &mgmt,
        json!(["api.example.com", "93.184.216.34:8443"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_rule_reaches_a_private_address_only_where_the_operator_opened_it() {
    let port = internal_service().await;
    // Without the operator's flag: the entry is refused, and one stored before this check
    // existed (written straight to the database) reaches nothing either.
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let (status, _) = set_hosts(&app, &mgmt, json!([format!("127.1:{port}")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sqlx::query("UPDATE tenant SET allowed_hosts = $1, rules_generation = rules_generation + 1")
        .bind(json!([format!("127.0.0.1:{port}")]).to_string())
        .execute(&app.db().await)
        .await
        .unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/latest/meta-data"),
        format!("http://127.1:{port}/latest/meta-data"),
        format!("http://2130706433:{port}/latest/meta-data"),
    ] {
        let answer = fetch_through_test_endpoint(&app, &mgmt, &json!({"url": url})).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains("loopback"), "{url}: {answer}");
        assert!(!answer.to_string().contains("host-only"));
    }

    // With `--rule-http-allow-private 127.0.0.1/32` the operator's upstream is reachable, in
    // any spelling, and nothing else private is.
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let (status, body) = set_hosts(&app, &mgmt, json!([format!("127.1:{port}")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["rules"]["allowed_hosts"],
        json!([format!("127.0.0.1:{port}")])
    );
    let answer = fetch_through_test_endpoint(
        &app,
        &mgmt,
        &json!({"url": format!("http://127.1:{port}/x")}),
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let (status, _) = set_hosts(&app, &mgmt, json!(["169.254.169.254", "10.0.0.5:6379"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// ---- DNS ----

/// A DNS server on loopback that answers every A question with 127.0.0.1 (and AAAA with
/// nothing): a tenant's public-looking name that points inside.
async fn rebinding_dns() -> std::net::SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if n < 12 {
                continue;
            }
            // The question ends after its name (labels until a zero byte) and 4 bytes.
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += buf[end] as usize + 1;
            }
            let question_end = end + 5;
            if question_end > n {
                continue;
            }
            let qtype = u16::from_be_bytes([buf[end + 1], buf[end + 2]]);
            let answers: u16 = if qtype == 1 { 1 } else { 0 };
            let mut reply = Vec::with_capacity(question_end + 16);
            reply.extend_from_slice(&buf[0..2]);
            reply.extend_from_slice(&[0x81, 0x80, 0, 1]);
            reply.extend_from_slice(&answers.to_be_bytes());
            reply.extend_from_slice(&[0, 0, 0, 0]);
            reply.extend_from_slice(&buf[12..question_end]);
            if qtype == 1 {
                reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = socket.send_to(&reply, peer).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_listed_name_that_resolves_inside_the_network_is_refused() {
    let port = internal_service().await;
    let dns = rebinding_dns().await;
    let app = spawn_app_with(|o| o.rule_limits.dns_servers = vec![dns]).await;
    let mgmt = app.mgmt_token(None).await;
    let (status, _) = set_hosts(&app, &mgmt, json!([format!("crm.example.com:{port}")])).await;
    assert_eq!(status, StatusCode::OK, "a public-looking name is accepted");
    let request = json!({"url": format!("http://crm.example.com:{port}/people/1")});
    let answer = fetch_through_test_endpoint(&app, &mgmt, &request).await;
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1 is loopback"), "{answer}");

    // The same name, once the operator opened loopback, reaches the upstream.
    let app = spawn_app_with(|o| {
        o.rule_limits.dns_servers = vec![dns];
        o.rule_limits.http_allow_private = loopback_opened();
    })
    .await;
    let mgmt = app.mgmt_token(None).await;
    set_hosts(&app, &mgmt, json!([format!("crm.example.com:{port}")])).await;
    let answer = fetch_through_test_endpoint(&app, &mgmt, &request).await;
    assert_eq!(answer["status"], 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dns_server_that_never_answers_costs_a_bounded_slot_within_the_deadline() {
    let dns = silent_dns().await;
    let app = spawn_app_with(|o| {
        o.rule_limits.dns_servers = vec![dns];
        o.rule_limits.http_rule_timeout = Duration::from_millis(300);
        o.rule_limits.max_concurrent = 4;
        o.rule_limits.dns_lookups = 2;
    })
    .await;
    let mgmt = app.mgmt_token(None).await;
    set_hosts(&app, &mgmt, json!(["never.example.com"])).await;
    let request = json!({"url": "http://never.example.com/"});
    let id = create_probe(&app, &mgmt, &request).await;
    // Warm: the first lookup starts the resolver's own tasks.
    let answer = test_probe(&app, &mgmt, &id).await;
    assert!(
        answer["error"].as_str().unwrap().contains("did not finish"),
        "{answer}"
    );

    let started = Instant::now();
    let answers =
        futures_util::future::join_all((0..12).map(|_| test_probe(&app, &mgmt, &id))).await;
    let errors: Vec<String> = answers
        .iter()
        .map(|a| a["error"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        errors
            .iter()
            .all(|e| e.contains("did not finish") || e.contains("too many DNS lookups")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("too many DNS lookups")),
        "the slots are bounded: {errors:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Every slot comes back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.rules.engine().outbound().free_dns_slots(), 2);
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

// ---- what Wardstone cannot do fails closed ----

/// Auth0's "Require MFA once per session" rule, unchanged.
const MFA_ONCE_PER_SESSION: &str = r#"function requireMfaOncePerSession(user, context, callback) {
  let authMethods = [];
  if (context.authentication && Array.isArray(context.authentication.methods)) {
    authMethods = context.authentication.methods;
  }

  const completedMfa = !!authMethods.find((method) => method.name === 'mfa');

  if (!completedMfa) {
    context.multifactor = {
      provider: 'any',
      allowRememberBrowser: false
    };
  }

  callback(null, user, context);
}"#;

#[tokio::test]
async fn a_rule_that_requires_mfa_fails_the_login_closed_and_says_why() {
    let app = spawn_app().await;
    let Some(_) = js_sample("add-roles") else {
        return;
    };
    let mgmt = app.mgmt_token(None).await;
    let (status, rule) = app
        .api(
            "POST",
            "/rules",
            &mgmt,
            Some(json!({"name": "mfa", "script": MFA_ONCE_PER_SESSION, "on_failure": "skip"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert!(!q.contains_key("code"), "no code without MFA: {q:?}");
    assert_eq!(q["error"], "access_denied");
    assert!(q["error_description"].contains("multifactor"), "{q:?}");
    let log = &app.logs(1).await[0];
    assert_eq!(log.rule_name, "mfa");
    assert_eq!(log.outcome.label(), "failed:unsupported");
    assert!(
        !log.skipped,
        "on_failure: skip does not drop a security requirement"
    );

    // The test endpoint says the same.
    let (_, outcome) = app
        .api(
            "POST",
            &format!("/rules/{}/test", rule["id"].as_str().unwrap()),
            &mgmt,
            Some(
                json!({"user": {"user_id": "u1"}, "context": {"authentication": {"methods": []}}}),
            ),
        )
        .await;
    assert_eq!(outcome["outcome"], "failed:unsupported", "{outcome}");
    assert!(
        outcome["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multifactor")
    );
}

#[tokio::test]
async fn any_rule_asking_for_mfa_fails_closed_and_provider_none_passes() {
    let app = spawn_app().await;
    for (output, passes) in [
        (
            r#"{"context":{"multifactor":{"provider":"google-authenticator"}}}"#,
            false,
        ),
        (
            r#"{"context":{"multifactor":{"allowRememberBrowser":true}}}"#,
            false,
        ),
        (r#"{"context":{"multifactor":{"provider":"none"}}}"#, true),
        (r#"{"context":{"multifactor":null,"redirect":null}}"#, true),
    ] {
        let id = app.add_rule("asks", &wat_claims_rule(output)).await;
        let q = app.authorize_outcome(&Browser::new(), &[]).await;
        if passes {
            assert!(q.contains_key("code"), "{output}: {q:?}");
        } else {
            assert_eq!(q["error"], "access_denied", "{output}: {q:?}");
            let described = &q["error_description"];
            assert!(described.contains("multifactor"), "{described}");
            assert_eq!(app.logs(1).await[0].outcome.label(), "failed:unsupported");
        }
        app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    }
}

// ---- rule code reads the rule settings ----

#[tokio::test]
async fn changing_rule_code_takes_read_rules_configs_too() {
    let app = spawn_app().await;
    let narrow = app
        .mgmt_token(Some("create:rules update:rules read:rules"))
        .await;
    let both = app
        .mgmt_token(Some(
            "create:rules update:rules read:rules read:rules_configs",
        ))
        .await;
    let module = String::from_utf8(tag_rule("x")).unwrap();
    let (status, body) = app
        .api(
            "POST",
            "/rules",
            &narrow,
            Some(json!({"name": "r", "wat": module})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("read:rules_configs")
    );
    assert!(
        app.admin
            .list_rules(&app.t().await)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );

    let (status, rule) = app
        .api(
            "POST",
            "/rules",
            &both,
            Some(json!({"name": "r", "wat": module})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/rules/{}", rule["id"].as_str().unwrap());
    let other = String::from_utf8(tag_rule("y")).unwrap();
    let (status, _) = app
        .api("PATCH", &path, &narrow, Some(json!({"wat": other})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .api(
            "PATCH",
            &format!("{path}/rollback"),
            &narrow,
            Some(json!({"version": 1})),
        )
        .await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = app
        .api(
            "POST",
            &format!("{path}/rollback"),
            &narrow,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Metadata alone needs only update:rules.
    let (status, body) = app
        .api(
            "PATCH",
            &path,
            &narrow,
            Some(json!({"name": "renamed", "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .api("PATCH", &path, &both, Some(json!({"wat": other})))
        .await;
    assert_eq!(status, StatusCode::OK);
}

// ---- logout is no open redirector ----

const ELSEWHERE: &str = "https://phish.example.net/after";

#[tokio::test]
async fn logout_follows_a_registered_url_only_for_a_proven_application() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // A tenant admin registers any URL it likes as a logout URL.
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &mgmt,
            Some(json!({"allowed_logout_urls": [ELSEWHERE]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let logout = |extra: &[(&str, &str)]| {
        let mut url = url::Url::parse(&app.url("/oidc/logout")).unwrap();
        url.query_pairs_mut().extend_pairs(extra);
        url.to_string()
    };
    // A bare link with the client_id: no redirect, our own page.
    let link = logout(&[
        ("client_id", &app.client_id),
        ("post_logout_redirect_uri", ELSEWHERE),
    ]);
    let resp = Browser::new().get(&link).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("logged out"));
    // A browser whose session never used this client: asked, then still no redirect.
    let browser = Browser::new();
    let other = app
        .admin
        .create_client(&app.t().await, "Other", &[CALLBACK.to_string()], false)
        .await
        .unwrap();
    let mut authorize = url::Url::parse(&app.authorize_url(&[])).unwrap();
    let pairs: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            if k == "client_id" {
                (k.into_owned(), other.client_id.clone())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    authorize.query_pairs_mut().clear().extend_pairs(pairs);
    app.login_and_consent(&browser, authorize.as_str()).await;
    let page_url = logout(&[
        ("client_id", &app.client_id),
        ("post_logout_redirect_uri", ELSEWHERE),
    ]);
    let html = browser.get(&page_url).await.text().await.unwrap();
    let (action, fields) = form(&html, &page_url);
    let resp = browser.post_form(&action, &fields).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "confirmed, but not sent away"
    );

    // Proven by its ID token: followed.
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    let resp = browser
        .get(&logout(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", ELSEWHERE),
        ]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), ELSEWHERE);
}
