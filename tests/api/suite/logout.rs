// RP-Initiated Logout 1.0: the end_session_endpoint ends the Wardstone session, sends the
// browser only to a URL registered on the application, and never lets a cross-site link end
// a session without the user's say.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const AFTER_LOGOUT: &str = "http://127.0.0.1:9/after-logout";

async fn register_logout_url(app: &TestApp) {
    let token = app.mgmt_token(None).await;
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &token,
            Some(json!({"allowed_logout_urls": [AFTER_LOGOUT]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["allowed_logout_urls"], json!([AFTER_LOGOUT]));
}

async fn end_session_endpoint(app: &TestApp) -> String {
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    discovery["end_session_endpoint"]
        .as_str()
        .expect("discovery names the end_session_endpoint")
        .to_string()
}

fn logout_url(endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(endpoint).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// Whether the browser's next authorize goes to the login page (its session is over).
async fn must_log_in(app: &TestApp, browser: &Browser) -> bool {
    location(&browser.get(&app.authorize_url(&[])).await).contains("/login?tx=")
}

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_session_and_returns_to_the_app() {
    let app = spawn_app().await;
    register_logout_url(&app).await;
    let endpoint = end_session_endpoint(&app).await;
    assert_eq!(endpoint, app.url("/oidc/logout"));
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    assert!(!must_log_in(&app, &browser).await, "signed in before");

    let resp = browser
        .get(&logout_url(
            &endpoint,
            &[
                ("id_token_hint", tokens["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "bye 1"),
            ],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("{AFTER_LOGOUT}?state=bye+1"));
    let cleared = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("wardstone_session=;"));
    assert!(cleared, "the session cookie is cleared");
    assert!(must_log_in(&app, &browser).await, "the session is over");
}

#[tokio::test]
async fn an_expired_id_token_still_serves_as_a_hint() {
    let app = spawn_app().await;
    register_logout_url(&app).await;
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    app.clock.advance(2 * 3600);
    let resp = browser
        .get(&logout_url(
            &app.url("/oidc/logout"),
            &[
                ("id_token_hint", tokens["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
            ],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), AFTER_LOGOUT);
}

#[tokio::test]
async fn logout_without_a_hint_asks_the_user_first() {
    let app = spawn_app().await;
    register_logout_url(&app).await;
    let browser = Browser::new();
    app.tokens(&browser).await;

    // A bare link (as a hostile page could embed) ends nothing by itself.
    let page_url = logout_url(
        &app.url("/oidc/logout"),
        &[
            ("client_id", app.client_id.as_str()),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "s2"),
        ],
    );
    let page = browser.get(&page_url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Log out"), "{html}");
    assert!(!must_log_in(&app, &browser).await, "still signed in");

    // A forged confirmation (wrong CSRF token) ends nothing either.
    let (action, mut fields) = form(&html, &page_url);
    let mut forged = fields.clone();
    set_field(&mut forged, "csrf", "forged");
    let resp = browser.post_form(&action, &forged).await;
    assert_eq!(resp.status(), StatusCode::OK, "asked again");
    assert!(!must_log_in(&app, &browser).await, "still signed in");

    // The user's own click does.
    set_field(&mut fields, "state", "s2");
    let resp = browser.post_form(&action, &fields).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("{AFTER_LOGOUT}?state=s2"));
    assert!(must_log_in(&app, &browser).await, "the session is over");
}

#[tokio::test]
async fn logout_without_a_redirect_shows_that_the_user_is_logged_out() {
    let app = spawn_app().await;
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    let resp = browser
        .get(&logout_url(
            &app.url("/oidc/logout"),
            &[("id_token_hint", tokens["id_token"].as_str().unwrap())],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("You are logged out"));
    assert!(must_log_in(&app, &browser).await);
    // Without any session, the same request is just as fine.
    let resp = Browser::new().get(&app.url("/oidc/logout")).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_logout_requests_get_an_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    register_logout_url(&app).await;
    let browser = Browser::new();
    let tokens = app.tokens(&browser).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let endpoint = app.url("/oidc/logout");
    let other = app
        .admin
        .create_client(&app.t().await, "Other", &[CALLBACK.to_string()], false)
        .await
        .unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
            "not registered",
        ),
        (
            vec![("post_logout_redirect_uri", AFTER_LOGOUT)],
            "needs an id_token_hint or a client_id",
        ),
        (
            vec![
                ("id_token_hint", "not.a.token"),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
            ],
            "not an ID token",
        ),
        (
            // An access token is not an ID token.
            vec![("id_token_hint", tokens["access_token"].as_str().unwrap())],
            "not an ID token",
        ),
        (
            vec![
                ("id_token_hint", id_token),
                ("client_id", other.client_id.as_str()),
            ],
            "does not match",
        ),
        (
            vec![
                ("client_id", other.client_id.as_str()),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
            ],
            "not registered",
        ),
        (
            vec![
                ("client_id", "nope"),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
            ],
            "Unknown application",
        ),
        (vec![("state", "a"), ("state", "b")], "repeated"),
    ];
    for (params, expected) in cases {
        let resp = browser.get(&logout_url(&endpoint, &params)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(resp.headers().get("location").is_none(), "{params:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(expected), "{params:?}: {html}");
    }
    assert!(
        !must_log_in(&app, &browser).await,
        "no bad request ended the session"
    );

    // Registering a bad logout URL is refused with the Management API's error format.
    let token = app.mgmt_token(None).await;
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &token,
            Some(json!({"allowed_logout_urls": ["http://evil.example/after"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["statusCode"], 400);
    let (_, client) = app
        .api("GET", &format!("/clients/{}", app.client_id), &token, None)
        .await;
    assert_eq!(
        client["allowed_logout_urls"],
        json!([AFTER_LOGOUT]),
        "nothing changed"
    );
}
