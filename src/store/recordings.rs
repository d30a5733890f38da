//! Recorded pipeline inputs (SPEC §18): opt-in per tenant, the newest `keep` runs, sealed with
//! the master key by `rules::journal` before they reach this module.

use sqlx::FromRow;

use super::{Store, StoreResult};

/// Most runs a tenant may keep.
pub const MAX_RECORDING_KEEP: i64 = 5_000;

/// One recorded run, its input still sealed.
#[derive(Debug, Clone, FromRow)]
pub struct RecordingRow {
    /// Time-ordered id; the sealing context.
    pub id: String,
    /// The user of a login or refresh; `None` for client credentials.
    pub user_id: Option<String>,
    /// The client the run was for.
    pub client_id: String,
    /// `oidc-basic-profile`, `oauth2-refresh-token` or `oauth2-client-credentials`.
    pub protocol: String,
    /// Unix time of the run: the clock a replay runs at.
    pub created_at: i64,
    /// `{"user", "context", "event"}` as JSON, sealed.
    pub sealed: Vec<u8>,
}

impl Store {
    /// Stores recorded runs of `tenant_id` and drops its oldest beyond what the tenant keeps
    /// now: nothing is stored once recording is off (runs queued before it was turned off, or
    /// by a node that had not seen the change yet), nor a run of a user deleted meanwhile.
    pub async fn insert_recordings(
        &self,
        tenant_id: &str,
        rows: &[RecordingRow],
    ) -> StoreResult<()> {
        if self.insert_recordings_in_one(tenant_id, rows).await.is_ok() {
            return Ok(());
        }
        // A user deleted between the check and the insert fails its row's foreign key: the
        // others go in one by one.
        for row in rows {
            if let Err(e) = self
                .insert_recordings_in_one(tenant_id, std::slice::from_ref(row))
                .await
            {
                tracing::debug!(error = %e, "a recorded run was not stored");
            }
        }
        Ok(())
    }

    async fn insert_recordings_in_one(
        &self,
        tenant_id: &str,
        rows: &[RecordingRow],
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO recording (id, tenant_id, user_id, client_id, protocol, created_at, sealed) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 \
                 WHERE (SELECT recording_keep FROM tenant WHERE id = $2) > 0 \
                 AND ($3 IS NULL OR EXISTS (SELECT 1 FROM app_user WHERE tenant_id = $2 AND user_id = $3))",
            )
            .bind(&r.id)
            .bind(tenant_id)
            .bind(&r.user_id)
            .bind(&r.client_id)
            .bind(&r.protocol)
            .bind(r.created_at)
            .bind(&r.sealed)
            .execute(&mut *tx)
            .await?;
        }
        let keep: i64 = sqlx::query_scalar("SELECT recording_keep FROM tenant WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0);
        Self::prune_recordings(&mut tx, tenant_id, keep).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_recordings(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant_id: &str,
        keep: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM recording WHERE tenant_id = $1 AND id NOT IN \
             (SELECT id FROM recording WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(tenant_id)
        .bind(keep.max(0))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The tenant's newest `limit` recorded runs, newest first.
    pub async fn recent_recordings(
        &self,
        tenant_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<RecordingRow>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, client_id, protocol, created_at, sealed FROM recording \
             WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// How many runs the tenant keeps (0: recording is off).
    pub async fn recording_keep(&self, tenant_id: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT recording_keep FROM tenant WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.reader)
                .await?
                .unwrap_or(0),
        )
    }

    /// Sets how many runs the tenant keeps (0: off), drops what is beyond it at once, and
    /// makes every node's next login see the change.
    pub async fn set_recording_keep(&self, tenant_id: &str, keep: i64) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE tenant SET recording_keep = $1, rules_generation = rules_generation + 1 WHERE id = $2",
        )
        .bind(keep)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        Self::prune_recordings(&mut tx, tenant_id, keep).await?;
        tx.commit().await?;
        Ok(())
    }
}
