// Several stateless nodes on one database: any node serves any step, and single-use values
// have exactly one winner under real concurrency.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

/// Runs /authorize → login → consent → callback with every hop sent to `node`.
async fn flow_on(
    app: &TestApp,
    browser: &Browser,
    node: &str,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let mut next = on_node(
        &location(&browser.get(&on_node(&app.authorize_url(extra), node)).await),
        node,
    );
    if next.contains("/login?tx=") {
        let html = browser.get(&next).await.text().await.unwrap();
        let (action, mut fields) = form(&html, &next);
        set_field(&mut fields, "username", EMAIL);
        set_field(&mut fields, "password", PASSWORD);
        next = location(&browser.post_form(&action, &fields).await);
    }
    if next.contains("/consent?tx=") {
        next = location(
            &app.submit_consent(browser, &on_node(&next, node), "allow")
                .await,
        );
    }
    assert!(
        next.starts_with(CALLBACK),
        "expected the callback, got {next}"
    );
    query_of(&next)
}

async fn token_on(app: &TestApp, node: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(on_node(&app.url("/oauth/token"), node))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn exchange_on(app: &TestApp, node: &str, code: &str) -> reqwest::Response {
    token_on(
        app,
        node,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

#[tokio::test]
async fn any_node_serves_any_step_of_a_login() {
    let app = spawn_app().await;
    let b = app.spawn_peer().await;
    let browser = Browser::new();
    // /authorize and login on node A...
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    let consent = location(&resp);
    // ...consent on node B (the transaction, CSRF key and session live in the database)...
    let callback = location(
        &app.submit_consent(&browser, &on_node(&consent, &b), "allow")
            .await,
    );
    let code = query_of(&callback)["code"].clone();
    // ...and /oauth/token on node B.
    let resp = exchange_on(&app, &b, &code).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    // Both nodes sign with the same tenant key and publish the same JWKS.
    let jwks_a: Value = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_b: Value = reqwest::get(on_node(&app.url("/.well-known/jwks.json"), &b))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_a, jwks_b);
    app.verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    // The SSO session made on A logs the browser in on B.
    let q = query_of(&location(
        &browser
            .get(&on_node(&app.authorize_url(&[("prompt", "none")]), &b))
            .await,
    ));
    assert!(q.contains_key("code"), "{q:?}");
}

#[tokio::test]
async fn a_rule_added_through_one_node_runs_on_the_other_at_the_next_login() {
    let app = spawn_app().await;
    let b = app.spawn_peer().await;
    assert!(
        flow_on(&app, &Browser::new(), &b, &[])
            .await
            .contains_key("code"),
        "node B has compiled nothing yet"
    );
    let token = app.mgmt_token(None).await;
    let deny = String::from_utf8(wat_sample("deny.wat")).unwrap();
    let (status, rule) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "maintenance", "wat": deny})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        flow_on(&app, &Browser::new(), &b, &[]).await["error"],
        "access_denied"
    );
    // Disabled through A: B stops running it at once.
    let id = rule["id"].as_str().unwrap();
    app.api(
        "PATCH",
        &format!("/rules/{id}"),
        &token,
        Some(json!({"enabled": false})),
    )
    .await;
    assert!(
        flow_on(&app, &Browser::new(), &b, &[])
            .await
            .contains_key("code")
    );
    // A new module through A: B runs the new bytes (cached by hash, never by rule id).
    let claim = String::from_utf8(wat_sample("static-claim.wat")).unwrap();
    app.api(
        "PATCH",
        &format!("/rules/{id}"),
        &token,
        Some(json!({"enabled": true, "wat": claim})),
    )
    .await;
    let q = flow_on(&app, &Browser::new(), &b, &[]).await;
    let tokens: Value = exchange_on(&app, &b, &q["code"])
        .await
        .json()
        .await
        .unwrap();
    let (_, id_token) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(id_token["https://wardstone.dev/tier"], "gold");
    // Deleted through A: gone on B.
    app.api("DELETE", &format!("/rules/{id}"), &token, None)
        .await;
    let q = flow_on(&app, &Browser::new(), &b, &[]).await;
    let tokens: Value = exchange_on(&app, &b, &q["code"])
        .await
        .json()
        .await
        .unwrap();
    let (_, id_token) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert!(id_token.get("https://wardstone.dev/tier").is_none());
}

#[tokio::test]
async fn a_refresh_token_rotated_on_one_node_and_replayed_on_another_revokes_the_family() {
    let app = spawn_app().await;
    let b = app.spawn_peer().await;
    let tokens = app.tokens(&Browser::new()).await;
    let old = tokens["refresh_token"].as_str().unwrap();
    let rotated: Value = token_on(
        &app,
        &app.base,
        &[("grant_type", "refresh_token"), ("refresh_token", old)],
    )
    .await
    .json()
    .await
    .unwrap();
    let new = rotated["refresh_token"].as_str().unwrap();
    // Past the grace period, presenting the rotated token again is reuse.
    app.clock.advance(app_grace() + 1);
    let replay = token_on(
        &app,
        &b,
        &[("grant_type", "refresh_token"), ("refresh_token", old)],
    )
    .await;
    assert_eq!(error_of(replay).await.1, "invalid_grant");
    let after = token_on(
        &app,
        &app.base,
        &[("grant_type", "refresh_token"), ("refresh_token", new)],
    )
    .await;
    assert_eq!(
        error_of(after).await.1,
        "invalid_grant",
        "the whole family is revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_redeemed_on_two_nodes_at_once_has_exactly_one_winner() {
    let app = spawn_app().await;
    let b = app.spawn_peer().await;
    let browser = Browser::new();
    for round in 0..8 {
        let code = app.code(&browser, &[("state", &format!("r{round}"))]).await;
        let (x, y) = tokio::join!(
            exchange_on(&app, &app.base, &code),
            exchange_on(&app, &b, &code)
        );
        let winners = [x.status(), y.status()]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(
            winners,
            1,
            "round {round}: {} and {}",
            x.status(),
            y.status()
        );
        let loser = if x.status() == StatusCode::OK { y } else { x };
        assert_eq!(error_of(loser).await.1, "invalid_grant");
    }
}

fn app_grace() -> i64 {
    wardstone::config::Lifetimes::default().refresh_reuse_grace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_used_on_two_nodes_at_once_has_exactly_one_winner() {
    // Without a grace period a second use, however close, is reuse.
    let no_grace = |o: &mut wardstone::startup::ServerOptions| o.lifetimes.refresh_reuse_grace = 0;
    let app = spawn_app_with(no_grace).await;
    let (b, _) = app.spawn_node_with(no_grace).await;
    for round in 0..8 {
        let tokens = app.tokens(&Browser::new()).await;
        let rt = tokens["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
        let (x, y) = tokio::join!(token_on(&app, &app.base, &form), token_on(&app, &b, &form));
        let winners = [x.status(), y.status()]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(
            winners,
            1,
            "round {round}: {} and {}",
            x.status(),
            y.status()
        );
    }
}

#[tokio::test]
async fn a_client_change_on_one_node_holds_on_the_other_at_once() {
    let app = spawn_app().await;
    let peer = app.spawn_peer().await;
    let exchange_on_peer = |code: String, secret: String| {
        let url = on_node(&app.url("/oauth/token"), &peer);
        let id = app.client_id.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The peer has the client in memory after this.
    let code = app.login_on(&peer).await.remove("code").unwrap();
    assert_eq!(
        exchange_on_peer(code, app.client_secret.clone()).await,
        StatusCode::OK
    );
    // A new secret, made through this node: the peer refuses the old one at once.
    let t = app.t().await;
    let rotated = app
        .admin
        .rotate_client_secret(&t, &app.client_id)
        .await
        .unwrap();
    let new_secret = rotated.client_secret.unwrap();
    let code = app.login_on(&peer).await.remove("code").unwrap();
    assert_eq!(
        exchange_on_peer(code.clone(), app.client_secret.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(exchange_on_peer(code, new_secret).await, StatusCode::OK);
    // A removed callback is refused by the peer's authorize at once too.
    app.admin
        .update_client(
            &t,
            &app.client_id,
            wardstone::service::clients::ClientPatch {
                callbacks: Some(vec!["https://elsewhere.example.com/cb".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let resp = Browser::new()
        .get(&on_node(&app.authorize_url(&[]), &peer))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "no redirect to an unregistered callback"
    );
}

#[tokio::test]
async fn usage_counts_each_day_logins_grants_and_executions_the_same_on_every_node() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let (b, b_rules) = app.spawn_node_with(|_| {}).await;
    let token = app.mgmt_token(None).await; // a client_credentials grant
    app.add_script(
        "deny-flagged",
        "function (user, context, callback) { callback(context.clientMetadata.deny ? new UnauthorizedError('no') : null, user, context); }",
    )
    .await; // another one
    // Two password logins on node A, one on node B; one exchange and one refresh on B.
    for _ in 0..2 {
        assert!(
            app.authorize_outcome(&Browser::new(), &[])
                .await
                .contains_key("code")
        );
    }
    let code = flow_on(&app, &Browser::new(), &b, &[]).await["code"].clone();
    let resp = exchange_on(&app, &b, &code).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let resp = token_on(
        &app,
        &b,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // A refused exchange is no grant; a denied login is an execution and a denial.
    assert_eq!(
        exchange_on(&app, &b, &code).await.status(),
        StatusCode::BAD_REQUEST
    );
    let client = format!("/clients/{}", app.client_id);
    let (status, _) = app
        .api(
            "PATCH",
            &client,
            &token,
            Some(json!({"client_metadata": {"deny": "1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );
    b_rules.journal().flush().await;

    let today = wardstone::domain::usage::Day::of(app.clock.now()).render();
    let (status, on_a) = app.api("GET", "/tenants/usage", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{on_a}");
    let days = on_a.as_array().unwrap();
    assert_eq!(days.len(), 30, "the last 30 days, every one listed");
    assert_eq!(days[29]["date"], today.as_str());
    assert_eq!(days[0]["logins"], 0);
    assert_eq!(
        days[29],
        json!({"date": today, "logins": 4,
               "token_grants": {"authorization_code": 1, "refresh_token": 1, "client_credentials": 2},
               "rule_executions": 5, "action_executions": 0, "failures": 0, "denials": 1,
               "fuel": days[29]["fuel"]})
    );
    assert!(days[29]["fuel"].as_i64().unwrap() > 0);

    // Node B answers the same.
    let on_b = reqwest::Client::new()
        .get(on_node(&app.url("/api/v2/tenants/usage"), &b))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(on_b.status(), StatusCode::OK);
    assert_eq!(on_b.json::<Value>().await.unwrap(), on_a);

    // One day, in either date form.
    let compact = today.replace('-', "");
    let (_, one) = app
        .api(
            "GET",
            &format!("/tenants/usage?from={compact}&to={today}"),
            &token,
            None,
        )
        .await;
    assert_eq!(one, json!([days[29]]));

    // Bad input is a clear 400; the wrong scope a 403.
    for (query, says) in [
        ("from=2026-13-01", "from must be a date"),
        ("to=yesterday", "to must be a date"),
        ("from=2026-12-05&to=2026-12-01", "after"),
        ("from=2020-01-01&to=2026-12-01", "366"),
        ("days=3", "days"),
    ] {
        let (status, body) = app
            .api("GET", &format!("/tenants/usage?{query}"), &token, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let logs_only = app.mgmt_token(Some("read:logs")).await;
    assert_eq!(
        app.api("GET", "/tenants/usage", &logs_only, None).await.0,
        StatusCode::FORBIDDEN
    );
}
