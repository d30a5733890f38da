//! `wardstone.crypto`: the cryptography JavaScript code asks the host for, so that HMACs,
//! hashes, random bytes and JWTs are computed by aws-lc-rs and jsonwebtoken rather than by
//! JavaScript arithmetic inside the sandbox. UTF-8 JSON in, UTF-8 JSON out; every refusal is an
//! answer `{"error": "..."}` that the JavaScript side throws.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest random draw one call may ask for.
const MAX_RANDOM_BYTES: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    /// An HMAC of `data` under `key` (both given as `encoding`: utf8, base64 or hex).
    Hmac {
        alg: String,
        key: String,
        #[serde(default)]
        key_encoding: Encoding,
        data: String,
        #[serde(default)]
        data_encoding: Encoding,
    },
    /// A digest of `data`.
    Hash {
        alg: String,
        data: String,
        #[serde(default)]
        data_encoding: Encoding,
    },
    /// `bytes` random bytes.
    Random { bytes: usize },
    /// A JWS compact token over `claims`: HS* under a secret (`key_encoding`), RS*/PS*/ES*
    /// under a PEM private key.
    JwtSign {
        alg: String,
        key: String,
        #[serde(default)]
        key_encoding: Encoding,
        claims: serde_json::Map<String, Value>,
        #[serde(default)]
        kid: Option<String>,
        #[serde(default)]
        typ: Option<String>,
    },
    /// A token's header and payload, decoded and not verified (`jsonwebtoken.decode`):
    /// base64url and JSON are a million instructions inside QuickJS, microseconds here.
    JwtDecode { token: String },
    /// The claims of a token whose signature verifies under `key` (a secret, or a PEM public
    /// key) and — unless `check_exp` is false, when the caller checks claims itself — which has
    /// not expired.
    JwtVerify {
        alg: String,
        key: String,
        #[serde(default)]
        key_encoding: Encoding,
        token: String,
        #[serde(default = "yes")]
        check_exp: bool,
    },
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    #[default]
    Utf8,
    Base64,
    Hex,
}

fn decode(text: &str, encoding: Encoding) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
        Encoding::Base64 => STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| "the data is not base64".to_string()),
        Encoding::Hex => {
            // Not ASCII: slicing by bytes below could split a character.
            if !text.len().is_multiple_of(2) || !text.is_ascii() {
                return Err("the data is not hex".into());
            }
            (0..text.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&text[i..i + 2], 16)
                        .map_err(|_| "the data is not hex".to_string())
                })
                .collect()
        }
    }
}

/// The digest as every encoding the JavaScript side may want.
fn encoded(bytes: &[u8]) -> Value {
    json!({"hex": crate::crypto::hex(bytes), "base64": STANDARD.encode(bytes)})
}

fn hmac_algorithm(alg: &str) -> Result<aws_lc_rs::hmac::Algorithm, String> {
    Ok(match alg.to_ascii_lowercase().as_str() {
        "sha256" => aws_lc_rs::hmac::HMAC_SHA256,
        "sha384" => aws_lc_rs::hmac::HMAC_SHA384,
        "sha512" => aws_lc_rs::hmac::HMAC_SHA512,
        "sha1" => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        other => {
            return Err(format!(
                "HMAC algorithm {other:?} is not supported; use sha256, sha384, sha512 or sha1"
            ));
        }
    })
}

fn digest_algorithm(alg: &str) -> Result<&'static aws_lc_rs::digest::Algorithm, String> {
    Ok(match alg.to_ascii_lowercase().as_str() {
        "sha256" => &aws_lc_rs::digest::SHA256,
        "sha384" => &aws_lc_rs::digest::SHA384,
        "sha512" => &aws_lc_rs::digest::SHA512,
        "sha1" => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        other => {
            return Err(format!(
                "hash algorithm {other:?} is not supported; use sha256, sha384, sha512, sha1 or md5 (not for HMAC)"
            ));
        }
    })
}

fn yes() -> bool {
    true
}

fn jwt_algorithm(alg: &str) -> Result<jsonwebtoken::Algorithm, String> {
    use jsonwebtoken::Algorithm::*;
    Ok(match alg {
        "HS256" => HS256,
        "HS384" => HS384,
        "HS512" => HS512,
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        other => return Err(format!("JWT algorithm {other:?} is not supported")),
    })
}

/// The key family an algorithm takes.
enum KeyFamily {
    Secret,
    Rsa,
    Ec,
}

fn key_family(alg: jsonwebtoken::Algorithm) -> KeyFamily {
    use jsonwebtoken::Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => KeyFamily::Secret,
        ES256 | ES384 => KeyFamily::Ec,
        _ => KeyFamily::Rsa,
    }
}

/// An HS* secret: never empty (anyone could sign with it), never a PEM key (a token signed
/// with a public key's text as its HMAC secret is the classic algorithm-confusion forgery).
fn secret(key: &str, encoding: Encoding) -> Result<Vec<u8>, String> {
    if key.contains("-----BEGIN") {
        return Err("an HS* algorithm was given a PEM key; use the algorithm of the key".into());
    }
    let bytes = decode(key, encoding)?;
    if bytes.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(bytes)
}

fn encoding_key(
    alg: jsonwebtoken::Algorithm,
    key: &str,
    encoding: Encoding,
) -> Result<jsonwebtoken::EncodingKey, String> {
    use jsonwebtoken::EncodingKey;
    let bad = |e: jsonwebtoken::errors::Error| {
        format!("the key is not a PEM private key for {alg:?}: {e}")
    };
    match key_family(alg) {
        KeyFamily::Secret => Ok(EncodingKey::from_secret(&secret(key, encoding)?)),
        KeyFamily::Rsa => EncodingKey::from_rsa_pem(key.as_bytes()).map_err(bad),
        KeyFamily::Ec => EncodingKey::from_ec_pem(key.as_bytes()).map_err(bad),
    }
}

fn decoding_key(
    alg: jsonwebtoken::Algorithm,
    key: &str,
    encoding: Encoding,
) -> Result<jsonwebtoken::DecodingKey, String> {
    use jsonwebtoken::DecodingKey;
    let bad = |e: jsonwebtoken::errors::Error| {
        format!("the key is not a PEM public key for {alg:?}: {e}")
    };
    match key_family(alg) {
        KeyFamily::Secret => Ok(DecodingKey::from_secret(&secret(key, encoding)?)),
        KeyFamily::Rsa => DecodingKey::from_rsa_pem(key.as_bytes()).map_err(bad),
        KeyFamily::Ec => DecodingKey::from_ec_pem(key.as_bytes()).map_err(bad),
    }
}

fn run(request: Request, now: i64) -> Result<Value, String> {
    match request {
        Request::Hmac {
            alg,
            key,
            key_encoding,
            data,
            data_encoding,
        } => {
            let key = decode(&key, key_encoding)?;
            if key.is_empty() {
                return Err("the HMAC key is empty".into());
            }
            let key = aws_lc_rs::hmac::Key::new(hmac_algorithm(&alg)?, &key);
            let tag = aws_lc_rs::hmac::sign(&key, &decode(&data, data_encoding)?);
            Ok(encoded(tag.as_ref()))
        }
        Request::Hash {
            alg,
            data,
            data_encoding,
        } if alg.eq_ignore_ascii_case("md5") => {
            // Legacy APIs (MaxMind minFraud, Gravatar) still key on MD5; aws-lc offers none.
            use md5::Digest;
            Ok(encoded(&md5::Md5::digest(decode(&data, data_encoding)?)))
        }
        Request::Hash {
            alg,
            data,
            data_encoding,
        } => {
            let digest =
                aws_lc_rs::digest::digest(digest_algorithm(&alg)?, &decode(&data, data_encoding)?);
            Ok(encoded(digest.as_ref()))
        }
        Request::Random { bytes } => {
            if bytes > MAX_RANDOM_BYTES {
                return Err(format!("at most {MAX_RANDOM_BYTES} random bytes per call"));
            }
            Ok(encoded(&crate::crypto::random_bytes(bytes)))
        }
        Request::JwtSign {
            alg,
            key,
            key_encoding,
            claims,
            kid,
            typ,
        } => {
            let alg = jwt_algorithm(&alg)?;
            let mut header = jsonwebtoken::Header::new(alg);
            header.kid = kid;
            if typ.is_some() {
                header.typ = typ;
            }
            let token =
                jsonwebtoken::encode(&header, &claims, &encoding_key(alg, &key, key_encoding)?)
                    .map_err(|e| format!("cannot sign: {e}"))?;
            Ok(json!({"token": token}))
        }
        Request::JwtDecode { token } => {
            let mut parts = token.split('.');
            let (Some(header), Some(payload), Some(_), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err("not a JWS compact token".into());
            };
            let part = |text: &str| {
                URL_SAFE_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .map_err(|_| "a part is not base64url".to_string())
            };
            let header: Value = serde_json::from_slice(&part(header)?)
                .map_err(|_| "the header is not JSON".to_string())?;
            let payload = part(payload)?;
            // jsonwebtoken hands back a payload that is not JSON as its text.
            let payload = serde_json::from_slice::<Value>(&payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into_owned()));
            Ok(json!({"header": header, "payload": payload}))
        }
        Request::JwtVerify {
            alg,
            key,
            key_encoding,
            token,
            check_exp,
        } => {
            let alg = jwt_algorithm(&alg)?;
            let mut validation = jsonwebtoken::Validation::new(alg);
            // Expiry is checked below against the host's clock.
            validation.validate_exp = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
                &token,
                &decoding_key(alg, &key, key_encoding)?,
                &validation,
            )
            .map_err(|e| format!("the token does not verify: {e}"))?;
            if let Some(exp) = data.claims.get("exp").filter(|_| check_exp) {
                match exp.as_i64() {
                    Some(exp) if exp > now => {}
                    Some(_) => return Err("the token has expired".into()),
                    None => return Err("the token's exp is not a number".into()),
                }
            }
            Ok(json!({"claims": data.claims}))
        }
    }
}

/// The answer to one request from the JavaScript runtime.
pub fn answer(request: &[u8]) -> Value {
    let now = crate::clock::Clock::System.now();
    match serde_json::from_slice::<Request>(request) {
        Ok(r) => run(r, now).unwrap_or_else(|e| json!({ "error": e })),
        Err(e) => json!({ "error": format!("invalid crypto request: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(request: Value) -> Value {
        answer(request.to_string().as_bytes())
    }

    #[test]
    fn hmacs_and_hashes_match_known_vectors() {
        // RFC 4231 test case 2.
        let mac = ask(
            json!({"op": "hmac", "alg": "sha256", "key": "Jefe", "data": "what do ya want for nothing?"}),
        );
        assert_eq!(
            mac["hex"],
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let hash = ask(json!({"op": "hash", "alg": "sha256", "data": "abc"}));
        assert_eq!(
            hash["hex"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ask(json!({"op": "hash", "alg": "md4", "data": ""}))["error"].is_string());
        assert_eq!(
            ask(json!({"op": "hash", "alg": "md5", "data": "abc"}))["hex"],
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert!(ask(json!({"op": "random", "bytes": 1 << 30}))["error"].is_string());
        assert_eq!(
            ask(json!({"op": "random", "bytes": 16}))["hex"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn jwts_round_trip_and_expired_or_forged_ones_are_refused() {
        let now = crate::clock::Clock::System.now();
        let token = ask(
            json!({"op": "jwt_sign", "alg": "HS256", "key": "s3cret", "claims": {"state": "x", "exp": now + 60}}),
        );
        let token = token["token"].as_str().unwrap();
        let ok = ask(json!({"op": "jwt_verify", "alg": "HS256", "key": "s3cret", "token": token}));
        assert_eq!(ok["claims"]["state"], "x");
        let forged =
            ask(json!({"op": "jwt_verify", "alg": "HS256", "key": "other", "token": token}));
        assert!(
            forged["error"]
                .as_str()
                .unwrap()
                .contains("does not verify")
        );
        let old =
            ask(json!({"op": "jwt_sign", "alg": "HS256", "key": "k", "claims": {"exp": now - 1}}));
        let expired =
            ask(json!({"op": "jwt_verify", "alg": "HS256", "key": "k", "token": old["token"]}));
        assert!(expired["error"].as_str().unwrap().contains("expired"));
    }

    /// A throwaway P-256 key (generated for this test with openssl).
    const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNKCbrtZl0/mb/rwe\nHrcUPrPd2X3wZQmBj1A1hi7rO6qhRANCAAQOmn892o5yju277Ogsm0a6VDqnZ/t0\nTVfXJq/SRDKVUVxvPw88qoj/M+1xtpWqchxWk9d6AmZF5OVb34krMZK5\n-----END PRIVATE KEY-----";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDpp/PdqOco7tu+zoLJtGulQ6p2f7\ndE1X1yav0kQylVFcbz8PPKqI/zPtcbaVqnIcVpPXegJmReTlW9+JKzGSuQ==\n-----END PUBLIC KEY-----";

    #[test]
    fn pem_keys_sign_and_verify_and_wrong_keys_are_named() {
        let token = ask(
            json!({"op": "jwt_sign", "alg": "ES256", "key": EC_PRIVATE, "claims": {"sub": "u"}, "typ": "JWT"}),
        );
        let token = token["token"].as_str().unwrap();
        let ok = ask(json!({"op": "jwt_verify", "alg": "ES256", "key": EC_PUBLIC, "token": token}));
        assert_eq!(ok["claims"]["sub"], "u", "{ok}");
        // The algorithm must be the key's; a secret is no PEM key.
        let wrong =
            ask(json!({"op": "jwt_verify", "alg": "HS256", "key": EC_PUBLIC, "token": token}));
        assert!(wrong["error"].is_string(), "{wrong}");
        let bad = ask(json!({"op": "jwt_sign", "alg": "RS256", "key": "not a pem", "claims": {}}));
        assert!(bad["error"].as_str().unwrap().contains("PEM"), "{bad}");
        // A public key's text as an HMAC secret (algorithm confusion), or no secret at all.
        let confused =
            ask(json!({"op": "jwt_verify", "alg": "HS256", "key": EC_PUBLIC, "token": token}));
        assert!(
            confused["error"].as_str().unwrap().contains("PEM"),
            "{confused}"
        );
        for key in ["", "-----BEGIN PUBLIC KEY-----"] {
            let empty = ask(json!({"op": "jwt_sign", "alg": "HS256", "key": key, "claims": {}}));
            assert!(empty["error"].is_string(), "{empty}");
        }
        let hmac = ask(json!({"op": "hmac", "alg": "sha256", "key": "", "data": "x"}));
        assert!(hmac["error"].as_str().unwrap().contains("empty"), "{hmac}");
        let decoded = ask(json!({"op": "jwt_decode", "token": token}));
        assert_eq!(decoded["header"]["alg"], "ES256", "{decoded}");
        assert_eq!(decoded["payload"]["sub"], "u");
        assert!(ask(json!({"op": "jwt_decode", "token": "a.b"}))["error"].is_string());
        let hex = ask(json!({"op": "hash", "alg": "md5", "data": "aéb", "data_encoding": "hex"}));
        assert!(hex["error"].as_str().unwrap().contains("hex"), "{hex}");
        // A secret given as hex signs like the same bytes given as text.
        let a = ask(
            json!({"op": "jwt_sign", "alg": "HS256", "key": "6b", "key_encoding": "hex", "claims": {"x": 1}}),
        );
        let b = ask(json!({"op": "jwt_sign", "alg": "HS256", "key": "k", "claims": {"x": 1}}));
        assert_eq!(a["token"], b["token"]);
    }
}
