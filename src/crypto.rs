//! Small cryptographic helpers: random tokens, hashing of bearer secrets, constant-time
//! comparison, password hashing and sealing of secrets at rest with the master key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).expect("the system CSPRNG failed");
    buf
}

/// A URL-safe random token carrying `bytes * 8` bits of entropy.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a bearer value (code, refresh token, session id, client secret).
/// These values carry ≥128 random bits, so a fast hash is enough: nobody can brute-force them.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The base64url SHA-256 of `input`, e.g. for PKCE S256.
pub fn sha256_b64url(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(input))
}

/// The admin-supplied 32-byte key that encrypts private signing keys and rule settings at rest.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Why a master key or a sealed value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The master key is not base64 of exactly 32 bytes.
    #[error("the master key must be base64 of exactly 32 bytes")]
    BadKey,
    /// Decryption failed: wrong master key or tampered data.
    #[error("cannot decrypt a value sealed at rest: wrong master key or corrupted data")]
    Open,
}

impl MasterKey {
    /// Parses base64 (standard alphabet) of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(MasterKey(arr))
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut arr = [0u8; 32];
        arr.copy_from_slice(&random_bytes(32));
        MasterKey(arr)
    }

    /// The key as base64, for writing the generated key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn key(&self) -> RandomizedNonceKey {
        RandomizedNonceKey::new(&AES_256_GCM, &self.0).expect("32-byte AES key")
    }

    /// An HMAC-SHA256 key for one `purpose`, derived from the master key, so every node that
    /// shares the master key derives the same one and no two purposes share a key.
    pub fn derive_hmac_key(&self, purpose: &str) -> aws_lc_rs::hmac::Key {
        let root = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let derived = aws_lc_rs::hmac::sign(&root, purpose.as_bytes());
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_ref())
    }

    /// Encrypts `plaintext`; `context` (e.g. the key id) is bound as associated data so a sealed
    /// value cannot be moved to another row. Output: nonce || ciphertext || tag.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        let nonce = self
            .key()
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .expect("AES-GCM sealing cannot fail with a valid key");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Decrypts what [`MasterKey::seal`] produced with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal("kid-1", b"secret");
        assert_eq!(key.open("kid-1", &sealed).unwrap(), b"secret");
        assert!(key.open("kid-2", &sealed).is_err());
        assert!(MasterKey::generate().open("kid-1", &sealed).is_err());
    }

    #[test]
    fn master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 32])).is_ok());
    }
}
