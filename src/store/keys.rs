use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreResult};

/// A signing key row; `private_key` is sealed with the master key.
#[derive(Debug, Clone, FromRow)]
pub struct SigningKeyRecord {
    /// Key id, the JWS `kid`.
    pub kid: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// JWS algorithm, e.g. `RS256`.
    pub alg: String,
    /// Sealed PKCS#8 private key.
    pub private_key: Vec<u8>,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// 1 when the key signs new tokens.
    pub active: i64,
    /// Creation time.
    pub created_at: i64,
}

impl Store {
    pub(super) async fn insert_signing_key(
        tx: &mut Transaction<'_, Any>,
        key: &SigningKeyRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_key (kid, tenant_id, alg, private_key, public_jwk, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.tenant_id)
        .bind(&key.alg)
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.active)
        .bind(key.created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// All keys of a tenant, newest first (published in the JWKS; the newest active one signs).
    pub async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRecord>> {
        Ok(sqlx::query_as::<_, SigningKeyRecord>(
            "SELECT kid, tenant_id, alg, private_key, public_jwk, active, created_at \
             FROM signing_key WHERE tenant_id = $1 ORDER BY created_at DESC, kid",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }
}
