use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wardstone::clock::Clock;
use wardstone::config::{Lifetimes, PublicUrl};
use wardstone::crypto::MasterKey;
use wardstone::service::Admin;
use wardstone::startup::{Application, ServerOptions};

pub use wardstone::domain::SigningAlg;

pub const PASSWORD: &str = "correct horse battery";
pub const EMAIL: &str = "alice@example.com";
pub const CALLBACK: &str = "http://localhost:9999/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mJ0z3Ct9h8mRwvmIWmpHhPPvzT2R7s-long-enough-verifier";

/// A running server with one tenant, one confidential client and one user.
pub struct TestApp {
    /// With `--demo`: the sample web app's and API's URLs.
    pub demo: Option<(String, String)>,
    pub base: String,
    pub issuer: String,
    pub tenant: String,
    pub clock: Clock,
    pub admin: Admin,
    pub store: wardstone::store::Store,
    pub client_id: String,
    pub client_secret: String,
    pub user_id: String,
    pub mgmt_client_id: String,
    pub database_url: String,
    pub master_key: MasterKey,
    pub mgmt_client_secret: String,
    /// The server's rules service (its module cache, execution log...).
    pub rules: wardstone::rules::Rules,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[allow(clippy::disallowed_methods)] // the test clock starts at the real time
fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty PostgreSQL database for one test, on the server named by
/// `WARDSTONE_TEST_POSTGRES_URL`. Databases of earlier runs are dropped on first use.
async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let base =
        std::env::var("WARDSTONE_TEST_POSTGRES_URL").expect("WARDSTONE_TEST_POSTGRES_URL is set");
    let connect = || async {
        sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"))
    };
    CLEANED
        .get_or_init(|| async {
            let mut conn = connect().await;
            let old: Vec<(String,)> = sqlx::query_as(
                "SELECT datname FROM pg_database WHERE datname LIKE 'ws\\_test\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for (name,) in old {
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        })
        .await;
    let name = format!("ws_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = connect().await;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A test app on `backend` whose server options `tweak` may change (public URL, limits, demo...).
pub async fn spawn_app_on(backend: Backend, tweak: impl FnOnce(&mut ServerOptions)) -> TestApp {
    spawn_app_signing_on(backend, SigningAlg::default(), tweak).await
}

/// A test app whose tenant signs with `alg`.
pub async fn spawn_app_signing_on(
    backend: Backend,
    alg: SigningAlg,
    tweak: impl FnOnce(&mut ServerOptions),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/wardstone.db", dir.path().display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    // Starts at the real time so third-party libraries that check `exp` and `iat` agree.
    let clock = Clock::manual(wall_clock());
    let master_key = MasterKey::generate();
    let mut options = ServerOptions {
        database_url: database_url.clone(),
        db_max_connections: 8,
        bind: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        master_key: Some(master_key.clone()),
        demo: false,
        lifetimes: Lifetimes::default(),
        rule_limits: wardstone::rules::Limits::default(),
        trusted_proxies: vec![],
    };
    tweak(&mut options);
    let public_url = options.public_url.clone();
    let app = Application::build(options, clock.clone())
        .await
        .expect("the server builds");
    let base = format!("http://{}", app.local_addr());
    let public = public_url
        .map(|u| u.as_str().to_string())
        .unwrap_or_else(|| base.clone());
    let demo = app
        .demo()
        .map(|d| (d.webapp_url.clone(), d.api_url.clone()));
    let store = app.provider().store().clone();
    let rules = app.provider().rules().clone();
    let passwords = app.provider().passwords().clone();
    let server = tokio::spawn(async move {
        app.run_until(std::future::pending()).await.unwrap();
    });
    let admin = Admin::new(
        store.clone(),
        master_key.clone(),
        PublicUrl::parse(&public).unwrap(),
        clock.clone(),
        rules.clone(),
        passwords,
    );
    let tenant = "acme".to_string();
    let created = admin.create_tenant(&tenant, alg).await.unwrap();
    let resolved = admin.resolve(&tenant).await.unwrap();
    let client = admin
        .create_client(&resolved, "Acme Web", &[CALLBACK.to_string()], false)
        .await
        .unwrap();
    let user = admin
        .create_user(&resolved, EMAIL, PASSWORD, Some("Alice Liddell"), true)
        .await
        .unwrap();
    TestApp {
        issuer: format!("{base}/t/{tenant}"),
        base,
        tenant,
        clock,
        admin,
        store,
        client_id: client.client_id,
        client_secret: client.client_secret.unwrap(),
        user_id: user.user_id,
        mgmt_client_id: created.management.client_id,
        database_url,
        master_key,
        mgmt_client_secret: created.management.client_secret,
        rules,
        demo,
        _dir: dir,
        _server: server,
    }
}

/// What the operator opens for tests whose upstream listens on loopback.
pub fn loopback_opened() -> wardstone::domain::PrivateRanges {
    wardstone::domain::PrivateRanges::new(vec!["127.0.0.1/32".parse().unwrap()])
}

/// A browser: keeps cookies, does not follow redirects so each step can be checked.
pub struct Browser {
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn post_form(&self, url: &str, form: &[(String, String)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }
}

/// The absolute URL of a 303's Location header.
pub fn location(resp: &reqwest::Response) -> String {
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "expected a 303 redirect from {}",
        resp.url()
    );
    let loc = resp.headers()["location"].to_str().unwrap();
    resp.url().join(loc).unwrap().to_string()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The fields of the first form in `html`, as a browser would submit them (hidden inputs and
/// inputs with values), plus the form's action resolved against `page_url`.
pub fn form(html: &str, page_url: &str) -> (String, Vec<(String, String)>) {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let input_sel = scraper::Selector::parse("input").unwrap();
    let form = doc.select(&form_sel).next().expect("the page has a form");
    let action = form.value().attr("action").unwrap_or("");
    let action = url::Url::parse(page_url)
        .unwrap()
        .join(action)
        .unwrap()
        .to_string();
    let fields = form
        .select(&input_sel)
        .filter_map(|i| {
            let name = i.value().attr("name")?;
            Some((
                name.to_string(),
                i.value().attr("value").unwrap_or("").to_string(),
            ))
        })
        .collect();
    (action, fields)
}

pub fn set_field(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_string(), value.to_string()));
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// An authorization URL with sensible defaults; `extra` overrides or adds parameters
    /// (an empty value removes one).
    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let challenge = challenge(VERIFIER);
        let mut params: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), self.client_id.clone()),
            ("redirect_uri".into(), CALLBACK.into()),
            ("scope".into(), "openid profile email offline_access".into()),
            ("state".into(), "st-123".into()),
            ("nonce".into(), "n-456".into()),
            ("code_challenge".into(), challenge),
            ("code_challenge_method".into(), "S256".into()),
        ];
        for (k, v) in extra {
            params.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                params.push((k.to_string(), v.to_string()));
            }
        }
        let mut url = url::Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// Goes from an authorize URL to the login page, and submits the credentials.
    /// Returns the response to the login POST.
    pub async fn submit_login(
        &self,
        browser: &Browser,
        authorize_url: &str,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let resp = browser.get(authorize_url).await;
        let login_url = location(&resp);
        assert!(
            login_url.contains("/login?tx="),
            "expected the login page, got {login_url}"
        );
        let page = browser.get(&login_url).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let (action, mut fields) = form(&html, &login_url);
        set_field(&mut fields, "username", email);
        set_field(&mut fields, "password", password);
        browser.post_form(&action, &fields).await
    }

    /// Submits the consent page at `consent_url` with `decision`; returns the POST's response.
    pub async fn submit_consent(
        &self,
        browser: &Browser,
        consent_url: &str,
        decision: &str,
    ) -> reqwest::Response {
        let page = browser.get(consent_url).await;
        assert_eq!(page.status(), StatusCode::OK, "consent page");
        let html = page.text().await.unwrap();
        let (action, mut fields) = form(&html, consent_url);
        set_field(&mut fields, "decision", decision);
        browser.post_form(&action, &fields).await
    }

    /// Whatever the browser is asked (login, consent), answers as the test user and allows;
    /// returns the callback URL the browser lands on.
    pub async fn login_and_consent(&self, browser: &Browser, authorize_url: &str) -> String {
        let next = self.sign_in_and_allow(browser, authorize_url).await;
        assert!(
            next.starts_with(CALLBACK),
            "expected the callback, got {next}"
        );
        next
    }

    /// Answers the login and consent pages as the test user; returns where the browser is sent
    /// next (the callback, or a page a rule or action redirected it to).
    pub async fn sign_in_and_allow(&self, browser: &Browser, authorize_url: &str) -> String {
        let mut next = location(&browser.get(authorize_url).await);
        if next.contains("/login?tx=") {
            let html = browser.get(&next).await.text().await.unwrap();
            let (action, mut fields) = form(&html, &next);
            set_field(&mut fields, "username", EMAIL);
            set_field(&mut fields, "password", PASSWORD);
            next = location(&browser.post_form(&action, &fields).await);
        }
        if next.contains("/consent?tx=") {
            next = location(&self.submit_consent(browser, &next, "allow").await);
        }
        next
    }

    /// A fresh login fails closed (`server_error`, no code) and the last execution's log says
    /// why with `why`.
    pub async fn assert_login_fails_closed(&self, why: &str) {
        let q = self.authorize_outcome(&Browser::new(), &[]).await;
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("server_error"),
            "{q:?}"
        );
        assert!(!q.contains_key("code"));
        let log = &self.logs(1).await[0];
        assert!(log.outcome.label().starts_with("failed:"), "{log:?}");
        assert!(
            log.logs.iter().any(|l| l.message.contains(why)),
            "the log says why: {log:?}"
        );
    }

    /// A code for the default request.
    pub async fn code(&self, browser: &Browser, extra: &[(&str, &str)]) -> String {
        let callback = self
            .login_and_consent(browser, &self.authorize_url(extra))
            .await;
        query_of(&callback)
            .remove("code")
            .expect("the callback has a code")
    }

    pub async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(self.url("/oauth/token"))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// Exchanges a code as the app's client (client_secret_basic) with the default verifier.
    pub async fn exchange(&self, code: &str) -> reqwest::Response {
        self.exchange_as(code, (&self.client_id, &self.client_secret))
            .await
    }

    /// Exchanges a code as `client` (id, secret: client_secret_basic) with the default verifier.
    pub async fn exchange_as(&self, code: &str, client: (&str, &str)) -> reqwest::Response {
        self.token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
            Some(client),
        )
        .await
    }

    /// A fresh login's tokens and the verified claims of its ID and access tokens.
    pub async fn login_claims(&self) -> (Value, Value, Value) {
        let tokens = self.tokens(&Browser::new()).await;
        let (id_token, access) = self.claims_of(&tokens).await;
        (tokens, id_token, access)
    }

    /// The verified claims of a token response's ID and access tokens.
    pub async fn claims_of(&self, tokens: &Value) -> (Value, Value) {
        let (_, id_token) = self
            .verify(tokens["id_token"].as_str().unwrap(), &self.client_id)
            .await;
        let (_, access) = self
            .verify(
                tokens["access_token"].as_str().unwrap(),
                &self.url("/userinfo"),
            )
            .await;
        (id_token, access)
    }

    pub async fn tokens(&self, browser: &Browser) -> Value {
        let code = self.code(browser, &[]).await;
        let resp = self.exchange(&code).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            Some((&self.client_id, &self.client_secret)),
        )
        .await
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// Verifies a JWT against the tenant's published JWKS and returns its header type and claims.
    pub async fn verify(&self, token: &str, audience: &str) -> (String, Value) {
        let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(self.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid is published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        // The published key's algorithm, as a relying party would take it from the JWKS.
        let alg = jwk
            .common
            .key_algorithm
            .map(|a| a.to_string().parse::<jsonwebtoken::Algorithm>().unwrap())
            .expect("the JWK names its alg");
        assert_eq!(
            header.alg, alg,
            "the token is signed with its key's algorithm"
        );
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .expect("token verifies against the JWKS");
        (data.header.typ.unwrap_or_default(), data.claims)
    }
}

pub async fn error_of(resp: reqwest::Response) -> (StatusCode, String, Value) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
        body,
    )
}

/// The sample rules, built once per test run for wasm32 (as a rule author would).
pub fn sample_rule(crate_name: &str) -> Vec<u8> {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-rules");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--locked",
                "--target-dir",
                "target",
            ])
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building sample rules failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        root.join("target/wasm32-unknown-unknown/release")
    });
    std::fs::read(dir.join(format!("{}.wasm", crate_name.replace('-', "_"))))
        .expect("the sample rule was built")
}

pub fn wat_sample(file: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-rules/wat")
            .join(file),
    )
    .unwrap()
}

impl TestApp {
    /// Uploads and enables a rule; returns its id.
    pub async fn add_rule(&self, name: &str, module: &[u8]) -> String {
        self.admin
            .add_rule(&self.t().await, name, module, None, true)
            .await
            .expect("the rule is accepted")
            .id
    }

    /// Uploads a JavaScript rule through the Management API; the rule's id.
    pub async fn add_script(&self, name: &str, source: &str) -> String {
        let mgmt = self.mgmt_token(None).await;
        let (status, body) = self
            .api(
                "POST",
                "/rules",
                &mgmt,
                Some(serde_json::json!({"name": name, "script": source})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// The test tenant, resolved now (its rules generation changes with every rule change).
    pub async fn t(&self) -> wardstone::domain::Tenant {
        self.admin.resolve(&self.tenant).await.unwrap()
    }

    /// The newest `limit` executions of the tenant's rule log.
    pub async fn logs(&self, limit: i64) -> Vec<wardstone::rules::ExecutionRecord> {
        self.admin
            .list_logs(&self.t().await, None, None, 0, limit)
            .await
            .unwrap()
    }

    pub async fn tenant_id(&self) -> String {
        self.store
            .tenant_by_name(&self.tenant)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn set_metadata(
        &self,
        user_id: &str,
        app: serde_json::Value,
        user: serde_json::Value,
    ) {
        let tenant_id = self.tenant_id().await;
        let changes = wardstone::store::UserChanges {
            app_metadata_patch: app.as_object().cloned(),
            user_metadata_patch: user.as_object().cloned(),
            ..Default::default()
        };
        self.store
            .update_user(&tenant_id, user_id, &changes, self.clock.now())
            .await
            .unwrap();
    }

    pub async fn user_record(&self, user_id: &str) -> wardstone::store::UserRecord {
        self.store
            .user(&self.tenant_id().await, user_id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Follows /authorize through login and consent and returns the final redirect's query,
    /// whether it carries a code or an error.
    pub async fn authorize_outcome(
        &self,
        browser: &Browser,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        query_of(
            &self
                .login_and_consent(browser, &self.authorize_url(extra))
                .await,
        )
    }
}

impl TestApp {
    /// A Management API token (client_credentials) with `scope` (None: every granted scope).
    pub async fn mgmt_token(&self, scope: Option<&str>) -> String {
        let audience = self.url("/api/v2/");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("audience", audience.as_str()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let resp = self
            .token_request(
                &form,
                Some((&self.mgmt_client_id, &self.mgmt_client_secret)),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "management token");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Calls the Management API; returns status and JSON body (Null when empty).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/api/v2{}", self.issuer, path);
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        )
    }
}

impl TestApp {
    /// A second node on the same database, with the same master key and public URL (the first
    /// node's), as a load balancer would have. Returns its own base URL.
    pub async fn spawn_peer(&self) -> String {
        self.spawn_node_with(|_| {}).await.0
    }

    /// Another node on the same database (a restarted node, or a second one), whose options
    /// `tweak` may change. Returns its base URL and its rules service.
    pub async fn spawn_node_with(
        &self,
        tweak: impl FnOnce(&mut ServerOptions),
    ) -> (String, wardstone::rules::Rules) {
        let mut options = ServerOptions {
            database_url: self.database_url.clone(),
            db_max_connections: 8,
            bind: "127.0.0.1:0".parse().unwrap(),
            public_url: Some(PublicUrl::parse(&self.base).unwrap()),
            master_key: Some(self.master_key.clone()),
            demo: false,
            lifetimes: Lifetimes::default(),
            rule_limits: wardstone::rules::Limits::default(),
            trusted_proxies: vec![],
        };
        tweak(&mut options);
        let app = Application::build(options, self.clock.clone())
            .await
            .expect("the second node builds");
        let base = format!("http://{}", app.local_addr());
        let rules = app.provider().rules().clone();
        tokio::spawn(async move { app.run_until(std::future::pending()).await.unwrap() });
        (base, rules)
    }
}

/// `url` with its scheme, host and port replaced by `base`'s: the same request sent to
/// another node.
pub fn on_node(url: &str, base: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let b = url::Url::parse(base).unwrap();
    u.set_port(b.port()).unwrap();
    u.to_string()
}

impl TestApp {
    /// A connection to this app's database, for tests that tamper with rows directly.
    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.database_url)
            .await
            .unwrap()
    }

    /// Logs the test user in with every hop sent to `node`; returns the callback's query.
    pub async fn login_on(&self, node: &str) -> HashMap<String, String> {
        let browser = Browser::new();
        // Our own pages move to `node`; the client's callback stays where it is.
        let here = |url: String| {
            if url.starts_with(&self.base) {
                on_node(&url, node)
            } else {
                url
            }
        };
        let mut next = here(location(
            &browser.get(&on_node(&self.authorize_url(&[]), node)).await,
        ));
        if next.contains("/login?tx=") {
            let html = browser.get(&next).await.text().await.unwrap();
            let (action, mut fields) = form(&html, &next);
            set_field(&mut fields, "username", EMAIL);
            set_field(&mut fields, "password", PASSWORD);
            next = here(location(&browser.post_form(&here(action), &fields).await));
        }
        if next.contains("/consent?tx=") {
            next = here(location(
                &self.submit_consent(&browser, &next, "allow").await,
            ));
        }
        assert!(
            next.starts_with(CALLBACK),
            "expected the callback, got {next}"
        );
        query_of(&next)
    }

    /// The ID token claims of a code's tokens.
    pub async fn id_claims(&self, code: &str) -> Value {
        let resp = self
            .token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", VERIFIER),
                ],
                Some((&self.client_id, &self.client_secret)),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let tokens: Value = resp.json().await.unwrap();
        self.verify(tokens["id_token"].as_str().unwrap(), &self.client_id)
            .await
            .1
    }
}

/// A WAT rule that puts `https://example.com/tag` = `tag` in the ID token.
pub fn tag_rule(tag: &str) -> Vec<u8> {
    wat_claims_rule(&format!(
        r#"{{"context":{{"idToken":{{"https://example.com/tag":"{tag}"}}}}}}"#
    ))
}

/// A WAT rule whose output is always `out` (an ABI v1 output object).
pub fn wat_claims_rule(out: &str) -> Vec<u8> {
    let escaped = out.replace('"', "\\\"");
    format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 1024) "{escaped}")
          (func (export "alloc") (param i32) (result i32)
            (drop (memory.grow (i32.add (i32.div_u (local.get 0) (i32.const 65536)) (i32.const 1)))) (i32.const 65536))
          (func (export "rule") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {}))))"#,
        out.len()
    )
    .into_bytes()
}

/// Whether the C and AssemblyScript toolchains must be there (CI) or their tests may skip.
/// A JavaScript sample rule (`sample-rules/js/NAME.js`), or `None` when this build has no
/// JavaScript runtime (no clang; CI requires it).
pub fn js_sample(name: &str) -> Option<String> {
    if !wardstone::rules::js::AVAILABLE {
        assert!(
            !toolchains_required(),
            "the server was built without the JavaScript runtime"
        );
        eprintln!("skipping JavaScript: the server was built without its runtime (no clang?)");
        return None;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-rules/js")
        .join(format!("{name}.js"));
    Some(std::fs::read_to_string(path).expect("the JavaScript sample exists"))
}

/// CI's `WARDSTONE_REQUIRE_TOOLCHAINS=1` (read as build.rs reads it): a missing toolchain
/// fails instead of skipping.
pub fn toolchains_required() -> bool {
    std::env::var("WARDSTONE_REQUIRE_TOOLCHAINS").is_ok_and(|v| v == "1")
}

/// `sample-rules/c/add_roles.c` built with clang for wasm32 (no libc), or `None` (with a line
/// on stderr) when clang or wasm-ld is missing outside CI.
pub fn c_sample() -> Option<Vec<u8>> {
    static BUILT: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-rules/c");
            let out = tempfile::tempdir().unwrap();
            let wasm = out.path().join("add_roles.wasm");
            let built = std::process::Command::new("clang")
                .current_dir(&root)
                .args([
                    "--target=wasm32",
                    "-O2",
                    "-nostdlib",
                    "-Wl,--no-entry",
                    "-Wl,--export=alloc",
                    "-Wl,--export=rule",
                    "-o",
                ])
                .arg(&wasm)
                .arg("add_roles.c")
                .output();
            match built {
                Ok(o) if o.status.success() => Some(std::fs::read(&wasm).unwrap()),
                other => {
                    let why = match other {
                        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                        Err(e) => e.to_string(),
                    };
                    assert!(
                        !toolchains_required(),
                        "clang could not build the C rule: {why}"
                    );
                    eprintln!("skipping the C rule: clang/wasm-ld unavailable ({why})");
                    None
                }
            }
        })
        .clone()
}

/// `sample-rules/assemblyscript` built with its locked `assemblyscript` (npm ci, then asc), or
/// `None` (with a line on stderr) when Node/npm are missing outside CI.
pub fn assemblyscript_sample() -> Option<Vec<u8>> {
    static BUILT: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sample-rules/assemblyscript");
            let run = |args: &[&str]| {
                std::process::Command::new("npm")
                    .current_dir(&root)
                    .args(args)
                    .output()
            };
            let mut steps = Vec::new();
            if !root.join("node_modules/.bin/asc").exists() {
                steps.push(vec!["ci", "--no-audit", "--no-fund"]);
            }
            steps.push(vec!["run", "build"]);
            for step in steps {
                match run(&step) {
                    Ok(o) if o.status.success() => {}
                    other => {
                        let why = match other {
                            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                            Err(e) => e.to_string(),
                        };
                        assert!(
                            !toolchains_required(),
                            "npm {step:?} failed for the AssemblyScript rule: {why}"
                        );
                        eprintln!("skipping the AssemblyScript rule: npm {step:?} failed ({why})");
                        return None;
                    }
                }
            }
            Some(std::fs::read(root.join("build/add-roles.wasm")).unwrap())
        })
        .clone()
}

/// The login fails closed with `server_error`, an execution id and nothing internal; the log
/// records `outcome`.
pub async fn assert_fails_closed(app: &TestApp, outcome: &str) {
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "server_error", "{outcome}: {q:?}");
    assert!(!q.contains_key("code"));
    let description = &q["error_description"];
    let logs = app.logs(1).await;
    assert_eq!(logs[0].outcome.label(), outcome);
    assert!(
        description.contains(&logs[0].id),
        "the description carries the execution id: {description}"
    );
    for internal in ["wasm", "trap", "fuel", "wasmtime", "memory", "panicked"] {
        assert!(
            !description.to_lowercase().contains(internal),
            "{description} leaks {internal}"
        );
    }
}

/// With the rules removed the server serves logins again.
pub async fn assert_still_serving(app: &TestApp) {
    for rule in app.admin.list_rules(&app.t().await).await.unwrap() {
        app.admin
            .remove_rule(&app.t().await, &rule.id)
            .await
            .unwrap();
    }
    assert_eq!(
        reqwest::get(format!("{}/healthz", app.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code"),
        "logins work again"
    );
}

/// The ID token claims of a fresh login, or the callback's error.
pub async fn login_claims(
    app: &TestApp,
) -> Result<Value, std::collections::HashMap<String, String>> {
    let browser = Browser::new();
    let callback = app
        .login_and_consent(&browser, &app.authorize_url(&[]))
        .await;
    let q = query_of(&callback);
    match q.get("code") {
        Some(code) => Ok(app.id_claims(code).await),
        None => Err(q),
    }
}

/// A WAT rule that sends `request` (raw bytes) to `wardstone.http_fetch` and puts the host's
/// answer, as is, in the ID token claim `a`. With `trap_in_alloc`, its `alloc` traps when the
/// host writes the answer.
pub fn probe(request: &str, trap_in_alloc: bool) -> Vec<u8> {
    let prefix = r#"{"context":{"idToken":{"a":"#;
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let answer_alloc = if trap_in_alloc {
        "unreachable".to_string()
    } else {
        format!("(i32.const {})", 65536 + prefix.len())
    };
    format!(
        r#"(module
  (import "wardstone" "http_fetch" (func $fetch (param i32 i32) (result i64)))
  (memory (export "memory") 16)
  (global $answering (mut i32) (i32.const 0))
  (data (i32.const 0) "{req}")
  (data (i32.const 65536) "{prefix}")
  (func (export "alloc") (param i32) (result i32)
    (if (result i32) (global.get $answering) (then {answer_alloc}) (else (i32.const 4096))))
  (func (export "rule") (param i32 i32) (result i64)
    (local $len i32)
    (global.set $answering (i32.const 1))
    (local.set $len (i32.wrap_i64 (i64.and (call $fetch (i32.const 0) (i32.const {req_len})) (i64.const 0xffffffff))))
    (i32.store8 (i32.add (i32.const {answer_at}) (local.get $len)) (i32.const 125))
    (i32.store8 (i32.add (i32.const {answer_at1}) (local.get $len)) (i32.const 125))
    (i32.store8 (i32.add (i32.const {answer_at2}) (local.get $len)) (i32.const 125))
    (i64.or (i64.shl (i64.const 65536) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const {extra}))))))"#,
        req = esc(request),
        req_len = request.len(),
        prefix = esc(prefix),
        answer_at = 65536 + prefix.len(),
        answer_at1 = 65536 + prefix.len() + 1,
        answer_at2 = 65536 + prefix.len() + 2,
        extra = prefix.len() + 3,
    )
    .into_bytes()
}

/// A browser whose requests claim to come from `ip` through a trusted proxy.
pub fn browser_from(ip: &str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

pub fn behind_proxy(o: &mut wardstone::startup::ServerOptions) {
    o.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// The login form's action and fields for a fresh transaction.
pub async fn login_form(app: &TestApp, browser: &Browser) -> (String, Vec<(String, String)>) {
    let login_url = location(&browser.get(&app.authorize_url(&[])).await);
    let html = browser.get(&login_url).await.text().await.unwrap();
    form(&html, &login_url)
}

pub async fn try_login(
    app: &TestApp,
    browser: &Browser,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let (action, mut fields) = login_form(app, browser).await;
    set_field(&mut fields, "username", email);
    set_field(&mut fields, "password", password);
    browser.post_form(&action, &fields).await
}

/// A DNS server that never answers: it reads UDP questions and drops them, and accepts TCP
/// connections and says nothing.
pub async fn silent_dns() -> std::net::SocketAddr {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while udp.recv_from(&mut buf).await.is_ok() {}
    });
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = tcp.accept().await {
            held.push(conn);
        }
    });
    addr
}

/// Auth0 Actions through the Management API (tests/api/actions.rs).
impl TestApp {
    /// Creates an action for `trigger`; returns its id.
    pub async fn create_action(&self, mgmt: &str, name: &str, trigger: &str, code: &str) -> String {
        let (status, a) = self
            .api(
                "POST",
                "/actions/actions",
                mgmt,
                Some(serde_json::json!({"name": name, "supported_triggers": [{"id": trigger, "version": "v3"}],
                            "code": code, "runtime": "node22"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        a["id"].as_str().unwrap().to_string()
    }

    /// The Management API's test run of action `id` on `event` (`{"payload": event}`).
    pub async fn test_action(&self, mgmt: &str, id: &str, event: Value) -> (StatusCode, Value) {
        self.api(
            "POST",
            &format!("/actions/actions/{id}/test"),
            mgmt,
            Some(serde_json::json!({ "payload": event })),
        )
        .await
    }

    pub async fn deploy_action(&self, mgmt: &str, id: &str) -> Value {
        let (status, v) = self
            .api("POST", &format!("/actions/actions/{id}/deploy"), mgmt, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    pub async fn bind(&self, mgmt: &str, trigger: &str, ids: &[&str]) -> (StatusCode, Value) {
        let bindings: Vec<Value> = ids
            .iter()
            .map(|id| serde_json::json!({"ref": {"type": "action_id", "value": id}}))
            .collect();
        self.api(
            "PATCH",
            &format!("/actions/triggers/{trigger}/bindings"),
            mgmt,
            Some(serde_json::json!({"bindings": bindings})),
        )
        .await
    }

    /// A post-login action with `code`, deployed and bound after the others; returns its id.
    /// Puts `host` on the tenant's outbound allow-list for rules and actions.
    pub async fn allow_host(&self, mgmt: &str, host: &str) {
        let (status, body) = self
            .api(
                "PATCH",
                "/tenants/settings",
                mgmt,
                Some(serde_json::json!({"rules": {"allowed_hosts": [host]}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn live_action(&self, mgmt: &str, name: &str, code: &str) -> String {
        let id = self.create_action(mgmt, name, "post-login", code).await;
        self.deploy_action(mgmt, &id).await;
        let (_, current) = self
            .api("GET", "/actions/triggers/post-login/bindings", mgmt, None)
            .await;
        let mut ids: Vec<String> = current["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action"]["id"].as_str().unwrap().to_string())
            .collect();
        ids.push(id.clone());
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (status, body) = self.bind(mgmt, "post-login", &refs).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }
}

/// Runs a test's body on a thread with room for the wasm stack on the request's own thread (the
/// server's runtime gives its workers 4 MiB; a test thread has 2), in a runtime of its own.
pub fn on_a_roomy_thread<F: std::future::Future<Output = ()>>(
    body: impl FnOnce() -> F + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(body())
        })
        .unwrap()
        .join()
        .unwrap();
}
