//! Precompiled rule modules (and the JavaScript runtime's compiled code), shared by every node
//! (see `rules::modules`, which authenticates them before use).

use sqlx::{Any, Transaction};

use super::{Store, StoreResult};

/// A precompiled module and its MAC (see `rules::modules`).
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    /// Hex SHA-256 of the wasm module it was compiled from.
    pub sha256: String,
    /// The engine that made it.
    pub fingerprint: String,
    /// HMAC over hash, fingerprint and bytes.
    pub mac: Vec<u8>,
    /// The serialized module.
    pub bytes: Vec<u8>,
}

pub(super) async fn put_artifact(
    tx: &mut Transaction<'_, Any>,
    a: &ArtifactRecord,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rule_artifact (sha256, fingerprint, mac, artifact, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256, fingerprint) DO UPDATE SET mac = $3, artifact = $4, created_at = $5",
    )
    .bind(&a.sha256)
    .bind(&a.fingerprint)
    .bind(&a.mac)
    .bind(&a.bytes)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The artifact of a module for an engine fingerprint.
    pub async fn rule_artifact(
        &self,
        sha256: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<ArtifactRecord>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT mac, artifact FROM rule_artifact WHERE sha256 = $1 AND fingerprint = $2",
        )
        .bind(sha256)
        .bind(fingerprint)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(mac, bytes)| ArtifactRecord {
            sha256: sha256.to_string(),
            fingerprint: fingerprint.to_string(),
            mac,
            bytes,
        }))
    }

    /// Stores (or replaces) an artifact.
    pub async fn put_rule_artifact(&self, a: &ArtifactRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        put_artifact(&mut tx, a, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that these modules were in use on a node at `now`.
    pub async fn touch_rule_artifacts(
        &self,
        fingerprint: &str,
        shas: &[String],
        now: i64,
    ) -> StoreResult<()> {
        for chunk in shas.chunks(100) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE rule_artifact SET used_at = $1 WHERE fingerprint = $2 AND sha256 IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(now).bind(fingerprint);
            for sha in chunk {
                q = q.bind(sha);
            }
            q.execute(&self.writer).await?;
        }
        Ok(())
    }

    /// Hashes of the artifacts for `fingerprint`, most recently used first.
    pub async fn recent_rule_artifacts(
        &self,
        fingerprint: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT sha256 FROM rule_artifact WHERE fingerprint = $1 AND sha256 NOT LIKE 'runtime:%' \
             ORDER BY used_at DESC LIMIT $2",
        )
        .bind(fingerprint)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Drops artifacts of modules no rule or action version uses any more, and host runtimes (`runtime:…`)
    /// other than `runtime_keys` for `fingerprint` (what this version of the server uses).
    pub async fn prune_rule_artifacts(
        &self,
        runtime_keys: [&str; 2],
        fingerprint: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM rule_artifact WHERE \
             (sha256 NOT LIKE 'runtime:%' AND sha256 NOT IN (SELECT sha256 FROM rule) \
              AND sha256 NOT IN (SELECT sha256 FROM action_version)) \
             OR (sha256 LIKE 'runtime:%' AND ((sha256 <> $1 AND sha256 <> $2) OR fingerprint <> $3))",
        )
        .bind(runtime_keys[0])
        .bind(runtime_keys[1])
        .bind(fingerprint)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
