// Signing keys: algorithms, rotation, revocation, and what every node and relying party sees.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

async fn jwks_kids(app: &TestApp, base: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(on_node(&app.url("/.well-known/jwks.json"), base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// `(status -> kid)` of the keys the Management API lists.
async fn key_places(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let (status, keys) = app.api("GET", "/keys/signing", token, None).await;
    assert_eq!(status, StatusCode::OK);
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let place = k["status"].as_str().unwrap().to_string();
            assert_eq!(k["current"], place == "current");
            assert_eq!(k["next"], place == "next");
            assert_eq!(k["previous"], place == "previous");
            assert_eq!(k["revoked"], place == "revoked");
            assert!(k["jwk"]["d"].is_null(), "never the private half");
            (place, k["kid"].as_str().unwrap().to_string())
        })
        .collect()
}

fn kid_in(places: &[(String, String)], place: &str) -> String {
    let found: Vec<&String> = places
        .iter()
        .filter(|(p, _)| p == place)
        .map(|(_, k)| k)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {place} key in {places:?}");
    found[0].clone()
}

async fn introspect_active(app: &TestApp, token: &str) -> bool {
    let answer: Value = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["active"].as_bool().unwrap()
}

#[tokio::test]
async fn rotation_publishes_before_signing_and_revocation_refuses_at_once() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let places = key_places(&app, &mgmt).await;
    assert_eq!(places.len(), 2, "a new tenant has a current and a next key");
    let (k1, k2) = (kid_in(&places, "current"), kid_in(&places, "next"));
    let mut both = vec![k1.clone(), k2.clone()];
    both.sort();
    assert_eq!(
        jwks_kids(&app, &app.base).await,
        both,
        "the next key is published"
    );

    let first = app.tokens(&Browser::new()).await;
    let at1 = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(kid_of(&at1), k1);

    let (status, rotated) = app.api("POST", "/keys/signing/rotate", &mgmt, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        rotated["kid"],
        k2.as_str(),
        "the published next key signs now"
    );
    assert_eq!(rotated["current"], true);
    let places = key_places(&app, &mgmt).await;
    assert_eq!(kid_in(&places, "current"), k2);
    assert_eq!(kid_in(&places, "previous"), k1);
    let k3 = kid_in(&places, "next");
    let mut three = vec![k1.clone(), k2.clone(), k3.clone()];
    three.sort();
    assert_eq!(jwks_kids(&app, &app.base).await, three);

    // New tokens carry the new key; tokens of the previous key still work.
    let mgmt = app.mgmt_token(None).await;
    assert_eq!(kid_of(&mgmt), k2);
    let second = app.tokens(&Browser::new()).await;
    assert_eq!(kid_of(second["id_token"].as_str().unwrap()), k2);
    app.verify(second["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(app.userinfo(&at1).await.status(), StatusCode::OK);
    assert!(introspect_active(&app, &at1).await);

    // The current key cannot be revoked; an unknown one is a 404.
    let (status, body) = app
        .api("PUT", &format!("/keys/signing/{k2}/revoke"), &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("current"));
    let (status, _) = app
        .api("PUT", "/keys/signing/no-such-kid/revoke", &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Revoking the previous key: out of the JWKS, its tokens refused at once.
    let (status, revoked) = app
        .api("PUT", &format!("/keys/signing/{k1}/revoke"), &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["revoked"], true);
    assert!(revoked["revoked_at"].is_i64());
    assert!(!jwks_kids(&app, &app.base).await.contains(&k1));
    assert_eq!(app.userinfo(&at1).await.status(), StatusCode::UNAUTHORIZED);
    assert!(!introspect_active(&app, &at1).await);
    // Revoking it again changes nothing.
    let (status, _) = app
        .api("PUT", &format!("/keys/signing/{k1}/revoke"), &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Revoking the next key publishes a fresh one in its place.
    let (status, _) = app
        .api("PUT", &format!("/keys/signing/{k3}/revoke"), &mgmt, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let places = key_places(&app, &mgmt).await;
    let k4 = kid_in(&places, "next");
    assert_ne!(k4, k3);
    assert_eq!(kid_in(&places, "current"), k2);
    assert!(jwks_kids(&app, &app.base).await.contains(&k4));
}

#[tokio::test]
async fn rotating_twice_quickly_or_at_once_keeps_one_key_in_each_place() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    let before = key_places(&app, &mgmt).await;
    let k1 = kid_in(&before, "current");
    let tokens = app.tokens(&Browser::new()).await;
    let at1 = tokens["access_token"].as_str().unwrap().to_string();

    // Two rotations sent together run one after the other, each a whole step.
    let (a, b) = tokio::join!(
        app.api("POST", "/keys/signing/rotate", &mgmt, None),
        app.api("POST", "/keys/signing/rotate", &mgmt, None)
    );
    assert_eq!(a.0, StatusCode::CREATED);
    assert_eq!(b.0, StatusCode::CREATED);
    assert_ne!(a.1["kid"], b.1["kid"]);
    // The token used so far was signed by the first key, now retired.
    let (status, _) = app.api("GET", "/keys/signing", &mgmt, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mgmt = app.mgmt_token(None).await;
    let places = key_places(&app, &mgmt).await;
    let current = kid_in(&places, "current");
    kid_in(&places, "next");
    kid_in(&places, "previous");
    assert_eq!(
        kid_in(&places, "retired"),
        k1,
        "two rotations retire the first key"
    );
    assert_eq!(jwks_kids(&app, &app.base).await.len(), 3);
    assert!(!jwks_kids(&app, &app.base).await.contains(&k1));
    // Tokens of a retired key are no longer accepted (documented: rotate no more often than
    // the longest access-token lifetime).
    assert_eq!(app.userinfo(&at1).await.status(), StatusCode::UNAUTHORIZED);
    let fresh = app.tokens(&Browser::new()).await;
    assert_eq!(kid_of(fresh["access_token"].as_str().unwrap()), current);
    assert_eq!(
        app.userinfo(fresh["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_node_signs_with_the_new_key_right_after_a_rotation() {
    let app = spawn_app().await;
    let peer = app.spawn_peer().await;
    let mgmt = app.mgmt_token(None).await;
    // The peer has the keys in memory.
    let before = jwks_kids(&app, &peer).await;
    assert_eq!(before.len(), 2);
    let (_, rotated) = app.api("POST", "/keys/signing/rotate", &mgmt, None).await;
    let new_current = rotated["kid"].as_str().unwrap().to_string();
    // No waiting: the peer reads the tenant's key generation with every request.
    assert_eq!(jwks_kids(&app, &peer).await.len(), 3);
    let audience = app.url("/api/v2/");
    let answer: Value = reqwest::Client::new()
        .post(on_node(&app.url("/oauth/token"), &peer))
        .basic_auth(&app.mgmt_client_id, Some(&app.mgmt_client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", audience.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(kid_of(token), new_current);
    // And a token signed by a key revoked on this node is refused on the peer at once.
    let places = key_places(&app, &mgmt).await;
    let previous = kid_in(&places, "previous");
    assert_eq!(kid_of(&mgmt), previous);
    let (status, _) = app
        .api(
            "PUT",
            &format!("/keys/signing/{previous}/revoke"),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = reqwest::Client::new()
        .get(on_node(&app.url("/api/v2/keys/signing"), &peer))
        .bearer_auth(&mgmt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn es256_and_eddsa_tenants_sign_verify_and_rotate_in_their_algorithm() {
    for (alg, name, kty) in [
        (SigningAlg::Es256, "ES256", "EC"),
        (SigningAlg::EdDsa, "EdDSA", "OKP"),
    ] {
        let app = spawn_app_signing(alg).await;
        let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            discovery["id_token_signing_alg_values_supported"],
            json!([name])
        );
        let jwks: Value = reqwest::get(app.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for key in jwks["keys"].as_array().unwrap() {
            assert_eq!(key["alg"], name);
            assert_eq!(key["kty"], kty);
        }
        let tokens = app.tokens(&Browser::new()).await;
        let at = tokens["access_token"].as_str().unwrap();
        let (typ, claims) = app.verify(at, &app.url("/userinfo")).await;
        assert_eq!(typ, "at+jwt");
        assert_eq!(claims["sub"], app.user_id.as_str());
        let (_, id) = app
            .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
            .await;
        assert_eq!(id["at_hash"], wardstone::tokens::at_hash(alg, at));
        assert_eq!(app.userinfo(at).await.status(), StatusCode::OK);
        assert!(introspect_active(&app, at).await);
        // Refresh works and a rotation keeps the algorithm.
        let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let mgmt = app.mgmt_token(None).await;
        let (status, rotated) = app.api("POST", "/keys/signing/rotate", &mgmt, None).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(rotated["alg"], name);
        assert_eq!(rotated["jwk"]["kty"], kty);
        let again = app.tokens(&Browser::new()).await;
        let header = jsonwebtoken::decode_header(again["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(header.kid.as_deref(), rotated["kid"].as_str());
        assert_eq!(
            app.userinfo(at).await.status(),
            StatusCode::OK,
            "previous key"
        );
    }
}

#[tokio::test]
async fn a_token_whose_header_names_another_algorithm_is_refused() {
    let app = spawn_app_signing(SigningAlg::Es256).await;
    let tokens = app.tokens(&Browser::new()).await;
    let at = tokens["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = at.split('.').map(String::from).collect();
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
    header["alg"] = json!("HS256");
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    let forged = parts.join(".");
    assert_eq!(
        app.userinfo(&forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(!introspect_active(&app, &forged).await);
}

#[tokio::test]
async fn signing_key_routes_check_their_scopes() {
    let app = spawn_app().await;
    let narrow = app.mgmt_token(Some("read:signing_keys")).await;
    let (status, _) = app.api("GET", "/keys/signing", &narrow, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.api("POST", "/keys/signing/rotate", &narrow, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let places = key_places(&app, &narrow).await;
    let next = kid_in(&places, "next");
    let (status, _) = app
        .api(
            "PUT",
            &format!("/keys/signing/{next}/revoke"),
            &narrow,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, key) = app
        .api("GET", &format!("/keys/signing/{next}"), &narrow, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key["next"], true);
    assert_eq!(key_places(&app, &narrow).await, places, "nothing changed");
}

#[tokio::test]
async fn a_tenant_without_a_next_key_publishes_one_before_switching() {
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // What a tenant created before rotation existed looks like.
    let db = app.db().await;
    sqlx::query("DELETE FROM signing_key WHERE status = 'next'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE tenant SET keys_generation = keys_generation + 1")
        .execute(&db)
        .await
        .unwrap();
    let before = key_places(&app, &mgmt).await;
    let current = kid_in(&before, "current");
    let (status, first) = app.api("POST", "/keys/signing/rotate", &mgmt, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["kid"], current.as_str(), "no unpublished key signs");
    let places = key_places(&app, &mgmt).await;
    let next = kid_in(&places, "next");
    assert!(jwks_kids(&app, &app.base).await.contains(&next));
    let (_, second) = app.api("POST", "/keys/signing/rotate", &mgmt, None).await;
    assert_eq!(second["kid"], next.as_str());
}
