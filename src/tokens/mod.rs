//! Signing keys and JWTs. Private keys are parsed once and held in memory (re-parsing an RSA key
//! costs ≈110 µs, more than the signature); they are sealed at rest with the master key.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::cache::{CacheCounters, GenerationCache};
use crate::crypto::{MasterKey, random_token};
use crate::domain::{KeyStatus, SigningAlg, Tenant};
use crate::store::{SigningKeyRecord, Store};

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A key that signs tokens.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: Pair,
}

impl SigningKey {
    /// Signs `claims` as a compact JWS with header `{"alg":...,"typ":typ,"kid":...}`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let header = json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid});
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match &self.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    out.as_bytes(),
                    &mut sig,
                )
                .expect("RSA signing with a valid key cannot fail");
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&SystemRandom::new(), out.as_bytes())
                .expect("ECDSA signing with a valid key cannot fail")
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        out
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// `at_hash` for an access token signed next to an ID token by this key.
    pub fn at_hash(&self, access_token: &str) -> String {
        at_hash(self.alg, access_token)
    }
}

/// Generates a signing key for `alg`, sealed for storage, with `status`.
pub fn generate_key(
    tenant_id: &str,
    alg: SigningAlg,
    status: KeyStatus,
    master_key: &MasterKey,
    now: i64,
) -> SigningKeyRecord {
    let kid = random_token(12);
    let rng = SystemRandom::new();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let (pkcs8, mut jwk) = match alg {
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
            let pkcs8 = pair.as_der().expect("PKCS#8 encoding of a fresh key");
            let public = pair.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        SigningAlg::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("P-256 key generation");
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("a fresh P-256 key parses");
            // Uncompressed SEC1 point: 0x04 || x || y.
            let point = pair.public_key().as_ref();
            let jwk = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(&point[1..33]),
                "y": b64(&point[33..65]),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        SigningAlg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key generation");
            let pair =
                Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a fresh Ed25519 key parses");
            let jwk = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(pair.public_key().as_ref()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
    };
    jwk["use"] = json!("sig");
    jwk["alg"] = json!(alg.as_str());
    jwk["kid"] = json!(kid);
    SigningKeyRecord {
        private_key: master_key.seal(&kid, &pkcs8),
        kid,
        tenant_id: tenant_id.to_string(),
        alg,
        public_jwk: jwk.to_string(),
        status,
        revoked_at: None,
        created_at: now,
    }
}

/// One tenant's keys, ready to sign and verify, as of one key generation.
pub struct TenantKeys {
    signer: SigningKey,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: Value,
    algs: Vec<&'static str>,
}

/// Why a presented JWT was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Bad signature, unknown or revoked key, wrong type, expired, wrong issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl TenantKeys {
    /// The key that signs new tokens.
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// The public JWK Set: next, current and previous keys.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The algorithms of the published keys, the current one first (for discovery).
    pub fn algorithms(&self) -> &[&'static str] {
        &self.algs
    }

    /// Verifies a JWT of this tenant: signature by a published key with that key's algorithm,
    /// `typ`, `iss`, `aud` (contains `audience` when given), and `exp` against `now` (when
    /// given: an `id_token_hint` may have expired). Returns its claims.
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
        let (alg, key) = self.verifiers.get(&kid).ok_or_else(|| bad("unknown key"))?;
        // The key decides the algorithm, never the token's header (RFC 8725 §3.1).
        let mut validation = Validation::new(*alg);
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

/// Tenants' keys a node keeps parsed (each a few KB).
const CACHED_KEY_SETS: usize = 100_000;

/// Per-tenant keys, parsed once and held in memory at the tenant's `keys_generation`
/// ([`GenerationCache`]): every rotation or revocation bumps it in its own transaction.
pub struct KeyRing {
    store: Store,
    master_key: MasterKey,
    cache: GenerationCache<String, TenantKeys>,
}

impl KeyRing {
    /// An empty key ring.
    pub fn new(store: Store, master_key: MasterKey) -> Self {
        KeyRing {
            store,
            master_key,
            cache: GenerationCache::new("signing_key", CACHED_KEY_SETS),
        }
    }

    /// The cache's counters, for the metrics registry.
    pub fn cache_counters(&self) -> CacheCounters {
        self.cache.counters()
    }

    /// The keys of a tenant, as of the generation it was read with.
    pub async fn tenant(&self, tenant: &Tenant) -> anyhow::Result<Arc<TenantKeys>> {
        let generation = tenant.keys_generation;
        self.cache
            .get_or_load(tenant.id.clone(), generation, || async move {
                let records = self.store.signing_keys(&tenant.id).await?;
                self.load(&records)
            })
            .await
    }

    fn load(&self, records: &[SigningKeyRecord]) -> anyhow::Result<TenantKeys> {
        let mut current = None;
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        let mut algs: Vec<&'static str> = Vec::new();
        for r in records {
            let status = r.status;
            if !status.is_published() {
                continue;
            }
            let alg = r.alg;
            let jwk: Value =
                serde_json::from_str(&r.public_jwk).context("stored JWK is not JSON")?;
            let part = |name: &str| {
                jwk[name]
                    .as_str()
                    .with_context(|| format!("JWK {} without {name}", r.kid))
            };
            let verifier = match alg {
                SigningAlg::Rs256 => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_components(part("n")?, part("e")?)?,
                ),
                SigningAlg::Es256 => (
                    Algorithm::ES256,
                    DecodingKey::from_ec_components(part("x")?, part("y")?)?,
                ),
                SigningAlg::EdDsa => (
                    Algorithm::EdDSA,
                    DecodingKey::from_ed_components(part("x")?)?,
                ),
            };
            verifiers.insert(r.kid.clone(), verifier);
            jwks.push(jwk);
            if status == KeyStatus::Current {
                current = Some((r, alg));
                algs.insert(0, alg.as_str());
            } else if !algs.contains(&alg.as_str()) {
                algs.push(alg.as_str());
            }
        }
        algs.dedup();
        let (active, alg) = current.context("tenant has no current signing key")?;
        let pkcs8 = self
            .master_key
            .open(&active.kid, &active.private_key)
            .with_context(|| format!("cannot unseal signing key {}", active.kid))?;
        let invalid = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("stored signing key {} is not valid PKCS#8: {e}", active.kid)
        };
        let pair = match alg {
            SigningAlg::Rs256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).map_err(|e| invalid(&e))?)
            }
            SigningAlg::Es256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(|e| invalid(&e))?,
            ),
            SigningAlg::EdDsa => {
                Pair::Ed(Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| invalid(&e))?)
            }
        };
        Ok(TenantKeys {
            signer: SigningKey {
                kid: active.kid.clone(),
                alg,
                pair,
            },
            verifiers,
            jwks: json!({ "keys": jwks }),
            algs,
        })
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the access token's hash under the hash of
/// the ID token's algorithm, base64url. Ed25519 signs with SHA-512 inside, so EdDSA uses
/// SHA-512 (as relying-party libraries expect).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    use sha2::{Digest, Sha256, Sha512};
    match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => {
            URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
        }
        SigningAlg::EdDsa => URL_SAFE_NO_PAD.encode(&Sha512::digest(access_token.as_bytes())[..32]),
    }
}
