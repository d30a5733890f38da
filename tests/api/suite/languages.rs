// Rule ABI v1 is language-neutral: the same add-roles rule written in Rust (rules-sdk),
// JavaScript (Auth0 source on the embedded QuickJS runtime), C (clang, no libc) and
// AssemblyScript runs through a real login and produces identical tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn the_same_rule_in_rust_javascript_c_and_assemblyscript_produces_identical_tokens() {
    let mut modules = vec![("Rust", sample_rule("add-roles"))];
    modules.extend(js_sample("add-roles").map(|s| ("JavaScript", s.into_bytes())));
    modules.extend(c_sample().map(|m| ("C", m)));
    modules.extend(assemblyscript_sample().map(|m| ("AssemblyScript", m)));
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // Strings with escapes and non-string entries: the scanners must copy the former exactly
    // and drop the latter, as the Rust rule does.
    app.set_metadata(
        &app.user_id,
        json!({"roles": ["admin", "say \"hi\"", 7, {"x": "]"}, "ünï\\code", null], "plan": "pro"}),
        json!({}),
    )
    .await;
    let mut seen: Vec<(&str, Value, Value)> = Vec::new();
    for (language, module) in &modules {
        let (_, rules) = app.api("GET", "/rules", &mgmt, None).await;
        for r in rules.as_array().unwrap() {
            app.api(
                "DELETE",
                &format!("/rules/{}", r["id"].as_str().unwrap()),
                &mgmt,
                None,
            )
            .await;
        }
        let name = format!("add roles {language}");
        if *language == "JavaScript" {
            app.add_script(&name, std::str::from_utf8(module).unwrap())
                .await;
        } else {
            app.add_rule(&name, module).await;
        }
        let (_, id, at) = app.login_claims().await;
        let last = &app.logs(1).await[0];
        assert_eq!(last.outcome.label(), "ok", "{language}: {last:?}");
        seen.push((
            language,
            id["https://wardstone.dev/roles"].clone(),
            at["https://wardstone.dev/roles"].clone(),
        ));
    }
    let expected = json!(["admin", "say \"hi\"", "ünï\\code"]);
    for (language, id, at) in &seen {
        assert_eq!(id, &expected, "{language}: ID token");
        assert_eq!(at, &expected, "{language}: access token");
    }
    if toolchains_required() {
        assert_eq!(seen.len(), 4, "all four languages ran");
    }
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
