// Failures at the token endpoint, code replay, PKCE, expiry and refresh rotation.

use reqwest::StatusCode;

use super::*;

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_with_a_basic_challenge() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    let resp = app
        .token_request(&form, Some((&app.client_id, "wrong-secret")))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(error_of(resp).await.1, "invalid_client");

    let resp = app
        .token_request(&form, Some(("unknown-client", "whatever")))
        .await;
    assert_eq!(error_of(resp).await.1, "invalid_client");

    let mut post = form.to_vec();
    post.push(("client_id", &app.client_id));
    post.push(("client_secret", "wrong"));
    let resp = app.token_request(&post, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers().get("www-authenticate").is_none(),
        "no Basic challenge for client_secret_post"
    );

    let resp = app.token_request(&form, None).await;
    assert_eq!(
        error_of(resp).await.1,
        "invalid_client",
        "no authentication at all"
    );

    // The code was not spent by the failures: the real client still redeems it.
    let mut post = form.to_vec();
    post.push(("client_id", &app.client_id));
    post.push(("client_secret", &app.client_secret));
    let resp = app.token_request(&post, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "client_secret_post works");
}

#[tokio::test]
async fn concurrent_exchanges_each_store_a_refresh_token_that_works() {
    // Concurrent exchanges' refresh tokens are written together, many rows per statement:
    // every one must be stored, each once.
    let app = spawn_app().await;
    let browser = Browser::new();
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(app.code(&browser, &[]).await);
    }
    let answers = futures_util::future::join_all(codes.iter().map(|c| app.exchange(c))).await;
    let mut refresh_tokens = Vec::new();
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::OK);
        let body: serde_json::Value = resp.json().await.unwrap();
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    let refreshed =
        futures_util::future::join_all(refresh_tokens.iter().map(|t| app.refresh(t))).await;
    for resp in refreshed {
        assert_eq!(resp.status(), StatusCode::OK);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["refresh_token"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn a_code_sent_many_times_at_once_is_exchanged_once() {
    // Concurrent redemptions share one statement on SQLite: a code named several times in one
    // batch must still go to one request only, and the other codes of the batch to theirs.
    let app = spawn_app().await;
    let browser = Browser::new();
    let shared = app.code(&browser, &[]).await;
    let mut codes = vec![shared.clone(); 8];
    for _ in 0..4 {
        codes.push(app.code(&browser, &[]).await);
    }
    let answers = futures_util::future::join_all(codes.iter().map(|c| app.exchange(c))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    let ok = |s: &&StatusCode| **s == StatusCode::OK;
    assert_eq!(statuses[..8].iter().filter(ok).count(), 1, "{statuses:?}");
    assert_eq!(statuses[8..].iter().filter(ok).count(), 4, "{statuses:?}");
}

#[tokio::test]
async fn a_code_works_once_and_its_replay_revokes_what_it_issued() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    let first: serde_json::Value = app.exchange(&code).await.json().await.unwrap();
    let (status, error, _) = error_of(app.exchange(&code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_of(app.refresh(refresh).await).await.1,
        "invalid_grant",
        "the refresh token of the replayed code is revoked"
    );
    let resp = app.userinfo(first["access_token"].as_str().unwrap()).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "so is its access token at userinfo"
    );
}

#[tokio::test]
async fn redirect_uri_must_match_at_the_token_endpoint() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    for redirect in [
        Some("http://localhost:9999/other"),
        Some("http://localhost:9999/callback/"),
    ] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
        ];
        if let Some(r) = redirect {
            form.push(("redirect_uri", r));
        }
        let resp = app
            .token_request(&form, Some((&app.client_id, &app.client_secret)))
            .await;
        assert_eq!(error_of(resp).await.1, "invalid_grant", "{redirect:?}");
    }
}

#[tokio::test]
async fn pkce_verifier_must_match_and_cannot_be_downgraded() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let code = app.code(&browser, &[]).await;
    let try_with = |verifier: Option<&'static str>, code: String| {
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", CALLBACK.to_string()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.token_request(&form, Some((&app.client_id, &app.client_secret)))
                .await
        }
    };
    let wrong = "wrong-verifier-wrong-verifier-wrong-verifier-wrong";
    assert_eq!(
        error_of(try_with(Some(wrong), code.clone()).await).await.1,
        "invalid_grant"
    );
    assert_eq!(
        error_of(try_with(None, code.clone()).await).await.1,
        "invalid_grant"
    );
    assert_eq!(
        try_with(Some(VERIFIER), code).await.status(),
        StatusCode::OK
    );

    // Downgrade: no challenge at /authorize, a verifier at /oauth/token.
    let code = app
        .code(
            &browser,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        )
        .await;
    assert_eq!(
        error_of(try_with(Some(VERIFIER), code.clone()).await)
            .await
            .1,
        "invalid_grant"
    );
    assert_eq!(
        try_with(None, code).await.status(),
        StatusCode::OK,
        "confidential clients may skip PKCE"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    app.clock.advance(301);
    let (_, error, body) = error_of(app.exchange(&code).await).await;
    assert_eq!(error, "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn a_code_is_bound_to_its_client() {
    let app = spawn_app().await;
    let other = app
        .admin
        .create_client(&app.t().await, "Other", &[CALLBACK.into()], false)
        .await
        .unwrap();
    let code = app.code(&Browser::new(), &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    let resp = app
        .token_request(
            &form,
            Some((&other.client_id, other.client_secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(error_of(resp).await.1, "invalid_grant");
    assert_eq!(
        app.exchange(&code).await.status(),
        StatusCode::OK,
        "another client's attempt does not burn the code"
    );
}

#[tokio::test]
async fn public_clients_redeem_with_pkce_and_no_secret() {
    let app = spawn_app().await;
    let public = app
        .admin
        .create_client(&app.t().await, "SPA", &[CALLBACK.into()], true)
        .await
        .unwrap();
    let code = app
        .code(&Browser::new(), &[("client_id", &public.client_id)])
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", &public.client_id),
        ("code_verifier", VERIFIER),
    ];
    let resp = app.token_request(&form, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let resp = app.refresh(&rt1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second: serde_json::Value = resp.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "rotated");
    let (_, id) = app
        .verify(second["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(id["sub"], app.user_id);
    assert_eq!(second["scope"], "email offline_access openid profile");

    // Past the grace period for a lost answer, presenting the old token again is reuse.
    app.clock
        .advance(wardstone::config::Lifetimes::default().refresh_reuse_grace + 1);
    assert_eq!(
        error_of(app.refresh(&rt1).await).await.1,
        "invalid_grant",
        "a rotated token is refused"
    );
    assert_eq!(
        error_of(app.refresh(&rt2).await).await.1,
        "invalid_grant",
        "and its whole family is revoked"
    );
}

#[tokio::test]
async fn refresh_can_narrow_but_not_widen_scope() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("scope", "openid admin"),
    ];
    let resp = app
        .token_request(&form, Some((&app.client_id, &app.client_secret)))
        .await;
    assert_eq!(error_of(resp).await.1, "invalid_scope");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("scope", "openid"),
    ];
    let narrowed: serde_json::Value = app
        .token_request(&form, Some((&app.client_id, &app.client_secret)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrowed["scope"], "openid");
    // The new refresh token keeps the full grant.
    let again: serde_json::Value = app
        .refresh(narrowed["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["scope"], "email offline_access openid profile");
}

#[tokio::test]
async fn refresh_tokens_expire_and_are_bound_to_their_client() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let other = app
        .admin
        .create_client(&app.t().await, "Other", &[CALLBACK.into()], false)
        .await
        .unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let resp = app
        .token_request(
            &form,
            Some((&other.client_id, other.client_secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(error_of(resp).await.1, "invalid_grant");
    app.clock.advance(30 * 24 * 3600 + 1);
    assert_eq!(error_of(app.refresh(rt).await).await.1, "invalid_grant");
}

#[tokio::test]
async fn malformed_token_requests_get_rfc6749_errors() {
    let app = spawn_app().await;
    let basic = Some((app.client_id.as_str(), app.client_secret.as_str()));
    let (status, error, _) = error_of(
        app.token_request(&[("grant_type", "password")], basic)
            .await,
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    assert_eq!(
        error_of(app.token_request(&[("code", "x")], basic).await)
            .await
            .1,
        "invalid_request"
    );
    assert_eq!(
        error_of(
            app.token_request(&[("grant_type", "authorization_code")], basic)
                .await
        )
        .await
        .1,
        "invalid_request"
    );
    assert_eq!(
        error_of(
            app.token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "bogus"),
                    ("redirect_uri", CALLBACK)
                ],
                basic
            )
            .await
        )
        .await
        .1,
        "invalid_grant"
    );
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(resp).await.1,
        "invalid_request",
        "JSON bodies are not form posts"
    );
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .body("grant_type=refresh_token&grant_type=authorization_code")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(resp).await.1,
        "invalid_request",
        "repeated parameters"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_grant() {
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/revoke"))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(error_of(app.refresh(rt).await).await.1, "invalid_grant");
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_client_credentials_win_over_a_malformed_body() {
    let app = spawn_app().await;
    let resp = app
        .token_request(
            &[("grant_type", "password")],
            Some((&app.client_id, "wrong")),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(error_of(resp).await.1, "invalid_client");
}

#[tokio::test]
async fn a_missing_redirect_uri_is_invalid_request() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
    ];
    let resp = app
        .token_request(&form, Some((&app.client_id, &app.client_secret)))
        .await;
    assert_eq!(error_of(resp).await.1, "invalid_request");
}

#[tokio::test]
async fn a_code_replayed_after_pruning_still_revokes_its_grant() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[]).await;
    let first: serde_json::Value = app.exchange(&code).await.json().await.unwrap();
    app.clock.advance(2 * 3600);
    app.store
        .prune_expired(app.clock.now(), 31 * 24 * 3600)
        .await
        .unwrap();
    assert_eq!(error_of(app.exchange(&code).await).await.1, "invalid_grant");
    assert_eq!(
        error_of(app.refresh(first["refresh_token"].as_str().unwrap()).await)
            .await
            .1,
        "invalid_grant"
    );
}
