//! Login-attempt counting for the throttle (`oauth/authorize/throttle.rs`): attempts pending
//! and failed per key in a window, and the places (device, address) an account signed in from.

use super::*;

/// A throttle key's counts in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCounts {
    /// Attempts whose password was wrong.
    pub failures: i64,
    /// Attempts whose password is being checked now (this one included).
    pub pending: i64,
}

impl Store {
    /// Counts one login attempt for `key` as pending (before its password is checked) and
    /// returns the key's failures and pending attempts in the current window, this one
    /// included. One statement: concurrent attempts each see their own count. A window that
    /// began before `window_start_after` starts over.
    pub async fn begin_login_attempt(
        &self,
        tenant_id: &str,
        key: &str,
        now: i64,
        window_start_after: i64,
    ) -> StoreResult<AttemptCounts> {
        let (failures, pending): (i64, i64) = sqlx::query_as(
            "INSERT INTO login_failure (tenant_id, throttle_key, failures, pending, window_start) VALUES ($1, $2, 0, 1, $3) \
             ON CONFLICT (tenant_id, throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_failure.window_start > $4 THEN login_failure.failures ELSE 0 END, \
               pending = CASE WHEN login_failure.window_start > $4 THEN login_failure.pending + 1 ELSE 1 END, \
               window_start = CASE WHEN login_failure.window_start > $4 THEN login_failure.window_start ELSE $3 END \
             RETURNING failures, pending",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(now)
        .bind(window_start_after)
        .fetch_one(&self.writer)
        .await?;
        Ok(AttemptCounts { failures, pending })
    }

    /// Ends a pending attempt of `key`: `failed` adds it to the failures, `reset` forgets the
    /// key's failures (a success of the pair), neither just takes the attempt back.
    pub async fn end_login_attempt(
        &self,
        tenant_id: &str,
        key: &str,
        failed: bool,
        reset: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_failure SET \
               pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END, \
               failures = CASE WHEN $3 = 1 THEN 0 ELSE failures + $4 END \
             WHERE tenant_id = $1 AND throttle_key = $2",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(i64::from(reset))
        .bind(i64::from(failed))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Drops attempt counts whose window has passed, and places not used since
    /// `places_used_before`.
    pub async fn prune_login_failures(
        &self,
        window_start_before: i64,
        places_used_before: i64,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failure WHERE window_start < $1")
            .bind(window_start_before)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM login_place WHERE last_success < $1")
            .bind(places_used_before)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Remembers that an account signed in from a place (`place_hash`: see
    /// `oauth/authorize/throttle.rs`).
    pub async fn record_login_place(
        &self,
        tenant_id: &str,
        place_hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_place (tenant_id, place_hash, last_success) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, place_hash) DO UPDATE SET last_success = $3",
        )
        .bind(tenant_id)
        .bind(place_hash)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Whether an account signed in from a place since `since`.
    pub async fn login_place_known(
        &self,
        tenant_id: &str,
        place_hash: &str,
        since: i64,
    ) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT last_success FROM login_place WHERE tenant_id = $1 AND place_hash = $2 AND last_success >= $3",
        )
        .bind(tenant_id)
        .bind(place_hash)
        .bind(since)
        .fetch_optional(&self.reader)
        .await?;
        Ok(found.is_some())
    }
}
