// `serve --demo`: the seed's whole scenario — a server-side web app signs a user in through
// Wardstone, calls an API with the access token (the demo rule's claim shows the protocol),
// refreshes, and logs out — driven over HTTP as a browser would.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

const DEMO_EMAIL: &str = "demo@example.com";
const DEMO_PASSWORD: &str = "wardstone-demo";

/// The web app's page and the action URL of the form whose button says `label`.
async fn page_and_form(
    browser: &Browser,
    url: &str,
    label: &str,
) -> (String, String, Vec<(String, String)>) {
    let html = browser.get(url).await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let forms = scraper::Selector::parse("form").unwrap();
    let inputs = scraper::Selector::parse("input").unwrap();
    let form = doc
        .select(&forms)
        .find(|f| f.text().any(|t| t.contains(label)))
        .unwrap_or_else(|| panic!("no {label:?} button in {html}"));
    let action = url::Url::parse(url)
        .unwrap()
        .join(form.value().attr("action").unwrap())
        .unwrap()
        .to_string();
    let fields = form
        .select(&inputs)
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_string(),
                i.value().attr("value").unwrap_or("").to_string(),
            ))
        })
        .collect();
    (html, action, fields)
}

/// The text of the API's answer shown on the web app's page.
fn api_answer(page: &str) -> String {
    let doc = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse("#api-answer").unwrap();
    doc.select(&sel)
        .next()
        .map(|e| e.text().collect())
        .unwrap_or_else(|| panic!("no API answer in {page}"))
}

/// Clicks `label` on the web app's home page and follows redirects (through Wardstone when
/// it sends the browser there) until a page answers; returns its URL and HTML.
async fn click(browser: &Browser, webapp: &str, label: &str) -> (String, String) {
    let (_, action, fields) = page_and_form(browser, webapp, label).await;
    let mut resp = browser.post_form(&action, &fields).await;
    let mut url = action;
    while resp.status() == StatusCode::SEE_OTHER {
        url = location(&resp);
        resp = browser.get(&url).await;
    }
    (url, resp.text().await.unwrap())
}

/// Submits Wardstone's login page at `url` with the demo credentials, then consents if asked;
/// follows redirects back to the web app and returns its page.
async fn sign_in(browser: &Browser, url: &str, html: &str) -> String {
    let (action, mut fields) = form(html, url);
    set_field(&mut fields, "username", DEMO_EMAIL);
    set_field(&mut fields, "password", DEMO_PASSWORD);
    let mut next = location(&browser.post_form(&action, &fields).await);
    if next.contains("/consent?tx=") {
        let html = browser.get(&next).await.text().await.unwrap();
        let (action, mut fields) = form(&html, &next);
        set_field(&mut fields, "decision", "allow");
        next = location(&browser.post_form(&action, &fields).await);
    }
    let mut resp = browser.get(&next).await;
    while resp.status() == StatusCode::SEE_OTHER {
        resp = browser.get(&location(&resp)).await;
    }
    resp.text().await.unwrap()
}

#[tokio::test]
async fn the_demo_web_app_signs_in_calls_the_api_refreshes_and_logs_out() {
    let app = spawn_app_with(|o| o.demo = true).await;
    let (webapp, _) = app.demo.clone().expect("the demo runs");
    let browser = Browser::new();
    let home = browser.get(&webapp).await.text().await.unwrap();
    assert!(home.contains("Log in"), "{home}");

    let (url, html) = click(&browser, &webapp, "Log in").await;
    assert!(url.contains("/t/demo/login?tx="), "the login page: {url}");
    let page = sign_in(&browser, &url, &html).await;
    assert!(
        page.contains("Demo User") && page.contains(DEMO_EMAIL),
        "{page}"
    );

    let (_, page) = click(&browser, &webapp, "Call the API").await;
    let answer = api_answer(&page);
    assert!(answer.starts_with("HTTP 200"), "{answer}");
    assert!(
        answer.contains(r#""https://demo.wardstone.dev/protocol": "oidc-basic-profile""#),
        "{answer}"
    );
    let claims: Value = serde_json::from_str(answer.split_once('\n').unwrap().1).unwrap();
    assert_eq!(
        claims["claims"]["https://demo.wardstone.dev/roles"],
        serde_json::json!(["demo-user", "reader"]),
        "the demo rule adds the user's roles"
    );

    let (_, page) = click(&browser, &webapp, "Refresh tokens").await;
    assert!(page.contains("Tokens refreshed."), "{page}");
    let (_, page) = click(&browser, &webapp, "Call the API").await;
    let answer = api_answer(&page);
    assert!(
        answer.contains(r#""https://demo.wardstone.dev/protocol": "oauth2-refresh-token""#),
        "{answer}"
    );

    let (url, page) = click(&browser, &webapp, "Log out").await;
    assert!(
        url.starts_with(&format!("{webapp}?state=")),
        "Wardstone sent the browser back to the app with its state: {url}"
    );
    assert!(page.contains("Log in"), "{page}");
    let (url, _) = click(&browser, &webapp, "Log in").await;
    assert!(
        url.contains("/t/demo/login?tx="),
        "the Wardstone session is over: {url}"
    );
}

#[tokio::test]
async fn the_demo_web_app_shows_a_rules_denial() {
    let app = spawn_app_with(|o| o.demo = true).await;
    let (webapp, _) = app.demo.clone().expect("the demo runs");
    let demo = app.admin.resolve("demo").await.unwrap();
    app.admin
        .add_rule(&demo, "deny", &wat_sample("deny.wat"), None, true)
        .await
        .unwrap();
    let browser = Browser::new();
    let (url, html) = click(&browser, &webapp, "Log in").await;
    let page = sign_in(&browser, &url, &html).await;
    assert!(
        page.contains("Wardstone did not sign you in (access_denied)"),
        "{page}"
    );
    assert!(page.contains("Log in"), "still signed out: {page}");
}

#[tokio::test]
async fn the_demo_api_answers_rfc_6750_errors() {
    let app = spawn_app_with(|o| o.demo = true).await;
    let (_, api) = app.demo.clone().expect("the demo runs");
    let http = reqwest::Client::new();
    let resp = http.get(&api).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let resp = http.get(&api).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // A token of another tenant (the test tenant's) is not for this API.
    let tokens = app.tokens(&Browser::new()).await;
    for token in ["access_token", "id_token"] {
        let resp = http
            .get(&api)
            .bearer_auth(tokens[token].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{token}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{token}");
    }
}
