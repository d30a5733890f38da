// Recording pipeline inputs for replay (SPEC §18): off by default, bounded, sealed, without
// configuration values, deleted with their user or when recording is turned off.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const TAG_RULE: &str = "function (user, context, callback) { context.idToken['https://x/tier'] = configuration.TIER; callback(null, user, context); }";

/// The tenant's recorded inputs, newest first, unsealed.
async fn recorded(app: &TestApp) -> Vec<(wardstone::store::RecordingRow, Value)> {
    app.rules.journal().flush().await;
    let tenant_id = app.tenant_id().await;
    let rows = app.store.recent_recordings(&tenant_id, 100).await.unwrap();
    rows.into_iter()
        .map(|row| {
            let plain = app
                .master_key
                .open(&format!("recording:{tenant_id}:{}", row.id), &row.sealed)
                .expect("sealed with the master key, bound to its row");
            let input = serde_json::from_slice(&plain).unwrap();
            (row, input)
        })
        .collect()
}

#[tokio::test]
async fn recording_is_off_by_default_and_keeps_the_last_runs_sealed_without_configuration() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    app.add_script("tier", TAG_RULE).await;
    let (status, _) = app
        .api(
            "PUT",
            "/rules-configs/TIER",
            &token,
            Some(json!({"value": "gold-c0nfig-value"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, settings) = app.api("GET", "/tenants/settings", &token, None).await;
    assert_eq!(settings["recording"], json!({"enabled": false, "keep": 0}));
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    assert!(
        recorded(&app).await.is_empty(),
        "nothing is recorded unless the tenant asks"
    );

    // Turned on, only the recording part changes.
    let (status, _) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"rules": {"allowed_hosts": ["api.example.com"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, settings) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": true, "keep": 2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["recording"], json!({"enabled": true, "keep": 2}));
    assert_eq!(
        settings["rules"]["allowed_hosts"],
        json!(["api.example.com"])
    );

    let tokens = app.tokens(&Browser::new()).await;
    for _ in 0..2 {
        assert!(
            app.authorize_outcome(&Browser::new(), &[])
                .await
                .contains_key("code")
        );
    }
    let runs = recorded(&app).await;
    assert_eq!(runs.len(), 2, "the last two runs only");
    let (row, input) = &runs[0];
    assert_eq!(row.protocol, "oidc-basic-profile");
    assert_eq!(row.client_id, app.client_id);
    assert_eq!(row.user_id.as_deref(), Some(app.user_id.as_str()));
    assert_eq!(input["user"]["email"], EMAIL);
    assert_eq!(input["context"]["protocol"], "oidc-basic-profile");
    assert_eq!(input["context"]["clientID"], app.client_id.as_str());
    assert_eq!(
        input["event"]["client"]["client_id"],
        app.client_id.as_str()
    );
    assert!(row.created_at >= runs[1].0.created_at);
    for (row, input) in &runs {
        let text = input.to_string();
        assert!(
            !text.contains("gold-c0nfig-value"),
            "configuration values are never recorded: {text}"
        );
        let sealed = String::from_utf8_lossy(&row.sealed);
        assert!(!sealed.contains(EMAIL), "stored sealed, not as text");
    }

    // A refresh is a run too.
    let resp = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let runs = recorded(&app).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].0.protocol, "oauth2-refresh-token");
    assert_eq!(runs[0].1["context"]["protocol"], "oauth2-refresh-token");

    // Bad settings are a 400 naming the problem, and change nothing.
    for bad in [
        json!({"recording": {"enabled": true, "keep": 0}}),
        json!({"recording": {"enabled": true, "keep": 5001}}),
        json!({"recording": {"enabled": true, "keep": -3}}),
        json!({"recording": {"enabled": "yes"}}),
        json!({"recording": {"enabled": true, "last": 5}}),
        json!({"recording": {"enabled": false, "keep": 5}}),
        json!({"recording": true}),
    ] {
        let (status, body) = app
            .api("PATCH", "/tenants/settings", &token, Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let (_, body) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": true, "keep": 9000}})),
        )
        .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("recording.keep must be 1 to 5000"),
        "{body}"
    );
    let (_, settings) = app.api("GET", "/tenants/settings", &token, None).await;
    assert_eq!(settings["recording"], json!({"enabled": true, "keep": 2}));
    assert_eq!(recorded(&app).await.len(), 2);

    // Keeping fewer drops the oldest at once; turning it off deletes everything.
    let (_, settings) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": true, "keep": 1}})),
        )
        .await;
    assert_eq!(settings["recording"]["keep"], 1);
    assert_eq!(recorded(&app).await.len(), 1);
    let (_, settings) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": true}})),
        )
        .await;
    assert_eq!(
        settings["recording"]["keep"], 1,
        "turned on again, it keeps its bound"
    );
    let (_, settings) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": false}})),
        )
        .await;
    assert_eq!(settings["recording"], json!({"enabled": false, "keep": 0}));
    assert!(recorded(&app).await.is_empty());
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    assert!(recorded(&app).await.is_empty());
}

#[tokio::test]
async fn a_users_recorded_runs_are_deleted_with_the_user() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    app.add_script("tier", TAG_RULE).await;
    let (status, _) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, settings) = app.api("GET", "/tenants/settings", &token, None).await;
    assert_eq!(settings["recording"]["keep"], 500, "the default");
    for _ in 0..3 {
        assert!(
            app.authorize_outcome(&Browser::new(), &[])
                .await
                .contains_key("code")
        );
    }
    assert_eq!(recorded(&app).await.len(), 3);
    let (status, _) = app
        .api("DELETE", &format!("/users/{}", app.user_id), &token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        recorded(&app).await.is_empty(),
        "nothing of the user is left"
    );
}

/// Logs `email` in with a fresh browser (consent allowed); the callback's query.
async fn login_as(
    app: &TestApp,
    email: &str,
    password: &str,
) -> std::collections::HashMap<String, String> {
    let browser = Browser::new();
    let mut next = location(
        &app.submit_login(&browser, &app.authorize_url(&[]), email, password)
            .await,
    );
    if next.contains("/consent?tx=") {
        next = location(&app.submit_consent(&browser, &next, "allow").await);
    }
    query_of(&next)
}

const LIVE: &str = "function (user, context, callback) { context.idToken['https://x/tier'] = 'gold'; callback(null, user, context); }";
/// Denies Ann, gives Bob another tier and a metadata flag, leaves Cy as he was; calls out (which
/// a replay must answer itself).
const CANDIDATE: &str = r#"function (user, context, callback) {
  fetch('https://api.example.com/score').then(function (r) { return r.json(); })
  .catch(function (e) { return { error: String(e && e.message || e) }; }).then(function (body) {
    if (user.email === 'ann@example.com') return callback(new UnauthorizedError('ann is out'));
    context.idToken['https://x/tier'] = user.email === 'bob@example.com' ? 'silver' : 'gold';
    if (user.email === 'bob@example.com') { user.app_metadata.flagged = body.error; }
    callback(null, user, context);
  });
}"#;

#[tokio::test]
async fn a_replay_reports_exactly_who_a_candidate_denies_and_what_it_changes_without_sending_anything()
 {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let rule = app.add_script("tier", LIVE).await;
    let replay = |body: Value| {
        let (app, token, rule) = (&app, &token, &rule);
        async move {
            app.api("POST", &format!("/rules/{rule}/replay"), token, Some(body))
                .await
        }
    };

    // Without recording, a clear answer.
    let (status, body) = replay(json!({"script": CANDIDATE})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("recording is off"),
        "{body}"
    );

    let (status, _) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"recording": {"enabled": true, "keep": 50}, "rules": {"allowed_hosts": ["api.example.com"]}})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = replay(json!({"script": CANDIDATE})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("nothing is recorded yet"),
        "{body}"
    );

    for (email, password) in [
        ("ann@example.com", "ann's long password"),
        ("bob@example.com", "bob's long password"),
        ("cy@example.com", "cy's long password"),
    ] {
        let (status, body) = app
            .api(
                "POST",
                "/users",
                &token,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(login_as(&app, email, password).await.contains_key("code"));
    }

    let (status, report) = replay(json!({"script": CANDIDATE, "last": 10})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let summary = &report["summary"];
    assert_eq!(summary["inputs"], 3, "{report}");
    assert_eq!(summary["newly_denied"], 1, "{report}");
    assert_eq!(summary["changed"], 1, "{report}");
    assert_eq!(summary["same"], 1, "{report}");
    assert_eq!(summary["newly_allowed"], 0);
    assert_eq!(summary["newly_failing"], 0);
    assert!(
        summary["candidate"]["fuel"]["p50"].as_i64().unwrap()
            > summary["live"]["fuel"]["p50"].as_i64().unwrap() / 2
    );
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    // Newest first: Cy, Bob, Ann.
    assert_eq!(inputs[2]["category"], "newly_denied");
    assert_eq!(inputs[2]["live"]["outcome"], "allowed");
    assert_eq!(inputs[2]["candidate"]["outcome"], "denied");
    assert_eq!(inputs[2]["candidate"]["message"], "ann is out");
    assert_eq!(inputs[1]["category"], "changed");
    assert_eq!(
        inputs[1]["differences"]["id_token"]["changed"]["https://x/tier"],
        json!({"before": "gold", "after": "silver"})
    );
    // The outbound request was answered by the replay itself, never sent.
    let flagged = inputs[1]["differences"]["app_metadata"]["added"]["flagged"].as_str();
    assert!(
        flagged.is_some_and(|f| f.contains("replay")),
        "{}",
        inputs[1]
    );
    assert_eq!(inputs[0]["category"], "same");
    assert_eq!(inputs[0]["differences"], json!({}));
    assert_eq!(inputs[0]["protocol"], "oidc-basic-profile");
    assert_eq!(inputs[0]["client_id"], app.client_id.as_str());
    // Nothing was stored: Bob has no flag, the log has no replayed execution.
    let logs = app.logs(100).await;
    assert!(logs.iter().all(|l| l.trigger.label() != "test"), "{logs:?}");
    let (_, users) = app.api("GET", "/users?q=bob", &token, None).await;
    assert!(!users.to_string().contains("flagged"), "{users}");

    // `last` bounds the inputs; the live version against itself is all `same`.
    let (_, report) = replay(json!({"script": LIVE, "last": 2})).await;
    assert_eq!(report["summary"]["inputs"], 2);
    assert_eq!(report["summary"]["same"], 2);

    // A candidate that fails is `newly_failing` everywhere; bad requests are clear 400s/404s.
    let (_, report) =
        replay(json!({"script": "function (user, context, callback) { null.x; }"})).await;
    assert_eq!(report["summary"]["newly_failing"], 3, "{report}");
    for (body, says) in [
        (json!({}), "give the candidate"),
        (json!({"script": LIVE, "last": 0}), "last must be 1 to 5000"),
        (
            json!({"script": LIVE, "last": 5001}),
            "last must be 1 to 5000",
        ),
        (json!({"script": LIVE, "wat": "(module)"}), "not several"),
        (json!({"script": LIVE, "since": 3}), "since"),
        (json!({"wasm": "%%%"}), "base64"),
    ] {
        let (status, answer) = replay(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (status, answer) = replay(json!({"script": "function ( {"})).await;
    assert!(status.is_client_error(), "{answer}");
    let (status, _) = app
        .api(
            "POST",
            "/rules/rul_nope/replay",
            &token,
            Some(json!({"script": LIVE})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The candidate sees the rule settings and recorded users: it takes the scopes that read
    // them, besides update:rules.
    for scopes in [
        "read:rules",
        "update:rules read:users",
        "update:rules read:rules_configs",
    ] {
        let narrow = app.mgmt_token(Some(scopes)).await;
        let (status, body) = app
            .api(
                "POST",
                &format!("/rules/{rule}/replay"),
                &narrow,
                Some(json!({"script": LIVE})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scopes}: {body}");
    }
    let enough = app
        .mgmt_token(Some("update:rules read:rules_configs read:users"))
        .await;
    let (status, _) = app
        .api(
            "POST",
            &format!("/rules/{rule}/replay"),
            &enough,
            Some(json!({"script": LIVE})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_action_replay_runs_the_draft_with_the_actions_secrets_against_the_live_version() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let live = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/tier', 'gold'); };";
    let (status, a) = app
        .api(
            "POST",
            "/actions/actions",
            &token,
            Some(
                json!({"name": "tier", "supported_triggers": [{"id": "post-login"}], "code": live,
                        "secrets": [{"name": "TIER", "value": "silver"}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    app.deploy_action(&token, &id).await;
    assert_eq!(
        app.bind(&token, "post-login", &[&id]).await.0,
        StatusCode::OK
    );
    let (status, _) = app
        .api(
            "PATCH",
            "/tenants/settings",
            &token,
            Some(json!({"recording": {"enabled": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .api(
            "POST",
            "/users",
            &token,
            Some(json!({"email": "ann@example.com", "password": "ann's long password"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        login_as(&app, "ann@example.com", "ann's long password")
            .await
            .contains_key("code")
    );
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );

    // The draft (not live) denies Ann and takes the tier from a secret.
    let draft = "exports.onExecutePostLogin = async (event, api) => {
      if (event.user.email === 'ann@example.com') return api.access.deny('not ann');
      api.idToken.setCustomClaim('https://x/tier', event.secrets.TIER);
    };";
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/actions/actions/{id}"),
            &token,
            Some(json!({"code": draft})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/actions/actions/{id}/replay");
    let (status, report) = app
        .api("POST", &path, &token, Some(json!({"last": 10})))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["summary"]["inputs"], 2, "{report}");
    assert_eq!(report["summary"]["newly_denied"], 1, "{report}");
    assert_eq!(report["summary"]["changed"], 1, "{report}");
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs[1]["candidate"]["message"], "not ann");
    assert_eq!(
        inputs[0]["differences"]["id_token"]["changed"]["https://x/tier"],
        json!({"before": "gold", "after": "silver"})
    );
    // The live login is untouched by the draft.
    assert!(
        login_as(&app, "ann@example.com", "ann's long password")
            .await
            .contains_key("code")
    );

    // A `code` given is the candidate instead of the draft; bad input is clear.
    let (_, report) = app
        .api(
            "POST",
            &path,
            &token,
            Some(json!({"code": live, "last": 2})),
        )
        .await;
    assert_eq!(report["summary"]["same"], 2, "{report}");
    // A recording that cannot be unsealed is left out and counted; the others still replay.
    let newest = recorded(&app).await[0].0.id.clone();
    sqlx::query("UPDATE recording SET sealed = $1 WHERE id = $2")
        .bind(vec![0u8; 40])
        .bind(&newest)
        .execute(&app.db().await)
        .await
        .unwrap();
    let (status, report) = app
        .api("POST", &path, &token, Some(json!({"code": live})))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["summary"]["unreadable"], 1, "{report}");
    assert_eq!(
        report["summary"]["inputs"], 2,
        "three recorded, one unreadable: {report}"
    );
    let (status, body) = app
        .api(
            "POST",
            &path,
            &token,
            Some(json!({"code": "exports.onExecutePostLogin = async (event, api) => {"})),
        )
        .await;
    assert!(status.is_client_error(), "{body}");
    let (status, body) = app
        .api("POST", &path, &token, Some(json!({"last": 0})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .api(
            "POST",
            "/actions/actions/nope/replay",
            &token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let narrow = app.mgmt_token(Some("update:actions")).await;
    let (status, _) = app.api("POST", &path, &narrow, Some(json!({}))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "recorded users take read:users"
    );
}

#[tokio::test]
async fn a_replay_sends_no_request_even_to_an_allowed_host_that_the_live_login_reached() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app_reaching_loopback().await;
    let token = app.mgmt_token(None).await;
    // A listener that counts every connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let router = axum::Router::new().route(
        "/score",
        axum::routing::get(|| async { axum::Json(json!({"score": 7})) }),
    );
    let router = router.layer(axum::middleware::from_fn(
        move |req, next: axum::middleware::Next| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                next.run(req).await
            }
        },
    ));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (status, _) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"rules": {"allowed_hosts": [format!("127.0.0.1:{port}")]}, "recording": {"enabled": true}})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let fetching = format!(
        "function (user, context, callback) {{
           fetch('http://127.0.0.1:{port}/score').then(function (r) {{ return r.json(); }})
           .catch(function (e) {{ return {{ score: String(e && e.message || e) }}; }})
           .then(function (b) {{ context.idToken['https://x/score'] = b.score; callback(null, user, context); }});
         }}"
    );
    let rule = app.add_script("score", &fetching).await;
    let claims = login_claims(&app).await.expect("the login passes");
    assert_eq!(
        claims["https://x/score"], 7,
        "the live login reached the host"
    );
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(before, 1);

    let (status, report) = app
        .api(
            "POST",
            &format!("/rules/{rule}/replay"),
            &token,
            Some(json!({"script": fetching})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["summary"]["inputs"], 1);
    assert_eq!(report["summary"]["same"], 1, "{report}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "nothing left the server"
    );
}
