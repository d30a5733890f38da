// A complete flow through a third-party relying-party library (the `openidconnect` crate),
// which checks discovery, the ID token signature, nonce, audience and at_hash itself.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use super::*;

#[tokio::test]
async fn openidconnect_crate_completes_a_login() {
    rp_login(
        spawn_app().await,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

#[tokio::test]
async fn openidconnect_crate_completes_a_login_with_es256() {
    let app = spawn_app_signing(SigningAlg::Es256).await;
    rp_login(app, CoreJwsSigningAlgorithm::EcdsaP256Sha256).await;
}

#[tokio::test]
async fn openidconnect_crate_completes_a_login_with_eddsa() {
    let app = spawn_app_signing(SigningAlg::EdDsa).await;
    rp_login(app, CoreJwsSigningAlgorithm::EdDsa).await;
}

/// A whole login through the library, which must find `alg` in discovery and accept the ID
/// token (signature, nonce, at_hash under that algorithm's hash) and userinfo.
async fn rp_login(app: TestApp, alg: CoreJwsSigningAlgorithm) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery validates");
    assert_eq!(
        metadata.id_token_signing_alg_values_supported(),
        &vec![alg.clone()]
    );
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new();
    let callback = app.login_and_consent(&browser, auth_url.as_str()).await;
    let q = query_of(&callback);
    assert_eq!(&q["state"], csrf.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![alg.clone()]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the library accepts the ID token");
    assert_eq!(claims.subject().as_str(), app.user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(id_token.signing_alg().unwrap(), &alg);
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), app.user_id);

    // A wrong nonce is caught by the library.
    assert!(
        id_token
            .claims(&verifier, &Nonce::new("other".into()))
            .is_err()
    );
}
