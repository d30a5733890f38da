//! A tenant's signing keys: listing, rotation, revocation (Auth0's `/keys/signing` shapes).

use serde::Serialize;
use serde_json::Value;

use super::{Admin, AdminError, internal};
use crate::domain::{KeyStatus, Tenant};
use crate::store::{Revoked, SigningKeyRecord, StoreError};

/// A signing key as the Management API shows it (never the private half).
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    /// Key id (the JWS `kid`).
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// Signs new tokens.
    pub current: bool,
    /// Published, becomes current at the next rotation.
    pub next: bool,
    /// Was current until the last rotation; still published and accepted.
    pub previous: bool,
    /// Withdrawn: not published, its tokens are refused.
    pub revoked: bool,
    /// `next`, `current`, `previous`, `retired` (two rotations old: neither published nor
    /// accepted) or `revoked`.
    pub status: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Revocation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// The public JWK.
    #[schema(value_type = Object)]
    pub jwk: Value,
}

impl SigningKeyView {
    fn of(r: SigningKeyRecord) -> Result<Self, AdminError> {
        let status = r.status;
        Ok(SigningKeyView {
            current: status == KeyStatus::Current,
            next: status == KeyStatus::Next,
            previous: status == KeyStatus::Previous,
            revoked: status == KeyStatus::Revoked,
            status: status.as_str().into(),
            jwk: serde_json::from_str(&r.public_jwk)
                .map_err(|e| internal(StoreError::Corrupt(format!("JWK {}: {e}", r.kid))))?,
            kid: r.kid,
            alg: r.alg.to_string(),
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
    }
}

impl Admin {
    /// Every key of the tenant, newest first.
    pub async fn signing_keys(&self, tenant: &Tenant) -> Result<Vec<SigningKeyView>, AdminError> {
        self.store
            .signing_keys(&tenant.id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(SigningKeyView::of)
            .collect()
    }

    pub async fn signing_key(
        &self,
        tenant: &Tenant,
        kid: &str,
    ) -> Result<SigningKeyView, AdminError> {
        self.signing_keys(tenant)
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| AdminError::NotFound(format!("signing key {kid:?} does not exist")))
    }

    /// Makes the next key current (the current one becomes previous, the previous one is
    /// retired) and publishes a fresh next key. Returns the new current key.
    pub async fn rotate_signing_key(&self, tenant: &Tenant) -> Result<SigningKeyView, AdminError> {
        let fresh = self
            .generate_keys(&tenant.id, tenant.signing_alg, self.clock.now())
            .await?;
        let kid = self
            .store
            .rotate_signing_keys(&tenant.id, &fresh)
            .await
            .map_err(internal)?;
        tracing::info!(tenant = %tenant.name, kid = %kid, "signing keys rotated");
        self.signing_key(tenant, &kid).await
    }

    /// Revokes a key that is not current: it leaves the JWKS and tokens it signed stop
    /// verifying. Revoking the next key publishes a fresh next key in its place.
    pub async fn revoke_signing_key(
        &self,
        tenant: &Tenant,
        kid: &str,
    ) -> Result<SigningKeyView, AdminError> {
        let now = self.clock.now();
        let key = self.signing_key(tenant, kid).await?;
        let replacement = match key.next {
            true => {
                let [_, next] = self
                    .generate_keys(&tenant.id, tenant.signing_alg, now)
                    .await?;
                Some(next)
            }
            false => None,
        };
        match self
            .store
            .revoke_signing_key(&tenant.id, kid, replacement.as_ref(), now)
            .await
            .map_err(internal)?
        {
            Revoked::Done => {}
            Revoked::NotFound => {
                return Err(AdminError::NotFound(format!(
                    "signing key {kid:?} does not exist"
                )));
            }
            Revoked::IsCurrent => {
                return Err(AdminError::Conflict(format!(
                    "signing key {kid:?} is the current key; rotate first, then revoke it"
                )));
            }
            Revoked::NeedsReplacement => {
                return Err(AdminError::Conflict(format!(
                    "signing key {kid:?} changed place while being revoked; try again"
                )));
            }
        }
        tracing::info!(tenant = %tenant.name, kid = %kid, "signing key revoked");
        self.signing_key(tenant, kid).await
    }
}
