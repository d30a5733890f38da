// JavaScript rules (SPEC §14): Auth0 rule source runs unchanged through a real login, inside
// the wasm sandbox, with the same pipeline semantics as every other rule; hostile scripts fail
// closed; bad sources are refused at upload with line and column.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const NS: &str = "https://wardstone.dev/";

#[tokio::test]
async fn an_auth0_rule_runs_unchanged_and_its_source_is_returned() {
    let Some(source) = js_sample("add-roles") else {
        return;
    };
    let app = spawn_app().await;
    app.set_metadata(
        &app.user_id,
        json!({"roles": ["admin", 7, "editor"]}),
        json!({}),
    )
    .await;
    let id = app.add_script("add roles", &source).await;
    let mgmt = app.mgmt_token(None).await;
    let (status, rule) = app.api("GET", &format!("/rules/{id}"), &mgmt, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rule["script"], source, "GET returns the source as uploaded");
    assert!(rule.get("wasm").is_none());

    let (_, id_token, access) = app.login_claims().await;
    assert_eq!(id_token[format!("{NS}roles")], json!(["admin", "editor"]));
    assert_eq!(access[format!("{NS}roles")], json!(["admin", "editor"]));
    let log = &app.logs(1).await[0];
    assert_eq!(log.outcome.label(), "ok", "{log:?}");
    assert!(log.fuel > 0);
}

#[tokio::test]
async fn unauthorized_error_denies_with_its_message_and_console_goes_to_the_log() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    app.add_script(
        "gate",
        r#"function (user, context, callback) {
  console.log('checking', user.email, { client: context.clientName });
  console.warn('closed');
  callback(new UnauthorizedError('No entry for ' + user.email));
}"#,
    )
    .await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], format!("No entry for {}", EMAIL));
    let log = &app.logs(1).await[0];
    assert_eq!(log.outcome.label(), "denied");
    let lines: Vec<(String, String)> = log
        .logs
        .iter()
        .map(|l| (l.level.clone(), l.message.clone()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "info".to_string(),
                format!("checking {} {{\"client\":\"Acme Web\"}}", EMAIL)
            ),
            ("warn".to_string(), "closed".to_string()),
        ]
    );
}

#[tokio::test]
async fn configuration_async_metadata_and_refresh_only_logic() {
    let Some(source) = js_sample("plan-from-configuration") else {
        return;
    };
    let app = spawn_app().await;
    app.admin
        .set_rule_config(&app.t().await, "DEFAULT_PLAN", "team")
        .await
        .unwrap();
    app.add_script("plan", &source).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (_, access) = app
        .verify(
            tokens["access_token"].as_str().unwrap(),
            &app.url("/userinfo"),
        )
        .await;
    assert_eq!(access[format!("{NS}plan")], "team");
    assert_eq!(access[format!("{NS}protocol")], "oidc-basic-profile");
    // updateAppMetadata was persisted after the pipeline.
    let mgmt = app.mgmt_token(None).await;
    let (_, user) = app
        .api("GET", &format!("/users/{}", app.user_id), &mgmt, None)
        .await;
    assert_eq!(user["app_metadata"]["plan"], "team");
    assert_eq!(
        user["app_metadata"]["first_login"],
        "1970-01-01T00:00:00.000Z"
    );
    let log = &app.logs(1).await[0];
    assert!(
        log.logs
            .iter()
            .any(|l| l.message == format!("plan team for {}", EMAIL)),
        "{log:?}"
    );

    // At refresh the rule takes its other branch and writes nothing.
    app.admin
        .set_rule_config(&app.t().await, "DEFAULT_PLAN", "other")
        .await
        .unwrap();
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    let (_, access) = app
        .verify(
            refreshed["access_token"].as_str().unwrap(),
            &app.url("/userinfo"),
        )
        .await;
    assert_eq!(access[format!("{NS}protocol")], "oauth2-refresh-token");
    assert_eq!(
        access[format!("{NS}plan")],
        "team",
        "from the stored metadata"
    );
    assert!(app.logs(1).await[0].logs.is_empty());
}

#[tokio::test]
async fn promises_restricted_claims_and_fresh_randomness() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    app.add_script(
        "async",
        r#"function (user, context, callback) {
  const later = (v) => new Promise((resolve) => Promise.resolve().then(() => resolve(v)));
  later(Math.random()).then((r) => {
    context.idToken['https://wardstone.dev/random'] = r;
    context.idToken['https://wardstone.dev/now'] = Date.now();
    context.idToken.sub = 'someone-else';
    context.protocol = 'forged';
    return auth0.users.updateUserMetadata(user.user_id, { theme: 'dark' });
  }).then(() => callback(null, user, context), callback);
}"#,
    )
    .await;
    let mut randoms = Vec::new();
    for _ in 0..2 {
        let tokens = app.tokens(&Browser::new()).await;
        let (_, id_token) = app
            .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
            .await;
        assert_eq!(
            id_token["sub"], app.user_id,
            "restricted claims are dropped"
        );
        let now_ms = (wardstone::clock::Clock::System.now_micros() / 1000) as f64;
        let rule_now = id_token[format!("{NS}now")].as_f64().unwrap();
        assert!(
            (now_ms - rule_now).abs() < 60_000.0,
            "Date.now is the host clock"
        );
        randoms.push(id_token[format!("{NS}random")].as_f64().unwrap());
    }
    assert_ne!(randoms[0], randoms[1], "every execution is seeded afresh");
    assert!(randoms.iter().all(|r| (0.0..1.0).contains(r)));
    let mgmt = app.mgmt_token(None).await;
    let (_, user) = app
        .api("GET", &format!("/users/{}", app.user_id), &mgmt, None)
        .await;
    assert_eq!(user["user_metadata"]["theme"], "dark");
}

#[tokio::test]
async fn hostile_scripts_fail_closed_and_the_server_keeps_serving() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let cases: &[(&str, &str, &str)] = &[
        ("infinite loop", "while (true) {}", "failed:fuel"),
        (
            "allocation bomb",
            "let s = 'x'.repeat(1 << 20); const keep = []; for (;;) { keep.push(s + keep.length); s = s + s; }",
            "failed:",
        ),
        ("throw", "throw new Error('boom');", "failed:trap"),
        (
            "never calls back",
            "console.log('forgot the callback');",
            "failed:trap",
        ),
        (
            "deep recursion",
            "const down = (n) => down(n + 1) + 1; down(0);",
            "failed:",
        ),
        (
            "rejected promise",
            "Promise.reject(new TypeError('nope')).then(() => callback(null, user, context));",
            "failed:trap",
        ),
        (
            "callback with garbage",
            "callback(null, 42, 'context');",
            "failed:trap",
        ),
        (
            "metadata of another user",
            "auth0.users.updateAppMetadata('someone', {}).then(() => callback(null, user, context), callback);",
            "failed:trap",
        ),
        ("throw a falsy value", "throw 0;", "failed:trap"),
        (
            "reject with a falsy value",
            "Promise.reject(false).then(() => callback(null, user, context), (e) => { throw e; });",
            "failed:trap",
        ),
        (
            "async throw",
            "(async () => { await null; throw ''; })().then(() => callback(null, user, context), (e) => callback(e || new Error('empty')));",
            "failed:trap",
        ),
        (
            "a require the scan cannot see",
            "globalThis['req' + 'uire']('fs'); callback(null, user, context);",
            "failed:trap",
        ),
    ];
    for (name, body, outcome) in cases {
        let source = format!("function (user, context, callback) {{\n  {body}\n}}");
        let id = app.add_script(&name.replace(' ', "-"), &source).await;
        let q = app.authorize_outcome(&Browser::new(), &[]).await;
        assert_eq!(q["error"], "server_error", "{name}: {q:?}");
        let log = &app.logs(1).await[0];
        assert!(
            log.outcome.label().starts_with(outcome),
            "{name}: {}",
            log.outcome.label()
        );
        let description = q["error_description"].to_lowercase();
        assert!(description.contains(&log.id.to_lowercase()), "{name}");
        for internal in [
            "wasm",
            "trap",
            "fuel",
            "memory",
            "quickjs",
            "javascript",
            "boom",
            "rule.js",
        ] {
            assert!(
                !description.contains(internal),
                "{name}: {description} leaks {internal}"
            );
        }
        app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    }
    // An async rule that throws, and one whose falsy throw skips `callback`: both fail.
    for (name, source) in [
        (
            "async-throws",
            "async function (user, context, callback) {\n  await Promise.resolve();\n  throw new Error('late');\n}",
        ),
        (
            "async-throws-zero",
            "async function (user, context, callback) {\n  await null;\n  throw 0;\n}",
        ),
    ] {
        let id = app.add_script(name, source).await;
        let q = app.authorize_outcome(&Browser::new(), &[]).await;
        assert_eq!(q["error"], "server_error", "{name}: {q:?}");
        assert_eq!(
            app.logs(1).await[0].outcome.label(),
            "failed:trap",
            "{name}"
        );
        app.admin.remove_rule(&app.t().await, &id).await.unwrap();
    }
    let log = app.logs(20).await;
    let thrown = log
        .iter()
        .find(|l| l.rule_name == "throw")
        .expect("the throw was logged");
    assert!(
        thrown
            .logs
            .iter()
            .any(|l| l.message.contains("Error: boom") && l.message.contains("rule.js:2")),
        "the rule log has the error and its line: {thrown:?}"
    );
    assert!(
        thrown
            .logs
            .iter()
            .any(|l| l.message == "the JavaScript failed: Error: boom"),
        "the host's note names the error, not a wasm trap: {thrown:?}"
    );
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn bad_sources_are_refused_at_upload_with_line_and_column() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let cases: &[(&str, &str)] = &[
        (
            "function (user, context, callback) {\n  const x = ;\n}",
            "(line 2, column 13)",
        ),
        (
            "function (user, context, callback) {\n  const sql = require('tedious');\n  callback(null, user, context);\n}",
            "module \"tedious\" is not available in Wardstone (line 2, column 15)",
        ),
        ("42", "must be one function expression"),
        ("", "the script is empty"),
        (
            "function (user, context, callback) { callback(null, user, context) }) + (0",
            "must be one function expression",
        ),
    ];
    for (source, expected) in cases {
        let (status, body) = app
            .api(
                "POST",
                "/rules",
                &mgmt,
                Some(json!({"name": "bad", "script": source})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{source}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{source}: {body}"
        );
    }
    let (status, body) = app
        .api(
            "POST",
            "/rules",
            &mgmt,
            Some(json!({"name": "both", "script": "function(){}", "wat": "(module)"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, rules) = app.api("GET", "/rules", &mgmt, None).await;
    assert_eq!(rules, json!([]), "nothing refused was stored");
}

#[tokio::test]
async fn a_rule_moves_between_wasm_and_javascript_by_versions() {
    let Some(source) = js_sample("add-roles") else {
        return;
    };
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let id = app.add_rule("roles", &wat_sample("deny.wat")).await;
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/rules/{id}"),
            &mgmt,
            Some(json!({"script": source})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code"),
        "the JavaScript version runs"
    );
    let (status, body) = app
        .api(
            "POST",
            &format!("/rules/{id}/rollback"),
            &mgmt,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, rule) = app.api("GET", &format!("/rules/{id}"), &mgmt, None).await;
    assert!(rule.get("script").is_none(), "{rule}");
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied",
        "the wasm version runs again"
    );
    let (status, _) = app
        .api(
            "POST",
            &format!("/rules/{id}/rollback"),
            &mgmt,
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, rule) = app.api("GET", &format!("/rules/{id}"), &mgmt, None).await;
    assert_eq!(rule["script"], source);
}

#[tokio::test]
async fn a_script_compiled_on_one_node_runs_from_its_stored_bytecode_on_another() {
    let Some(source) = js_sample("add-roles") else {
        return;
    };
    let app = spawn_app().await;
    app.set_metadata(&app.user_id, json!({"roles": ["auditor"]}), json!({}))
        .await;
    app.add_script("roles", &source).await;
    let (b, rules_b) = app.spawn_node_with(|_| {}).await;
    let q = app.login_on(&b).await;
    let resp = app.exchange(&q["code"]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    let (_, id_token) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(id_token[format!("{NS}roles")], json!(["auditor"]));
    let stats = &rules_b.modules().stats;
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.recompiled.load(Relaxed), 0, "node B compiled nothing");
    assert!(
        stats.loaded.load(Relaxed) >= 1,
        "it loaded the bytecode artifact"
    );
    assert_eq!(
        stats.js_runtime_loaded.load(Relaxed),
        1,
        "node B took the runtime's compiled code from the database instead of making it"
    );
    // The runtime's row survives pruning (no rule has its key as a module hash); another
    // runtime's (an older server version's) does not.
    let fingerprint = app.rules.engine().fingerprint().to_string();
    let key = wardstone::rules::js::runtime_artifact_key();
    let mut old = app
        .store
        .rule_artifact(&key, &fingerprint)
        .await
        .unwrap()
        .unwrap();
    old.sha256 = "runtime:js:an-older-runtime".into();
    app.store.put_rule_artifact(&old).await.unwrap();
    let modules_key = wardstone::rules::js::runtime_artifact_key_of(true);
    app.store
        .prune_rule_artifacts([&key, &modules_key], &fingerprint)
        .await
        .unwrap();
    assert!(
        app.store
            .rule_artifact(&key, &fingerprint)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        app.store
            .rule_artifact(&old.sha256, &fingerprint)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn user_and_context_behave_as_plain_objects() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    // The shape Auth0's editor allows too: a trailing `;` and comment, `global` used as cache.
    app.add_script(
        "semicolon",
        "// from the Auth0 dashboard\nfunction (user, context, callback) {\n  global.seen = (global.seen || 0) + 1;\n  context.accessToken['https://wardstone.dev/seen'] = global.seen;\n  callback(null, user, context);\n};  // end\n",
    )
    .await;
    app.add_script(
        "reflection",
        r#"function (user, context, callback) {
  const keys = Object.keys(user);
  const checks = {
    keys: keys.includes('email') && keys.includes('app_metadata') && keys.length > 10,
    in: ('clientID' in context) && !('nope' in context),
    own: user.hasOwnProperty('user_id') && Object.prototype.hasOwnProperty.call(context, 'protocol'),
    spread: typeof { ...context.request }.ip === 'string',
    json: JSON.parse(JSON.stringify(user)).email === user.email,
    forIn: (() => { let n = 0; for (const k in context) n++; return n > 5; })(),
    assign: Object.assign({}, user).user_id === user.user_id,
  };
  context.idToken['https://wardstone.dev/checks'] = checks;
  callback(null, user, context);
}"#,
    )
    .await;
    let tokens = app.tokens(&Browser::new()).await;
    let (_, id_token) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    for _ in 0..2 {
        let tokens = app.tokens(&Browser::new()).await;
        let (_, access) = app
            .verify(
                tokens["access_token"].as_str().unwrap(),
                &app.url("/userinfo"),
            )
            .await;
        assert_eq!(
            access[format!("{NS}seen")],
            1,
            "nothing survives between executions"
        );
    }
    assert_eq!(
        id_token[format!("{NS}checks")],
        json!({"keys": true, "in": true, "own": true, "spread": true, "json": true, "forIn": true, "assign": true})
    );
}

#[tokio::test]
async fn members_are_cut_out_of_inputs_full_of_quotes_brackets_and_escapes() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // The runtime cuts `user` and `context` into their members by brackets and quotes alone
    // (eight bytes a step inside strings): what a rule reads must be exactly the input's.
    let id = app
        .add_script(
            "echo",
            r#"function (user, context, callback) {
  context.idToken['https://wardstone.dev/echo'] = {
    weird: user['we"ird\\key'], meta: user.user_metadata, z: user.app_metadata.z,
    agent: context.request.userAgent, query: context.request.query, n: user.n, t: user.t,
    k: configuration.k,
  };
  callback(null, user, context);
}"#,
        )
        .await;
    for pad in 0..24 {
        let tricky = format!("{}}}]\"{{[\\\\\"é😀\n\\u0041", "x".repeat(pad));
        let input = json!({
            "user": {"user_id": "u1", "we\"ird\\key": [tricky.clone(), {}],
                     "user_metadata": {"a": [tricky.clone(), {"b": tricky.clone()}], "e": []},
                     "app_metadata": {"x": {"y": [tricky.clone()]}, "z": tricky.clone()},
                     "n": -12.5e3, "t": true},
            "context": {"protocol": "oidc-basic-profile", "clientMetadata": {"k": tricky.clone()},
                        "idToken": {}, "request": {"ip": "203.0.113.9", "userAgent": tricky.clone(),
                                    "query": {"q": tricky.clone(), "r": "{}"}}},
            "configuration": {"k": tricky.clone()}
        });
        let (status, outcome) = app
            .api("POST", &format!("/rules/{id}/test"), &mgmt, Some(input))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(outcome["outcome"], "ok", "{pad}: {outcome}");
        assert_eq!(
            outcome["patch"]["context"]["idToken"][format!("{NS}echo")],
            json!({"weird": [tricky.clone(), {}],
                   "meta": {"a": [tricky.clone(), {"b": tricky.clone()}], "e": []},
                   "z": tricky.clone(), "agent": tricky.clone(),
                   "query": {"q": tricky.clone(), "r": "{}"}, "n": -12500, "t": true,
                   "k": tricky.clone()}),
            "{pad}"
        );
    }
}

#[tokio::test]
async fn a_denial_is_final_even_if_the_rule_then_runs_out_of_budget() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // `on_failure: skip` would let the login through if this were recorded as a failure.
    let (status, body) = app
        .api(
            "POST",
            "/rules",
            &mgmt,
            Some(json!({
                "name": "deny then spin",
                "on_failure": "skip",
                "script": "function (user, context, callback) {\n  callback(new UnauthorizedError('closed'));\n  while (true) {}\n}",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(q["error"], "access_denied", "{q:?}");
    assert_eq!(q["error_description"], "closed");
    let log = &app.logs(1).await[0];
    assert_eq!(log.outcome.label(), "denied", "{log:?}");
    assert!(
        log.fuel < 1_000_000,
        "the loop was stopped at the callback: {}",
        log.fuel
    );
}

#[tokio::test]
async fn metadata_keys_a_rule_removes_are_removed() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    app.set_metadata(
        &app.user_id,
        json!({"perms": {"admin": true, "read": true}, "plan": "pro", "legacy": 1}),
        json!({"theme": "dark", "beta": true}),
    )
    .await;
    app.add_script(
        "revoke",
        r#"function (user, context, callback) {
  delete user.app_metadata.perms.admin;
  user.app_metadata.legacy = null;
  delete user.user_metadata.beta;
  auth0.users.updateAppMetadata(user.user_id, user.app_metadata)
    .then(() => callback(null, user, context))
    .catch(callback);
}"#,
    )
    .await;
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    let mgmt = app.mgmt_token(None).await;
    let (_, user) = app
        .api("GET", &format!("/users/{}", app.user_id), &mgmt, None)
        .await;
    assert_eq!(
        user["app_metadata"],
        json!({"perms": {"read": true}, "plan": "pro"})
    );
    assert_eq!(user["user_metadata"], json!({"theme": "dark"}));
}

#[tokio::test]
async fn every_context_field_auth0_provides_exists_and_unhonourable_writes_are_ignored() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    // Shapes of Auth0's published templates: SAML attribute mapping (writes samlConfiguration),
    // connection options, risk assessment, geoip, SSO state.
    app.add_script(
        "auth0 templates",
        r#"function (user, context, callback) {
  context.samlConfiguration.mappings = { 'http://schemas.xmlsoap.org/claims/upn': 'upn' };
  const strict = context.connectionOptions.requires_username === true;
  const risky = (context.riskAssessment.confidence || 'low') === 'high';
  const country = context.request.geoip.country_code || 'unknown';
  context.idToken['https://wardstone.dev/seen'] = [
    context.connectionID, strict, risky, country, context.sso.with_auth0,
    context.primaryUser === user.user_id, typeof context.jwtConfiguration,
    context.request.language, Object.keys(context.connectionMetadata).length,
  ];
  callback(null, user, context);
}"#,
    )
    .await;
    let claims = login_claims(&app).await.unwrap();
    assert_eq!(
        claims[format!("{NS}seen")],
        json!([
            "con_wardstone_database",
            false,
            false,
            "unknown",
            false,
            true,
            "object",
            "",
            0
        ])
    );
    assert_eq!(app.logs(1).await[0].outcome.label(), "ok");
}
