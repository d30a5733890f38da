//! Signing keys and their rotation. Every change bumps `tenant.keys_generation` in the same
//! transaction, which is how every node's key ring learns of it (see `tokens/`).

use sqlx::{Any, FromRow, Transaction};

use super::tenants::{Generation, bump_generation};
use super::{Store, StoreError, StoreResult};
use crate::domain::{KeyStatus, SigningAlg};

/// A signing key row; `private_key` is sealed with the master key.
#[derive(Debug, Clone, FromRow)]
pub struct SigningKeyRecord {
    /// Key id, the JWS `kid`.
    pub kid: String,
    pub tenant_id: String,
    /// JWS algorithm, stored as `RS256`, `ES256` or `EdDSA`; an unknown stored value fails the
    /// read rather than being guessed.
    #[sqlx(try_from = "String")]
    pub alg: SigningAlg,
    /// Sealed PKCS#8 private key.
    pub private_key: Vec<u8>,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// Stored as `next`, `current`, `previous`, `retired` or `revoked`.
    #[sqlx(try_from = "String")]
    pub status: KeyStatus,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The key is revoked now (or already was).
    Done,
    /// No such key in this tenant.
    NotFound,
    /// The current key signs every new token: rotate first.
    IsCurrent,
    /// The key is the next one and no replacement was given (it became next meanwhile).
    NeedsReplacement,
}

const KEY_COLUMNS: &str =
    "kid, tenant_id, alg, private_key, public_jwk, status, revoked_at, created_at";

impl Store {
    pub(super) async fn insert_signing_key(
        tx: &mut Transaction<'_, Any>,
        key: &SigningKeyRecord,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_key (kid, tenant_id, alg, private_key, public_jwk, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.tenant_id)
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.status.as_str())
        .bind(key.created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Every key of a tenant, newest first.
    pub async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRecord>> {
        Ok(sqlx::query_as::<_, SigningKeyRecord>(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_key WHERE tenant_id = $1 ORDER BY created_at DESC, kid"
        ))
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Rotates: previous → retired, current → previous, next → current, and `fresh[0]` becomes
    /// the next key. A key signs only after it was published as next: a tenant without a next
    /// key (created before rotation existed) only gets `fresh[0]` published as next by this
    /// call, and the following rotation switches to it. A tenant without any current key gets
    /// `fresh[0]` as current and `fresh[1]` as next. Bumping the generation first takes the
    /// tenant's row (PostgreSQL) or the write lock (SQLite), so concurrent rotations run one
    /// after the other, each a whole step. Returns the kid of the current key afterwards.
    pub async fn rotate_signing_keys(
        &self,
        tenant_id: &str,
        fresh: &[SigningKeyRecord; 2],
    ) -> StoreResult<String> {
        let mut tx = self.writer.begin().await?;
        bump_generation(&mut tx, tenant_id, Generation::Keys).await?;
        let place = |status: &'static str| {
            sqlx::query_scalar::<_, String>(
                "SELECT kid FROM signing_key WHERE tenant_id = $1 AND status = $2",
            )
            .bind(tenant_id)
            .bind(status)
        };
        let next = place("next").fetch_optional(&mut *tx).await?;
        let current = place("current").fetch_optional(&mut *tx).await?;
        if let (None, Some(current)) = (next, &current) {
            Self::insert_signing_key(&mut tx, &with_status(&fresh[0], KeyStatus::Next)).await?;
            tx.commit().await?;
            return Ok(current.clone());
        }
        for (from, to) in [
            ("previous", "retired"),
            ("current", "previous"),
            ("next", "current"),
        ] {
            sqlx::query("UPDATE signing_key SET status = $1 WHERE tenant_id = $2 AND status = $3")
                .bind(to)
                .bind(tenant_id)
                .bind(from)
                .execute(&mut *tx)
                .await?;
        }
        let current: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_key WHERE tenant_id = $1 AND status = 'current'",
        )
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = match current {
            Some(kid) => {
                Self::insert_signing_key(&mut tx, &with_status(&fresh[0], KeyStatus::Next)).await?;
                kid
            }
            None => {
                Self::insert_signing_key(&mut tx, &with_status(&fresh[0], KeyStatus::Current))
                    .await?;
                Self::insert_signing_key(&mut tx, &with_status(&fresh[1], KeyStatus::Next)).await?;
                fresh[0].kid.clone()
            }
        };
        tx.commit().await?;
        Ok(current)
    }

    /// Revokes a key that is not current. Revoking the next key puts `replacement` in its
    /// place, so a rotation always has a published key to promote.
    pub async fn revoke_signing_key(
        &self,
        tenant_id: &str,
        kid: &str,
        replacement: Option<&SigningKeyRecord>,
        now: i64,
    ) -> StoreResult<Revoked> {
        let mut tx = self.writer.begin().await?;
        bump_generation(&mut tx, tenant_id, Generation::Keys).await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM signing_key WHERE tenant_id = $1 AND kid = $2")
                .bind(tenant_id)
                .bind(kid)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            tx.rollback().await?;
            return Ok(Revoked::NotFound);
        };
        let status = KeyStatus::parse(&status)
            .map_err(|e| StoreError::Corrupt(format!("signing_key {kid}: {e}")))?;
        match status {
            KeyStatus::Current => {
                tx.rollback().await?;
                return Ok(Revoked::IsCurrent);
            }
            KeyStatus::Revoked => {
                tx.rollback().await?;
                return Ok(Revoked::Done);
            }
            KeyStatus::Next if replacement.is_none() => {
                tx.rollback().await?;
                return Ok(Revoked::NeedsReplacement);
            }
            _ => {}
        }
        sqlx::query(
            "UPDATE signing_key SET status = 'revoked', revoked_at = $1 WHERE tenant_id = $2 AND kid = $3",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(kid)
        .execute(&mut *tx)
        .await?;
        if status == KeyStatus::Next
            && let Some(r) = replacement
        {
            Self::insert_signing_key(&mut tx, &with_status(r, KeyStatus::Next)).await?;
        }
        tx.commit().await?;
        Ok(Revoked::Done)
    }
}

fn with_status(key: &SigningKeyRecord, status: KeyStatus) -> SigningKeyRecord {
    SigningKeyRecord {
        status,
        ..key.clone()
    }
}
