//! Usage counters per tenant, day and metric: every node adds what it counted (batched by
//! `rules::journal`), so the totals are the same whichever node reads them.

use super::{Store, StoreResult};

impl Store {
    /// Adds counts `(tenant_id, day, metric key, value)` in one transaction.
    pub async fn add_usage(&self, counts: &[(String, i64, String, i64)]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for chunk in counts.chunks(200) {
            let sql = format!(
                "INSERT INTO tenant_usage (tenant_id, day, metric, value) VALUES {} \
                 ON CONFLICT (tenant_id, day, metric) DO UPDATE SET value = tenant_usage.value + excluded.value",
                self.values_placeholders(chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (tenant_id, day, metric, value) in chunk {
                q = q.bind(tenant_id).bind(day).bind(metric).bind(value);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The counts of a tenant's days `from..=to`: `(day, metric key, value)`.
    pub async fn usage(
        &self,
        tenant_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT day, metric, value FROM tenant_usage WHERE tenant_id = $1 AND day >= $2 AND day <= $3 \
             ORDER BY day, metric",
        )
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
        .await?)
    }
}
