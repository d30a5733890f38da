// The whole authorization code grant as a browser and a web app see it.

use reqwest::StatusCode;

use super::*;

#[tokio::test]
async fn full_flow_issues_tokens_that_verify_against_the_jwks() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let callback = app
        .login_and_consent(&browser, &app.authorize_url(&[]))
        .await;
    let q = query_of(&callback);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.issuer, "RFC 9207 iss in the response");

    let resp = app.exchange(&q["code"]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "email offline_access openid profile");
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);

    let (typ, id) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(typ, "JWT");
    assert_eq!(id["iss"], app.issuer);
    assert_eq!(id["sub"], app.user_id);
    assert_eq!(id["aud"], app.client_id);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], EMAIL);
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["name"], "Alice Liddell");
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        id["at_hash"],
        wardstone::tokens::at_hash(Default::default(), access_token)
    );

    let (typ, at) = app.verify(access_token, &app.url("/userinfo")).await;
    assert_eq!(typ, "at+jwt", "RFC 9068 access token type");
    assert_eq!(at["client_id"], app.client_id);
    assert_eq!(at["sub"], app.user_id);
    assert!(at["jti"].as_str().is_some());

    let info: serde_json::Value = app.userinfo(access_token).await.json().await.unwrap();
    assert_eq!(info["sub"], app.user_id);
    assert_eq!(info["email"], EMAIL);
}

#[tokio::test]
async fn second_authorization_skips_login_and_remembered_consent() {
    let app = spawn_app().await;
    let browser = Browser::new();
    app.code(&browser, &[]).await;
    let resp = browser.get(&app.authorize_url(&[("state", "again")])).await;
    let callback = location(&resp);
    assert!(
        callback.starts_with(CALLBACK),
        "SSO session and remembered consent go straight back: {callback}"
    );
    assert_eq!(query_of(&callback)["state"], "again");
    assert!(
        app.exchange(&query_of(&callback)["code"])
            .await
            .status()
            .is_success()
    );

    // Asking for more than was granted shows the consent page again.
    let resp = browser
        .get(&app.authorize_url(&[("scope", "openid email")]))
        .await;
    assert!(
        location(&resp).starts_with(CALLBACK),
        "a subset of the remembered scopes needs no consent"
    );
    app.admin
        .create_api(
            &app.t().await,
            "https://api.acme.test/",
            Some("Acme API"),
            &["read:things=Read things".into()],
        )
        .await
        .unwrap();
    let resp = browser
        .get(&app.authorize_url(&[
            ("audience", "https://api.acme.test/"),
            ("scope", "openid read:things"),
        ]))
        .await;
    assert!(
        location(&resp).contains("/consent?tx="),
        "a new audience needs consent"
    );
}

#[tokio::test]
async fn access_token_for_an_api_names_it_as_audience_and_consent_lists_its_scopes() {
    let app = spawn_app().await;
    let api = "https://api.acme.test/";
    app.admin
        .create_api(
            &app.t().await,
            api,
            Some("Acme API"),
            &["read:invoices=Read your invoices".into()],
        )
        .await
        .unwrap();
    let browser = Browser::new();
    let url = app.authorize_url(&[
        ("audience", api),
        ("scope", "openid read:invoices unknown:scope"),
    ]);
    let resp = app.submit_login(&browser, &url, EMAIL, PASSWORD).await;
    let consent_url = location(&resp);
    let html = browser.get(&consent_url).await.text().await.unwrap();
    assert!(
        html.contains("Read your invoices"),
        "consent lists the API's scope descriptions"
    );
    assert!(html.contains("Acme API"));
    assert!(html.contains(r#"name="decision" value="allow""#));
    assert!(html.contains(r#"name="decision" value="deny""#));
    let callback = location(&app.submit_consent(&browser, &consent_url, "allow").await);
    let tokens: serde_json::Value = app
        .exchange(&query_of(&callback)["code"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        tokens["scope"], "openid read:invoices",
        "unknown scopes are dropped"
    );
    let (_, at) = app
        .verify(tokens["access_token"].as_str().unwrap(), api)
        .await;
    assert_eq!(at["aud"], serde_json::json!([api, app.url("/userinfo")]));
    assert_eq!(at["scope"], "openid read:invoices");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
}

#[tokio::test]
async fn denying_consent_returns_access_denied_to_the_app() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    let resp = app.submit_consent(&browser, &location(&resp), "deny").await;
    let q = query_of(&location(&resp));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.issuer);
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn prompt_none_reports_login_required_then_consent_required_then_succeeds() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let q = query_of(&location(
        &browser.get(&app.authorize_url(&[("prompt", "none")])).await,
    ));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-123");

    // Log in but stop at the consent page.
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    assert!(location(&resp).contains("/consent"));
    let q = query_of(&location(
        &browser.get(&app.authorize_url(&[("prompt", "none")])).await,
    ));
    assert_eq!(q["error"], "consent_required");

    app.code(&browser, &[]).await;
    let q = query_of(&location(
        &browser.get(&app.authorize_url(&[("prompt", "none")])).await,
    ));
    assert!(
        q.contains_key("code"),
        "session and consent: prompt=none succeeds silently: {q:?}"
    );
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login() {
    let app = spawn_app().await;
    let browser = Browser::new();
    app.code(&browser, &[]).await;
    let resp = browser
        .get(&app.authorize_url(&[("prompt", "login")]))
        .await;
    assert!(
        location(&resp).contains("/login?tx="),
        "prompt=login shows the login page despite the session"
    );

    app.clock.advance(120);
    let resp = browser.get(&app.authorize_url(&[("max_age", "60")])).await;
    assert!(
        location(&resp).contains("/login?tx="),
        "authentication older than max_age"
    );
    let resp = browser.get(&app.authorize_url(&[("max_age", "600")])).await;
    assert!(
        location(&resp).starts_with(CALLBACK),
        "recent enough for max_age=600"
    );

    // After logging in again, auth_time moves forward.
    let callback = app
        .login_and_consent(&browser, &app.authorize_url(&[("prompt", "login")]))
        .await;
    let tokens: serde_json::Value = app
        .exchange(&query_of(&callback)["code"])
        .await
        .json()
        .await
        .unwrap();
    let (_, id) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(id["auth_time"].as_i64().unwrap(), app.clock.now());
}

#[tokio::test]
async fn sessions_are_scoped_to_their_tenant() {
    let app = spawn_app().await;
    app.admin
        .create_tenant("other", Default::default())
        .await
        .unwrap();
    let other = app
        .admin
        .create_client(
            &app.admin.resolve("other").await.unwrap(),
            "Other App",
            &[CALLBACK.into()],
            false,
        )
        .await
        .unwrap();
    let browser = Browser::new();
    app.code(&browser, &[]).await;
    let url = format!(
        "{}/t/other/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&prompt=none",
        app.base,
        other.client_id,
        urlencode(CALLBACK)
    );
    let q = query_of(&location(&browser.get(&url).await));
    assert_eq!(
        q["error"], "login_required",
        "acme's session does not log the user into another tenant"
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
