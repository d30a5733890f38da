//! The execution log: one row per pipeline run (every rule and action one login, refresh or
//! client credentials grant ran), each holding its executions as entries, written in batches
//! by `rules::journal`. One row per run rather than per execution keeps a login with ten rules
//! at one insert and one index entry per index.

use sqlx::FromRow;

use super::{Store, StoreError, StoreResult};
use crate::domain::execution::{ExecutionRecord, Outcome};

#[derive(FromRow)]
struct RunRow {
    id: String,
    created_at: i64,
    entries: String,
}

impl RunRow {
    /// The run's executions, newest first.
    fn entries(&self) -> StoreResult<Vec<ExecutionRecord>> {
        serde_json::from_str(&self.entries).map_err(|e| {
            StoreError::Corrupt(format!(
                "execution_run {}: entries are not a list of executions: {e}",
                self.id
            ))
        })
    }
}

/// Columns of one run row, in the insert's order.
const RUN_COLUMNS: &str = "id, tenant_id, created_at, rule_ids, outcomes, entries";
const RUN_COLUMN_COUNT: usize = 6;
/// Runs one multi-row `INSERT` carries.
const INSERT_CHUNK: usize = 100;
/// Runs a page read fetches at a time while it looks for matching entries.
const READ_CHUNK: i64 = 200;

/// `' a b '`: the words a filter column holds, each between spaces so that `LIKE '% a %'`
/// matches whole words only.
fn words<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from(" ");
    for item in items {
        if !out.contains(&format!(" {item} ")) {
            out.push_str(item);
            out.push(' ');
        }
    }
    out
}

/// A `LIKE` pattern (with `ESCAPE '\'`) matching a filter column that holds `word`.
fn word_pattern(word: &str) -> String {
    let mut p = String::from("% ");
    for c in word.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str(" %");
    p
}

impl Store {
    /// Records pipeline runs of any tenants (each its executions in the order they ran), in
    /// one transaction of multi-row `INSERT`s. Empty runs are skipped.
    pub async fn insert_executions(
        &self,
        runs: &[(String, Vec<ExecutionRecord>)],
    ) -> StoreResult<()> {
        let runs: Vec<&(String, Vec<ExecutionRecord>)> =
            runs.iter().filter(|(_, r)| !r.is_empty()).collect();
        if runs.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for chunk in runs.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO execution_run ({RUN_COLUMNS}) VALUES {}",
                self.values_placeholders(chunk.len(), RUN_COLUMN_COUNT)
            );
            let mut q = sqlx::query(&sql);
            for (tenant_id, records) in chunk {
                let newest = records.last().expect("empty runs were skipped");
                let newest_first: Vec<&ExecutionRecord> = records.iter().rev().collect();
                q = q
                    .bind(&newest.id)
                    .bind(tenant_id)
                    .bind(records.iter().map(|r| r.created_at).max().unwrap_or(0))
                    .bind(words(records.iter().map(|r| r.rule_id.as_str())))
                    .bind(words(records.iter().map(|r| r.outcome.label())))
                    .bind(serde_json::to_string(&newest_first).expect("executions serialize"));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Executions newest first, optionally of one rule and/or one outcome: `limit` of them
    /// after skipping `offset`.
    pub async fn list_executions(
        &self,
        tenant_id: &str,
        rule_id: Option<&str>,
        outcome: Option<Outcome>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<ExecutionRecord>> {
        // The filter columns pick the runs that hold a matching entry; the entries are then
        // filtered exactly here.
        let mut filter = String::new();
        let mut args: Vec<String> = Vec::new();
        if let Some(r) = rule_id {
            args.push(word_pattern(r));
            filter.push_str(&format!(
                " AND rule_ids LIKE ${} ESCAPE '\\'",
                args.len() + 2
            ));
        }
        if let Some(o) = outcome {
            args.push(word_pattern(o.label()));
            filter.push_str(&format!(
                " AND outcomes LIKE ${} ESCAPE '\\'",
                args.len() + 2
            ));
        }
        // Runs are read in chunks by keyset (older than the last run seen), so a deep page
        // reads the runs before it once.
        let after = args.len() + 3;
        let first_sql = format!(
            "SELECT id, created_at, entries FROM execution_run WHERE tenant_id = $1{filter} \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let next_sql = format!(
            "SELECT id, created_at, entries FROM execution_run WHERE tenant_id = $1{filter} \
             AND (created_at < ${after} OR (created_at = ${after} AND id < ${})) \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            after + 1
        );
        let wanted = |e: &ExecutionRecord| {
            rule_id.is_none_or(|r| e.rule_id == r) && outcome.is_none_or(|o| e.outcome == o)
        };
        let (mut skip, limit) = (offset.max(0), usize::try_from(limit).unwrap_or(0));
        let mut out = Vec::new();
        let mut cursor: Option<(i64, String)> = None;
        while out.len() < limit {
            let mut q = sqlx::query_as::<_, RunRow>(if cursor.is_some() {
                &next_sql
            } else {
                &first_sql
            })
            .bind(tenant_id)
            .bind(READ_CHUNK);
            for a in &args {
                q = q.bind(a);
            }
            if let Some((time, id)) = &cursor {
                q = q.bind(*time).bind(id);
            }
            let rows = q.fetch_all(&self.reader).await?;
            for row in &rows {
                for e in row.entries()? {
                    if !wanted(&e) {
                        continue;
                    }
                    if skip > 0 {
                        skip -= 1;
                    } else if out.len() < limit {
                        out.push(e);
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == READ_CHUNK => {
                    cursor = Some((last.created_at, last.id.clone()));
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Drops runs older than `before` and keeps at most `keep` runs per tenant.
    pub async fn prune_executions(&self, before: i64, keep: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM execution_run WHERE created_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        sqlx::query(
            "DELETE FROM execution_run WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
             (PARTITION BY tenant_id ORDER BY created_at DESC, id DESC) AS n FROM execution_run) ranked WHERE n > $1)",
        )
        .bind(keep)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::execution::{ExecutionRecord, FailureKind, Outcome, Trigger};

    /// Runs of the same second cross several read chunks: every filter pages through them in
    /// order, with nothing repeated or lost at a chunk's edge.
    #[tokio::test]
    async fn pages_read_every_entry_once_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/x.db", dir.path().display());
        let store = crate::startup::open_store(&url, 2).await.unwrap();
        sqlx::query(
            "INSERT INTO tenant (id, name, created_at, signing_alg) VALUES ('t', 't', 0, 'RS256')",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        let mut runs = Vec::new();
        for i in 0..450 {
            let mut a = ExecutionRecord::start("rul_a", "a", Trigger::Login, 1000 + i / 100);
            let mut b = ExecutionRecord::start("rul_b", "b", Trigger::Login, 1000 + i / 100);
            a.fuel = i;
            b.fuel = i;
            if i % 7 == 0 {
                b.fail(FailureKind::Fuel, "out of fuel");
            }
            runs.push(("t".to_string(), vec![a, b]));
        }
        runs.push(("t".to_string(), Vec::new()));
        store.insert_executions(&runs).await.unwrap();

        let all = store
            .list_executions("t", None, None, 0, 10_000)
            .await
            .unwrap();
        assert_eq!(all.len(), 900);
        let fuel: Vec<i64> = all.iter().map(|e| e.fuel).collect();
        let mut expected: Vec<i64> = (0..450).rev().flat_map(|i| [i, i]).collect();
        assert_eq!(fuel, expected, "newest run first");
        assert_eq!(all[0].rule_id, "rul_b", "the run's last execution first");

        let mut paged = Vec::new();
        for page in 0..19 {
            paged.extend(
                store
                    .list_executions("t", None, None, page * 50, 50)
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(paged, all);

        let of_a = store
            .list_executions("t", Some("rul_a"), None, 100, 300)
            .await
            .unwrap();
        expected = (50..350).rev().collect();
        assert_eq!(of_a.iter().map(|e| e.fuel).collect::<Vec<_>>(), expected);
        assert!(of_a.iter().all(|e| e.rule_id == "rul_a"));

        let failed = Outcome::Failed(FailureKind::Fuel);
        let fuel_out = store
            .list_executions("t", None, Some(failed), 0, 1000)
            .await
            .unwrap();
        assert_eq!(fuel_out.len(), 65);
        assert!(
            fuel_out
                .iter()
                .all(|e| e.rule_id == "rul_b" && e.outcome == failed)
        );
        assert!(
            store
                .list_executions("t", Some("rul_a"), Some(failed), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .list_executions("t", Some("rul_"), None, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .list_executions("t", Some("%"), None, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .list_executions("other", None, None, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // Pruning keeps the newest runs, whole.
        store.prune_executions(0, 10).await.unwrap();
        let kept = store
            .list_executions("t", None, None, 0, 100)
            .await
            .unwrap();
        assert_eq!(kept.len(), 20);
        assert_eq!(kept[19].fuel, 440);
    }
}
