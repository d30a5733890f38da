//! The execution log: one row per execution of a rule or an action, written in batches by
//! `rules::journal`.

use sqlx::FromRow;

use super::{Store, StoreError, StoreResult};
use crate::domain::execution::{CodeKind, ExecutionRecord, LogLine, Outcome, Trigger};

#[derive(FromRow)]
struct ExecutionRow {
    id: String,
    kind: String,
    rule_id: String,
    rule_name: String,
    protocol: String,
    outcome: String,
    duration_us: i64,
    fuel: i64,
    logs: String,
    created_at: i64,
    rule_version: i64,
    skipped: i64,
}

impl TryFrom<ExecutionRow> for ExecutionRecord {
    type Error = StoreError;

    fn try_from(r: ExecutionRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("rule_execution {}: {what}", r.id));
        Ok(ExecutionRecord {
            kind: CodeKind::parse(&r.kind)
                .ok_or_else(|| corrupt(&format!("unknown kind {:?}", r.kind)))?,
            trigger: Trigger::parse(&r.protocol)
                .ok_or_else(|| corrupt(&format!("unknown protocol {:?}", r.protocol)))?,
            outcome: Outcome::parse(&r.outcome)
                .ok_or_else(|| corrupt(&format!("unknown outcome {:?}", r.outcome)))?,
            logs: serde_json::from_str::<Vec<LogLine>>(&r.logs)
                .map_err(|e| corrupt(&format!("logs are not a JSON list of lines: {e}")))?,
            id: r.id,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            duration_us: r.duration_us,
            fuel: r.fuel,
            created_at: r.created_at,
            rule_version: r.rule_version,
            skipped: r.skipped != 0,
        })
    }
}

const EXECUTION_COLUMNS: &str = "id, tenant_id, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at, \
    rule_version, skipped, kind";
/// Columns of [`EXECUTION_COLUMNS`], for the multi-row insert's placeholders.
const EXECUTION_COLUMN_COUNT: usize = 13;

impl Store {
    /// Records executions of any tenants, in one transaction of multi-row `INSERT`s.
    pub async fn insert_executions(&self, rows: &[(String, ExecutionRecord)]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        // SQLite looks a numbered parameter (`$N`) up by walking the statement's parameter
        // list, which makes binding quadratic in the parameters of a statement; plain `?`
        // placeholders bind in order. PostgreSQL needs `$N`.
        let sqlite = self.backend == super::Backend::Sqlite;
        for chunk in rows.chunks(50) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=EXECUTION_COLUMN_COUNT)
                        .map(|c| {
                            if sqlite {
                                "?".to_string()
                            } else {
                                format!("${}", i * EXECUTION_COLUMN_COUNT + c)
                            }
                        })
                        .collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO rule_execution ({EXECUTION_COLUMNS}) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (tenant_id, r) in chunk {
                q = q
                    .bind(&r.id)
                    .bind(tenant_id)
                    .bind(&r.rule_id)
                    .bind(&r.rule_name)
                    .bind(r.trigger.label())
                    .bind(r.outcome.label())
                    .bind(r.duration_us)
                    .bind(r.fuel)
                    .bind(serde_json::to_string(&r.logs).expect("log lines serialize"))
                    .bind(r.created_at)
                    .bind(r.rule_version)
                    .bind(i64::from(r.skipped))
                    .bind(r.kind.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Executions newest first, optionally of one rule and/or one outcome.
    pub async fn list_executions(
        &self,
        tenant_id: &str,
        rule_id: Option<&str>,
        outcome: Option<Outcome>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<ExecutionRecord>> {
        let mut filter = String::new();
        let mut args: Vec<&str> = Vec::new();
        if let Some(r) = rule_id {
            args.push(r);
            filter.push_str(&format!(" AND rule_id = ${}", args.len() + 3));
        }
        if let Some(o) = outcome {
            args.push(o.label());
            filter.push_str(&format!(" AND outcome = ${}", args.len() + 3));
        }
        let sql = format!(
            "SELECT id, kind, rule_id, rule_name, protocol, outcome, duration_us, fuel, logs, created_at, rule_version, skipped FROM rule_execution \
             WHERE tenant_id = $1{filter} ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let mut q = sqlx::query_as::<_, ExecutionRow>(&sql)
            .bind(tenant_id)
            .bind(limit)
            .bind(offset);
        for a in args {
            q = q.bind(a);
        }
        q.fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(ExecutionRecord::try_from)
            .collect()
    }

    /// Drops executions older than `before` and keeps at most `keep` per tenant.
    pub async fn prune_executions(&self, before: i64, keep: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM rule_execution WHERE created_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "DELETE FROM rule_execution WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
             (PARTITION BY tenant_id ORDER BY created_at DESC, id) AS n FROM rule_execution) ranked WHERE n > $1)",
        )
        .bind(keep)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
