// `GET /metrics`: the operator's view of logins, tokens, rules and HTTP traffic, with labels
// that can never grow without bound.

use reqwest::StatusCode;

use super::*;

pub(super) async fn scrape(app: &TestApp) -> String {
    let resp = reqwest::get(format!("{}/metrics", app.base)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    resp.text().await.unwrap()
}

/// The value of the sample line `series` (name and labels exactly as exposed).
pub(super) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_logins_tokens_rules_and_requests() {
    let app = spawn_app().await;
    app.add_rule("roles", &sample_rule("add-roles")).await;
    let browser = Browser::new();
    // One wrong password, then a real login with a rule, an exchange and a refresh.
    let wrong = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, "not the password")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let tokens = app.tokens(&browser).await;
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let missing = reqwest::get(format!("{}/no/such/page/{}", app.base, app.user_id))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let text = scrape(&app).await;
    let value =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        value(r#"wardstone_logins_total{outcome="wrong_credentials"}"#),
        1.0
    );
    assert_eq!(value(r#"wardstone_logins_total{outcome="success"}"#), 1.0);
    assert_eq!(
        value(r#"wardstone_tokens_issued_total{grant_type="authorization_code"}"#),
        1.0
    );
    assert_eq!(
        value(r#"wardstone_tokens_issued_total{grant_type="refresh_token"}"#),
        1.0
    );
    // The rule ran at the login and at the refresh.
    assert_eq!(
        value(r#"wardstone_rule_executions_total{outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        value("wardstone_rule_execution_duration_seconds_count"),
        2.0
    );
    assert_eq!(value("wardstone_rule_fuel_consumed_count"), 2.0);
    assert!(value("wardstone_rule_fuel_consumed_sum") > 1000.0);
    assert!(
        value("wardstone_rule_module_cache_hits_total")
            + value("wardstone_rule_module_cache_misses_total")
            >= 2.0
    );
    // The client was read from the database once; the authorize, login, token and refresh
    // requests after that were served from memory (the generation did not change). Keys and the
    // rule set were read once and served again at the refresh.
    assert_eq!(value("wardstone_client_cache_misses_total"), 1.0);
    assert!(value("wardstone_client_cache_hits_total") >= 3.0);
    for cache in ["signing_key", "rule_set"] {
        assert!(value(&format!("wardstone_{cache}_cache_misses_total")) >= 1.0);
        assert!(value(&format!("wardstone_{cache}_cache_hits_total")) >= 1.0);
    }
    assert_eq!(
        value(r#"wardstone_http_requests_total{route="/t/{tenant}/oauth/token",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"wardstone_http_requests_total{route="/t/{tenant}/login",status="401"}"#),
        1.0
    );
    assert_eq!(
        value(r#"wardstone_http_requests_total{route="unmatched",status="404"}"#),
        1.0
    );
    assert!(
        text.contains(r#"wardstone_http_request_duration_seconds_bucket{le="#)
            || text.contains("wardstone_http_request_duration_seconds_bucket{route=")
    );
    // Bounded labels: no raw path, user id or tenant name.
    assert!(!text.contains(&app.user_id), "no user id in labels");
    assert!(!text.contains("/no/such/page"), "no raw path in labels");
    assert!(
        !text.contains(&format!("/t/{}/", app.tenant)),
        "no tenant name in labels"
    );
}
