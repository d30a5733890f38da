// Compiled rules across nodes and restarts: authenticated artifacts, the module cache and its
// bound, compile slots and deadlines, the rule-set generation, and the execution log's writer.

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::json;
use wardstone::service::AdminError;

use super::*;

const TAG: &str = "https://example.com/tag";

/// A node that does not warm its cache at start, so a test sees each load it causes.
fn cold(o: &mut wardstone::startup::ServerOptions) {
    o.rule_limits.warm_up = std::time::Duration::ZERO;
}

async fn rule_sha(app: &TestApp, name: &str) -> String {
    app.admin
        .list_rules(&app.t().await)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .expect("the rule exists")
        .sha256
}

async fn artifact_rows(app: &TestApp, sha: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rule_artifact WHERE sha256 = $1")
        .bind(sha)
        .fetch_one(&app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_node_runs_stored_compiled_code_without_compiling() {
    let app = spawn_app().await;
    app.add_rule("roles", &sample_rule("add-roles")).await;
    let sha = rule_sha(&app, "roles").await;
    assert_eq!(
        artifact_rows(&app, &sha).await,
        1,
        "the upload stored its artifact"
    );

    // A node started afterwards (a restart) loads the artifact at the first login.
    let (node, rules) = app.spawn_node_with(cold).await;
    let q = app.login_on(&node).await;
    assert!(q.contains_key("code"), "{q:?}");
    let stats = &rules.modules().stats;
    assert_eq!(stats.loaded.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.recompiled.load(Ordering::Relaxed),
        0,
        "no login waited for Cranelift"
    );
    // The next login is served from memory.
    app.login_on(&node).await;
    assert_eq!(stats.loaded.load(Ordering::Relaxed), 1);
    assert!(stats.hits.get() >= 1);
}

#[tokio::test]
async fn a_starting_node_warms_its_cache_with_recently_used_modules_before_it_is_ready() {
    let app = spawn_app().await;
    app.add_rule("roles", &sample_rule("add-roles")).await;
    app.add_rule("tag", &tag_rule("x")).await;
    // The first node ran them; it records what it holds (periodically and at shutdown).
    app.authorize_outcome(&Browser::new(), &[]).await;
    app.rules.modules().record_use(app.clock.now()).await;

    let (node, rules) = app.spawn_node_with(|_| {}).await;
    let ready = format!("{node}/readyz");
    let started = std::time::Instant::now();
    while reqwest::get(&ready).await.unwrap().status() != StatusCode::OK {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "never ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = &rules.modules().stats;
    assert_eq!(
        stats.loaded.load(Ordering::Relaxed),
        2,
        "both modules loaded before ready"
    );
    assert!(app.login_on(&node).await.contains_key("code"));
    assert_eq!(
        stats.loaded.load(Ordering::Relaxed),
        2,
        "the first login found them in memory"
    );
    assert_eq!(stats.recompiled.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_tampered_artifact_is_never_loaded_and_the_module_is_compiled_again() {
    let app = spawn_app().await;
    app.add_rule("tag", &tag_rule("genuine")).await;
    let sha = rule_sha(&app, "tag").await;
    let db = app.db().await;
    // A database write that flips one byte of the native code.
    let (mut bytes,): (Vec<u8>,) =
        sqlx::query_as("SELECT artifact FROM rule_artifact WHERE sha256 = $1")
            .bind(&sha)
            .fetch_one(&db)
            .await
            .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    sqlx::query("UPDATE rule_artifact SET artifact = $1 WHERE sha256 = $2")
        .bind(bytes)
        .bind(&sha)
        .execute(&db)
        .await
        .unwrap();

    let (node, rules) = app.spawn_node_with(cold).await;
    let q = app.login_on(&node).await;
    assert_eq!(app.id_claims(&q["code"]).await[TAG], "genuine");
    let stats = &rules.modules().stats;
    assert_eq!(stats.refused_artifacts.load(Ordering::Relaxed), 1);
    assert_eq!(stats.loaded.load(Ordering::Relaxed), 0);
    assert_eq!(stats.recompiled.load(Ordering::Relaxed), 1);

    // The recompiled module's artifact was stored again, and verifies on the next node.
    let (node, rules) = app.spawn_node_with(cold).await;
    app.login_on(&node).await;
    assert_eq!(rules.modules().stats.loaded.load(Ordering::Relaxed), 1);
    assert_eq!(
        rules
            .modules()
            .stats
            .refused_artifacts
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn an_artifact_moved_to_another_module_is_refused() {
    let app = spawn_app().await;
    app.add_rule("evil", &tag_rule("evil")).await;
    app.add_rule("good", &tag_rule("good")).await;
    let evil = app.admin.list_rules(&app.t().await).await.unwrap()[0]
        .id
        .clone();
    app.admin.remove_rule(&app.t().await, &evil).await.unwrap();
    let (evil_sha, good_sha) = (
        wardstone::rules::engine::module_hash(&wat::parse_bytes(&tag_rule("evil")).unwrap()),
        rule_sha(&app, "good").await,
    );
    // Someone with write access to the database copies a valid artifact (and its MAC) of
    // another module over this rule's artifact.
    let db = app.db().await;
    let (mac, bytes): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT mac, artifact FROM rule_artifact WHERE sha256 = $1")
            .bind(&evil_sha)
            .fetch_one(&db)
            .await
            .unwrap();
    sqlx::query("UPDATE rule_artifact SET mac = $1, artifact = $2 WHERE sha256 = $3")
        .bind(mac)
        .bind(bytes)
        .bind(&good_sha)
        .execute(&db)
        .await
        .unwrap();

    let (node, rules) = app.spawn_node_with(cold).await;
    let q = app.login_on(&node).await;
    assert_eq!(
        app.id_claims(&q["code"]).await[TAG],
        "good",
        "the uploaded module ran"
    );
    assert_eq!(
        rules
            .modules()
            .stats
            .refused_artifacts
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_module_that_can_no_longer_be_loaded_fails_the_login_closed() {
    let app = spawn_app().await;
    let id = app.add_rule("tag", &tag_rule("x")).await;
    let db = app.db().await;
    sqlx::query("DELETE FROM rule_artifact")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE rule SET module = $1 WHERE id = $2")
        .bind(b"\0asm garbage".to_vec())
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    let (node, rules) = app.spawn_node_with(cold).await;
    let q = app.login_on(&node).await;
    assert_eq!(q["error"], "server_error");
    assert!(!q.contains_key("code"));
    rules.journal().flush().await;
    let logs = app.logs(1).await;
    assert_eq!(logs[0].outcome.label(), "failed:abi");
    assert!(q["error_description"].contains(&logs[0].id));
}

#[tokio::test]
async fn the_module_cache_stays_within_its_memory_bound() {
    let app = spawn_app().await;
    app.add_rule("one", &tag_rule("one")).await;
    app.add_rule("two", &tag_rule("two")).await;
    // Room for a single module: every login must load one of them again.
    let (node, rules) = app
        .spawn_node_with(|o| {
            cold(o);
            o.rule_limits.module_cache_bytes = 1
        })
        .await;
    for _ in 0..3 {
        let q = app.login_on(&node).await;
        assert_eq!(app.id_claims(&q["code"]).await[TAG], "two");
        let (modules, _) = rules.modules().usage();
        assert_eq!(modules, 1);
    }
    let stats = &rules.modules().stats;
    assert!(
        stats.evicted.load(Ordering::Relaxed) >= 3,
        "every login evicted a module"
    );
    assert_eq!(
        stats.recompiled.load(Ordering::Relaxed),
        0,
        "evicted modules come back from artifacts"
    );
}

#[tokio::test]
async fn a_setting_changed_through_one_node_is_used_by_another_at_its_next_login() {
    let app = spawn_app().await;
    app.add_rule("allow-list", &sample_rule("client-allowlist"))
        .await;
    let (node, _) = app.spawn_node_with(cold).await;
    let tenant = app.t().await;
    app.admin
        .set_rule_config(&tenant, "ALLOWED_CLIENT_IDS", &app.client_id)
        .await
        .unwrap();
    assert!(app.login_on(&node).await.contains_key("code"));
    // Node B now holds the rule set in memory; the change goes through node A's service.
    app.admin
        .set_rule_config(&tenant, "ALLOWED_CLIENT_IDS", "someone-else")
        .await
        .unwrap();
    assert_eq!(app.login_on(&node).await["error"], "access_denied");
    app.admin
        .unset_rule_config(&tenant, "ALLOWED_CLIENT_IDS")
        .await
        .unwrap();
    assert_eq!(app.login_on(&node).await["error"], "access_denied");
    app.admin
        .set_rule_config(&tenant, "ALLOWED_CLIENT_IDS", &app.client_id)
        .await
        .unwrap();
    assert!(app.login_on(&node).await.contains_key("code"));
}

#[tokio::test]
async fn a_refused_upload_leaves_nothing_stored_or_cached() {
    let app = spawn_app().await;
    app.add_rule("tag", &tag_rule("first")).await;
    let tenant = app.t().await;
    let second = tag_rule("second");
    let sha = wardstone::rules::engine::module_hash(&wat::parse_bytes(&second).unwrap());
    let refused = app
        .admin
        .add_rule(&tenant, "tag", &second, None, true)
        .await;
    assert!(
        matches!(refused, Err(AdminError::Conflict(_))),
        "{refused:?}"
    );
    assert!(app.rules.modules().cached(&sha).is_none());
    assert_eq!(artifact_rows(&app, &sha).await, 0);
    // A module that breaks the ABI is refused before anything is stored.
    let bad = b"(module (memory (export \"memory\") 1))";
    let refused = app.admin.add_rule(&tenant, "bad", bad, None, true).await;
    assert!(
        matches!(refused, Err(AdminError::InvalidModule(_))),
        "{refused:?}"
    );
    assert_eq!(app.admin.list_rules(&tenant).await.unwrap().len(), 1);
}

/// A valid rule whose compile takes Cranelift a while: one big function.
fn slow_to_compile() -> Vec<u8> {
    let body: String = (0..6000)
        .map(|i| format!("(local.set 0 (i32.add (local.get 0) (i32.const {i})))"))
        .collect();
    format!(
        r#"(module (memory (export "memory") 1)
          (func (export "alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "rule") (param i32 i32) (result i64) {body} (i64.const 0)))"#
    )
    .into_bytes()
}

/// Waits until an upload of `tenant` holds its compile slot (no fixed sleep: a loaded machine
/// may take long to get there).
async fn until_compiling(app: &TestApp, tenant: &wardstone::domain::Tenant) {
    let started = std::time::Instant::now();
    while !app.rules.modules().compiling(&tenant.id) {
        assert!(
            started.elapsed().as_secs() < 20,
            "the first upload never started compiling"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn uploads_compile_one_at_a_time_per_tenant() {
    let app = spawn_app().await;
    let tenant = app.t().await;
    let slow = slow_to_compile();
    let (a, b) = tokio::join!(
        app.admin.add_rule(&tenant, "slow", &slow, None, true),
        async {
            // Starts while the first is compiling.
            until_compiling(&app, &tenant).await;
            app.admin
                .add_rule(&tenant, "tag", &tag_rule("x"), None, true)
                .await
        }
    );
    assert!(a.is_ok(), "{a:?}");
    match b {
        Err(AdminError::InvalidModule(m)) => {
            assert!(
                m.contains("another rule of this tenant is being compiled"),
                "{m}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn waiting_for_a_compile_slot_has_a_deadline() {
    let app = spawn_app_with(|o| {
        o.rule_limits.compile_slots = 1;
        o.rule_limits.compile_wait = std::time::Duration::from_millis(10);
    })
    .await;
    app.admin
        .create_tenant("other", Default::default())
        .await
        .unwrap();
    let (acme, other) = (app.t().await, app.admin.resolve("other").await.unwrap());
    let slow = slow_to_compile();
    let (a, b) = tokio::join!(
        app.admin.add_rule(&acme, "slow", &slow, None, true),
        async {
            until_compiling(&app, &acme).await;
            app.admin
                .add_rule(&other, "tag", &tag_rule("x"), None, true)
                .await
        }
    );
    assert!(a.is_ok(), "{a:?}");
    match b {
        Err(AdminError::InvalidModule(m)) => assert!(m.contains("busy compiling"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Over the Management API the same refusal is a clear 422 naming the cause, and nothing
    // was stored for it.
    assert_eq!(app.admin.list_rules(&other).await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_compile_past_its_deadline_is_refused() {
    let app = spawn_app_with(|o| {
        o.rule_limits.compile_timeout = std::time::Duration::from_millis(1);
    })
    .await;
    let token = app.mgmt_token(None).await;
    let wat = String::from_utf8(slow_to_compile()).unwrap();
    let (status, body) = app
        .api(
            "POST",
            "/rules",
            &token,
            Some(json!({"name": "slow", "wat": wat})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("compilation took longer"),
        "{body}"
    );
    assert_eq!(app.admin.list_rules(&app.t().await).await.unwrap().len(), 0);
}

#[tokio::test]
async fn logins_go_on_when_the_execution_log_cannot_be_written() {
    let app = spawn_app().await;
    app.add_rule("tag", &tag_rule("x")).await;
    sqlx::query("DROP TABLE execution_run")
        .execute(&app.db().await)
        .await
        .unwrap();
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert!(q.contains_key("code"), "{q:?}");
    app.rules.journal().flush().await;
    assert_eq!(
        app.rules.journal().dropped(),
        1,
        "the lost record is counted"
    );
}
