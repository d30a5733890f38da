// Hostile traffic: login floods, throttling, junk that would grow storage, attacks on the
// Management API's own access, rules that try to crash the process, and revocation reaching
// access tokens. Each test fails if its weakness comes back.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn overlong_credentials_are_refused_without_hashing_or_storing_them() {
    let app = spawn_app().await;
    let long = format!("{}@example.com", "a".repeat(60_000));
    let resp = try_login(&app, &Browser::new(), &long, "whatever").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("too long"));
    let resp = try_login(&app, &Browser::new(), EMAIL, &"p".repeat(2000)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let longest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(LENGTH(throttle_key)) FROM login_failure")
            .fetch_one(&app.db().await)
            .await
            .unwrap();
    assert!(
        longest.unwrap_or(0) < 400,
        "no huge keys stored: {longest:?}"
    );
}

async fn stored_bytes(app: &TestApp) -> i64 {
    let db = app.db().await;
    let mut total = 0;
    for sql in [
        "SELECT COALESCE(SUM(LENGTH(request)), 0) FROM login_transaction",
        "SELECT COALESCE(SUM(LENGTH(throttle_key)), 0) FROM login_failure",
    ] {
        total += sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&db)
            .await
            .unwrap();
    }
    total
}

#[tokio::test]
async fn junk_from_anonymous_clients_does_not_grow_storage() {
    let app = spawn_app().await;
    let before = stored_bytes(&app).await;
    let junk = "j".repeat(60_000);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut form: Vec<(String, String)> = url::Url::parse(&app.authorize_url(&[]))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("junk".into(), junk.clone()));
    for _ in 0..60 {
        let resp = http
            .post(app.url("/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "unknown parameters are ignored"
        );
    }
    let long_user = format!("{junk}@example.com");
    for _ in 0..20 {
        try_login(&app, &Browser::new(), &long_user, "x").await;
    }
    let grown = stored_bytes(&app).await - before;
    // 80 requests carrying 4.8 MB of junk leave a few hundred bytes each.
    assert!(grown < 80 * 2_000, "stored {grown} bytes");
}

#[tokio::test]
async fn a_browser_keeps_a_bounded_number_of_pending_logins() {
    let app = spawn_app().await;
    let browser = Browser::new();
    for i in 0..25 {
        let resp = browser
            .get(&app.authorize_url(&[("state", &format!("s{i}"))]))
            .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_transaction")
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(count, 20, "the oldest were dropped");
    // The newest still works.
    let q = app.authorize_outcome(&browser, &[]).await;
    assert!(q.contains_key("code"));
}

#[tokio::test]
async fn the_management_api_cannot_be_taken_from_its_tenant() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    // Reserved identifiers cannot be created...
    for identifier in [
        "urn:wardstone:management",
        "urn:wardstone:anything",
        "URN:WARDSTONE:MANAGEMENT",
    ] {
        let (status, body) = app
            .api(
                "POST",
                "/resource-servers",
                &token,
                Some(json!({"identifier": identifier, "name": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{identifier}: {body}");
    }
    // ...deleting an API never touches the Management API's grant...
    let (status, api) = app
        .api(
            "POST",
            "/resource-servers",
            &token,
            Some(json!({"identifier": "https://api.example.com/", "name": "API"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let narrow = app
        .mgmt_token(Some("create:resource_servers delete:resource_servers"))
        .await;
    let (status, _) = app
        .api(
            "DELETE",
            &format!("/resource-servers/{}", api["id"].as_str().unwrap()),
            &narrow,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // ...the management client can be neither deleted nor stripped of client_credentials...
    let path = format!("/clients/{}", app.mgmt_client_id);
    let (status, _) = app.api("DELETE", &path, &token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"grant_types": ["authorization_code"], "callbacks": [CALLBACK]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // ...its grant cannot be deleted...
    let (_, grants) = app.api("GET", "/client-grants", &token, None).await;
    let management_grant = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["client_id"] == app.mgmt_client_id)
        .expect("the management grant is listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = app
        .api(
            "DELETE",
            &format!("/client-grants/{management_grant}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // ...nor can the Management API be granted to another client.
    let (_, other) = app
        .api("POST", "/clients", &token, Some(json!({"name": "M2M", "callbacks": [CALLBACK], "grant_types": ["client_credentials"]})))
        .await;
    let (status, _) = app
        .api("POST", "/client-grants", &token, Some(json!({"client_id": other["client_id"], "audience": app.url("/api/v2/"), "scope": ["read:users"]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // After all of it, the tenant still gets in with every scope.
    let token = app.mgmt_token(None).await;
    let (status, _) = app.api("GET", "/clients", &token, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_management_token_stops_working_when_its_client_loses_the_grant() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    assert_eq!(
        app.api("GET", "/users", &token, None).await.0,
        StatusCode::OK
    );
    sqlx::query("DELETE FROM client_grant WHERE client_id = $1")
        .bind(&app.mgmt_client_id)
        .execute(&app.db().await)
        .await
        .unwrap();
    assert_eq!(
        app.api("GET", "/users", &token, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rules_cannot_mint_a_management_caller() {
    let app = spawn_app().await;
    let claims = r#"{"context":{"accessToken":{"gty":"client-credentials","permissions":["x"],"scope":["openid","profile","email","offline_access"]}}}"#;
    let escaped = claims.replace('"', "\\\"");
    let wat = format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 1024) "{escaped}")
          (func (export "alloc") (param i32) (result i32)
            (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1)))) (i32.const 65536))
          (func (export "rule") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {}))))"#,
        claims.len()
    );
    app.add_rule("sneaky", wat.as_bytes()).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (_, at) = app
        .verify(
            tokens["access_token"].as_str().unwrap(),
            &app.url("/userinfo"),
        )
        .await;
    assert!(at.get("gty").is_none(), "gty is restricted: {at}");
    assert!(at.get("permissions").is_none());
    let logs = app.logs(1).await;
    assert!(
        serde_json::to_string(&logs[0].logs)
            .unwrap()
            .contains("\\\"gty\\\" is restricted")
    );
}

#[tokio::test]
async fn the_deepest_allowed_stack_and_a_recursive_rule_cannot_take_the_server_down() {
    // 8 MiB is the largest wasm stack the flag allows; the server must start with it.
    // Filling 8 MiB of stack takes tens of ms on a loaded 2-core machine: the deadline is
    // raised so that the stack, not the clock, is what stops the rule.
    let app = spawn_app_with(|o| {
        o.rule_limits.stack_bytes = 8192 << 10;
        o.rule_limits.rule_timeout = std::time::Duration::from_secs(5);
        o.rule_limits.pipeline_timeout = std::time::Duration::from_secs(10);
    })
    .await;
    let wat = r#"(module (memory (export "memory") 1)
        (func $down (param i64) (result i64)
          (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (local.get 0)))
        (func (export "alloc") (param i32) (result i32) (i32.const 1024))
        (func (export "rule") (param i32 i32) (result i64) (call $down (i64.const 0))))"#;
    app.add_rule("deep", wat.as_bytes()).await;
    for _ in 0..3 {
        let q = app.authorize_outcome(&Browser::new(), &[]).await;
        assert_eq!(q["error"], "server_error");
    }
    assert_eq!(
        app.logs(1).await[0].outcome.label(),
        "failed:stack_overflow"
    );
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the process is still up");
}

async fn introspect(app: &TestApp, token: &str, client: (&str, &str)) -> Value {
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn me(app: &TestApp) -> (&str, &str) {
    (&app.client_id, &app.client_secret)
}

#[tokio::test]
async fn introspection_describes_live_tokens_and_nothing_else() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let answer = introspect(&app, at, me(&app)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], app.user_id);
    assert_eq!(answer["client_id"], app.client_id);
    assert_eq!(answer["token_type"], "Bearer");
    let answer = introspect(&app, rt, me(&app)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "refresh_token");
    // Another confidential client (an API) may ask about access tokens, not refresh tokens.
    let api = app
        .admin
        .create_client(&app.t().await, "API", &[CALLBACK.to_string()], false)
        .await
        .unwrap();
    let other = (
        api.client_id.as_str(),
        api.client_secret.as_deref().unwrap(),
    );
    assert_eq!(introspect(&app, at, other).await["active"], true);
    assert_eq!(introspect(&app, rt, other).await, json!({"active": false}));
    // Garbage and tampered tokens are simply inactive.
    assert_eq!(
        introspect(&app, "garbage", me(&app)).await,
        json!({"active": false})
    );
    let tampered = format!("{}x", at);
    assert_eq!(
        introspect(&app, &tampered, me(&app)).await,
        json!({"active": false})
    );
    // Bad requests get RFC 6749 errors.
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(&app.client_id, Some("wrong"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.1, "invalid_client");
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("nothing", "here")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.1, "invalid_request");
    // Discovery publishes it.
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["introspection_endpoint"],
        app.url("/oauth/introspect")
    );
}

#[tokio::test]
async fn a_replayed_code_makes_its_access_tokens_inactive() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    let tokens: Value = app.exchange(&code).await.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, at, me(&app)).await["active"], true);
    assert_eq!(error_of(app.exchange(&code).await).await.1, "invalid_grant");
    assert_eq!(introspect(&app, at, me(&app)).await["active"], false);
    assert_eq!(app.userinfo(at).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_ends_sessions_and_revokes_every_token() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let token = app.mgmt_token(None).await;
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/users/{}", app.user_id),
            &token,
            Some(json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspect(&app, at, me(&app)).await["active"], false);
    assert_eq!(app.userinfo(at).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(app.refresh(rt).await).await.1, "invalid_grant");
    // The SSO session is gone: the browser must sign in again.
    let next = location(&browser.get(&app.authorize_url(&[])).await);
    assert!(next.contains("/login?tx="), "{next}");
}

#[tokio::test]
async fn deleting_or_blocking_a_user_makes_their_tokens_inactive() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let tokens = app.tokens(&Browser::new()).await;
    let at = tokens["access_token"].as_str().unwrap();
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/users/{}", app.user_id),
            &token,
            Some(json!({"blocked": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["blocked"], true);
    assert_eq!(introspect(&app, at, me(&app)).await["active"], false);
    let resp = try_login(&app, &Browser::new(), EMAIL, PASSWORD).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a blocked user cannot log in"
    );
    app.api(
        "PATCH",
        &format!("/users/{}", app.user_id),
        &token,
        Some(json!({"blocked": false})),
    )
    .await;
    let tokens = app.tokens(&Browser::new()).await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, at, me(&app)).await["active"], true);
    app.api("DELETE", &format!("/users/{}", app.user_id), &token, None)
        .await;
    assert_eq!(introspect(&app, at, me(&app)).await["active"], false);
}

#[tokio::test]
async fn an_email_change_is_unverified_unless_the_request_says_otherwise() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let path = format!("/users/{}", app.user_id);
    let (_, body) = app
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"email": "new@example.com"})),
        )
        .await;
    assert_eq!(body["email_verified"], false);
    let (_, body) = app
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"email": "newer@example.com", "email_verified": true})),
        )
        .await;
    assert_eq!(body["email_verified"], true);
    let (_, body) = app
        .api("PATCH", &path, &token, Some(json!({"name": "Alice"})))
        .await;
    assert_eq!(body["email_verified"], true, "other changes keep it");
}

#[tokio::test]
async fn metadata_merges_cannot_grow_past_the_cap() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let path = format!("/users/{}", app.user_id);
    let half = "x".repeat(9_000);
    let (status, _) = app
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"user_metadata": {"a": half}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"user_metadata": {"b": half}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["message"].as_str().unwrap().contains("user_metadata"));
    let (_, user) = app.api("GET", &path, &token, None).await;
    assert_eq!(
        user["user_metadata"].as_object().unwrap().len(),
        1,
        "nothing of it stored"
    );
    // The user still logs in (the pipeline accepts what was stored).
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
}

#[tokio::test]
async fn an_api_sets_the_lifetime_of_its_access_tokens() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let (status, body) = app
        .api(
            "POST",
            "/resource-servers",
            &token,
            Some(json!({"identifier": "https://short.example.com/", "token_lifetime": 300})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["token_lifetime"], 300);
    let (status, _) = app
        .api(
            "POST",
            "/resource-servers",
            &token,
            Some(json!({"identifier": "https://bad.example.com/", "token_lifetime": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let code = app
        .code(
            &Browser::new(),
            &[("audience", "https://short.example.com/")],
        )
        .await;
    let tokens: Value = app.exchange(&code).await.json().await.unwrap();
    assert_eq!(tokens["expires_in"], 300);
    let (_, at) = app
        .verify(
            tokens["access_token"].as_str().unwrap(),
            "https://short.example.com/",
        )
        .await;
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn pages_carry_hsts_when_the_public_url_is_https() {
    let app = spawn_app_with(|o| {
        o.public_url = Some(wardstone::config::PublicUrl::parse("https://id.example.com").unwrap())
    })
    .await;
    let resp = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let plain = spawn_app().await;
    let resp = reqwest::get(format!("{}/healthz", plain.base))
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn a_rotation_retried_within_the_grace_period_keeps_the_chain_alive() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    // The rotation commits, but its answer never reaches the client...
    let lost: Value = app.refresh(&first).await.json().await.unwrap();
    let lost = lost["refresh_token"].as_str().unwrap().to_string();
    // ...which retries with the token it still has, a moment later.
    app.clock.advance(2);
    let retried = app.refresh(&first).await;
    assert_eq!(
        retried.status(),
        StatusCode::OK,
        "the retry gets a successor"
    );
    let retried: Value = retried.json().await.unwrap();
    let current = retried["refresh_token"].as_str().unwrap().to_string();
    // The chain goes on from the retry's token.
    let next = app.refresh(&current).await;
    assert_eq!(next.status(), StatusCode::OK, "the chain survives");
    let next: Value = next.json().await.unwrap();
    // The lost token never reached its client: whoever shows it is reusing it.
    assert_eq!(error_of(app.refresh(&lost).await).await.1, "invalid_grant");
    let head = next["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_of(app.refresh(head).await).await.1,
        "invalid_grant",
        "family revoked"
    );
}

#[tokio::test]
async fn reuse_beyond_the_grace_period_or_of_an_older_token_revokes_the_family() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let second: Value = app.refresh(&first).await.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_string();
    let third: Value = app.refresh(&second).await.json().await.unwrap();
    let third = third["refresh_token"].as_str().unwrap().to_string();
    // Two steps back, even within the grace period: reuse.
    assert_eq!(error_of(app.refresh(&first).await).await.1, "invalid_grant");
    assert_eq!(
        error_of(app.refresh(&third).await).await.1,
        "invalid_grant",
        "family revoked"
    );

    let tokens = app.tokens(&Browser::new()).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let second: Value = app.refresh(&first).await.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_string();
    app.clock.advance(60);
    assert_eq!(error_of(app.refresh(&first).await).await.1, "invalid_grant");
    assert_eq!(
        error_of(app.refresh(&second).await).await.1,
        "invalid_grant",
        "family revoked"
    );
}
