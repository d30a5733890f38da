// Roles and RBAC: the Management API's role shapes, what rules see, and what tokens grant.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const API: &str = "https://reports.example.com/";

/// An API with `read:reports` and `write:reports`, with RBAC settings.
async fn reports_api(app: &TestApp, mgmt: &str, enforce: bool, dialect: &str) {
    let (status, body) = app
        .api(
            "POST",
            "/resource-servers",
            mgmt,
            Some(json!({
                "identifier": API,
                "name": "Reports",
                "scopes": [
                    {"value": "read:reports", "description": "Read reports"},
                    {"value": "write:reports", "description": "Write reports"},
                ],
                "enforce_policies": enforce,
                "token_dialect": dialect,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["enforce_policies"], enforce);
    assert_eq!(body["token_dialect"], dialect);
}

async fn create_role(app: &TestApp, mgmt: &str, name: &str) -> String {
    let (status, role) = app
        .api(
            "POST",
            "/roles",
            mgmt,
            Some(json!({"name": name, "description": "d"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{role}");
    role["id"].as_str().unwrap().to_string()
}

async fn grant(app: &TestApp, mgmt: &str, role: &str, permissions: &[&str]) {
    let permissions: Vec<Value> = permissions
        .iter()
        .map(|p| json!({"resource_server_identifier": API, "permission_name": p}))
        .collect();
    let (status, body) = app
        .api(
            "POST",
            &format!("/roles/{role}/permissions"),
            mgmt,
            Some(json!({ "permissions": permissions })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn assign(app: &TestApp, mgmt: &str, role: &str) {
    let (status, body) = app
        .api(
            "POST",
            &format!("/users/{}/roles", app.user_id),
            mgmt,
            Some(json!({ "roles": [role] })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// Tokens for the reports API with `scope` (plus openid and offline_access).
async fn api_tokens(app: &TestApp, scope: &str) -> Value {
    let scope = format!("openid offline_access {scope}");
    let code = app
        .code(&Browser::new(), &[("audience", API), ("scope", &scope)])
        .await;
    let resp = app.exchange(&code).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn roles_are_managed_in_auth0_shapes_and_bad_input_is_refused() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let admin = create_role(&app, &mgmt, "admin").await;
    assert!(admin.starts_with("rol_"));
    let (status, body) = app
        .api("POST", "/roles", &mgmt, Some(json!({"name": "admin"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "duplicate name: {body}");
    let (status, _) = app
        .api("POST", "/roles", &mgmt, Some(json!({"name": "  "})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .api(
            "POST",
            "/roles",
            &mgmt,
            Some(json!({"name": "x", "colour": "red"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field");
    let editor = create_role(&app, &mgmt, "editor").await;
    let (status, list) = app.api("GET", "/roles", &mgmt, None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "editor"]);
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/roles/{editor}"),
            &mgmt,
            Some(json!({"name": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "renaming onto a taken name");
    let (status, renamed) = app
        .api(
            "PATCH",
            &format!("/roles/{editor}"),
            &mgmt,
            Some(json!({"name": "writer", "description": "writes"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "writer");
    let (status, _) = app.api("GET", "/roles/rol_nope", &mgmt, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Permissions must name an API of the tenant and a scope it defines.
    reports_api(&app, &mgmt, false, "access_token").await;
    let perm = |api: &str, p: &str| json!({"permissions": [{"resource_server_identifier": api, "permission_name": p}]});
    let path = format!("/roles/{admin}/permissions");
    let (status, body) = app
        .api(
            "POST",
            &path,
            &mgmt,
            Some(perm("https://nowhere.example/", "read:x")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown API: {body}");
    let (status, body) = app
        .api("POST", &path, &mgmt, Some(perm(API, "delete:reports")))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "undefined permission: {body}"
    );
    let (status, _) = app
        .api("POST", &path, &mgmt, Some(json!({"permissions": []})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty list");
    let (status, _) = app
        .api(
            "POST",
            "/roles/rol_nope/permissions",
            &mgmt,
            Some(perm(API, "read:reports")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    grant(&app, &mgmt, &admin, &["read:reports", "write:reports"]).await;
    grant(&app, &mgmt, &admin, &["read:reports"]).await; // adding again keeps one
    let (_, perms) = app.api("GET", &path, &mgmt, None).await;
    assert_eq!(perms.as_array().unwrap().len(), 2);
    let (status, _) = app
        .api("DELETE", &path, &mgmt, Some(perm(API, "write:reports")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, perms) = app.api("GET", &path, &mgmt, None).await;
    assert_eq!(
        perms,
        json!([{"resource_server_identifier": API, "permission_name": "read:reports"}])
    );

    // Users' roles: only this tenant's roles, only existing users, all or nothing.
    let other = app
        .admin
        .create_tenant("beta", Default::default())
        .await
        .unwrap();
    let beta = app.admin.resolve(&other.name).await.unwrap();
    let foreign = app
        .admin
        .create_role(
            &beta,
            wardstone::service::roles::NewRoleInput {
                name: "admin".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
    let user_roles = format!("/users/{}/roles", app.user_id);
    let (status, body) = app
        .api(
            "POST",
            &user_roles,
            &mgmt,
            Some(json!({"roles": [admin, foreign.id]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's role: {body}"
    );
    let (_, held) = app.api("GET", &user_roles, &mgmt, None).await;
    assert_eq!(held, json!([]), "nothing half-written");
    let (status, _) = app
        .api(
            "POST",
            "/users/auth0|nobody/roles",
            &mgmt,
            Some(json!({"roles": [admin]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .api("POST", &user_roles, &mgmt, Some(json!({"roles": []})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assign(&app, &mgmt, &admin).await;
    assign(&app, &mgmt, &editor).await;
    let (_, held) = app.api("GET", &user_roles, &mgmt, None).await;
    let held: Vec<&str> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["admin", "writer"]);
    let (status, _) = app
        .api(
            "DELETE",
            &user_roles,
            &mgmt,
            Some(json!({"roles": [editor]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Deleting a role takes it from its users.
    let (status, _) = app
        .api("DELETE", &format!("/roles/{admin}"), &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, held) = app.api("GET", &user_roles, &mgmt, None).await;
    assert_eq!(held, json!([]));

    // Scopes: roles need their own.
    let narrow = app.mgmt_token(Some("read:users")).await;
    let (status, _) = app.api("GET", "/roles", &narrow, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.api("GET", &user_roles, &narrow, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn rules_see_the_users_role_names_at_login_and_refresh() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.add_rule("role claims", &sample_rule("role-claims"))
        .await;
    let tokens = app.tokens(&Browser::new()).await;
    let (_, id) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(id["https://wardstone.dev/roles"], json!([]));

    // A login through the browser's SSO session reads the roles with the session: none yet.
    let browser = Browser::new();
    app.code(&browser, &[]).await;
    let sso_roles = || async {
        let resp = browser.get(&app.authorize_url(&[("state", "sso")])).await;
        let code = query_of(&location(&resp))["code"].clone();
        let tokens: Value = app.exchange(&code).await.json().await.unwrap();
        let (_, id) = app
            .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
            .await;
        id["https://wardstone.dev/roles"].clone()
    };
    assert_eq!(sso_roles().await, json!([]));

    let billing = create_role(&app, &mgmt, "billing").await;
    let admin = create_role(&app, &mgmt, "admin").await;
    assign(&app, &mgmt, &billing).await;
    assign(&app, &mgmt, &admin).await;
    let tokens = app.tokens(&Browser::new()).await;
    let (_, id) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(
        id["https://wardstone.dev/roles"],
        json!(["admin", "billing"])
    );
    // The same through the session, in the same order, the user read once.
    assert_eq!(sso_roles().await, json!(["admin", "billing"]));

    // A role given later is seen at the next refresh; a role that makes the rule deny, too.
    let suspended = create_role(&app, &mgmt, "suspended").await;
    assign(&app, &mgmt, &suspended).await;
    let resp = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    let (status, error, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error, "access_denied");
    assert_eq!(body["error_description"], "this account is suspended");
}

#[tokio::test]
async fn enforced_policies_grant_only_permitted_scopes_and_authz_tokens_list_permissions() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    reports_api(&app, &mgmt, true, "access_token_authz").await;

    // No role: the API's scopes are dropped, the others stay.
    let tokens = api_tokens(&app, "read:reports write:reports").await;
    assert_eq!(tokens["scope"], "offline_access openid");
    let (_, at) = app
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(at["permissions"], json!([]));

    let reader = create_role(&app, &mgmt, "reader").await;
    grant(&app, &mgmt, &reader, &["read:reports"]).await;
    assign(&app, &mgmt, &reader).await;
    let tokens = api_tokens(&app, "read:reports write:reports").await;
    assert_eq!(tokens["scope"], "offline_access openid read:reports");
    let (_, at) = app
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(at["scope"], "offline_access openid read:reports");
    assert_eq!(at["permissions"], json!(["read:reports"]));

    // Taking the permission away takes effect at the next refresh.
    let (status, _) = app
        .api(
            "DELETE",
            &format!("/users/{}/roles", app.user_id),
            &mgmt,
            Some(json!({"roles": [reader]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let refreshed: Value = app
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["scope"], "offline_access openid");
    let (_, at) = app
        .verify(refreshed["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(at["permissions"], json!([]));

    // A scope the API no longer defines is neither granted nor listed, whatever the roles say.
    assign(&app, &mgmt, &reader).await;
    let (_, apis) = app.api("GET", "/resource-servers", &mgmt, None).await;
    let api_id = apis
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["identifier"] == API)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let held = api_tokens(&app, "read:reports").await;
    assert_eq!(held["scope"], "offline_access openid read:reports");
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/resource-servers/{api_id}"),
            &mgmt,
            Some(json!({"scopes": [{"value": "write:reports", "description": "w"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refreshed: Value = app
        .refresh(held["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["scope"], "offline_access openid");
    let (_, at) = app
        .verify(refreshed["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(at["permissions"], json!([]));
    let (_, perms) = app
        .api("GET", &format!("/roles/{reader}/permissions"), &mgmt, None)
        .await;
    assert_eq!(perms, json!([]), "the role lost the removed scope");

    // A rule cannot forge `permissions`.
    app.add_rule(
        "forge",
        &wat_claims_rule(r#"{"context":{"accessToken":{"permissions":["write:reports"]}}}"#),
    )
    .await;
    let browser = Browser::new();
    let scope = "openid read:reports";
    let url = app.authorize_url(&[("audience", API), ("scope", scope)]);
    let callback = app.login_and_consent(&browser, &url).await;
    let q = query_of(&callback);
    assert!(q.contains_key("error") || q.contains_key("code"));
    if let Some(code) = q.get("code") {
        let tokens: Value = app.exchange(code).await.json().await.unwrap();
        let (_, at) = app
            .verify(tokens["access_token"].as_str().unwrap(), API)
            .await;
        assert_eq!(at["permissions"], json!([]), "the rule's value never lands");
    }
}

#[tokio::test]
async fn without_enforcement_scopes_are_granted_as_before() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    reports_api(&app, &mgmt, false, "access_token").await;
    let tokens = api_tokens(&app, "read:reports write:reports").await;
    assert_eq!(
        tokens["scope"],
        "offline_access openid read:reports write:reports"
    );
    let (_, at) = app
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert!(at.get("permissions").is_none());
    // Switching RBAC on later applies to the next grant.
    let (_, apis) = app.api("GET", "/resource-servers", &mgmt, None).await;
    let id = apis
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["identifier"] == API)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .api(
            "PATCH",
            &format!("/resource-servers/{id}"),
            &mgmt,
            Some(json!({"enforce_policies": true, "token_dialect": "bogus"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/resource-servers/{id}"),
            &mgmt,
            Some(json!({"enforce_policies": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let tokens = api_tokens(&app, "read:reports").await;
    assert_eq!(tokens["scope"], "offline_access openid");
}
