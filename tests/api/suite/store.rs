// The store on its own: single-use and merge guarantees under real concurrency, on each
// backend.

use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use wardstone::store::{CodeRecord, RedeemOutcome, RefreshTokenRecord, UserChanges};

use super::*;

fn code(tenant_id: &str, user_id: &str, client_id: &str, hash: &[u8], now: i64) -> CodeRecord {
    CodeRecord {
        code_hash: hash.to_vec(),
        tenant_id: tenant_id.into(),
        grant_id: uuid::Uuid::new_v4().to_string(),
        client_id: client_id.into(),
        user_id: user_id.into(),
        redirect_uri: CALLBACK.into(),
        scope: wardstone::domain::ScopeSet::parse("openid").unwrap(),
        audience: None,
        nonce: None,
        code_challenge: None,
        auth_time: now,
        session_id: None,
        claims: wardstone::store::JsonText(json!({})),
        created_at: now,
        expires_at: now + 300,
        consumed_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_of_many_concurrent_redemptions_of_a_code_wins() {
    let app = spawn_app().await;
    let tenant_id = app.tenant_id().await;
    let now = app.clock.now();
    for round in 0..5u8 {
        let hash = vec![round; 32];
        app.store
            .insert_code(code(&tenant_id, &app.user_id, &app.client_id, &hash, now))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = app.store.clone();
                let hash = hash.clone();
                tokio::spawn(async move { store.redeem_code(&hash, now).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap() == RedeemOutcome::Redeemed {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_of_many_concurrent_rotations_of_a_refresh_token_wins() {
    let app = spawn_app().await;
    let tenant_id = app.tenant_id().await;
    let now = app.clock.now();
    let c = code(&tenant_id, &app.user_id, &app.client_id, &[9; 32], now);
    app.store.insert_code(c.clone()).await.unwrap();
    let token = |hash: Vec<u8>| RefreshTokenRecord {
        token_hash: hash,
        tenant_id: tenant_id.clone(),
        grant_id: c.grant_id.clone(),
        client_id: app.client_id.clone(),
        user_id: app.user_id.clone(),
        scope: wardstone::domain::ScopeSet::parse("openid offline_access").unwrap(),
        audience: None,
        auth_time: now,
        session_id: None,
        created_at: now,
        expires_at: now + 3600,
        rotated_at: None,
        successor_hash: None,
    };
    app.store
        .insert_refresh_token(&token(vec![1; 32]))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10u8)
        .map(|i| {
            let store = app.store.clone();
            let successor = token(vec![100 + i; 32]);
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(&[1; 32], Some(&successor), now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    // Losers wrote nothing: exactly one successor exists.
    let mut successors = 0;
    for i in 0..10u8 {
        if app
            .store
            .refresh_token(&tenant_id, &[100 + i; 32])
            .await
            .unwrap()
            .is_some()
        {
            successors += 1;
        }
    }
    assert_eq!(successors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_metadata_merges_lose_no_key() {
    let app = spawn_app().await;
    let tenant_id = app.tenant_id().await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = app.store.clone();
            let (tenant_id, user_id) = (tenant_id.clone(), app.user_id.clone());
            let now = app.clock.now();
            tokio::spawn(async move {
                let mut patch = Map::new();
                patch.insert(format!("key{i}"), json!(i));
                let changes = UserChanges {
                    user_metadata_patch: Some(patch),
                    ..Default::default()
                };
                store
                    .update_user(&tenant_id, &user_id, &changes, now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let meta: Value =
        serde_json::Value::Object(app.user_record(&app.user_id).await.user_metadata.0.clone());
    assert_eq!(meta.as_object().unwrap().len(), 12, "{meta}");
}

#[tokio::test]
async fn migrations_are_idempotent_and_the_store_answers() {
    let app = spawn_app().await;
    app.store.migrate().await.unwrap();
    app.store.ping().await.unwrap();
    assert!(app.store.tenant_by_name("acme").await.unwrap().is_some());
    assert!(app.store.tenant_by_name("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn a_corrupt_json_column_fails_the_request_instead_of_reading_as_empty() {
    let app = spawn_app().await;
    let db = app.db().await;
    sqlx::query("UPDATE client SET redirect_uris = 'not json' WHERE client_id = $1")
        .bind(&app.client_id)
        .execute(&db)
        .await
        .unwrap();
    // The authorization endpoint does not take the client for one without callbacks.
    let resp = Browser::new().get(&app.authorize_url(&[])).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let mgmt = app.mgmt_token(None).await;
    let (status, body) = app
        .api("GET", &format!("/clients/{}", app.client_id), &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["errorCode"], "internal_error");
    // An update does not paper over it with an empty list either.
    let (status, _) = app
        .api(
            "PATCH",
            &format!("/clients/{}", app.client_id),
            &mgmt,
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let stored: String =
        sqlx::query_scalar("SELECT redirect_uris FROM client WHERE client_id = $1")
            .bind(&app.client_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored, "not json");
}

/// Sets `column` of every row of `table` to `value` (a test's tampering with storage).
async fn corrupt(app: &TestApp, table: &str, column: &str, value: &str) {
    sqlx::query(&format!("UPDATE {table} SET {column} = $1"))
        .bind(value)
        .execute(&app.db().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn stored_claims_and_scopes_never_read_as_defaults_on_the_token_path() {
    // A code whose rules' claims are corrupt mints nothing (it must not mint tokens without
    // the claims the rules decided).
    let app = spawn_app().await;
    app.add_rule("tag", &tag_rule("kept")).await;
    let code = app.code(&Browser::new(), &[]).await;
    corrupt(&app, "token_grant", "claims", "{not json").await;
    let resp = app.exchange(&code).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    assert!(!body.to_string().contains("json"), "{body}");

    // A code whose scope is corrupt neither reads as "no scope".
    let code = app.code(&Browser::new(), &[]).await;
    corrupt(&app, "token_grant", "scope", "openid \"profile").await;
    assert_eq!(
        app.exchange(&code).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // A refresh token whose scope is corrupt is refused, and stays as it was.
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    corrupt(&app, "refresh_token", "scope", "offline_access \"x").await;
    let resp = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let stored: String = sqlx::query_scalar("SELECT scope FROM refresh_token")
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(stored, "offline_access \"x");

    // A corrupt consent is not "consented to nothing" (which a new consent would overwrite).
    let browser = Browser::new();
    app.tokens(&browser).await;
    corrupt(&app, "consent", "scopes", "openid \"bad").await;
    let resp = browser.get(&app.authorize_url(&[])).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let stored: String = sqlx::query_scalar("SELECT scopes FROM consent")
        .fetch_one(&app.db().await)
        .await
        .unwrap();
    assert_eq!(stored, "openid \"bad");
}

#[tokio::test]
async fn an_unknown_stored_app_type_is_an_error_and_is_never_written_back_as_none() {
    let app = spawn_app().await;
    let db = app.db().await;
    sqlx::query("UPDATE client SET app_type = 'toaster' WHERE client_id = $1")
        .bind(&app.client_id)
        .execute(&db)
        .await
        .unwrap();
    let mgmt = app.mgmt_token(None).await;
    let path = format!("/clients/{}", app.client_id);
    let (status, body) = app.api("GET", &path, &mgmt, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let (status, _) = app
        .api("PATCH", &path, &mgmt, Some(json!({"name": "Renamed"})))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let stored: Option<String> =
        sqlx::query_scalar("SELECT app_type FROM client WHERE client_id = $1")
            .bind(&app.client_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some("toaster"));
}

#[tokio::test]
async fn the_execution_log_written_before_runs_existed_moves_over_whole() {
    let app = spawn_app().await;
    let tenant_id = app.tenant_id().await;
    let db = app.db().await;
    // The log as the previous schema kept it: one row per execution.
    for sql in [
        "DROP TABLE execution_run",
        "DELETE FROM _sqlx_migrations WHERE version = 20261205000002",
        "CREATE TABLE rule_execution (id text primary key, tenant_id text not null, rule_id text not null, \
         rule_name text not null, protocol text not null, outcome text not null, duration_us bigint not null, \
         fuel bigint not null, logs text not null, created_at bigint not null, rule_version bigint not null default 0, \
         skipped bigint not null default 0, kind text not null default 'rule')",
    ] {
        sqlx::query(sql).execute(&db).await.unwrap();
    }
    let old = [
        (
            "0191a000-0000-7000-8000-000000000001",
            "rul_1",
            "ok",
            "[]",
            100_i64,
            0_i64,
            "rule",
        ),
        (
            "0191a000-0000-7000-8000-000000000002",
            "act_2",
            "failed:fuel",
            r#"[{"level":"error","message":"out of \"fuel\""}]"#,
            101,
            1,
            "action",
        ),
    ];
    for (id, rule, outcome, logs, at, skipped, kind) in old {
        sqlx::query(
            "INSERT INTO rule_execution (id, tenant_id, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at, rule_version, skipped, kind) \
             VALUES ($1, $2, $3, 'name', 'oauth2-refresh-token', $4, 12, 3456, $5, $6, 7, $7, $8)",
        )
        .bind(id)
        .bind(&tenant_id)
        .bind(rule)
        .bind(outcome)
        .bind(logs)
        .bind(at)
        .bind(skipped)
        .bind(kind)
        .execute(&db)
        .await
        .unwrap();
    }
    app.store.migrate().await.unwrap();
    let logs = app.logs(10).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    let json = serde_json::to_value(&logs).unwrap();
    assert_eq!(
        json[0],
        json!({"id": "0191a000-0000-7000-8000-000000000002", "kind": "action", "rule_id": "act_2",
               "rule_name": "name", "protocol": "oauth2-refresh-token", "outcome": "failed:fuel",
               "duration_us": 12, "fuel": 3456,
               "logs": [{"level": "error", "message": "out of \"fuel\""}],
               "created_at": 101, "rule_version": 7, "skipped": true})
    );
    assert_eq!(json[1]["id"], "0191a000-0000-7000-8000-000000000001");
    assert_eq!(json[1]["skipped"], false);
    assert_eq!(json[1]["logs"], json!([]));
    let failed = app
        .admin
        .list_logs(&app.t().await, Some("act_2"), Some("failed:fuel"), 0, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        sqlx::query("SELECT 1 FROM rule_execution")
            .execute(&db)
            .await
            .is_err(),
        "the old table is gone"
    );
}
