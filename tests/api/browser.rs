//! The seed's whole scenario in a real browser: headless Chromium (through chromedriver and
//! the `fantoccini` WebDriver client) uses `serve --demo`'s web app, which signs in through
//! Wardstone's pages, calls the API, refreshes, logs out, and shows a rule's denial.
//!
//! Without `chromedriver` on the PATH the test skips with one line, unless
//! `WARDSTONE_REQUIRE_BROWSER` is set (CI sets it: there a missing browser is a failure).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::helpers::*;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port, and a headless Chromium session through it.
async fn browser() -> Option<(Driver, Client)> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("WARDSTONE_REQUIRE_BROWSER").is_none(),
            "WARDSTONE_REQUIRE_BROWSER is set but chromedriver is not installed"
        );
        eprintln!(
            "skipping the browser tests: chromedriver (Debian: chromium-driver) is not installed"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1000,900"
        ]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Some((driver, client))
}

/// Marks the current document, runs `action`, and waits until a new document has loaded
/// (every click here submits a form that navigates, often through several redirects).
async fn navigating<F: std::future::Future<Output = ()>>(c: &Client, action: F) {
    c.execute("document.documentElement.dataset.old = '1'", vec![])
        .await
        .unwrap();
    action.await;
    let started = Instant::now();
    loop {
        let fresh = c
            .execute(
                "return document.readyState === 'complete' && !document.documentElement.dataset.old",
                vec![],
            )
            .await
            .map(|v| v == serde_json::Value::Bool(true))
            .unwrap_or(false);
        if fresh {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the page never changed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn click_button(c: &Client, label: &str) {
    let button = c
        .find(Locator::XPath(&format!(
            "//button[normalize-space()='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no {label:?} button: {e}"));
    navigating(c, async { button.click().await.unwrap() }).await;
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Fills Wardstone's login page and allows on the consent page when it comes.
async fn sign_in(c: &Client) {
    c.find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("demo@example.com")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("wardstone-demo")
        .await
        .unwrap();
    click_button(c, "Continue").await;
    if c.current_url()
        .await
        .unwrap()
        .as_str()
        .contains("/consent?tx=")
    {
        let allow = c.find(Locator::Css("button[value=allow]")).await.unwrap();
        navigating(c, async { allow.click().await.unwrap() }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_runs_the_whole_demo_scenario() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let app = spawn_app_on(Backend::Sqlite, |o| o.demo = true).await;
    let (webapp, _) = app.demo.clone().expect("the demo runs");

    c.goto(&webapp).await.unwrap();
    click_button(&c, "Log in").await;
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().contains("/t/demo/login?tx="),
        "Wardstone's login page: {url}"
    );
    sign_in(&c).await;
    assert!(
        c.current_url().await.unwrap().as_str().starts_with(&webapp),
        "back in the app"
    );
    assert_eq!(text_of(&c, "#user-name").await, "Demo User");
    assert_eq!(text_of(&c, "#user-email").await, "demo@example.com");

    click_button(&c, "Call the API").await;
    let answer = text_of(&c, "#api-answer").await;
    assert!(answer.starts_with("HTTP 200"), "{answer}");
    assert!(
        answer.contains(r#""https://demo.wardstone.dev/protocol": "oidc-basic-profile""#),
        "{answer}"
    );
    if let Ok(dir) = std::env::var("WARDSTONE_SCREENSHOTS") {
        std::fs::write(format!("{dir}/webapp.png"), c.screenshot().await.unwrap()).unwrap();
    }

    click_button(&c, "Refresh tokens").await;
    click_button(&c, "Call the API").await;
    let answer = text_of(&c, "#api-answer").await;
    assert!(
        answer.contains(r#""https://demo.wardstone.dev/protocol": "oauth2-refresh-token""#),
        "{answer}"
    );

    click_button(&c, "Log out").await;
    assert!(
        c.current_url().await.unwrap().as_str().starts_with(&webapp),
        "back in the app"
    );
    click_button(&c, "Log in").await;
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().contains("/t/demo/login?tx="),
        "the session is over: {url}"
    );

    // A rule that denies: the app tells the user.
    let demo = app.admin.resolve("demo").await.unwrap();
    app.admin
        .add_rule(&demo, "deny", &wat_sample("deny.wat"), None, true)
        .await
        .unwrap();
    sign_in(&c).await;
    let error = text_of(&c, ".error").await;
    assert!(
        error.contains("Wardstone did not sign you in (access_denied)"),
        "{error}"
    );
    c.close().await.unwrap();
}
