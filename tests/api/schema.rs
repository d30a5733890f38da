// The SQLite and PostgreSQL migrations define the same tables and columns (types differ by
// dialect; names and nullability must not).

use std::collections::BTreeSet;

use sqlx::Row;

use crate::helpers::*;

async fn sqlite_columns(app: &TestApp) -> BTreeSet<(String, String, bool)> {
    let db = app.db().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let mut out = BTreeSet::new();
    for table in tables {
        let rows = sqlx::query(&format!(
            "SELECT name, \"notnull\", pk FROM pragma_table_info('{table}')"
        ))
        .fetch_all(&db)
        .await
        .unwrap();
        for row in rows {
            let name: String = row.get(0);
            let not_null: i64 = row.get(1);
            // SQLite lets a lone `text primary key` hold NULL (a legacy quirk); PostgreSQL
            // never does, and no insert of ours leaves a key out.
            let pk: i64 = row.get(2);
            out.insert((table.clone(), name, not_null == 1 || pk > 0));
        }
    }
    out
}

async fn postgres_columns(app: &TestApp) -> BTreeSet<(String, String, bool)> {
    let db = app.db().await;
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|row| {
            let nullable: String = row.get(2);
            (row.get(0), row.get(1), nullable == "NO")
        })
        .collect()
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_define_the_same_columns() {
    let sqlite = spawn_app_on(Backend::Sqlite, |_| {}).await;
    let postgres = spawn_app_on(Backend::Postgres, |_| {}).await;
    let (s, p) = (
        sqlite_columns(&sqlite).await,
        postgres_columns(&postgres).await,
    );
    assert!(s.len() > 50, "the schema was read: {s:?}");
    let only_sqlite: Vec<_> = s.difference(&p).collect();
    let only_postgres: Vec<_> = p.difference(&s).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in SQLite: {only_sqlite:?}\nonly in PostgreSQL: {only_postgres:?}"
    );
}
