//! Signing keys and JWTs. Private keys are parsed once and held in memory (re-parsing an RSA key
//! costs ≈110 µs, more than the signature); they are sealed at rest with the master key.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::crypto::{MasterKey, random_token};
use crate::store::{SigningKeyRecord, Store};

/// A key that signs tokens.
pub struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
}

impl SigningKey {
    /// Signs `claims` as a compact JWS with header `{"alg":"RS256","typ":typ,"kid":...}`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": typ, "kid": self.kid});
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key cannot fail");
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        out
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// Generates a tenant's RS256 signing key, sealed for storage.
pub fn generate_rsa_key(tenant_id: &str, master_key: &MasterKey, now: i64) -> SigningKeyRecord {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let kid = random_token(12);
    let pkcs8 = pair.as_der().expect("PKCS#8 encoding of a fresh key");
    let public = pair.public_key();
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    });
    SigningKeyRecord {
        private_key: master_key.seal(&kid, pkcs8.as_ref()),
        kid,
        tenant_id: tenant_id.to_string(),
        alg: "RS256".into(),
        public_jwk: jwk.to_string(),
        active: 1,
        created_at: now,
    }
}

/// One tenant's keys, ready to sign and verify.
pub struct TenantKeys {
    signer: SigningKey,
    verifiers: HashMap<String, DecodingKey>,
    jwks: Value,
}

/// Why a presented JWT was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Bad signature, unknown key, wrong type, expired, wrong issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl TenantKeys {
    /// The key that signs new tokens.
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Verifies a JWT of this tenant: signature, `typ`, `iss`, `aud` (contains `audience` when
    /// given), and `exp` against `now` (when given: an `id_token_hint` may have expired).
    /// Returns its claims.
    pub fn verify(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: Option<&str>,
        now: Option<i64>,
    ) -> Result<Value, VerifyError> {
        let bad = |m: &str| VerifyError::Invalid(m.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed token"))?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(bad("wrong token type"));
        }
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let key = self.verifiers.get(&kid).ok_or_else(|| bad("unknown key"))?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
        // Expiry is checked below against the injected clock, not the wall clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[issuer]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Value>(token, key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let exp = data
            .claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no exp"))?;
        if now.is_some_and(|now| exp <= now) {
            return Err(bad("token expired"));
        }
        Ok(data.claims)
    }
}

/// Per-tenant keys, loaded from the database on first use and cached.
pub struct KeyRing {
    store: Store,
    master_key: MasterKey,
    cache: RwLock<HashMap<String, Arc<TenantKeys>>>,
}

impl KeyRing {
    /// An empty key ring.
    pub fn new(store: Store, master_key: MasterKey) -> Self {
        KeyRing {
            store,
            master_key,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The keys of a tenant.
    pub async fn tenant(&self, tenant_id: &str) -> anyhow::Result<Arc<TenantKeys>> {
        if let Some(keys) = self.cache.read().await.get(tenant_id) {
            return Ok(keys.clone());
        }
        let records = self.store.signing_keys(tenant_id).await?;
        let keys = Arc::new(self.load(&records)?);
        self.cache
            .write()
            .await
            .insert(tenant_id.to_string(), keys.clone());
        Ok(keys)
    }

    fn load(&self, records: &[SigningKeyRecord]) -> anyhow::Result<TenantKeys> {
        use anyhow::Context;
        let active = records
            .iter()
            .find(|r| r.active == 1)
            .context("tenant has no active signing key")?;
        let pkcs8 = self
            .master_key
            .open(&active.kid, &active.private_key)
            .with_context(|| format!("cannot unseal signing key {}", active.kid))?;
        let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|e| {
            anyhow::anyhow!("stored signing key {} is not valid PKCS#8: {e}", active.kid)
        })?;
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for r in records {
            let jwk: Value =
                serde_json::from_str(&r.public_jwk).context("stored JWK is not JSON")?;
            let n = jwk["n"].as_str().context("JWK without n")?;
            let e = jwk["e"].as_str().context("JWK without e")?;
            verifiers.insert(r.kid.clone(), DecodingKey::from_rsa_components(n, e)?);
            jwks.push(jwk);
        }
        Ok(TenantKeys {
            signer: SigningKey {
                kid: active.kid.clone(),
                pair,
            },
            verifiers,
            jwks: json!({ "keys": jwks }),
        })
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}
