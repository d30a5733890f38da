// The userinfo endpoint and bearer token handling.

use reqwest::StatusCode;

use super::*;

#[tokio::test]
async fn userinfo_returns_the_claims_the_scopes_allow() {
    let app = spawn_app().await;
    let code = app
        .code(&Browser::new(), &[("scope", "openid email")])
        .await;
    let tokens: serde_json::Value = app.exchange(&code).await.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    let info: serde_json::Value = app.userinfo(at).await.json().await.unwrap();
    assert_eq!(info["sub"], app.user_id);
    assert_eq!(info["email"], EMAIL);
    assert!(info.get("name").is_none(), "no profile scope, no name");

    let resp = reqwest::Client::new()
        .post(app.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "POST with the token in the body"
    );
}

#[tokio::test]
async fn userinfo_refuses_bad_bearer_tokens() {
    let app = spawn_app().await;
    let resp = reqwest::get(app.url("/userinfo")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    for bad in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let resp = app.userinfo(bad).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }

    let tokens = app.tokens(&Browser::new()).await;
    let at = tokens["access_token"].as_str().unwrap();
    // A token of another tenant does not work here.
    app.admin
        .create_tenant("other", Default::default())
        .await
        .unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{}/t/other/userinfo", app.base))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The ID token is not an access token.
    assert_eq!(
        app.userinfo(tokens["id_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Tampering breaks the signature.
    let mut tampered = at.to_string();
    tampered.pop();
    tampered.push(if at.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        app.userinfo(&tampered).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Expiry follows the server's clock.
    app.clock.advance(3601);
    assert_eq!(app.userinfo(at).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_needs_the_openid_scope() {
    let app = spawn_app().await;
    let code = app.code(&Browser::new(), &[("scope", "profile")]).await;
    let tokens: serde_json::Value = app.exchange(&code).await.json().await.unwrap();
    assert!(tokens.get("id_token").is_none(), "no openid, no ID token");
    let resp = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
}
