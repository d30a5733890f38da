use sqlx::FromRow;

use super::JsonText;
use crate::domain::{AllowedHost, SigningAlg, Tenant};

use super::{ClientGrantRecord, NewClient, OrConflict, SigningKeyRecord, Store, StoreResult};

/// A tenant row.
#[derive(Debug, Clone, FromRow)]
pub struct TenantRecord {
    pub id: String,
    /// The tenant's name, part of its issuer URL.
    pub name: String,
    pub created_at: i64,
    /// Bumped by every change to the tenant's rules or rule settings.
    pub rules_generation: i64,
    /// The algorithm of new signing keys.
    pub signing_alg: SigningAlg,
    /// Bumped by every change to the tenant's signing keys.
    pub keys_generation: i64,
    /// Bumped by every write to the tenant's clients.
    pub clients_generation: i64,
}

impl TenantRecord {
    /// The tenant every layer acts for; `issuer` is the public URL's (the store does not know it).
    pub fn into_tenant(self, issuer: String) -> Tenant {
        Tenant {
            issuer,
            id: self.id,
            name: self.name,
            rules_generation: self.rules_generation,
            signing_alg: self.signing_alg,
            keys_generation: self.keys_generation,
            clients_generation: self.clients_generation,
        }
    }
}

/// What a write to a tenant's data invalidates on every node: each in-memory view (rule sets,
/// signing keys, clients) is used only at the generation of the tenant row a request reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Generation {
    /// Rules, rule settings and the outbound allow-list.
    Rules,
    Keys,
    Clients,
}

/// Bumps one generation of the tenant inside the writing transaction. Done first, it also takes
/// the tenant's row (PostgreSQL) or the write lock (SQLite), serializing that tenant's writers.
pub(super) async fn bump_generation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    generation: Generation,
) -> StoreResult<()> {
    let column = match generation {
        Generation::Rules => "rules_generation",
        Generation::Keys => "keys_generation",
        Generation::Clients => "clients_generation",
    };
    sqlx::query(&format!(
        "UPDATE tenant SET {column} = {column} + 1 WHERE id = $1"
    ))
    .bind(tenant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Runs `statement` and, when it changed exactly one row, bumps the tenant's `generation`
    /// in the same transaction; false, with nothing changed, otherwise.
    pub(super) async fn change_one_row<'q>(
        &self,
        tenant_id: &str,
        generation: Generation,
        statement: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        if statement.execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        bump_generation(&mut tx, tenant_id, generation).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Creates a tenant together with its first signing keys (current and next) and its Management API client,
    /// atomically.
    pub async fn create_tenant(
        &self,
        tenant: &TenantRecord,
        keys: &[SigningKeyRecord],
        management: &NewClient,
        grant: &ClientGrantRecord,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO tenant (id, name, created_at, signing_alg) VALUES ($1, $2, $3, $4)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(tenant.created_at)
        .bind(tenant.signing_alg.as_str())
        .execute(&mut *tx)
        .await
        .or_conflict()?;
        for key in keys {
            Self::insert_signing_key(&mut tx, key).await?;
        }
        Self::insert_client_in(&mut tx, management).await?;
        sqlx::query(
            "INSERT INTO client_grant (id, tenant_id, client_id, audience, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&grant.id)
        .bind(&grant.tenant_id)
        .bind(&grant.client_id)
        .bind(&grant.audience)
        .bind(&grant.scopes)
        .bind(grant.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finds a tenant by name.
    /// Every request reads it (its generations are how each node's caches stay current).
    pub async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        const SQL: &str = "SELECT id, name, created_at, rules_generation, signing_alg, keys_generation, clients_generation FROM tenant WHERE name = $1";
        if let Some(direct) = &self.direct
            && let Some(row) = direct.row(SQL, rusqlite::named_params! {"$1": name}, |row| {
                Ok(TenantRecord {
                    id: row.get("id")?,
                    name: row.get("name")?,
                    created_at: row.get("created_at")?,
                    rules_generation: row.get("rules_generation")?,
                    signing_alg: row.get("signing_alg")?,
                    keys_generation: row.get("keys_generation")?,
                    clients_generation: row.get("clients_generation")?,
                })
            })
        {
            return Ok(row);
        }
        Ok(sqlx::query_as::<_, TenantRecord>(SQL)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?)
    }
}

impl Store {
    /// The tenant's outbound allow-list for rules.
    pub async fn allowed_hosts(&self, tenant_id: &str) -> StoreResult<Vec<AllowedHost>> {
        let hosts: Option<JsonText<Vec<AllowedHost>>> =
            sqlx::query_scalar("SELECT allowed_hosts FROM tenant WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(hosts.map(|h| h.0).unwrap_or_default())
    }

    /// Replaces the allow-list; rules see it from their next run on every node (it travels with
    /// the rule set, whose generation this bumps).
    pub async fn set_allowed_hosts(
        &self,
        tenant_id: &str,
        hosts: &[AllowedHost],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tenant SET allowed_hosts = $1, rules_generation = rules_generation + 1 WHERE id = $2",
        )
        .bind(super::json_text(&hosts))
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

impl Store {
    /// The tenant's sealed lazy-migration settings, if it has any.
    pub async fn lazy_migration(&self, tenant_id: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT sealed FROM lazy_migration WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// Sets (or replaces) the tenant's sealed lazy-migration settings.
    pub async fn set_lazy_migration(
        &self,
        tenant_id: &str,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO lazy_migration (tenant_id, sealed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET sealed = excluded.sealed",
        )
        .bind(tenant_id)
        .bind(sealed)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
