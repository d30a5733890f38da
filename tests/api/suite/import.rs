// Bringing an Auth0 tenant over (SPEC §16): the Deploy CLI export in
// tests/fixtures/auth0-export (rules of every stage, configs, actions of both triggers and of
// triggers Wardstone lacks, bindings, clients of each type, an API with RBAC, roles, a grant,
// and connections/emails/pages that must be skipped), users with each hash algorithm, then real
// logins and a client credentials grant against the result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wardstone::service::import::source::{Auth0Export, Keywords};
use wardstone::service::import::{ImportReport, ImportRequest, Status};

const WEB_ID: &str = "orders-web-0001";
const WEB_SECRET: &str = "0123456789abcdef0123456789abcdef";
const ORDERS: &str = "https://api.example.com/orders";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auth0-export")
}

fn keywords(extra: &[&str]) -> Keywords {
    let mut pairs: Vec<String> = vec![
        "APP_URL=http://localhost:9999".into(),
        format!("WEB_CLIENT_ID={WEB_ID}"),
        format!("WEB_CLIENT_SECRET={WEB_SECRET}"),
        "DEFAULT_PLAN=gold".into(),
        "DEFAULT_DEPARTMENT=sales".into(),
    ];
    pairs.extend(extra.iter().map(|s| s.to_string()));
    Keywords::parse(&pairs).unwrap()
}

fn read(path: &Path, keywords: &Keywords) -> Result<Auth0Export, String> {
    Auth0Export::read(path, keywords).map_err(|e| e.to_string())
}

async fn import(
    app: &TestApp,
    export: Option<Auth0Export>,
    users: Option<PathBuf>,
    dry_run: bool,
) -> Result<ImportReport, String> {
    app.admin
        .import_auth0(
            &app.tenant,
            ImportRequest {
                export,
                users,
                dry_run,
                lazy: None,
            },
        )
        .await
        .map_err(|e| e.to_string())
}

fn status_of(report: &ImportReport, kind: &str, name: &str) -> (Status, String) {
    let item = report
        .objects
        .iter()
        .find(|i| i.kind == kind && i.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} is in the report: {:#?}", report.objects));
    (item.status, item.detail.clone().unwrap_or_default())
}

fn bcrypt_of(password: &str) -> String {
    bcrypt::hash_with_result(password, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY)
}

fn pbkdf2_of(password: &str) -> String {
    use pbkdf2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    pbkdf2::Pbkdf2
        .hash_password_customized(
            password.as_bytes(),
            Some(pbkdf2::Algorithm::Pbkdf2Sha256.ident()),
            None,
            pbkdf2::Params {
                rounds: 2000,
                output_length: 32,
            },
            &salt,
        )
        .unwrap()
        .to_string()
}

fn argon2i_of(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::new(
        argon2::Algorithm::Argon2i,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 2, 1, None).unwrap(),
    )
    .hash_password(password.as_bytes(), &salt)
    .unwrap()
    .to_string()
}

fn hashed(algorithm: &str, value: String) -> Value {
    json!({"algorithm": algorithm, "hash": {"value": value}})
}

/// Auth0's user export job output: one object per line.
fn users_file(dir: &Path, users: &[Value]) -> PathBuf {
    let path = dir.join("users.ndjson");
    let text: String = users.iter().map(|u| format!("{u}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn migrated_users() -> Vec<Value> {
    vec![
        json!({
            "user_id": "auth0|5f7c8ec7c33c6c004bbafe82",
            "email": "bea@example.com",
            "email_verified": true,
            "name": "Bea Bcrypt",
            "given_name": "Bea",
            "created_at": "2020-10-06T15:30:15.523Z",
            "app_metadata": {"department": "engineering"},
            "user_metadata": {"lang": "fr"},
            "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0", "isSocial": false}],
            "custom_password_hash": hashed("bcrypt", bcrypt_of("bea's old password")),
            "roles": ["Admin"]
        }),
        json!({
            "user_id": "auth0|argon",
            "email": "ari@example.com",
            "custom_password_hash": hashed("argon2", argon2i_of("ari's old password")),
            "roles": ["Reader"]
        }),
        json!({
            "user_id": "auth0|pbkdf",
            "email": "pat@example.com",
            "custom_password_hash": hashed("pbkdf2", pbkdf2_of("pat's old password"))
        }),
        json!({"user_id": "auth0|nohash", "email": "nora@example.com"}),
        json!({
            "user_id": "auth0|blocked",
            "email": "bob@example.com",
            "blocked": true,
            "custom_password_hash": hashed("bcrypt", bcrypt_of("bob's old password"))
        }),
        json!({"user_id": "sms|+15551234567", "phone_number": "+15551234567"}),
    ]
}

/// Logs in through the browser with `client_id` as `email`; the callback's query, or None
/// when the login page refused the password.
async fn login_as(
    app: &TestApp,
    client_id: &str,
    email: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Option<HashMap<String, String>> {
    let browser = Browser::new();
    let mut params = vec![("client_id", client_id)];
    params.extend_from_slice(extra);
    let resp = app
        .submit_login(&browser, &app.authorize_url(&params), email, password)
        .await;
    if !resp.status().is_redirection() {
        let page = resp.text().await.unwrap();
        assert!(page.contains("<form"), "the login page again: {page}");
        return None;
    }
    let mut next = location(&resp);
    if next.contains("/consent?tx=") {
        next = location(&app.submit_consent(&browser, &next, "allow").await);
    }
    assert!(next.starts_with(CALLBACK), "{next}");
    Some(query_of(&next))
}

/// A login of the imported web app that must succeed: its ID token and access token claims.
async fn tokens_of(app: &TestApp, email: &str, password: &str) -> (Value, Value) {
    let q = login_as(
        app,
        WEB_ID,
        email,
        password,
        &[
            ("audience", ORDERS),
            ("scope", "openid profile email read:orders write:orders"),
        ],
    )
    .await
    .unwrap_or_else(|| panic!("{email} logs in with the old password"));
    let code = q.get("code").unwrap_or_else(|| panic!("a code: {q:?}"));
    let resp = app.exchange_as(code, (WEB_ID, WEB_SECRET)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the kept client id and secret work"
    );
    let tokens: Value = resp.json().await.unwrap();
    let id = app
        .verify(tokens["id_token"].as_str().unwrap(), WEB_ID)
        .await
        .1;
    let access = app
        .verify(tokens["access_token"].as_str().unwrap(), ORDERS)
        .await
        .1;
    (id, access)
}

#[tokio::test]
async fn an_auth0_export_and_its_users_become_a_working_tenant() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &migrated_users());
    let export = read(&fixture(), &keywords(&[])).unwrap();
    let report = import(&app, Some(export), Some(users.clone()), false)
        .await
        .unwrap();

    // The report: what was made, and why everything else was not.
    assert_eq!(status_of(&report, "api", "Orders API").0, Status::Created);
    assert_eq!(
        status_of(&report, "rule", "Add-roles-to-tokens").0,
        Status::Created
    );
    let (s, why) = status_of(&report, "rule", "Count-failures");
    assert_eq!(s, Status::Skipped);
    assert!(why.contains("login_failure"), "{why}");
    let (s, why) = status_of(&report, "action", "uses-stripe");
    assert_eq!(s, Status::Skipped);
    assert!(why.contains("stripe"), "{why}");
    let (s, why) = status_of(&report, "action", "pre-registration");
    assert_eq!(s, Status::Skipped);
    assert!(why.contains("pre-user-registration"), "{why}");
    let (s, why) = status_of(&report, "client", "Orders Web");
    assert_eq!(s, Status::Created);
    assert!(
        why.contains("implicit"),
        "dropped grant types are reported: {why}"
    );
    assert_eq!(
        status_of(&report, "rules config", "SLACK_HOOK_URL").0,
        Status::Skipped
    );
    for kind in ["connections", "emails", "pages", "tenant"] {
        assert!(
            report
                .objects
                .iter()
                .any(|i| i.kind == kind && i.status == Status::Skipped),
            "{kind} is reported as skipped"
        );
    }
    // Fresh credentials for clients that had none in the export, once; none for kept ones.
    let billing = report
        .credentials
        .iter()
        .find(|c| c.name == "Billing Job")
        .expect("new credentials of the M2M client");
    assert!(report.credentials.iter().all(|c| c.name != "Orders Web"));
    let u = report.users.as_ref().unwrap();
    assert_eq!((u.read, u.created, u.skipped_total), (6, 5, 1), "{u:?}");
    assert_eq!(u.password_hashes.get("bcrypt"), Some(&2));
    assert_eq!(u.without_password, 1);

    // A bcrypt user logs in with the old password through the kept client: the rules, the
    // configuration, the deployed action and RBAC all ran; `sub` is the Auth0 user_id.
    let (id, access) = tokens_of(&app, "bea@example.com", "bea's old password").await;
    assert_eq!(id["sub"], "auth0|5f7c8ec7c33c6c004bbafe82");
    assert_eq!(id["https://example.com/roles"], json!(["Admin"]));
    assert_eq!(id["https://example.com/plan"], "gold");
    assert_eq!(id["https://example.com/department"], "engineering");
    assert_eq!(id["given_name"], "Bea");
    let mut permissions: Vec<String> =
        serde_json::from_value(access["permissions"].clone()).unwrap();
    permissions.sort();
    assert_eq!(permissions, ["read:orders", "write:orders"]);
    // The hash was replaced by argon2id at that login; the password still works, a wrong one
    // does not.
    let stored = app.user_record("auth0|5f7c8ec7c33c6c004bbafe82").await;
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "{}",
        stored.password_hash
    );
    tokens_of(&app, "bea@example.com", "bea's old password").await;
    assert!(
        login_as(&app, WEB_ID, "bea@example.com", "wrong", &[])
            .await
            .is_none()
    );

    // argon2 (other parameters) and PBKDF2 users too; RBAC narrows the Reader's scopes.
    let (_, access) = tokens_of(&app, "ari@example.com", "ari's old password").await;
    assert_eq!(access["permissions"], json!(["read:orders"]));
    assert!(
        app.user_record("auth0|argon")
            .await
            .password_hash
            .starts_with("$argon2id$v=19$m=19456")
    );
    assert!(
        login_as(&app, WEB_ID, "pat@example.com", "pat's wrong password", &[])
            .await
            .is_none()
    );
    assert!(
        app.user_record("auth0|pbkdf")
            .await
            .password_hash
            .starts_with("$pbkdf2"),
        "a wrong password changes nothing"
    );
    tokens_of(&app, "pat@example.com", "pat's old password").await;
    // No hash: nothing typed gets in. Blocked: not even the right password.
    for password in ["", "nora", "correct horse battery"] {
        assert!(
            login_as(&app, WEB_ID, "nora@example.com", password, &[])
                .await
                .is_none()
        );
    }
    assert!(
        login_as(&app, WEB_ID, "bob@example.com", "bob's old password", &[])
            .await
            .is_none()
    );

    // The M2M client's grant and the credentials-exchange action.
    let resp = app
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &billing.client_id),
                ("client_secret", billing.client_secret.as_deref().unwrap()),
                ("audience", ORDERS),
            ],
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Value = resp.json().await.unwrap();
    let (_, claims) = app
        .verify(token["access_token"].as_str().unwrap(), ORDERS)
        .await;
    assert_eq!(claims["https://example.com/m2m"], "Billing Job");
    assert_eq!(claims["scope"], "read:orders");

    // The same export and users again: nothing changes, and the report says so.
    let again = import(
        &app,
        Some(read(&fixture(), &keywords(&[])).unwrap()),
        Some(users),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (again.summary.created, again.summary.updated),
        (0, 0),
        "{:#?}",
        again.objects
    );
    assert!(again.credentials.is_empty());
    let u = again.users.unwrap();
    assert_eq!((u.created, u.unchanged), (0, 5));
    assert!(
        app.user_record("auth0|5f7c8ec7c33c6c004bbafe82")
            .await
            .password_hash
            .starts_with("$argon2id$"),
        "a re-import leaves an existing user as it is"
    );
    // A changed export updates in place.
    let changed = import(
        &app,
        Some(read(&fixture(), &keywords(&["DEFAULT_PLAN=platinum"])).unwrap()),
        None,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        status_of(&changed, "rules config", "DEFAULT_PLAN").0,
        Status::Updated
    );
    assert_eq!(changed.summary.updated, 1);
    let (id, _) = tokens_of(&app, "pat@example.com", "pat's old password").await;
    assert_eq!(id["https://example.com/plan"], "platinum");
    // A new secret in the export replaces the client's.
    let rotated = import(
        &app,
        Some(
            read(
                &fixture(),
                &keywords(&[
                    "DEFAULT_PLAN=platinum",
                    "WEB_CLIENT_SECRET=a-brand-new-secret-0123456789",
                ]),
            )
            .unwrap(),
        ),
        None,
        false,
    )
    .await
    .unwrap();
    let (s, why) = status_of(&rotated, "client", "Orders Web");
    assert_eq!(s, Status::Updated);
    assert!(why.contains("client_secret"), "{why}");
    assert_eq!(rotated.summary.updated, 1, "{:#?}", rotated.objects);
}

#[tokio::test]
async fn a_dry_run_reports_everything_and_writes_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &migrated_users());
    let t = app.t().await;
    let clients_before = app.admin.list_clients(&t, 0, 100).await.unwrap().len();
    let report = import(
        &app,
        Some(read(&fixture(), &keywords(&[])).unwrap()),
        Some(users),
        true,
    )
    .await
    .unwrap();
    assert!(report.dry_run);
    assert_eq!(
        status_of(&report, "rule", "Plan-from-config").0,
        Status::Created
    );
    assert_eq!(report.summary.created, 16, "{:#?}", report.objects);
    assert!(report.credentials.is_empty(), "no credentials are made");
    assert!(app.admin.list_rules(&t).await.unwrap().is_empty());
    assert_eq!(
        app.admin.list_clients(&t, 0, 100).await.unwrap().len(),
        clients_before
    );
    assert!(app.admin.list_roles(&t, 0, 100).await.unwrap().is_empty());
    assert!(
        app.store
            .user_by_email(&t.id, "bea@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// Copies the fixture export so a test can break one file.
fn broken_copy(dir: &Path, file: &str, contents: &str) -> PathBuf {
    let root = dir.join("export");
    copy_dir(&fixture(), &root);
    std::fs::write(root.join(file), contents).unwrap();
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn bad_input_names_the_file_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = app.t().await;
    let clients_before = app.admin.list_clients(&t, 0, 100).await.unwrap().len();
    let nothing_written = || async {
        assert!(app.admin.list_rules(&t).await.unwrap().is_empty());
        assert!(app.admin.list_roles(&t, 0, 100).await.unwrap().is_empty());
        assert_eq!(
            app.admin.list_clients(&t, 0, 100).await.unwrap().len(),
            clients_before
        );
        assert!(app.admin.rule_config_keys(&t).await.unwrap().is_empty());
        assert!(
            app.store
                .user_by_email(&t.id, "bea@example.com")
                .await
                .unwrap()
                .is_none()
        );
    };
    let cases: &[(&str, &str, &str)] = &[
        // (file, contents, what the error must say)
        (
            "clients/Orders Web.json",
            "{\n  \"name\": \"Orders Web\",\n  \"callbacks\": [\n}",
            "Orders Web.json:4:",
        ),
        (
            "rules/Plan-from-config.js",
            "function (user, context, callback) {\n  callback(null, user, context;\n}",
            "Plan-from-config",
        ),
        (
            "actions/add-department/code.js",
            "exports.onExecutePostLogin = async (event, api) => {",
            "add-department",
        ),
        (
            "grants/billing_orders.json",
            r#"{"client_id": "No Such Client", "audience": "https://api.example.com/orders", "scope": []}"#,
            "No Such Client",
        ),
        (
            "roles/Admin.json",
            r#"{"name": "Admin", "permissions": [{"permission_name": "read:orders", "resource_server_identifier": "https://api.example.com/missing"}]}"#,
            "https://api.example.com/missing",
        ),
        (
            "triggers/triggers.json",
            r#"{"post-login": [{"action_name": "no-such-action"}]}"#,
            "no-such-action",
        ),
        (
            "clients/Orders SPA.json",
            r#"{"name": "Orders SPA", "app_type": "spa", "callbacks": ["not a url"]}"#,
            "Orders SPA",
        ),
    ];
    for (file, contents, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = broken_copy(dir.path(), file, contents);
        let users = users_file(dir.path(), &migrated_users());
        let err = match read(&root, &keywords(&[])) {
            Err(e) => e,
            Ok(export) => import(&app, Some(export), Some(users), false)
                .await
                .expect_err(&format!("{file} broken must fail")),
        };
        assert!(
            err.contains(needle),
            "{file}: {err:?} should name {needle:?}"
        );
        nothing_written().await;
    }
    // An action secret Auth0 did not export, and no keyword for it.
    let no_secret = Keywords::parse(&[
        "APP_URL=http://localhost:9999".into(),
        format!("WEB_CLIENT_ID={WEB_ID}"),
        format!("WEB_CLIENT_SECRET={WEB_SECRET}"),
    ])
    .unwrap();
    let err = import(
        &app,
        Some(read(&fixture(), &no_secret).unwrap()),
        None,
        false,
    )
    .await
    .unwrap_err();
    assert!(err.contains("DEFAULT_DEPARTMENT"), "{err}");
    nothing_written().await;

    // A bad user line names the line, and the configuration is not written either.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.ndjson");
    std::fs::write(
        &path,
        "{\"email\":\"ok@example.com\"}\n\n{\"email\": \"x@example.com\", \"blocked\": \"yes\"}\n",
    )
    .unwrap();
    let err = import(
        &app,
        Some(read(&fixture(), &keywords(&[])).unwrap()),
        Some(path.clone()),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("users.ndjson:3") && err.contains("blocked"),
        "{err}"
    );
    nothing_written().await;
    for (line, needle) in [
        (
            "{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"$2b$14$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\"}}}",
            "cost 14",
        ),
        (
            "{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"md5\",\"hash\":{\"value\":\"abc\"}}}",
            "md5",
        ),
        (
            "{\"email\":\"a@example.com\",\"roles\":[\"Nobody\"]}",
            "Nobody",
        ),
        ("{\"email\":\"not an email\"}", "email"),
        ("{\"email\":\"a@example.com\"", "users.ndjson:1"),
        (
            "{\"user_id\":\"auth0|1\",\"email\":\"a@example.com\"}\n{\"user_id\":\"auth0|1\",\"email\":\"b@example.com\"}",
            "appears twice",
        ),
    ] {
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let err = import(&app, None, Some(path.clone()), false)
            .await
            .unwrap_err();
        assert!(err.contains(needle), "{line}: {err}");
    }
    // One user of a JSON array is bounded like an NDJSON line.
    let huge = format!(
        "[{{\"email\":\"a@example.com\",\"user_metadata\":{{\"x\":\"{}\"}}}}]",
        "y".repeat(400 << 10)
    );
    std::fs::write(&path, huge).unwrap();
    let err = import(&app, None, Some(path.clone()), false)
        .await
        .unwrap_err();
    assert!(
        err.contains("larger than"),
        "{}",
        &err[..err.len().min(300)]
    );
    std::fs::write(&path, [0x1f, 0x8b, 0x08, 0x00, 0x00]).unwrap();
    let err = import(&app, None, Some(path.clone()), false)
        .await
        .unwrap_err();
    assert!(err.contains("gunzip"), "{err}");
    nothing_written().await;
}

#[tokio::test]
async fn a_tenant_yaml_and_a_json_array_of_users_import_too() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/tag.js"),
        "function (user, context, callback) {\n  context.idToken['https://example.com/env'] = configuration.ENV;\n  callback(null, user, context);\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tenant.yaml"),
        r###"rules:
  - name: tag
    script: ./rules/tag.js
    stage: login_success
    enabled: true
    order: 1
rulesConfigs:
  - key: ENV
    value: "##ENV##"
resourceServers:
  - name: Orders API
    identifier: https://api.example.com/orders
    scopes:
      - value: read:orders
        description: Read orders
clients:
  - name: YAML App
    app_type: regular_web
    callbacks: @@CALLBACKS@@
    grant_types: [authorization_code, password]
emailTemplates:
  - template: verify_email
    body: ./emails/verify.html
"###,
    )
    .unwrap();
    let k =
        Keywords::parse(&["ENV=staging".into(), format!("CALLBACKS=[\"{CALLBACK}\"]")]).unwrap();
    let export = read(&dir.path().join("tenant.yaml"), &k).unwrap();
    let users = dir.path().join("bulk.json");
    // Auth0's bulk-import format: one JSON array.
    std::fs::write(
        &users,
        serde_json::to_string_pretty(&json!([
            {"user_id": "google-oauth2|99", "email": "yael@example.com"},
            {"user_id": "5f0c", "email": "yael@example.com", "email_verified": true, "password_hash": bcrypt_of("yael's password")},
            {"email": "zed@example.com", "custom_password_hash": hashed("pbkdf2", pbkdf2_of("zed's password"))}
        ]))
        .unwrap(),
    )
    .unwrap();
    let report = import(&app, Some(export), Some(users), false)
        .await
        .unwrap();
    let (s, why) = status_of(&report, "client", "YAML App");
    assert_eq!(s, Status::Created);
    assert!(why.contains("password"), "{why}");
    assert_eq!(
        status_of(
            &report,
            "emailTemplates",
            &format!(
                "{}: emailTemplates",
                dir.path().join("tenant.yaml").display()
            )
        )
        .0,
        Status::Skipped
    );
    let yaml_app = report
        .credentials
        .iter()
        .find(|c| c.name == "YAML App")
        .unwrap();
    let u = report.users.as_ref().unwrap();
    assert_eq!((u.created, u.skipped_total), (2, 1), "{u:?}");
    assert!(u.skipped[0].contains("same email"), "{:?}", u.skipped);

    let q = login_as(
        &app,
        &yaml_app.client_id,
        "yael@example.com",
        "yael's password",
        &[],
    )
    .await
    .expect("the bulk-import user logs in");
    let yaml_client = (
        yaml_app.client_id.as_str(),
        yaml_app.client_secret.as_deref().unwrap(),
    );
    let resp = app.exchange_as(&q["code"], yaml_client).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    let id = app
        .verify(tokens["id_token"].as_str().unwrap(), &yaml_app.client_id)
        .await
        .1;
    assert_eq!(id["https://example.com/env"], "staging");
    // The bulk-import format's bare id gets Auth0's prefix; of two users with one email, the
    // one with a password was kept.
    assert_eq!(id["sub"], "auth0|5f0c");
    assert_eq!(id["email_verified"], true);

    // A YAML syntax error names the file and line.
    std::fs::write(
        dir.path().join("tenant.yaml"),
        "rules:\n  - name: [unclosed\n",
    )
    .unwrap();
    let err = read(&dir.path().join("tenant.yaml"), &k).unwrap_err();
    assert!(err.contains("tenant.yaml:"), "{err}");
}

#[tokio::test]
async fn an_exported_tenant_imports_elsewhere_with_the_same_tokens() {
    let first = spawn_app().await;
    import(
        &first,
        Some(read(&fixture(), &keywords(&[])).unwrap()),
        None,
        false,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = first
        .admin
        .export_auth0(&first.t().await, dir.path())
        .await
        .unwrap();
    // Values Wardstone never shows are placeholders, never written in clear.
    for f in &out.files {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        for secret in [WEB_SECRET, "sales", "gold"] {
            assert!(!text.contains(secret), "{f} holds {secret}");
        }
    }
    assert!(
        out.keywords
            .contains(&"CLIENT_SECRET_ORDERS_WEB".to_string()),
        "{:?}",
        out.keywords
    );
    let mut pairs = vec![
        format!("CLIENT_SECRET_ORDERS_WEB={WEB_SECRET}"),
        "RULES_CONFIG_DEFAULT_PLAN=gold".to_string(),
        "ACTION_ADD_DEPARTMENT_DEFAULT_DEPARTMENT=sales".to_string(),
    ];
    for k in &out.keywords {
        if !pairs.iter().any(|p| p.starts_with(&format!("{k}="))) {
            pairs.push(format!("{k}=a-fresh-secret-of-enough-length"));
        }
    }
    let k = Keywords::parse(&pairs).unwrap();
    // The test harness's own client is not part of the migration (the second server has its
    // own "Acme Web", with another id: an id never changes, so importing it would be refused).
    std::fs::remove_file(dir.path().join("clients/Acme Web.json")).unwrap();

    let second = spawn_app().await;
    let report = import(&second, Some(read(dir.path(), &k).unwrap()), None, false)
        .await
        .unwrap();
    assert!(report.summary.created >= 12, "{:#?}", report.objects);
    // Importing the export again into the same place changes nothing.
    let again = import(&second, Some(read(dir.path(), &k).unwrap()), None, false)
        .await
        .unwrap();
    assert_eq!(
        (again.summary.created, again.summary.updated),
        (0, 0),
        "{:#?}",
        again.objects
    );

    // The same login on both gives the same custom claims and permissions.
    let custom = |claims: &Value| -> Value {
        let mut out = serde_json::Map::new();
        for (k, v) in claims.as_object().unwrap() {
            if k.starts_with("https://example.com/") || k == "permissions" || k == "scope" {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    };
    let a = tokens_of(&first, EMAIL, PASSWORD).await;
    let b = tokens_of(&second, EMAIL, PASSWORD).await;
    assert_eq!(custom(&a.0), custom(&b.0));
    assert_eq!(custom(&a.1), custom(&b.1));
    assert_eq!(a.0["https://example.com/department"], "sales");
}

/// A stand-in for the old Auth0 tenant's token endpoint: the password-realm grant for one
/// user, a switch to answer 500, and a count of what it was asked.
struct OldTenant {
    url: String,
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn old_tenant() -> OldTenant {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let (a, d) = (asked.clone(), down.clone());
    let app = axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(
            move |axum::Form(f): axum::Form<HashMap<String, String>>| {
                let (a, d) = (a.clone(), d.clone());
                async move {
                    a.fetch_add(1, Ordering::SeqCst);
                    if d.load(Ordering::SeqCst) {
                        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"error": "server_error"})));
                    }
                    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
                    let client_ok = field("client_id") == "old-client" && field("client_secret") == "old-secret";
                    if field("grant_type") != "http://auth0.com/oauth/grant-type/password-realm" || !client_ok {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"})));
                    }
                    assert_eq!(f.get("password").map(String::is_empty), Some(false), "an empty password is never sent");
                    let id_token = |sub: &str| {
                        use base64::Engine;
                        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
                        format!("{}.{}.sig", enc(json!({"alg": "RS256", "typ": "JWT"})), enc(json!({"sub": sub, "iss": "https://old.example.com/"})))
                    };
                    let known = [
                        ("lena@example.com", "lena's old password", "auth0|lena"),
                        // Someone signed up in the old tenant with Mia's email after the export.
                        ("mia@example.com", "the squatter's password", "auth0|squatter"),
                    ];
                    if field("realm") != "Username-Password-Authentication" {
                        return (StatusCode::FORBIDDEN, axum::Json(json!({"error": "invalid_grant"})));
                    }
                    if let Some((_, _, sub)) = known.iter().find(|(u, p, _)| field("username") == *u && field("password") == *p) {
                        (StatusCode::OK, axum::Json(json!({"access_token": "at", "id_token": id_token(sub), "token_type": "Bearer", "expires_in": 86400})))
                    } else {
                        (StatusCode::FORBIDDEN, axum::Json(json!({"error": "invalid_grant", "error_description": "Wrong email or password."})))
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    OldTenant { url, asked, down }
}

/// A login attempt's status and, when it got through, the code.
async fn attempt(app: &TestApp, email: &str, password: &str) -> (StatusCode, Option<String>) {
    let browser = Browser::new();
    let resp = app
        .submit_login(&browser, &app.authorize_url(&[]), email, password)
        .await;
    let status = resp.status();
    if !status.is_redirection() {
        return (status, None);
    }
    let mut next = location(&resp);
    if next.contains("/consent?tx=") {
        next = location(&app.submit_consent(&browser, &next, "allow").await);
    }
    (status, query_of(&next).remove("code"))
}

#[tokio::test]
async fn users_without_a_hash_are_checked_once_against_the_old_tenant() {
    use std::sync::atomic::Ordering;
    let app = spawn_app().await;
    let old = old_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(
        dir.path(),
        &[
            json!({"user_id": "auth0|lena", "email": "lena@example.com", "email_verified": true}),
            json!({"user_id": "auth0|nina", "email": "nina@example.com"}),
            json!({"user_id": "google-oauth2|1234", "email": "mia@example.com"}),
            json!({"user_id": "auth0|hashed", "email": "hal@example.com", "custom_password_hash": hashed("bcrypt", bcrypt_of("hal's password"))}),
        ],
    );
    let lazy = wardstone::domain::migration::LazyMigration::parse(
        &old.url,
        "old-client",
        "old-secret",
        None,
    )
    .unwrap();
    let report = app
        .admin
        .import_auth0(
            &app.tenant,
            ImportRequest {
                export: None,
                users: Some(users),
                dry_run: false,
                lazy: Some(lazy),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        status_of(
            &report,
            "lazy migration",
            &format!(
                "{}/oauth/token (realm Username-Password-Authentication)",
                old.url
            )
        )
        .0,
        Status::Created
    );
    assert!(report.users.as_ref().unwrap().lazy_migration);

    // A wrong password: the old tenant says no, and it is the usual answer.
    let (status, code) = attempt(&app, "lena@example.com", "guess").await;
    assert_eq!((status, code), (StatusCode::UNAUTHORIZED, None));
    assert_eq!(old.asked.load(Ordering::SeqCst), 1);
    // The old tenant failing is "try again later", never a pass.
    old.down.store(true, Ordering::SeqCst);
    let (status, code) = attempt(&app, "lena@example.com", "lena's old password").await;
    assert_eq!((status, code), (StatusCode::SERVICE_UNAVAILABLE, None));
    assert!(app.user_record("auth0|lena").await.password_hash.is_empty());
    old.down.store(false, Ordering::SeqCst);

    // The right password: in, and the password now lives here as argon2id.
    let (_, code) = attempt(&app, "lena@example.com", "lena's old password").await;
    let code = code.expect("the migrated user gets a code");
    assert_eq!(app.id_claims(&code).await["sub"], "auth0|lena");
    assert!(
        app.user_record("auth0|lena")
            .await
            .password_hash
            .starts_with("$argon2id$")
    );
    let asked = old.asked.load(Ordering::SeqCst);
    // From now on the old tenant is never asked about her: right and wrong passwords alike.
    assert!(
        attempt(&app, "lena@example.com", "lena's old password")
            .await
            .1
            .is_some()
    );
    assert_eq!(
        attempt(&app, "lena@example.com", "guess").await.0,
        StatusCode::UNAUTHORIZED
    );
    // An empty password is never sent.
    assert_eq!(
        attempt(&app, "nina@example.com", "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(old.asked.load(Ordering::SeqCst), asked);
    // The old tenant says yes for someone else with Mia's email: not her, refused.
    assert_eq!(
        attempt(&app, "mia@example.com", "the squatter's password")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(old.asked.load(Ordering::SeqCst), asked + 1);
    assert!(
        app.user_record("google-oauth2|1234")
            .await
            .password_hash
            .is_empty()
    );
    let asked = old.asked.load(Ordering::SeqCst);
    // A user with an imported hash is never sent to the old tenant either.
    assert_eq!(
        attempt(&app, "hal@example.com", "guess").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        attempt(&app, "hal@example.com", "hal's password")
            .await
            .1
            .is_some()
    );
    assert_eq!(old.asked.load(Ordering::SeqCst), asked);

    // An old tenant that cannot be reached at all: "try again later" too.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let unreachable = wardstone::domain::migration::LazyMigration::parse(
        &format!("http://{closed}"),
        "old-client",
        "old-secret",
        None,
    )
    .unwrap();
    app.admin
        .import_auth0(
            &app.tenant,
            ImportRequest {
                lazy: Some(unreachable),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (status, code) = attempt(&app, "nina@example.com", "anything").await;
    assert_eq!((status, code), (StatusCode::SERVICE_UNAVAILABLE, None));
    assert!(app.user_record("auth0|nina").await.password_hash.is_empty());
}
