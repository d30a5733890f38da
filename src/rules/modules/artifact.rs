//! A compiled module's artifact in the database: sealed with an HMAC under a key derived from
//! the master key, and deserialized (native code) only once that verifies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;

use super::{LoadError, Modules};
use crate::rules::engine::CompiledRule;
use crate::store::ArtifactRecord;

/// The MAC that binds an artifact to its module hash and engine fingerprint.
fn artifact_mac(
    key: &aws_lc_rs::hmac::Key,
    sha256: &str,
    fingerprint: &str,
    bytes: &[u8],
) -> Vec<u8> {
    let mut ctx = aws_lc_rs::hmac::Context::with_key(key);
    ctx.update(sha256.as_bytes());
    ctx.update(&[0]);
    ctx.update(fingerprint.as_bytes());
    ctx.update(&[0]);
    ctx.update(bytes);
    ctx.sign().as_ref().to_vec()
}

/// An artifact for `bytes`, sealed under `key` for `sha256` and `fingerprint`.
pub(super) fn seal(
    key: &aws_lc_rs::hmac::Key,
    sha256: String,
    fingerprint: String,
    bytes: Vec<u8>,
) -> ArtifactRecord {
    ArtifactRecord {
        mac: artifact_mac(key, &sha256, &fingerprint, &bytes),
        sha256,
        fingerprint,
        bytes,
    }
}

/// Whether a stored artifact's MAC verifies (constant time): only then may its bytes be
/// deserialized, as they are native code.
pub(super) fn authentic(key: &aws_lc_rs::hmac::Key, artifact: &ArtifactRecord) -> bool {
    let expected = artifact_mac(
        key,
        &artifact.sha256,
        &artifact.fingerprint,
        &artifact.bytes,
    );
    crate::crypto::ct_eq(&expected, &artifact.mac)
}

impl Modules {
    pub(super) fn artifact_of(&self, compiled: &CompiledRule) -> anyhow::Result<ArtifactRecord> {
        let bytes = self.engine.serialize(compiled)?;
        let fingerprint = self.engine.fingerprint().to_string();
        Ok(seal(
            &self.mac_key,
            compiled.sha256.clone(),
            fingerprint,
            bytes,
        ))
    }

    /// Loads a module from its stored artifact if one exists and authenticates; `None` when
    /// the module must be compiled from its bytes instead.
    pub(super) async fn load_artifact(
        &self,
        sha256: &str,
    ) -> Result<Option<Arc<CompiledRule>>, LoadError> {
        let unavailable = |e: anyhow::Error| LoadError::Unavailable(format!("{e:#}"));
        let fingerprint = self.engine.fingerprint().to_string();
        let Some(artifact) = self
            .store
            .rule_artifact(sha256, &fingerprint)
            .await
            .context("cannot read the rule's compiled code")
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        if crate::rules::js::is_bytecode_artifact(&artifact.bytes) {
            self.ensure_js_runtime(&artifact.bytes).await;
        }
        let engine = self.engine.clone();
        let mac_key = self.mac_key.clone();
        let sha = sha256.to_string();
        // Hashing and loading hundreds of KiB are CPU work: off the async workers.
        let loaded = tokio::task::spawn_blocking(move || {
            crate::cpu::run_in_background();
            if !authentic(&mac_key, &artifact) {
                return None;
            }
            // SAFETY: the MAC proves the bytes are an artifact this deployment made for this
            // engine fingerprint with `RuleEngine::serialize`.
            Some(unsafe { engine.deserialize(&sha, &artifact.bytes) })
        })
        .await
        .map_err(|e| unavailable(e.into()))?;
        match loaded {
            Some(Ok(compiled)) => {
                self.stats.loaded.fetch_add(1, Ordering::Relaxed);
                let compiled = Arc::new(compiled);
                self.install(compiled.clone());
                Ok(Some(compiled))
            }
            Some(Err(e)) => {
                tracing::warn!(sha256, error = %format!("{e:#}"), "rule artifact does not load; compiling the module again");
                Ok(None)
            }
            None => {
                self.stats.refused_artifacts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    sha256,
                    "rule artifact failed authentication; compiling the module again"
                );
                Ok(None)
            }
        }
    }
}
