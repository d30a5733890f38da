// The Management API: tokens, scopes, every resource, bad input, tenant isolation.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn client_credentials_issue_management_tokens_with_granted_scopes() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let (typ, claims) = app.verify(&token, &app.url("/api/v2/")).await;
    assert_eq!(typ, "at+jwt");
    assert_eq!(claims["sub"], format!("{}@clients", app.mgmt_client_id));
    assert_eq!(claims["gty"], "client-credentials");
    assert!(claims["scope"].as_str().unwrap().contains("create:rules"));
    let narrow = app.mgmt_token(Some("read:users")).await;
    let (_, claims) = app.verify(&narrow, &app.url("/api/v2/")).await;
    assert_eq!(claims["scope"], "read:users");

    let basic = Some((app.mgmt_client_id.as_str(), app.mgmt_client_secret.as_str()));
    let aud = app.url("/api/v2/");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("grant_type", "client_credentials"),
                ("audience", &aud),
                ("scope", "read:users admin:all"),
            ],
            "invalid_scope",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://other.example/"),
            ],
            "access_denied",
        ),
        (&[("grant_type", "client_credentials")], "invalid_request"),
    ];
    for (form, error) in cases {
        assert_eq!(
            error_of(app.token_request(form, basic).await).await.1,
            *error,
            "{form:?}"
        );
    }
    // An interactive web app may not use client_credentials.
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", aud.as_str()),
    ];
    let resp = app
        .token_request(&form, Some((&app.client_id, &app.client_secret)))
        .await;
    assert_eq!(error_of(resp).await.1, "unauthorized_client");
}

#[tokio::test]
async fn management_api_requires_a_valid_token_with_the_right_scope() {
    let app = spawn_app().await;
    let resp = reqwest::get(app.url("/api/v2/clients")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 401);
    assert_eq!(body["error"], "Unauthorized");
    assert!(body["message"].is_string() && body["errorCode"].is_string());

    assert_eq!(
        app.api("GET", "/clients", "garbage", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A user's access token is not a Management API token.
    let user_tokens = app.tokens(&Browser::new()).await;
    assert_eq!(
        app.api(
            "GET",
            "/clients",
            user_tokens["access_token"].as_str().unwrap(),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    let read_users = app.mgmt_token(Some("read:users")).await;
    assert_eq!(
        app.api("GET", "/users", &read_users, None).await.0,
        StatusCode::OK
    );
    let (status, body) = app.api("GET", "/clients", &read_users, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errorCode"], "insufficient_scope");
    assert!(body["message"].as_str().unwrap().contains("read:clients"));
    let (status, _) = app
        .api(
            "POST",
            "/users",
            &read_users,
            Some(json!({"email": "x@y.example", "password": "long password"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    app.clock.advance(3601);
    assert_eq!(
        app.api("GET", "/users", &read_users, None).await.0,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
}

#[tokio::test]
async fn clients_can_be_created_listed_changed_rotated_and_deleted() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let (status, created) = app
        .api("POST", "/clients", &token, Some(json!({"name": "Portal", "callbacks": [CALLBACK], "client_metadata": {"team": "web"}})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        created["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    let (_, list) = app.api("GET", "/clients", &token, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none()),
        "secrets are never listed"
    );
    let (status, got) = app
        .api("GET", &format!("/clients/{id}"), &token, None)
        .await;
    assert_eq!(
        (status, got["client_metadata"]["team"].clone()),
        (StatusCode::OK, json!("web"))
    );

    let (status, patched) = app
        .api(
            "PATCH",
            &format!("/clients/{id}"),
            &token,
            Some(json!({"name": "Portal 2", "callbacks": [CALLBACK, "https://portal.example/cb"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["name"], "Portal 2");
    assert_eq!(patched["callbacks"].as_array().unwrap().len(), 2);

    // Rotating the secret: the old one stops working, the new one works.
    let (_, rotated) = app
        .api(
            "POST",
            &format!("/clients/{id}/rotate-secret"),
            &token,
            None,
        )
        .await;
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    assert_eq!(
        error_of(app.token_request(&form, Some((&id, &secret))).await)
            .await
            .1,
        "invalid_client"
    );
    assert_eq!(
        error_of(app.token_request(&form, Some((&id, &new_secret))).await)
            .await
            .1,
        "invalid_grant"
    );

    let (status, _) = app
        .api("DELETE", &format!("/clients/{id}"), &token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .api("GET", &format!("/clients/{id}"), &token, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["statusCode"], 404);
}

#[tokio::test]
async fn bad_client_requests_get_precise_errors_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let cases = [
        json!({"callbacks": [CALLBACK]}),
        json!({"name": "x", "callbacks": ["http://evil.example/cb"]}),
        json!({"name": "x", "callbacks": [CALLBACK], "grant_types": ["password"]}),
        json!({"name": "x", "callbacks": [CALLBACK], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
        json!({"name": "x", "callbacks": [CALLBACK], "unknown_field": 1}),
        json!({"name": "x", "callbacks": [CALLBACK], "client_metadata": [1]}),
        json!({"name": "x"}),
        json!({"name": 5, "callbacks": [CALLBACK]}),
    ];
    for body in cases {
        let (status, err) = app
            .api("POST", "/clients", &token, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(err["statusCode"], 400);
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let raw = reqwest::Client::new()
        .post(app.url("/api/v2/clients"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST, "malformed JSON");
    let raw = reqwest::Client::new()
        .post(app.url("/api/v2/clients"))
        .bearer_auth(&token)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST, "not JSON");
    let huge = json!({"name": "x", "callbacks": [CALLBACK], "client_metadata": {"blob": "a".repeat(100_000)}});
    let (status, _) = app.api("POST", "/clients", &token, Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, list) = app.api("GET", "/clients", &token, None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "only the web app and the management client"
    );
    let (status, _) = app.api("GET", "/clients?per_page=0", &token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &token,
            Some(json!({"callbacks": []})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a web app keeps at least one callback"
    );
}

#[tokio::test]
async fn users_can_be_managed_and_metadata_merges_like_auth0() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    app.clock.advance(1);
    let (status, user) = app
        .api("POST", "/users", &token, Some(json!({
            "email": "Carol@Example.com", "password": "initial password", "name": "Carol",
            "email_verified": true, "app_metadata": {"roles": ["admin"], "plan": "pro"}, "user_metadata": {"theme": "dark"}
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(user["email"], "carol@example.com");
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    let id = user["user_id"].as_str().unwrap().to_string();
    let path = format!(
        "/users/{}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );

    let (status, _) = app
        .api(
            "POST",
            "/users",
            &token,
            Some(json!({"email": "carol@example.com", "password": "another password"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for bad in [
        json!({"email": "nope", "password": "long password"}),
        json!({"email": "d@e.example", "password": "short"}),
        json!({"email": "d@e.example", "password": "long password", "app_metadata": []}),
    ] {
        assert_eq!(
            app.api("POST", "/users", &token, Some(bad.clone())).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let (_, found) = app
        .api("GET", "/users?email=CAROL@example.com", &token, None)
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, page) = app
        .api("GET", "/users?per_page=1&page=1", &token, None)
        .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(
        page[0]["email"], "carol@example.com",
        "oldest first: Alice is page 0"
    );

    let (status, patched) = app
        .api("PATCH", &path, &token, Some(json!({"app_metadata": {"plan": null, "tier": 2}, "user_metadata": {"lang": "fr"}, "name": null})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        patched["app_metadata"],
        json!({"roles": ["admin"], "tier": 2})
    );
    assert_eq!(
        patched["user_metadata"],
        json!({"theme": "dark", "lang": "fr"})
    );
    assert_eq!(patched["name"], Value::Null);

    // A new password works at the login page.
    let (status, _) = app
        .api(
            "PATCH",
            &path,
            &token,
            Some(json!({"password": "brand new password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let browser = Browser::new();
    let resp = app
        .submit_login(
            &browser,
            &app.authorize_url(&[]),
            "carol@example.com",
            "brand new password",
        )
        .await;
    assert!(location(&resp).contains("/consent"));
    let (status, _) = app
        .api("PATCH", &path, &token, Some(json!({"email": EMAIL})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "email taken by Alice");

    assert_eq!(
        app.api("DELETE", &path, &token, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api("GET", &path, &token, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api("DELETE", &path, &token, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn apis_and_client_grants_enable_machine_to_machine_tokens() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let api = json!({"identifier": "https://billing.example/", "name": "Billing", "scopes": [
        {"value": "read:invoices", "description": "Read invoices"}, {"value": "write:invoices", "description": "Write invoices"}]});
    let (status, created) = app
        .api("POST", "/resource-servers", &token, Some(api.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let api_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.api("POST", "/resource-servers", &token, Some(api))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (_, list) = app.api("GET", "/resource-servers", &token, None).await;
    assert_eq!(list[0]["is_system"], true);
    assert_eq!(list[0]["identifier"], app.url("/api/v2/"));
    assert_eq!(
        app.api("DELETE", "/resource-servers/system", &token, None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    for bad in [
        json!({"identifier": "not a url"}),
        json!({"identifier": "https://x.example/", "scopes": [{"value": "a b", "description": ""}]}),
    ] {
        assert_eq!(
            app.api("POST", "/resource-servers", &token, Some(bad.clone()))
                .await
                .0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let (_, m2m) = app
        .api(
            "POST",
            "/clients",
            &token,
            Some(json!({"name": "Cron job", "grant_types": ["client_credentials"]})),
        )
        .await;
    let m2m_id = m2m["client_id"].as_str().unwrap();
    let m2m_secret = m2m["client_secret"].as_str().unwrap();
    let grant = json!({"client_id": m2m_id, "audience": "https://billing.example/", "scope": ["read:invoices"]});
    let (status, g) = app
        .api("POST", "/client-grants", &token, Some(grant.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        app.api("POST", "/client-grants", &token, Some(grant))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let escalate =
        json!({"client_id": m2m_id, "audience": app.url("/api/v2/"), "scope": ["read:users"]});
    assert_eq!(
        app.api("POST", "/client-grants", &token, Some(escalate))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let undefined = json!({"client_id": app.client_id, "audience": "https://billing.example/", "scope": ["admin"]});
    assert_eq!(
        app.api("POST", "/client-grants", &token, Some(undefined))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let form = [
        ("grant_type", "client_credentials"),
        ("audience", "https://billing.example/"),
    ];
    let tokens: Value = app
        .token_request(&form, Some((m2m_id, m2m_secret)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["scope"], "read:invoices");
    let (_, claims) = app
        .verify(
            tokens["access_token"].as_str().unwrap(),
            "https://billing.example/",
        )
        .await;
    assert_eq!(claims["aud"], "https://billing.example/");

    let (status, renamed) = app
        .api(
            "PATCH",
            &format!("/resource-servers/{api_id}"),
            &token,
            Some(json!({"name": "Billing v2"})),
        )
        .await;
    assert_eq!(
        (status, renamed["name"].clone()),
        (StatusCode::OK, json!("Billing v2"))
    );
    assert_eq!(
        app.api(
            "DELETE",
            &format!("/client-grants/{}", g["id"].as_str().unwrap()),
            &token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        error_of(app.token_request(&form, Some((m2m_id, m2m_secret))).await)
            .await
            .1,
        "access_denied"
    );
    assert_eq!(
        app.api(
            "DELETE",
            &format!("/resource-servers/{api_id}"),
            &token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn rules_can_be_uploaded_tested_updated_and_removed_over_the_api() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let wat = String::from_utf8(wat_sample("static-claim.wat")).unwrap();
    let (status, rule) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "tier", "wat": wat})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = rule["id"].as_str().unwrap().to_string();
    assert!(rule.get("wasm").is_none());
    assert_eq!(rule["enabled"], true);

    let (status, sdk) = app
        .api("POST", "/rules", &token, Some(json!({"name": "roles", "wasm": b64(&sample_rule("add-roles")), "order": 5, "enabled": false})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let sdk_id = sdk["id"].as_str().unwrap().to_string();

    let (_, list) = app.api("GET", "/rules", &token, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list[0].get("wasm").is_none(), "never the bytes in a list");
    let (_, full) = app
        .api(
            "GET",
            &format!("/rules/{sdk_id}?include_module=true"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(full["wasm"].as_str().unwrap())
            .unwrap(),
        sample_rule("add-roles")
    );

    // Test a rule through the real engine.
    let input = json!({"user": {"user_id": "u1", "app_metadata": {"roles": ["ops"]}}, "context": {"protocol": "oidc-basic-profile"}});
    let (status, outcome) = app
        .api(
            "POST",
            &format!("/rules/{sdk_id}/test"),
            &token,
            Some(input),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["outcome"], "ok");
    assert_eq!(
        outcome["patch"]["context"]["idToken"]["https://wardstone.dev/roles"],
        json!(["ops"])
    );
    assert!(outcome["fuel"].as_u64().unwrap() > 1000);
    assert!(outcome["duration_us"].as_u64().is_some());

    // The SDK's skip over what a rule never reads (wasm SIMD, 32 bytes a step, strings told
    // apart by their quotes) against strings full of brackets, quotes and escapes, at every
    // alignment: the roles come out exact.
    for pad in 0..40 {
        let tricky = format!("{}}}]\"{{[\\\\\"é😀\n", "x".repeat(pad));
        let roles = json!([tricky.clone(), "plain", format!("]{pad}[")]);
        let input = json!({
            "user": {"user_id": "u1",
                     "user_metadata": {"a": [tricky.clone(), {"b": tricky.clone()}]},
                     "app_metadata": {"x": {"y": [tricky.clone()]}, "roles": roles.clone(), "z": tricky.clone()}},
            "context": {"protocol": "oidc-basic-profile", "clientMetadata": {"k": tricky.clone()},
                        "request": {"ip": "203.0.113.9", "userAgent": tricky.clone(),
                                    "query": {"q": tricky.clone(), "r": "{}"}}}
        });
        let (status, outcome) = app
            .api(
                "POST",
                &format!("/rules/{sdk_id}/test"),
                &token,
                Some(input),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(outcome["outcome"], "ok", "{pad}: {outcome}");
        assert_eq!(
            outcome["patch"]["context"]["idToken"]["https://wardstone.dev/roles"], roles,
            "{pad}"
        );
    }

    // Bad modules: 422 naming the problem; nothing changes.
    let wasi = r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1)
        (func (export "alloc") (param i32) (result i32) (i32.const 0)) (func (export "rule") (param i32 i32) (result i64) (i64.const 0)))"#;
    let (status, err) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "bad", "wat": wasi})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("import wasi_snapshot_preview1::fd_write is not allowed")
    );
    let (status, _) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "bad", "wasm": "!!!"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .api("POST", "/rules", &token, Some(json!({"name": "bad"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "tier", "wat": wat})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/rules/{id}"),
            &token,
            Some(json!({"wat": "(module)"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, same) = app.api("GET", &format!("/rules/{id}"), &token, None).await;
    assert_eq!(
        same["sha256"], rule["sha256"],
        "a refused update leaves the rule alone"
    );

    // Swap the module: the next login runs the new one.
    let deny = String::from_utf8(wat_sample("deny.wat")).unwrap();
    let (status, swapped) = app
        .api(
            "PATCH",
            &format!("/rules/{id}"),
            &token,
            Some(json!({"wat": deny})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(swapped["sha256"], rule["sha256"]);
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );

    // Disable takes effect at the next login, delete too.
    app.api(
        "PATCH",
        &format!("/rules/{id}"),
        &token,
        Some(json!({"enabled": false})),
    )
    .await;
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    app.api(
        "PATCH",
        &format!("/rules/{id}"),
        &token,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );
    assert_eq!(
        app.api("DELETE", &format!("/rules/{id}"), &token, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    assert_eq!(
        app.api("DELETE", &format!("/rules/{id}"), &token, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rules_configs_and_logs_over_the_api() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let (status, body) = app
        .api(
            "PUT",
            "/rules-configs/ALLOWED_CLIENT_IDS",
            &token,
            Some(json!({"value": app.client_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("value").is_none(), "values are never returned");
    let (_, keys) = app.api("GET", "/rules-configs", &token, None).await;
    assert_eq!(keys, json!([{"key": "ALLOWED_CLIENT_IDS"}]));
    assert_eq!(
        app.api(
            "PUT",
            "/rules-configs/bad%20key",
            &token,
            Some(json!({"value": "x"}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.api("PUT", "/rules-configs/K", &token, Some(json!({"v": "x"})))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let (_, rule) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "allow-list", "wasm": b64(&sample_rule("client-allowlist"))})),
        )
        .await;
    let rule_id = rule["id"].as_str().unwrap().to_string();
    assert!(
        app.authorize_outcome(&Browser::new(), &[])
            .await
            .contains_key("code")
    );
    assert_eq!(
        app.api("DELETE", "/rules-configs/ALLOWED_CLIENT_IDS", &token, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api("DELETE", "/rules-configs/ALLOWED_CLIENT_IDS", &token, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );

    let (status, logs) = app.api("GET", "/logs", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logs[0]["outcome"], "denied", "newest first");
    assert_eq!(logs[1]["outcome"], "ok");
    assert_eq!(logs[0]["rule_id"], rule_id.as_str());
    let (_, ok_only) = app.api("GET", "/logs?outcome=ok", &token, None).await;
    assert_eq!(ok_only.as_array().unwrap().len(), 1);
    let (_, by_rule) = app
        .api(
            "GET",
            &format!("/logs?rule_id={rule_id}&per_page=1"),
            &token,
            None,
        )
        .await;
    assert_eq!(by_rule.as_array().unwrap().len(), 1);
    assert_eq!(
        app.api("GET", "/logs?per_page=1000", &token, None).await.0,
        StatusCode::BAD_REQUEST
    );
    let read_rules_only = app.mgmt_token(Some("read:rules")).await;
    assert_eq!(
        app.api("GET", "/logs", &read_rules_only, None).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_execution_log_lists_each_rule_of_a_login_newest_first_and_pages_across_logins() {
    if js_sample("add-roles").is_none() {
        return;
    }
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let first = app
        .add_script("first", "function (user, context, callback) { console.log('one'); callback(null, user, context); }")
        .await;
    let second = app
        .add_script(
            "second",
            "function (user, context, callback) { callback(null, user, context); }",
        )
        .await;
    let third = app
        .add_script(
            "third",
            "function (user, context, callback) { callback(context.clientMetadata.deny ? new UnauthorizedError('no') : null, user, context); }",
        )
        .await;
    for _ in 0..3 {
        assert!(
            app.authorize_outcome(&Browser::new(), &[])
                .await
                .contains_key("code")
        );
    }
    let get = |q: String| {
        let (app, token) = (&app, &token);
        async move {
            let (status, body) = app.api("GET", &format!("/logs{q}"), token, None).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            body.as_array().unwrap().clone()
        }
    };
    let all = get(String::new()).await;
    assert_eq!(all.len(), 9, "three logins of three rules: {all:?}");
    let ids: Vec<&str> = all.iter().map(|e| e["rule_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids[..3],
        [third.as_str(), second.as_str(), first.as_str()],
        "newest first: the last rule of the last login leads"
    );
    assert!(
        all.iter()
            .all(|e| e["outcome"] == "ok" && e["protocol"] == "oidc-basic-profile")
    );
    assert_eq!(all[2]["logs"][0]["message"], "one");
    let unique: std::collections::HashSet<&str> =
        all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 9, "each execution keeps its own id");

    // Pages of two cut through runs and put together give the whole log, in order.
    let mut paged = Vec::new();
    for page in 0..5 {
        paged.extend(get(format!("?per_page=2&page={page}")).await);
    }
    assert_eq!(paged, all);

    let of_second = get(format!("?rule_id={second}")).await;
    assert_eq!(of_second.len(), 3);
    assert!(of_second.iter().all(|e| e["rule_id"] == second.as_str()));
    assert_eq!(
        get(format!("?rule_id={second}&per_page=2&page=1")).await,
        of_second[2..]
    );
    // LIKE's wildcards in a filter match themselves only.
    assert!(get("?rule_id=rul_%25".into()).await.is_empty());
    assert!(get("?rule_id=%25".into()).await.is_empty());
    assert!(get("?rule_id=_".into()).await.is_empty());
    assert!(
        get("?rule_id=rul".into()).await.is_empty(),
        "whole ids only"
    );
    assert!(get("?outcome=denied".into()).await.is_empty());
    let (status, body) = app
        .api("GET", "/logs?page=200&per_page=50", &token, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("10000 entries deep"),
        "{body}"
    );

    // A denial is one entry among the run's others, and the outcome filter finds only it.
    let mgmt = app.mgmt_token(None).await;
    let client = app.client_id.clone();
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{client}"),
            &mgmt,
            Some(json!({"client_metadata": {"deny": "yes"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.authorize_outcome(&Browser::new(), &[]).await["error"],
        "access_denied"
    );
    let denied = get("?outcome=denied".into()).await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["rule_id"], third.as_str());
    assert_eq!(get(format!("?outcome=ok&rule_id={third}")).await.len(), 3);
    assert_eq!(get(String::new()).await.len(), 12);
    assert_eq!(
        app.api("GET", "/logs?outcome=maybe", &token, None).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_login_works_with_everything_created_through_the_api() {
    let app = spawn_app().await;
    let token = app.mgmt_token(None).await;
    let (_, client) = app
        .api(
            "POST",
            "/clients",
            &token,
            Some(json!({"name": "API-made app", "callbacks": [CALLBACK]})),
        )
        .await;
    app.api("POST", "/users", &token, Some(json!({"email": "dan@example.com", "password": PASSWORD, "email_verified": true, "app_metadata": {"roles": ["reader"]}}))).await;
    app.api("POST", "/resource-servers", &token, Some(json!({"identifier": "https://docs.example/", "scopes": [{"value": "read:docs", "description": "Read documents"}]}))).await;
    app.api(
        "POST",
        "/rules",
        &token,
        Some(json!({"name": "roles", "wasm": b64(&sample_rule("add-roles"))})),
    )
    .await;

    let client_id = client["client_id"].as_str().unwrap();
    let browser = Browser::new();
    let url = app.authorize_url(&[
        ("client_id", client_id),
        ("audience", "https://docs.example/"),
        ("scope", "openid read:docs"),
    ]);
    let resp = app
        .submit_login(&browser, &url, "dan@example.com", PASSWORD)
        .await;
    let consent = location(&resp);
    let html = browser.get(&consent).await.text().await.unwrap();
    assert!(html.contains("Read documents") && html.contains("API-made app"));
    let callback = location(&app.submit_consent(&browser, &consent, "allow").await);
    let code = query_of(&callback)["code"].clone();
    let tokens: Value = app
        .exchange_as(
            &code,
            (client_id, client["client_secret"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    let (_, at) = app
        .verify(
            tokens["access_token"].as_str().unwrap(),
            "https://docs.example/",
        )
        .await;
    assert_eq!(at["https://wardstone.dev/roles"], json!(["reader"]));
    assert_eq!(at["scope"], "openid read:docs");
}

#[tokio::test]
async fn one_tenant_cannot_reach_another_tenants_data() {
    let app = spawn_app().await;
    let other = app
        .admin
        .create_tenant("beta", Default::default())
        .await
        .unwrap();
    let beta_client = app
        .admin
        .create_client(
            &app.admin.resolve("beta").await.unwrap(),
            "Beta app",
            &[CALLBACK.into()],
            false,
        )
        .await
        .unwrap();
    let beta_user = app
        .admin
        .create_user(
            &app.admin.resolve("beta").await.unwrap(),
            "eve@beta.example",
            PASSWORD,
            None,
            true,
        )
        .await
        .unwrap();
    let beta_rule = app
        .admin
        .add_rule(
            &app.admin.resolve("beta").await.unwrap(),
            "tier",
            &wat_sample("static-claim.wat"),
            None,
            true,
        )
        .await
        .unwrap();

    let acme_token = app.mgmt_token(None).await;
    // acme's token on beta's API: refused outright.
    let resp = reqwest::Client::new()
        .get(format!("{}/t/beta/api/v2/clients", app.base))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A beta token works on beta's API only.
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", other.management.audience.as_str()),
    ];
    let resp = reqwest::Client::new()
        .post(format!("{}/t/beta/oauth/token", app.base))
        .basic_auth(
            &other.management.client_id,
            Some(&other.management.client_secret),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    let beta_token: Value = resp.json().await.unwrap();
    let beta_token = beta_token["access_token"].as_str().unwrap();
    assert_eq!(
        app.api("GET", "/clients", beta_token, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Guessing beta's ids through acme's API: 404, and nothing changes.
    let user_path = format!(
        "/users/{}",
        url::form_urlencoded::byte_serialize(beta_user.user_id.as_bytes()).collect::<String>()
    );
    for (method, path, body) in [
        ("GET", format!("/clients/{}", beta_client.client_id), None),
        (
            "PATCH",
            format!("/clients/{}", beta_client.client_id),
            Some(json!({"name": "pwned"})),
        ),
        (
            "DELETE",
            format!("/clients/{}", beta_client.client_id),
            None,
        ),
        (
            "POST",
            format!("/clients/{}/rotate-secret", beta_client.client_id),
            None,
        ),
        ("GET", user_path.clone(), None),
        (
            "PATCH",
            user_path.clone(),
            Some(json!({"password": "attacker password"})),
        ),
        ("DELETE", user_path, None),
        ("GET", format!("/rules/{}", beta_rule.id), None),
        (
            "PATCH",
            format!("/rules/{}", beta_rule.id),
            Some(json!({"enabled": false})),
        ),
        ("DELETE", format!("/rules/{}", beta_rule.id), None),
        (
            "POST",
            format!("/rules/{}/test", beta_rule.id),
            Some(json!({"user": {}, "context": {}})),
        ),
    ] {
        let (status, _) = app.api(method, &path, &acme_token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, users) = app.api("GET", "/users", &acme_token, None).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["email"] != "eve@beta.example")
    );
    let beta_rules = app
        .admin
        .list_rules(&app.admin.resolve("beta").await.unwrap())
        .await
        .unwrap();
    assert!(beta_rules[0].enabled, "untouched");
    assert_eq!(
        app.admin
            .get_client(
                &app.admin.resolve("beta").await.unwrap(),
                &beta_client.client_id
            )
            .await
            .unwrap()
            .name,
        "Beta app"
    );
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(app.url("/api/v2/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["servers"][0]["url"], app.url("/api/v2"));
    let expected = [
        ("/clients", "get"),
        ("/clients", "post"),
        ("/clients/{id}", "get"),
        ("/clients/{id}", "patch"),
        ("/clients/{id}", "delete"),
        ("/clients/{id}/rotate-secret", "post"),
        ("/client-grants", "get"),
        ("/client-grants", "post"),
        ("/client-grants/{id}", "delete"),
        ("/users", "get"),
        ("/users", "post"),
        ("/users/{id}", "get"),
        ("/users/{id}", "patch"),
        ("/users/{id}", "delete"),
        ("/resource-servers", "get"),
        ("/resource-servers", "post"),
        ("/resource-servers/{id}", "get"),
        ("/resource-servers/{id}", "patch"),
        ("/resource-servers/{id}", "delete"),
        ("/rules", "get"),
        ("/rules", "post"),
        ("/rules/{id}", "get"),
        ("/rules/{id}", "patch"),
        ("/rules/{id}", "delete"),
        ("/rules/{id}/test", "post"),
        ("/rules-configs", "get"),
        ("/rules-configs/{key}", "put"),
        ("/rules-configs/{key}", "delete"),
        ("/logs", "get"),
        ("/roles", "get"),
        ("/roles", "post"),
        ("/roles/{id}", "get"),
        ("/roles/{id}", "patch"),
        ("/roles/{id}", "delete"),
        ("/roles/{id}/permissions", "get"),
        ("/roles/{id}/permissions", "post"),
        ("/roles/{id}/permissions", "delete"),
        ("/users/{id}/roles", "get"),
        ("/users/{id}/roles", "post"),
        ("/users/{id}/roles", "delete"),
        ("/keys/signing", "get"),
        ("/keys/signing/{kid}", "get"),
        ("/keys/signing/rotate", "post"),
        ("/keys/signing/{kid}/revoke", "put"),
        ("/rules/{id}/versions", "get"),
        ("/rules/{id}/rollback", "post"),
        ("/rules/{id}/replay", "post"),
        ("/actions/actions/{id}/replay", "post"),
        ("/tenants/settings", "get"),
        ("/tenants/settings", "patch"),
        ("/tenants/usage", "get"),
        ("/actions/actions", "get"),
        ("/actions/actions", "post"),
        ("/actions/actions/{id}", "get"),
        ("/actions/actions/{id}", "patch"),
        ("/actions/actions/{id}", "delete"),
        ("/actions/actions/{id}/deploy", "post"),
        ("/actions/actions/{id}/versions", "get"),
        ("/actions/actions/{id}/versions/{version}", "get"),
        ("/actions/actions/{id}/versions/{version}/deploy", "post"),
        ("/actions/actions/{id}/test", "post"),
        ("/actions/triggers", "get"),
        ("/actions/triggers/{trigger}/bindings", "get"),
        ("/actions/triggers/{trigger}/bindings", "patch"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    for (path, method) in expected {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(
            op["security"][0]["bearer"].is_array(),
            "{method} {path} names its scope"
        );
    }
    assert_eq!(
        documented,
        expected.len(),
        "and nothing else is served undocumented or documented unserved"
    );
    // Every documented route answers (401 without a token, never 404/405).
    for (path, method) in expected {
        let url = format!(
            "{}/api/v2{}",
            app.issuer,
            path.replace("{id}", "x")
                .replace("{key}", "K")
                .replace("{kid}", "k")
                .replace("{version}", "v")
                .replace("{trigger}", "post-login")
        );
        let resp = reqwest::Client::new()
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test]
async fn a_narrow_token_cannot_take_over_the_management_client() {
    let app = spawn_app().await;
    let narrow = app
        .mgmt_token(Some("update:clients delete:clients read:clients"))
        .await;
    for (method, path, body) in [
        (
            "POST",
            format!("/clients/{}/rotate-secret", app.mgmt_client_id),
            None,
        ),
        (
            "PATCH",
            format!("/clients/{}", app.mgmt_client_id),
            Some(json!({"name": "mine now"})),
        ),
        ("DELETE", format!("/clients/{}", app.mgmt_client_id), None),
    ] {
        let (status, body) = app.api(method, &path, &narrow, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(body["errorCode"], "insufficient_scope");
    }
    // Its secret still works, and the narrow token still manages ordinary clients.
    app.mgmt_token(None).await;
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &narrow,
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A token with every scope may change it.
    let full = app.mgmt_token(None).await;
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.mgmt_client_id),
            &full,
            Some(json!({"name": "Ops automation"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn testing_a_rule_uses_the_tenants_settings_only_for_tokens_that_may_read_them() {
    let app = spawn_app().await;
    app.admin
        .set_rule_config(&app.t().await, "ALLOWED_CLIENT_IDS", "abc")
        .await
        .unwrap();
    let id = app
        .add_rule("allow-list", &sample_rule("client-allowlist"))
        .await;
    let input =
        json!({"user": {"user_id": "u"}, "context": {"clientID": "abc", "clientName": "ABC"}});
    let without = app.mgmt_token(Some("update:rules")).await;
    let (_, outcome) = app
        .api(
            "POST",
            &format!("/rules/{id}/test"),
            &without,
            Some(input.clone()),
        )
        .await;
    assert_eq!(
        outcome["outcome"], "denied",
        "no settings without read:rules_configs"
    );
    let with = app
        .mgmt_token(Some("update:rules read:rules_configs"))
        .await;
    let (_, outcome) = app
        .api("POST", &format!("/rules/{id}/test"), &with, Some(input))
        .await;
    assert_eq!(outcome["outcome"], "ok");
}

#[tokio::test]
async fn auth0_shaped_clients_are_accepted_and_honoured() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // What Auth0's deploy tooling sends for a regular web app, read-only fields included.
    let body = json!({
        "name": "Exported app",
        "app_type": "regular_web",
        "is_first_party": false,
        "oidc_conformant": true,
        "description": "moved from Auth0",
        "logo_uri": "https://cdn.example.com/logo.png",
        "callbacks": ["https://app.example.com/callback"],
        "allowed_logout_urls": ["https://app.example.com/"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_post",
        "client_metadata": {"team": "blue"},
        "jwt_configuration": {"lifetime_in_seconds": 600, "alg": "RS256", "secret_encoded": false},
        "web_origins": ["https://app.example.com"],
        "allowed_origins": [],
        "sso": true,
        "sso_disabled": false,
        "cross_origin_authentication": false,
        "custom_login_page_on": true,
        "is_token_endpoint_ip_header_trusted": false,
        "refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring"},
        "native_social_login": {"apple": {"enabled": false}},
        "tenant": "someone-else",
        "global": false,
        "callback_url_template": false,
        "signing_keys": [{"cert": "..."}],
        "client_id": "ignored"
    });
    let (status, created) = app.api("POST", "/clients", &mgmt, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_ne!(created["client_id"], "ignored");
    assert!(created["client_secret"].is_string());
    assert_eq!(created["app_type"], "regular_web");
    assert_eq!(created["is_first_party"], false);
    assert_eq!(created["oidc_conformant"], true);
    assert_eq!(created["description"], "moved from Auth0");
    assert_eq!(created["logo_uri"], "https://cdn.example.com/logo.png");
    assert_eq!(created["jwt_configuration"]["lifetime_in_seconds"], 600);
    assert_eq!(created["client_metadata"]["team"], "blue");
    let id = created["client_id"].as_str().unwrap();
    let (_, read) = app.api("GET", &format!("/clients/{id}"), &mgmt, None).await;
    assert_eq!(read["app_type"], "regular_web");
    assert_eq!(read["is_first_party"], false);

    // app_type chooses Auth0's defaults when the request leaves them out.
    let (status, spa) = app
        .api(
            "POST",
            "/clients",
            &mgmt,
            Some(json!({"name": "SPA", "app_type": "spa", "callbacks": ["https://spa.example.com/cb"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{spa}");
    assert_eq!(spa["token_endpoint_auth_method"], "none");
    assert!(spa["client_secret"].is_null());
    let (status, m2m) = app
        .api(
            "POST",
            "/clients",
            &mgmt,
            Some(json!({"name": "Cron", "app_type": "non_interactive"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m2m}");
    assert_eq!(m2m["grant_types"], json!(["client_credentials"]));
    assert!(m2m["client_secret"].is_string());

    // The ID token lifetime is honoured for the client it is set on.
    let (status, patched) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &mgmt,
            Some(json!({"jwt_configuration": {"lifetime_in_seconds": 600}, "app_type": "regular_web", "sso": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let tokens = app.tokens(&Browser::new()).await;
    let (_, claims) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn wrong_values_in_auth0_client_fields_are_still_refused() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let base = || json!({"name": "Bad", "callbacks": ["https://app.example.com/cb"]});
    let cases = [
        ("app_type", json!("wizard"), "app_type"),
        ("oidc_conformant", json!(false), "oidc_conformant"),
        ("jwt_configuration", json!({"alg": "HS256"}), "HS256"),
        (
            "jwt_configuration",
            json!({"lifetime_in_seconds": 10}),
            "lifetime_in_seconds",
        ),
        ("grant_types", json!(["implicit"]), "implicit"),
        (
            "logo_uri",
            json!("http://cdn.example.com/logo.png"),
            "logo_uri",
        ),
        ("description", json!("x".repeat(141)), "description"),
        ("client_secret", json!("chosen-by-me"), "rotate-secret"),
        (
            "require_pushed_authorization_requests",
            json!(true),
            "not supported",
        ),
        (
            "jwt_configuration",
            json!({"lifetime_in_second": 600}),
            "unknown field",
        ),
        ("colour", json!("red"), "colour"),
        (
            "token_endpoint_auth_method",
            json!("private_key_jwt"),
            "private_key_jwt",
        ),
    ];
    for (field, value, mentions) in cases {
        let mut body = base();
        body[field] = value;
        let (status, answer) = app.api("POST", "/clients", &mgmt, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(mentions),
            "{field}: {answer}"
        );
    }
    let (_, clients) = app.api("GET", "/clients", &mgmt, None).await;
    assert_eq!(clients.as_array().unwrap().len(), 2, "nothing was created");
    // A confidential client cannot be made public by an update.
    let (status, answer) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &mgmt,
            Some(json!({"token_endpoint_auth_method": "none"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}
