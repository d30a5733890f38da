// Auth0 Actions (SPEC §15): action source as Auth0 writes it runs through real logins, refreshes
// and client credentials grants; drafts are not live until deployed; triggers run their bound
// actions in order after the rules; secrets are never returned; hostile or unsupported actions
// fail closed; bad input is refused with the Management API's JSON errors.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const NS: &str = "https://wardstone.dev/";

/// Whether this build runs JavaScript (CI requires it; elsewhere the tests skip).
fn js() -> bool {
    js_sample("add-roles").is_some()
}

fn action_sample(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-rules/actions")
            .join(format!("{name}.js")),
    )
    .expect("the sample action exists")
}

/// A post-login handler around `body`.
fn post_login(body: &str) -> String {
    format!("exports.onExecutePostLogin = async (event, api) => {{\n{body}\n}};\n")
}

#[tokio::test]
async fn an_auth0_post_login_action_runs_unchanged_through_a_login_and_a_refresh() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.set_metadata(&app.user_id, json!({"plan": "gold"}), json!({}))
        .await;
    app.live_action(&mgmt, "add roles", &action_sample("post-login-add-roles"))
        .await;
    app.live_action(
        &mgmt,
        "counter",
        &post_login(
            "console.log('login of', event.user.email, event.transaction.protocol);
             api.user.setAppMetadata('seen', (event.user.app_metadata.seen || 0) + 1);
             api.user.setUserMetadata('lang', event.request.language);
             api.idToken.setCustomClaim('https://wardstone.dev/client', event.client.name);",
        ),
    )
    .await;
    let (tokens, id_token, access) = app.login_claims().await;
    assert_eq!(id_token[format!("{NS}roles")], json!([]));
    assert_eq!(access[format!("{NS}plan")], "gold");
    assert_eq!(id_token[format!("{NS}client")], "Acme Web");
    let user = app.user_record(&app.user_id).await;
    let app_metadata: Value = Value::Object(user.app_metadata.0.clone());
    assert_eq!(
        app_metadata["seen"], 1,
        "metadata set by an action is saved"
    );
    assert_eq!(app_metadata["plan"], "gold", "and the rest is kept");

    let logs = app.logs(2).await;
    assert!(logs.iter().all(|l| l.kind.as_str() == "action"), "{logs:?}");
    assert!(logs.iter().all(|l| l.outcome.label() == "ok"), "{logs:?}");
    let counter = logs.iter().find(|l| l.rule_name == "counter").unwrap();
    assert_eq!(
        counter.logs[0].message,
        format!("login of {EMAIL} oidc-basic-profile")
    );

    // At refresh the actions run again and see the refresh protocol.
    app.live_action(
        &mgmt,
        "refresh only",
        &post_login(
            "if (event.transaction.protocol === 'oauth2-refresh-token') {
               api.accessToken.setCustomClaim('https://wardstone.dev/refreshed', true);
             }",
        ),
    )
    .await;
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    let (_, access) = app
        .verify(
            refreshed["access_token"].as_str().unwrap(),
            &app.url("/userinfo"),
        )
        .await;
    assert_eq!(access[format!("{NS}refreshed")], true);
    assert_eq!(access[format!("{NS}plan")], "gold");
    let user = app.user_record(&app.user_id).await;
    let app_metadata: Value = Value::Object(user.app_metadata.0.clone());
    assert_eq!(app_metadata["seen"], 2);
}

#[tokio::test]
async fn a_draft_is_not_live_until_deployed_and_a_rollback_brings_old_code_back() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let claim = |v: &str| post_login(&format!("api.idToken.setCustomClaim('{NS}v', '{v}');"));
    let id = app
        .create_action(&mgmt, "versioned", "post-login", &claim("one"))
        .await;
    // Undeployed: cannot be bound.
    let (status, body) = app.bind(&mgmt, "post-login", &[&id]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("deploy"),
        "{body}"
    );
    let v1 = app.deploy_action(&mgmt, &id).await;
    assert_eq!(v1["number"], 1);
    assert_eq!(
        app.bind(&mgmt, "post-login", &[&id]).await.0,
        StatusCode::OK
    );
    assert_eq!(login_claims(&app).await.unwrap()[format!("{NS}v")], "one");

    let (status, a) = app
        .api(
            "PATCH",
            &format!("/actions/actions/{id}"),
            &mgmt,
            Some(json!({"code": claim("two")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["all_changes_deployed"], false);
    assert_eq!(
        login_claims(&app).await.unwrap()[format!("{NS}v")],
        "one",
        "an edited draft changes nothing live"
    );
    let v2 = app.deploy_action(&mgmt, &id).await;
    assert_eq!(v2["number"], 2);
    assert_eq!(login_claims(&app).await.unwrap()[format!("{NS}v")], "two");

    let (_, versions) = app
        .api(
            "GET",
            &format!("/actions/actions/{id}/versions"),
            &mgmt,
            None,
        )
        .await;
    assert_eq!(versions["total"], 2);
    assert_eq!(versions["versions"][0]["number"], 2, "newest first");
    assert_eq!(versions["versions"][0]["deployed"], true);
    let v1_id = v1["id"].as_str().unwrap();
    let (status, v3) = app
        .api(
            "POST",
            &format!("/actions/actions/{id}/versions/{v1_id}/deploy"),
            &mgmt,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v3}");
    assert_eq!(v3["number"], 3, "a rollback is a new version");
    assert_eq!(login_claims(&app).await.unwrap()[format!("{NS}v")], "one");
    let (status, _) = app
        .api(
            "POST",
            &format!("/actions/actions/{id}/versions/nope/deploy"),
            &mgmt,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bound_actions_run_in_order_after_the_rules_and_see_what_came_before() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.add_script(
        "rule first",
        "function (user, context, callback) {
           context.idToken['https://wardstone.dev/order'] = 'rule';
           user.app_metadata.by_rule = true;
           callback(null, user, context);
         }",
    )
    .await;
    let a = app
        .create_action(
            &mgmt,
            "a",
            "post-login",
            &post_login(
                "api.user.setAppMetadata('trail', (event.user.app_metadata.trail || '') + 'a');
                 api.idToken.setCustomClaim('https://wardstone.dev/a_saw_rule', event.user.app_metadata.by_rule === true);",
            ),
        )
        .await;
    let b = app
        .create_action(
            &mgmt,
            "b",
            "post-login",
            &post_login(
                "api.user.setAppMetadata('trail', (event.user.app_metadata.trail || '') + 'b');
                 api.idToken.setCustomClaim('https://wardstone.dev/trail', event.user.app_metadata.trail || '');
                 api.idToken.setCustomClaim('https://wardstone.dev/rule_ran', api.rules.wasExecuted('x') === false);",
            ),
        )
        .await;
    app.deploy_action(&mgmt, &a).await;
    app.deploy_action(&mgmt, &b).await;
    assert_eq!(
        app.bind(&mgmt, "post-login", &[&a, &b]).await.0,
        StatusCode::OK
    );
    let claims = login_claims(&app).await.unwrap();
    assert_eq!(claims[format!("{NS}order")], "rule");
    assert_eq!(claims[format!("{NS}a_saw_rule")], true);
    assert_eq!(claims[format!("{NS}trail")], "a", "b sees what a set");
    let (_, bindings) = app
        .api("GET", "/actions/triggers/post-login/bindings", &mgmt, None)
        .await;
    let names: Vec<&str> = bindings["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);

    // Reordered: b runs first and sees the trail a left at the previous login.
    assert_eq!(
        app.bind(&mgmt, "post-login", &[&b, &a]).await.0,
        StatusCode::OK
    );
    let claims = login_claims(&app).await.unwrap();
    assert_eq!(claims[format!("{NS}trail")], "ab");
    // Emptied: nothing runs.
    assert_eq!(app.bind(&mgmt, "post-login", &[]).await.0, StatusCode::OK);
    let claims = login_claims(&app).await.unwrap();
    assert!(claims.get(format!("{NS}trail")).is_none());
}

#[tokio::test]
async fn deny_refuses_the_login_with_its_message_and_refresh_too() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let tokens = app.tokens(&Browser::new()).await;
    app.live_action(
        &mgmt,
        "gate",
        &post_login("api.access.deny(`No entry for ${event.user.email}`);"),
    )
    .await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], format!("No entry for {EMAIL}"));
    assert!(!q.contains_key("code"));
    let (status, error, _) =
        error_of(app.refresh(tokens["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error, "access_denied", "a denied refresh issues nothing");
    assert_eq!(app.logs(1).await[0].outcome.label(), "denied");
}

#[tokio::test]
async fn secrets_reach_the_action_and_are_never_returned() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let (status, a) = app
        .api(
            "POST",
            "/actions/actions",
            &mgmt,
            Some(json!({"name": "secretive", "supported_triggers": [{"id": "post-login"}],
                        "code": post_login("api.idToken.setCustomClaim('https://wardstone.dev/k', event.secrets.API_KEY + '/' + (event.secrets.OTHER || 'none'));"),
                        "secrets": [{"name": "API_KEY", "value": "s3cr3t-value"}, {"name": "OTHER", "value": "x"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    assert!(!a.to_string().contains("s3cr3t-value"), "{a}");
    assert_eq!(a["secrets"][0]["name"], "API_KEY");
    app.deploy_action(&mgmt, &id).await;
    assert_eq!(
        app.bind(&mgmt, "post-login", &[&id]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        login_claims(&app).await.unwrap()[format!("{NS}k")],
        "s3cr3t-value/x"
    );
    for path in [
        format!("/actions/actions/{id}"),
        format!("/actions/actions/{id}/versions"),
        "/actions/actions".to_string(),
        "/actions/triggers/post-login/bindings".to_string(),
    ] {
        let (_, body) = app.api("GET", &path, &mgmt, None).await;
        assert!(!body.to_string().contains("s3cr3t-value"), "{path}: {body}");
    }
    // PATCH takes the whole list: a name without a value keeps its value, one left out goes.
    let (status, a) = app
        .api(
            "PATCH",
            &format!("/actions/actions/{id}"),
            &mgmt,
            Some(json!({"secrets": [{"name": "API_KEY"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(
        login_claims(&app).await.unwrap()[format!("{NS}k")],
        "s3cr3t-value/none",
        "secrets are live without a deploy"
    );
    // A new secret without a value is refused.
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/actions/actions/{id}"),
            &mgmt,
            Some(json!({"secrets": [{"name": "NEW"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The database holds no secret in the clear.
    let db = app.db().await;
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT secrets FROM action")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows.iter()
            .all(|(s,)| !s.windows(12).any(|w| w == b"s3cr3t-value"))
    );
}

#[tokio::test]
async fn credentials_exchange_actions_shape_machine_tokens_and_deny_with_their_code() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let (status, _) = app
        .api(
            "POST",
            "/resource-servers",
            &mgmt,
            Some(
                json!({"identifier": "https://billing.example/", "name": "Billing",
                        "scopes": [{"value": "read:invoices", "description": "Read"}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, m2m) = app
        .api(
            "POST",
            "/clients",
            &mgmt,
            Some(
                json!({"name": "Cron", "grant_types": ["client_credentials"],
                        "client_metadata": {"tier": "gold"}}),
            ),
        )
        .await;
    let (m2m_id, m2m_secret) = (
        m2m["client_id"].as_str().unwrap().to_string(),
        m2m["client_secret"].as_str().unwrap().to_string(),
    );
    let (status, _) = app
        .api(
            "POST",
            "/client-grants",
            &mgmt,
            Some(json!({"client_id": m2m_id, "audience": "https://billing.example/", "scope": ["read:invoices"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = app
        .create_action(
            &mgmt,
            "tier",
            "credentials-exchange",
            &action_sample("credentials-exchange-tier"),
        )
        .await;
    app.deploy_action(&mgmt, &id).await;
    // A post-login action cannot be bound to credentials-exchange and vice versa.
    let (status, body) = app.bind(&mgmt, "post-login", &[&id]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        app.bind(&mgmt, "credentials-exchange", &[&id]).await.0,
        StatusCode::OK
    );
    let grant = || async {
        app.token_request(
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://billing.example/"),
            ],
            Some((&m2m_id, &m2m_secret)),
        )
        .await
    };
    let resp = grant().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let (_, access) = app
        .verify(
            body["access_token"].as_str().unwrap(),
            "https://billing.example/",
        )
        .await;
    assert_eq!(access[format!("{NS}tier")], "gold");
    assert_eq!(access["gty"], "client-credentials");

    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{m2m_id}"),
            &mgmt,
            Some(json!({"client_metadata": {"suspended": "true"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, error, body) = error_of(grant().await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error, "invalid_request");
    assert_eq!(
        body["error_description"],
        format!("client {m2m_id} is suspended")
    );
    // The tenant's own Management API never runs its actions (a broken action cannot lock
    // the tenant out of the API that fixes it).
    app.mgmt_token(None).await;
}

#[tokio::test]
async fn a_redirect_pauses_the_login_and_continue_resumes_it_once_for_its_browser() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let (status, a) = app
        .api(
            "POST",
            "/actions/actions",
            &mgmt,
            Some(json!({"name": "verify", "supported_triggers": [{"id": "post-login"}],
                        "secrets": [{"name": "SHARED", "value": "shared-secret-for-the-page"}],
                        "code": "
exports.onExecutePostLogin = async (event, api) => {
  const token = api.redirect.encodeToken({ secret: event.secrets.SHARED, payload: { email: event.user.email } });
  api.redirect.sendUserTo('https://verify.example/check', { query: { session_token: token } });
};
exports.onContinuePostLogin = async (event, api) => {
  const answer = api.redirect.validateToken({ secret: event.secrets.SHARED, tokenParameterName: 'answer' });
  api.idToken.setCustomClaim('https://wardstone.dev/verified', answer.verified);
};"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    app.deploy_action(&mgmt, &id).await;
    app.bind(&mgmt, "post-login", &[&id]).await;

    // Logs in; the browser is sent to the page with `state` and the action's token.
    let app = &app;
    let pause = |browser: Browser| async move {
        let next = app
            .sign_in_and_allow(&browser, &app.authorize_url(&[]))
            .await;
        (browser, next)
    };
    let (browser, page) = pause(Browser::new()).await;
    assert!(page.starts_with("https://verify.example/check?"), "{page}");
    let q = query_of(&page);
    let state = q["state"].clone();
    let sent: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(&q["session_token"])
        .unwrap()
        .claims;
    assert_eq!(sent["email"], EMAIL);
    assert_eq!(sent["state"], state, "the token names its login");
    assert_eq!(sent["iss"], app.issuer);

    let answer = |state: &str, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"state": state, "verified": true, "exp": 4_000_000_000u64}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let good = answer(&state, "shared-secret-for-the-page");
    let continue_url = |state: &str, token: &str| {
        let mut u = url::Url::parse(&app.url("/continue")).unwrap();
        u.query_pairs_mut()
            .append_pair("state", state)
            .append_pair("answer", token);
        u.to_string()
    };
    // Forged state, and the real state from another browser: error pages, nothing consumed.
    for (who, b, s) in [
        ("forged", &browser, "forged-state"),
        ("another browser", &Browser::new(), state.as_str()),
    ] {
        let resp = b.get(&continue_url(s, &good)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{who}");
        assert!(resp.headers().get("location").is_none(), "{who}");
    }
    // The external page posts back: that cross-site POST carries none of our SameSite=Lax
    // cookies, so it is sent round once as a top-level GET with the same parameters.
    let posted = Browser::new()
        .post_form(
            &app.url("/continue"),
            &[
                ("state".to_string(), state.clone()),
                ("answer".to_string(), good.clone()),
            ],
        )
        .await;
    let again = location(&posted);
    assert_eq!(again, continue_url(&state, &good));
    let resp = browser.get(&again).await;
    let callback = location(&resp);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    let q = query_of(&callback);
    assert_eq!(q["state"], "st-123");
    let claims = app.id_claims(&q["code"]).await;
    assert_eq!(claims[format!("{NS}verified")], true);
    // Single use: a replay finds nothing.
    let resp = browser.get(&continue_url(&state, &good)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A silent request cannot be sent to a page: interaction_required, never a pause.
    let silent = location(&browser.get(&app.authorize_url(&[("prompt", "none")])).await);
    assert!(silent.starts_with(CALLBACK), "{silent}");
    assert_eq!(query_of(&silent)["error"], "interaction_required");

    // An answer signed with another secret fails the login closed.
    let (browser, page) = pause(Browser::new()).await;
    let state = query_of(&page)["state"].clone();
    let bad = answer(&state, "not-the-shared-secret");
    let q = query_of(&location(&browser.get(&continue_url(&state, &bad)).await));
    assert_eq!(q["error"], "server_error", "{q:?}");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn deployed_actions_keep_their_compiled_artifacts_through_pruning() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.live_action(
        &mgmt,
        "kept",
        &post_login("api.idToken.setCustomClaim('https://wardstone.dev/k', 1);"),
    )
    .await;
    let (_, versions) = app.api("GET", "/actions/actions", &mgmt, None).await;
    assert_eq!(versions["total"], 1);
    assert_eq!(login_claims(&app).await.unwrap()[format!("{NS}k")], 1);
    let db = app.db().await;
    let (sha,): (String,) = sqlx::query_as("SELECT sha256 FROM action_version")
        .fetch_one(&db)
        .await
        .unwrap();
    let fingerprint = app.rules.engine().fingerprint().to_string();
    assert!(
        app.store
            .rule_artifact(&sha, &fingerprint)
            .await
            .unwrap()
            .is_some()
    );
    // The node's periodic pruning keeps what a deployed version needs.
    app.store
        .prune_rule_artifacts(
            [
                &wardstone::rules::js::runtime_artifact_key_of(false),
                &wardstone::rules::js::runtime_artifact_key_of(true),
            ],
            &fingerprint,
        )
        .await
        .unwrap();
    assert!(
        app.store
            .rule_artifact(&sha, &fingerprint)
            .await
            .unwrap()
            .is_some(),
        "an action's artifact survives pruning"
    );
}

#[tokio::test]
async fn hostile_actions_fail_closed_and_the_server_keeps_serving() {
    if !js() {
        return;
    }
    for (name, body, outcome, error) in [
        ("loop", "while (true) {}", "failed:", "server_error"),
        (
            "alloc bomb",
            "const a = []; while (true) { a.push('x'.repeat(1 << 20)); }",
            "failed:",
            "server_error",
        ),
        (
            "never resolves",
            "await new Promise(() => {});",
            "failed:",
            "server_error",
        ),
        (
            "throws after a claim",
            "api.idToken.setCustomClaim('https://wardstone.dev/x', 1); throw new Error('boom');",
            "failed:",
            "server_error",
        ),
        (
            "deny then loop",
            "api.access.deny('no'); while (true) {}",
            "denied",
            "access_denied",
        ),
        (
            "multifactor",
            "api.multifactor.enable('any');",
            "failed:unsupported",
            "access_denied",
        ),
    ] {
        let app = spawn_app().await;
        let mgmt = app.mgmt_token(None).await;
        app.live_action(&mgmt, name, &post_login(body)).await;
        let q = app.authorize_outcome(&Browser::new(), &[]).await;
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(error),
            "{name}: {q:?}"
        );
        assert!(!q.contains_key("code"), "{name}");
        let log = &app.logs(1).await[0];
        assert!(
            log.outcome.label().starts_with(outcome),
            "{name}: {}",
            log.outcome.label()
        );
        let (status, _) = app.bind(&mgmt, "post-login", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            app.authorize_outcome(&Browser::new(), &[])
                .await
                .contains_key("code"),
            "{name}: logins work again"
        );
    }
}

#[tokio::test]
async fn a_restricted_claim_is_left_out_with_a_note_as_auth0_does() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.live_action(
        &mgmt,
        "impostor",
        &post_login("api.idToken.setCustomClaim('sub', 'someone-else'); api.accessToken.setCustomClaim('aud', 'x');"),
    )
    .await;
    let (_, id_token, access) = app.login_claims().await;
    assert_eq!(id_token["sub"], app.user_id);
    assert_ne!(access["aud"], "x");
    let log = &app.logs(1).await[0];
    assert!(
        log.logs
            .iter()
            .any(|l| l.message.contains("\"sub\" is restricted")),
        "{log:?}"
    );
}

#[tokio::test]
async fn bad_actions_are_refused_with_clear_errors_and_nothing_changes() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let ok_code = post_login("");
    let create = |body: Value| {
        let (app, mgmt) = (&app, &mgmt);
        async move { app.api("POST", "/actions/actions", mgmt, Some(body)).await }
    };
    for (why, body, status, needle) in [
        (
            "unknown trigger",
            json!({"name": "x", "supported_triggers": [{"id": "pre-user-registration"}], "code": ok_code}),
            StatusCode::BAD_REQUEST,
            "pre-user-registration",
        ),
        (
            "two triggers",
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}, {"id": "credentials-exchange"}], "code": ok_code}),
            StatusCode::BAD_REQUEST,
            "trigger",
        ),
        (
            "bad name",
            json!({"name": "", "supported_triggers": [{"id": "post-login"}], "code": ok_code}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "unknown field",
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}], "code": ok_code, "evil": 1}),
            StatusCode::BAD_REQUEST,
            "evil",
        ),
        (
            "unknown runtime",
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}], "code": ok_code, "runtime": "python3"}),
            StatusCode::BAD_REQUEST,
            "runtime",
        ),
        (
            "a dependency outside the built-in set",
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}], "code": ok_code,
                   "dependencies": [{"name": "left-pad", "version": "1.3.0"}]}),
            StatusCode::BAD_REQUEST,
            "left-pad",
        ),
        (
            "too much code",
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}], "code": format!("{ok_code}//{}", "x".repeat(110 * 1024))}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
        ),
        (
            "empty secret name",
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}], "code": ok_code, "secrets": [{"name": "", "value": "v"}]}),
            StatusCode::BAD_REQUEST,
            "secret",
        ),
    ] {
        let (got, body) = create(body).await;
        assert_eq!(got, status, "{why}: {body}");
        assert!(
            body.to_string().contains(needle),
            "{why}: {body} should mention {needle}"
        );
        assert!(body["message"].is_string(), "{why}: Management API JSON");
    }
    if js() {
        let (status, body) = create(json!({"name": "x", "supported_triggers": [{"id": "post-login"}],
            "code": "exports.onExecutePostLogin = async (event, api) => {\n  api.idToken.setCustomClaim('a', 1;\n};"}))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("line 2"),
            "{body}"
        );
        let (status, body) = create(
            json!({"name": "x", "supported_triggers": [{"id": "post-login"}],
            "code": "exports.onExecuteCredentialsExchange = async () => {};"}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("onExecutePostLogin"),
            "{body}"
        );
        let (status, body) = create(json!({"name": "x", "supported_triggers": [{"id": "post-login"}],
            "code": "const pad = require('left-pad');\nexports.onExecutePostLogin = async () => {};"}))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("left-pad"),
            "{body}"
        );

        let id = app
            .create_action(&mgmt, "dup", "post-login", &ok_code)
            .await;
        let (status, _) = create(
            json!({"name": "dup", "supported_triggers": [{"id": "post-login"}], "code": ok_code}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        // A broken draft is refused; the stored one stays.
        let (status, _) = app
            .api(
                "PATCH",
                &format!("/actions/actions/{id}"),
                &mgmt,
                Some(json!({"code": "exports.onExecutePostLogin = ("})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, a) = app
            .api("GET", &format!("/actions/actions/{id}"), &mgmt, None)
            .await;
        assert_eq!(a["code"], ok_code);
        // A bound action is deleted only with force.
        app.deploy_action(&mgmt, &id).await;
        app.bind(&mgmt, "post-login", &[&id]).await;
        let (status, body) = app
            .api("DELETE", &format!("/actions/actions/{id}"), &mgmt, None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, _) = app
            .api(
                "DELETE",
                &format!("/actions/actions/{id}?force=true"),
                &mgmt,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, bindings) = app
            .api("GET", "/actions/triggers/post-login/bindings", &mgmt, None)
            .await;
        assert_eq!(bindings["total"], 0);
    }
    for (method, path) in [
        ("GET", "/actions/actions/nope"),
        ("POST", "/actions/actions/nope/deploy"),
        ("GET", "/actions/triggers/pre-user-registration/bindings"),
    ] {
        let (status, body) = app.api(method, path, &mgmt, None).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{method} {path}: {status} {body}"
        );
        assert!(body["message"].is_string(), "{body}");
    }
    // A token without the actions scopes is refused; no token at all is 401.
    let narrow = app.mgmt_token(Some("read:users")).await;
    assert_eq!(
        app.api("GET", "/actions/actions", &narrow, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.api("GET", "/actions/actions", "nope", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_test_endpoint_runs_the_draft_on_an_event_and_returns_what_it_asked() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let id = app
        .create_action(
            &mgmt,
            "verified only",
            "post-login",
            &action_sample("post-login-require-verified-email"),
        )
        .await;
    let test = |event: Value| app.test_action(&mgmt, &id, event);
    let (status, out) =
        test(json!({"user": {"email_verified": true, "app_metadata": {"login_count": 4}}})).await;
    let out = &out["payload"];
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["outcome"], "ok", "{out}");
    assert_eq!(out["calls"]["appMetadata"]["login_count"], 5);
    let (_, out) = test(json!({"user": {"email_verified": false}})).await;
    let out = &out["payload"];
    assert_eq!(out["outcome"], "denied");
    assert_eq!(
        out["error"]["reason"],
        "Please verify your email before logging in."
    );
    // Not saved anywhere: the user is untouched.
    let user = app.user_record(&app.user_id).await;
    assert!(!user.app_metadata.0.contains_key("login_count"));
    let (status, body) = test(json!("not an event")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_lazy_event_reads_like_a_plain_object() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // `event` is parsed one member at a time when first read (the runtime's native `get`
    // trap): what an action can observe must be a plain object's behaviour.
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
      const out = {};
      if (event.user.app_metadata.mode === 'frozen') {
        Object.preventExtensions(event);
        out.same = event.user === event.user;
        try { out.tenant = event.tenant.id; } catch (e) { out.tenant = e.name; }
      } else {
        out.has = 'user' in event && !('nope' in event);
        out.missing = typeof event.nope;
        out.same = event.user === event.user && event.authorization === event.authorization;
        out.email = event.user.email;
        delete event.user.email;
        out.deleted = event.user.email === undefined && !('email' in event.user);
        out.symbol = event[Symbol.iterator] === undefined;
        out.plan = JSON.parse(JSON.stringify(event.user)).app_metadata.plan;
        out.quote = event.user.user_metadata['a"b'];
        const keys = Object.keys(event);
        out.keys = keys.includes('tenant') && keys.includes('secrets') && !keys.includes('nope');
      }
      api.idToken.setCustomClaim('https://example.com/out', out);
    };"#;
    let id = app
        .create_action(&mgmt, "lazy event", "post-login", code)
        .await;
    let test = |event: Value| {
        let (app, mgmt, id) = (&app, &mgmt, &id);
        async move {
            let (status, out) = app.test_action(mgmt, id, event).await;
            assert_eq!(status, StatusCode::OK, "{out}");
            assert_eq!(out["payload"]["outcome"], "ok", "{out}");
            out["payload"]["calls"]["idToken"]["https://example.com/out"].clone()
        }
    };
    let out = test(json!({"user": {
        "email": "lazy@example.com",
        "app_metadata": {"plan": "gold"},
        "user_metadata": {"a\"b": "line\nbreak"},
    }}))
    .await;
    assert_eq!(
        out,
        json!({
            "has": true, "missing": "undefined", "same": true, "email": "lazy@example.com",
            "deleted": true, "symbol": true, "plan": "gold", "quote": "line\nbreak", "keys": true,
        })
    );
    // A member first read after the event was made non-extensible cannot be added to it:
    // the read throws (as an assignment in strict mode does) instead of handing out a value
    // that the next read would not see.
    let out = test(json!({"user": {"app_metadata": {"mode": "frozen"}}})).await;
    assert_eq!(out, json!({"same": true, "tenant": "TypeError"}));
}

#[tokio::test]
async fn claim_values_are_what_json_stringify_makes_of_them() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // Strings, integers and lists of them are written natively (`emit_value`), everything
    // else by QuickJS's JSON.stringify: each case goes out both ways, the reference inside an
    // object (which always takes JSON.stringify; wrapped in a list so that what it leaves
    // out becomes null, as for a claim).
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
      const hole = []; hole[1] = 'after a hole';
      const custom = Object.assign(['a'], { toJSON: () => 'custom' });
      const cases = [
        'plain', 'quote " backslash \\ newline \n tab \t nul \u0000 \u001f del \u007f',
        'é 🎉 \u2028', '', 0, -0, 42, -7, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, 2 ** 53,
        2 ** 53 + 2, 1.5, -1e-7, 1e21, 1e300, NaN, Infinity, -Infinity, true, false, null,
        undefined, function f() {}, Symbol('s'), [], ['a', 1, true, null, undefined, () => 1],
        ['a', 1.5], ['a', ['b']], ['a', { b: 1 }], hole, custom, new Date(0), { a: [1, 'b'] },
        new String('boxed'), [new Number(3)], event.authorization.roles,
      ];
      const reference = {};
      cases.forEach((value, i) => {
        api.idToken.setCustomClaim(`https://example.com/${i}`, value);
        reference[i] = [value];
      });
      api.accessToken.setCustomClaim('https://example.com/reference', reference);
      api.accessToken.setCustomClaim('https://example.com/count', cases.length);
      const errors = {};
      const attempt = (name, value) => {
        try {
          api.idToken.setCustomClaim(`https://example.com/${name}`, value);
        } catch (e) {
          errors[name] = `${e.name}: ${e.message}`;
        }
      };
      const cycle = ['a']; cycle.push(cycle);
      attempt('cycle', cycle);
      const throwing = ['a'];
      Object.defineProperty(throwing, 0, { get() { throw new Error('boom'); } });
      attempt('getter', throwing);
      attempt('bigint', [10n]);
      api.accessToken.setCustomClaim('https://example.com/errors', errors);
    };"#;
    let id = app
        .create_action(&mgmt, "claim values", "post-login", code)
        .await;
    let roles = json!({"authorization": {"roles": ["admin", "a \"quoted\" role"]}});
    let (status, out) = app.test_action(&mgmt, &id, roles).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let calls = &out["payload"]["calls"];
    assert_eq!(out["payload"]["outcome"], "ok", "{out}");
    let (id_token, access) = (&calls["idToken"], &calls["accessToken"]);
    let count = access["https://example.com/count"].as_u64().unwrap();
    assert_eq!(count, 38, "{out}");
    for i in 0..count {
        let reference = &access["https://example.com/reference"][i.to_string()][0];
        assert_eq!(
            &id_token[format!("https://example.com/{i}")],
            reference,
            "case {i}: {out}"
        );
    }
    // Spot checks of the reference itself.
    assert_eq!(id_token["https://example.com/5"], json!(0));
    assert_eq!(
        id_token["https://example.com/1"],
        json!("quote \" backslash \\ newline \n tab \t nul \u{0} \u{1f} del \u{7f}")
    );
    assert_eq!(
        id_token["https://example.com/12"],
        json!(9007199254740994u64)
    );
    assert_eq!(
        id_token["https://example.com/27"],
        json!(["a", 1, true, null, null, null])
    );
    assert_eq!(
        id_token["https://example.com/31"],
        json!([null, "after a hole"])
    );
    assert_eq!(id_token["https://example.com/32"], json!("custom"));
    assert_eq!(
        id_token[format!("https://example.com/{}", count - 1)],
        json!(["admin", "a \"quoted\" role"])
    );
    // A value JSON.stringify throws on throws in the action, and no claim is set.
    let errors = &access["https://example.com/errors"];
    assert!(
        errors["cycle"].as_str().unwrap().starts_with("TypeError"),
        "{out}"
    );
    assert_eq!(errors["getter"], "Error: boom", "{out}");
    assert!(
        errors["bigint"].as_str().unwrap().starts_with("TypeError"),
        "{out}"
    );
    for name in ["cycle", "getter", "bigint"] {
        assert!(
            id_token
                .get(format!("https://example.com/{name}"))
                .is_none(),
            "{out}"
        );
    }
}

#[tokio::test]
async fn what_a_handler_queued_before_it_settled_still_counts() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // The runtime reads an async handler's promise itself (no `.then` on it) and settles the
    // action where that reaction would have run: after what the handler queued before it
    // returned. A denial or claim made there is never lost.
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
      const mode = event.user.app_metadata.mode;
      Promise.resolve().then(() => api.idToken.setCustomClaim('https://example.com/queued', mode));
      if (mode === 'deny') Promise.resolve().then(() => api.access.deny('denied from a queued job'));
      if (mode === 'throw') Promise.resolve().then(() => { throw new Error('a queued job threw'); });
      if (mode === 'late') await null;
    };"#;
    let id = app
        .create_action(&mgmt, "queued work", "post-login", code)
        .await;
    let test = |mode: &'static str| {
        let (app, mgmt, id) = (&app, &mgmt, &id);
        async move {
            let event = json!({"user": {"app_metadata": {"mode": mode}}});
            let (status, out) = app.test_action(mgmt, id, event).await;
            assert_eq!(status, StatusCode::OK, "{out}");
            out["payload"].clone()
        }
    };
    for mode in ["plain", "late", "throw"] {
        let out = test(mode).await;
        assert_eq!(out["outcome"], "ok", "{mode}: {out}");
        assert_eq!(
            out["calls"]["idToken"]["https://example.com/queued"], mode,
            "{out}"
        );
    }
    let out = test("deny").await;
    assert_eq!(out["outcome"], "denied", "{out}");
    assert_eq!(out["error"]["reason"], "denied from a queued job", "{out}");
}

#[tokio::test]
async fn an_action_reaches_only_hosts_the_tenant_allowed() {
    if !js() {
        return;
    }
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let router = axum::Router::new().route(
        "/profile",
        axum::routing::get(|| async { axum::Json(json!({"tier": "platinum"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    app.live_action(
        &mgmt,
        "enrich",
        &post_login(&format!(
            "const res = await fetch('http://127.0.0.1:{port}/profile');
             const body = await res.json();
             api.idToken.setCustomClaim('https://wardstone.dev/tier', body.tier);"
        )),
    )
    .await;
    // Not on the allow-list: the login fails closed.
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "server_error", "{q:?}");
    app.allow_host(&mgmt, &format!("127.0.0.1:{port}")).await;
    assert_eq!(
        login_claims(&app).await.unwrap()[format!("{NS}tier")],
        "platinum"
    );
}

#[tokio::test]
async fn one_tenant_cannot_see_or_bind_another_tenants_actions() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let id = app
        .create_action(&mgmt, "mine", "post-login", &post_login(""))
        .await;
    app.deploy_action(&mgmt, &id).await;
    let other = app
        .admin
        .create_tenant("other-tenant", wardstone::domain::SigningAlg::Rs256)
        .await
        .unwrap();
    let issuer = other.issuer.clone();
    let token: Value = reqwest::Client::new()
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(
            &other.management.client_id,
            Some(&other.management.client_secret),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", &format!("{issuer}/api/v2/")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{issuer}/api/v2/actions/actions/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = http
        .patch(format!(
            "{issuer}/api/v2/actions/triggers/post-login/bindings"
        ))
        .bearer_auth(token)
        .json(&json!({"bindings": [{"ref": {"type": "action_id", "value": id}}]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    let list: Value = http
        .get(format!("{issuer}/api/v2/actions/actions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn the_built_in_crypto_module_works_in_actions_and_rules_and_others_are_refused() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // Auth0's versioned form names the same module.
    let code = format!(
        "const crypto = require('crypto@1.0.0');
         {}",
        post_login(
            "const claim = (k, v) => api.idToken.setCustomClaim('https://wardstone.dev/' + k, v);
             claim('sha256', crypto.createHash('sha256').update('a').update('bc').digest('hex'));
             claim('mixed', crypto.createHash('sha256').update('a').update('6263', 'hex').digest('base64url'));
             claim('hmac', crypto.createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog').digest('base64'));
             claim('random', crypto.randomBytes(8).toString('hex').length);
             claim('same', crypto.timingSafeEqual('abc', 'abc'));
             claim('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()));
             const bytes = new Uint8Array(4);
             globalThis.crypto.getRandomValues(bytes);
             claim('web', bytes.length);"
        )
    );
    app.live_action(&mgmt, "crypto", &code).await;
    let (_, id_token, _) = app.login_claims().await;
    let claim = |k: &str| id_token[format!("{NS}{k}")].clone();
    assert_eq!(
        claim("sha256"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "{id_token}"
    );
    assert_eq!(
        claim("mixed"),
        "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0",
        "utf8 and hex updates join as bytes"
    );
    assert_eq!(
        claim("hmac"),
        "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
    );
    assert_eq!(claim("random"), 16);
    assert_eq!(claim("same"), true);
    assert_eq!(claim("uuid"), true);
    assert_eq!(claim("web"), 4);

    // A rule requires it too; the module is frozen, so one run cannot change what the next
    // one sees.
    app.add_script(
        "crypto rule",
        "function (user, context, callback) {
           const crypto = require('crypto');
           try { crypto.createHash = function () { return { update() { return this; }, digest() { return 'tampered'; } }; }; } catch (e) {}
           context.idToken['https://wardstone.dev/h'] = crypto.createHash('sha1').update('abc').digest('hex');
           callback(null, user, context);
         }",
    )
    .await;
    let (_, id_token, _) = app.login_claims().await;
    assert_eq!(
        id_token[format!("{NS}h")],
        "a9993e364706816aba3e25717850c26c9cd0d89d",
        "{id_token}"
    );

    // Outside the set: refused at upload, naming the module and listing the set.
    let (status, body) = app
        .api(
            "POST",
            "/actions/actions",
            &mgmt,
            Some(json!({"name": "x", "supported_triggers": [{"id": "post-login"}],
                "code": "const db = require('mongodb');\nexports.onExecutePostLogin = async () => {};"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("mongodb"), "{body}");
    assert!(message.contains("crypto"), "the set is listed: {body}");
}

#[tokio::test]
async fn a_module_used_wrongly_fails_the_login_closed() {
    if !js() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.live_action(
        &mgmt,
        "bad hash",
        &post_login(
            "api.idToken.setCustomClaim('https://wardstone.dev/x', 1);
             require('crypto').createHash('md4').update('x').digest('hex');",
        ),
    )
    .await;
    app.assert_login_fails_closed("md4").await;
}

/// `globalThis.fetch` escapes the source scan that keeps actions with outbound requests off the
/// request's own thread: there the request is refused before it leaves, the attempt is thrown
/// away, and the run happens again on the executor — the upstream sees one request per login.
#[test]
fn a_request_asked_for_on_the_requests_thread_leaves_once_from_the_executor() {
    if !js() {
        return;
    }
    on_a_roomy_thread(fetch_through_the_global_object);
}

async fn fetch_through_the_global_object() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let hits = Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().route(
        "/profile",
        axum::routing::get({
            let hits = hits.clone();
            move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"tier": "platinum"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    app.allow_host(&mgmt, &format!("127.0.0.1:{port}")).await;
    // The first action counts in the cache; the second reaches the network.
    app.live_action(
        &mgmt,
        "count",
        &post_login(
            "const seen = api.cache.get('seen');
             api.cache.set('seen', String(Number(seen ? seen.value : 0) + 1));",
        ),
    )
    .await;
    app.live_action(
        &mgmt,
        "enrich",
        &post_login(&format!(
            "const res = await globalThis.fetch('http://127.0.0.1:{port}/profile');
             const body = await res.json();
             api.idToken.setCustomClaim('https://wardstone.dev/tier', body.tier);
             api.idToken.setCustomClaim('https://wardstone.dev/seen', api.cache.get('seen').value);"
        )),
    )
    .await;
    let claims = login_claims(&app).await.unwrap();
    assert_eq!(claims[format!("{NS}tier")], "platinum");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one request per login");
    // The abandoned attempt's cache write (by the first action) was not kept: the executor's
    // run counted once.
    assert_eq!(claims[format!("{NS}seen")], "1");
    let text = super::metrics::scrape(&app).await;
    let runs = |place: &str| {
        super::metrics::sample(
            &text,
            &format!(r#"wardstone_rule_runs_total{{place="{place}"}}"#),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(runs("executor_after_overrun"), 1.0, "{text}");
    assert_eq!(runs("executor"), 1.0);
}
