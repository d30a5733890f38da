// Recording pipeline inputs for replay (SPEC §18): off by default, bounded, sealed, without
// configuration values, deleted with their user or when recording is turned off.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const TAG_RULE: &str =
    "function (user, context, callback) { context.idToken['https://x/tier'] = configuration.TIER; callback(null, user, context); }";

/// The tenant's recorded inputs, newest first, unsealed.
async fn recorded(app: &TestApp) -> Vec<(wardstone::store::RecordingRow, Value)> {
    app.rules.journal().flush().await;
    let rows = app
        .store
        .recent_recordings(&app.tenant_id().await, 100)
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            let plain = app
                .master_key
                .open(&format!("recording:{}", row.id), &row.sealed)
                .expect("sealed with the master key, bound to its row");
            let input = serde_json::from_slice(&plain).unwrap();
            (row, input)
        })
        .collect()
}

#[tokio::test]
async fn recording_is_off_by_default_and_keeps_the_last_runs_sealed_without_configuration() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    app.add_script("tier", TAG_RULE).await;
    let (status, _) = app
        .api("PUT", "/rules-configs/TIER", &token, Some(json!({"value": "gold-c0nfig-value"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, settings) = app.api("GET", "/tenants/settings", &token, None).await;
    assert_eq!(settings["recording"], json!({"enabled": false, "keep": 0}));
    assert!(app.authorize_outcome(&Browser::new(), &[]).await.contains_key("code"));
    assert!(recorded(&app).await.is_empty(), "nothing is recorded unless the tenant asks");

    // Turned on, only the recording part changes.
    let (status, _) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"rules": {"allowed_hosts": ["api.example.com"]}})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, settings) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"recording": {"enabled": true, "keep": 2}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["recording"], json!({"enabled": true, "keep": 2}));
    assert_eq!(settings["rules"]["allowed_hosts"], json!(["api.example.com"]));

    let tokens = app.tokens(&Browser::new()).await;
    for _ in 0..2 {
        assert!(app.authorize_outcome(&Browser::new(), &[]).await.contains_key("code"));
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
    assert_eq!(input["event"]["client"]["client_id"], app.client_id.as_str());
    assert!(row.created_at >= runs[1].0.created_at);
    for (row, input) in &runs {
        let text = input.to_string();
        assert!(!text.contains("gold-c0nfig-value"), "configuration values are never recorded: {text}");
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
        json!({"recording": true}),
    ] {
        let (status, body) = app.api("PATCH", "/tenants/settings", &token, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let (_, body) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"recording": {"enabled": true, "keep": 9000}})))
        .await;
    assert!(body["message"].as_str().unwrap().contains("recording.keep must be 1 to 5000"), "{body}");
    let (_, settings) = app.api("GET", "/tenants/settings", &token, None).await;
    assert_eq!(settings["recording"], json!({"enabled": true, "keep": 2}));
    assert_eq!(recorded(&app).await.len(), 2);

    // Keeping fewer drops the oldest at once; turning it off deletes everything.
    let (_, settings) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"recording": {"enabled": true, "keep": 1}})))
        .await;
    assert_eq!(settings["recording"]["keep"], 1);
    assert_eq!(recorded(&app).await.len(), 1);
    let (_, settings) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"recording": {"enabled": false}})))
        .await;
    assert_eq!(settings["recording"], json!({"enabled": false, "keep": 0}));
    assert!(recorded(&app).await.is_empty());
    assert!(app.authorize_outcome(&Browser::new(), &[]).await.contains_key("code"));
    assert!(recorded(&app).await.is_empty());
}

#[tokio::test]
async fn a_users_recorded_runs_are_deleted_with_the_user() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    app.add_script("tier", TAG_RULE).await;
    let (status, _) = app
        .api("PATCH", "/tenants/settings", &token, Some(json!({"recording": {"enabled": true}})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, settings) = app.api("GET", "/tenants/settings", &token, None).await;
    assert_eq!(settings["recording"]["keep"], 500, "the default");
    for _ in 0..3 {
        assert!(app.authorize_outcome(&Browser::new(), &[]).await.contains_key("code"));
    }
    assert_eq!(recorded(&app).await.len(), 3);
    let (status, _) = app
        .api("DELETE", &format!("/users/{}", app.user_id), &token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(recorded(&app).await.is_empty(), "nothing of the user is left");
}
