use sqlx::FromRow;

use super::{Store, StoreResult};

/// An authorization code as stored (the code itself only as a hash).
#[derive(Debug, Clone, FromRow)]
pub struct CodeRecord {
    /// sha256 of the code.
    pub code_hash: Vec<u8>,
    pub tenant_id: String,
    /// The grant (token family) this code starts.
    pub grant_id: String,
    /// The client the code was issued to.
    pub client_id: String,
    /// The user who authorized.
    pub user_id: String,
    /// Exact redirect_uri of the authorization request.
    pub redirect_uri: String,
    /// Consented scopes.
    pub scope: crate::domain::ScopeSet,
    /// Requested API identifier.
    pub audience: Option<String>,
    /// OIDC nonce to put in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// SSO session id (public `sid`).
    pub session_id: Option<String>,
    /// Extra claims for the tokens, JSON `{"id_token":{},"access_token":{}}`.
    pub claims: super::JsonText<serde_json::Value>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was redeemed.
    pub consumed_at: Option<i64>,
}

/// What issuing a code needs; the grant row is created with it.
pub type NewCode = CodeRecord;

/// Whether a code redemption won the race.
#[derive(Debug, PartialEq, Eq)]
pub enum RedeemOutcome {
    /// This call consumed the code.
    Redeemed,
    /// The code had already been consumed: a replay.
    AlreadyUsed,
}

/// A refresh token as stored.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshTokenRecord {
    /// sha256 of the token.
    pub token_hash: Vec<u8>,
    pub tenant_id: String,
    /// The family.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    pub user_id: String,
    pub scope: crate::domain::ScopeSet,
    /// API identifier.
    pub audience: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// SSO session id.
    pub session_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once the token has been exchanged for a new one.
    pub rotated_at: Option<i64>,
    /// The token it was exchanged for (hash), once rotated.
    pub successor_hash: Option<Vec<u8>>,
}

/// What issuing a refresh token needs.
pub type NewRefreshToken = RefreshTokenRecord;

/// A grant's row carries its code: `grant_id` is the row's `id`.
const CODE_COLUMNS: &str = "code_hash, tenant_id, id AS grant_id, client_id, user_id, redirect_uri, scope, \
    audience, nonce, code_challenge, auth_time, session_id, claims, created_at, expires_at, consumed_at";
/// Rows per batched insert (13 columns: 416 parameters, where sqlx's SQLite binding is still
/// cheap; see `users/import.rs`).
pub(super) const REFRESH_ROWS_PER_STATEMENT: usize = 32;
/// Redemptions per batched statement (6 parameters each).
pub(super) const REDEMPTIONS_PER_STATEMENT: usize = 32;

/// Codes per batched insert (16 columns: 512 parameters).
pub(super) const CODE_ROWS_PER_STATEMENT: usize = 32;

const CODE_INSERT_COLUMNS: &str = "code_hash, tenant_id, id, client_id, user_id, redirect_uri, scope, \
    audience, nonce, code_challenge, auth_time, session_id, claims, created_at, expires_at, consumed_at";

/// Code rows for the store's [`super::batch::Batcher`]: a login with an SSO session writes
/// nothing but its code, so at c=16 on SQLite every login queued for the one writer connection,
/// one statement (and its thread hops) each, while the cores sat partly idle.
impl super::batch::WriteRows<NewCode> for Inserts {
    type Out = ();

    async fn write_all(&self, rows: &[&NewCode]) -> StoreResult<Vec<()>> {
        insert_codes(&self.writer, self.backend, rows).await?;
        Ok(vec![(); rows.len()])
    }

    async fn write_one(&self, row: &NewCode) -> StoreResult<()> {
        insert_codes(&self.writer, self.backend, &[row]).await
    }
}

/// One statement for `rows` (autocommitted: all or none).
async fn insert_codes(
    writer: &sqlx::AnyPool,
    backend: super::Backend,
    rows: &[&NewCode],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO token_grant ({CODE_INSERT_COLUMNS}) VALUES {}",
        super::values_placeholders(backend, rows.len(), 16)
    );
    let mut q = sqlx::query(&sql);
    for c in rows {
        q = q
            .bind(&c.code_hash)
            .bind(&c.tenant_id)
            .bind(&c.grant_id)
            .bind(&c.client_id)
            .bind(&c.user_id)
            .bind(&c.redirect_uri)
            .bind(&c.scope)
            .bind(&c.audience)
            .bind(&c.nonce)
            .bind(&c.code_challenge)
            .bind(c.auth_time)
            .bind(&c.session_id)
            .bind(&c.claims)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.consumed_at);
    }
    q.execute(writer).await?;
    Ok(())
}

/// The writer of the store's insert batchers on SQLite: one statement of many rows.
pub(crate) struct Inserts {
    writer: sqlx::AnyPool,
    backend: super::Backend,
}

/// Refresh-token rows for the store's [`super::batch::Batcher`]: every code exchange inserts
/// one, and at c=16 (ES256, SQLite) two writes per exchange held the endpoint at ≈ 2,200/s where
/// one write gave ≈ 4,300/s: the exchanges were waiting on each other's inserts.
impl super::batch::WriteRows<NewRefreshToken> for Inserts {
    type Out = ();

    async fn write_all(&self, rows: &[&NewRefreshToken]) -> StoreResult<Vec<()>> {
        Store::insert_refresh_tokens(&self.writer, self.backend, rows).await?;
        Ok(vec![(); rows.len()])
    }

    async fn write_one(&self, row: &NewRefreshToken) -> StoreResult<()> {
        Store::insert_refresh_token_in(&self.writer, row).await
    }
}

/// A code's redemption with the conditions it must meet (see [`Store::redeem_code_if_valid`]).
#[derive(Debug, Clone)]
pub(crate) struct Redemption {
    tenant_id: String,
    code_hash: Vec<u8>,
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    now: i64,
}

/// Redemptions for the store's [`super::batch::Batcher`] on SQLite: with refresh-token inserts
/// batched, the code's own `UPDATE … RETURNING` was the token endpoint's other write through the
/// one writer connection, one statement (and two thread hops) per exchange.
pub(crate) struct Redemptions {
    writer: sqlx::AnyPool,
}

impl super::batch::WriteRows<Redemption> for Redemptions {
    type Out = Option<CodeRecord>;

    /// One `UPDATE … FROM (VALUES …)` with each row's own conditions. A code asked for twice in
    /// one batch enters the statement once, with its first request's conditions, and only that
    /// request can get it back: the others get `None`, and the caller's slow path then finds the
    /// code used (a replay) or, when the first request's conditions failed, redeems it for them
    /// on its own — never for two.
    async fn write_all(&self, rows: &[&Redemption]) -> StoreResult<Vec<Option<CodeRecord>>> {
        let mut seen = std::collections::HashSet::new();
        let entering: Vec<&Redemption> = rows
            .iter()
            .copied()
            .filter(|r| seen.insert((r.tenant_id.as_str(), r.code_hash.as_slice())))
            .collect();
        // RETURNING may name only the updated table's columns, so the request's columns have
        // names of their own.
        let sql = format!(
            "WITH req (r_tenant, r_code, r_client, r_redirect, r_challenge, r_now) AS (VALUES {}) \
             UPDATE token_grant SET consumed_at = req.r_now FROM req \
             WHERE token_grant.tenant_id = req.r_tenant AND token_grant.code_hash = req.r_code \
             AND token_grant.consumed_at IS NULL AND token_grant.client_id = req.r_client \
             AND token_grant.redirect_uri = req.r_redirect AND token_grant.expires_at > req.r_now \
             AND token_grant.code_challenge IS req.r_challenge RETURNING {CODE_COLUMNS}",
            super::values_placeholders(super::Backend::Sqlite, entering.len(), 6)
        );
        let mut q = sqlx::query_as::<_, CodeRecord>(&sql);
        for r in &entering {
            q = q
                .bind(&r.tenant_id)
                .bind(&r.code_hash)
                .bind(&r.client_id)
                .bind(&r.redirect_uri)
                .bind(&r.challenge)
                .bind(r.now);
        }
        let mut redeemed: std::collections::HashMap<(String, Vec<u8>), CodeRecord> = q
            .fetch_all(&self.writer)
            .await?
            .into_iter()
            .map(|c| ((c.tenant_id.clone(), c.code_hash.clone()), c))
            .collect();
        // `remove`: a code is handed to the first request that named it, never to two.
        Ok(rows
            .iter()
            .map(|r| redeemed.remove(&(r.tenant_id.clone(), r.code_hash.clone())))
            .collect())
    }

    async fn write_one(&self, row: &Redemption) -> StoreResult<Option<CodeRecord>> {
        redeem_one(&self.writer, row).await
    }
}

/// One redemption, one statement.
async fn redeem_one(writer: &sqlx::AnyPool, r: &Redemption) -> StoreResult<Option<CodeRecord>> {
    let pkce = match r.challenge {
        Some(_) => "code_challenge = $6",
        None => "code_challenge IS NULL",
    };
    let sql = format!(
        "UPDATE token_grant SET consumed_at = $1 WHERE tenant_id = $2 AND code_hash = $3 \
         AND consumed_at IS NULL AND client_id = $4 AND redirect_uri = $5 AND expires_at > $1 \
         AND {pkce} RETURNING {CODE_COLUMNS}"
    );
    let mut q = sqlx::query_as::<_, CodeRecord>(&sql)
        .bind(r.now)
        .bind(&r.tenant_id)
        .bind(&r.code_hash)
        .bind(&r.client_id)
        .bind(&r.redirect_uri);
    if let Some(c) = &r.challenge {
        q = q.bind(c);
    }
    Ok(q.fetch_optional(writer).await?)
}

/// Binds a refresh token's values in `RT_COLUMNS` order.
fn bind_refresh_token<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    t: &'q NewRefreshToken,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&t.token_hash)
        .bind(&t.tenant_id)
        .bind(&t.grant_id)
        .bind(&t.client_id)
        .bind(&t.user_id)
        .bind(&t.scope)
        .bind(&t.audience)
        .bind(t.auth_time)
        .bind(&t.session_id)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.rotated_at)
        .bind(&t.successor_hash)
}

const RT_COLUMNS: &str = "token_hash, tenant_id, grant_id, client_id, user_id, scope, audience, \
    auth_time, session_id, created_at, expires_at, rotated_at, successor_hash";

impl Store {
    /// Creates a grant with its authorization code (once the answer is `Ok`, it is committed).
    /// On SQLite, codes of concurrent logins are written together, many rows per statement
    /// ([`super::batch`]); PostgreSQL writes them in parallel on its pool.
    pub async fn insert_code(&self, c: NewCode) -> StoreResult<()> {
        match self.backend {
            super::Backend::Postgres => insert_codes(&self.writer, self.backend, &[&c]).await,
            super::Backend::Sqlite => {
                self.code_inserts
                    .write(c, || Inserts {
                        writer: self.writer.clone(),
                        backend: self.backend,
                    })
                    .await
            }
        }
    }

    /// Whether the SSO session with public id `sid` signed in to `client_id` (issued it a
    /// code).
    pub async fn session_signed_in_to(
        &self,
        tenant_id: &str,
        sid: &str,
        client_id: &str,
    ) -> StoreResult<bool> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM token_grant WHERE tenant_id = $1 AND session_id = $2 AND client_id = $3 LIMIT 1",
        )
        .bind(tenant_id)
        .bind(sid)
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(found.is_some())
    }

    /// A code of `tenant_id`, redeemed or not.
    pub async fn code(&self, tenant_id: &str, code_hash: &[u8]) -> StoreResult<Option<CodeRecord>> {
        Ok(sqlx::query_as::<_, CodeRecord>(&format!(
            "SELECT {CODE_COLUMNS} FROM token_grant WHERE tenant_id = $1 AND code_hash = $2"
        ))
        .bind(tenant_id)
        .bind(code_hash)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// The token endpoint's common case in one statement: marks the code used and returns it
    /// if, and only if, it is this tenant's, unused, unexpired, issued to `client_id` for
    /// `redirect_uri`, and its PKCE challenge is `challenge` (or it has none and none is given).
    /// `None` says nothing about why; the caller then looks at the code to answer precisely,
    /// and nothing was changed. On SQLite concurrent redemptions share one statement
    /// ([`super::batch`]); PostgreSQL runs each on its pool.
    pub async fn redeem_code_if_valid(
        &self,
        tenant_id: &str,
        code_hash: &[u8],
        client_id: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        now: i64,
    ) -> StoreResult<Option<CodeRecord>> {
        let r = Redemption {
            tenant_id: tenant_id.to_string(),
            code_hash: code_hash.to_vec(),
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.map(str::to_string),
            now,
        };
        match self.backend {
            super::Backend::Postgres => redeem_one(&self.writer, &r).await,
            super::Backend::Sqlite => {
                self.code_redemptions
                    .write(r, || Redemptions {
                        writer: self.writer.clone(),
                    })
                    .await
            }
        }
    }

    /// Marks a code used in one atomic statement: of two concurrent redemptions exactly one
    /// sees `Redeemed`.
    pub async fn redeem_code(&self, code_hash: &[u8], now: i64) -> StoreResult<RedeemOutcome> {
        let done = sqlx::query(
            "UPDATE token_grant SET consumed_at = $1 WHERE code_hash = $2 AND consumed_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(&self.writer)
        .await?;
        Ok(if done.rows_affected() == 1 {
            RedeemOutcome::Redeemed
        } else {
            RedeemOutcome::AlreadyUsed
        })
    }

    /// Revokes a grant: every refresh token of the family stops working, and access tokens
    /// of the grant are refused at userinfo.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE token_grant SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Whether a grant is unknown or revoked.
    pub async fn grant_is_revoked(&self, tenant_id: &str, grant_id: &str) -> StoreResult<bool> {
        let revoked: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT revoked_at FROM token_grant WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(grant_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(!matches!(revoked, Some(None)))
    }

    /// Stores a refresh token (once the answer is `Ok`, it is committed). On SQLite, inserts
    /// of concurrent requests are written together, many rows per statement
    /// ([`super::batch`]); PostgreSQL writes them in parallel on its pool.
    pub async fn insert_refresh_token(&self, t: &NewRefreshToken) -> StoreResult<()> {
        match self.backend {
            super::Backend::Postgres => Self::insert_refresh_token_in(&self.writer, t).await,
            super::Backend::Sqlite => {
                self.refresh_inserts
                    .write(t.clone(), || Inserts {
                        writer: self.writer.clone(),
                        backend: self.backend,
                    })
                    .await
            }
        }
    }

    /// One statement for `rows` (autocommitted: all or none).
    async fn insert_refresh_tokens(
        writer: &sqlx::AnyPool,
        backend: super::Backend,
        rows: &[&NewRefreshToken],
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO refresh_token ({RT_COLUMNS}) VALUES {}",
            super::values_placeholders(backend, rows.len(), 13)
        );
        let mut q = sqlx::query(&sql);
        for t in rows {
            q = bind_refresh_token(q, t);
        }
        q.execute(writer).await?;
        Ok(())
    }

    async fn insert_refresh_token_in<'e>(
        executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
        t: &NewRefreshToken,
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO refresh_token ({RT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        bind_refresh_token(sqlx::query(&sql), t)
            .execute(executor)
            .await?;
        Ok(())
    }

    /// A refresh token of `tenant_id`, rotated or not.
    pub async fn refresh_token(
        &self,
        tenant_id: &str,
        token_hash: &[u8],
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        Ok(sqlx::query_as::<_, RefreshTokenRecord>(&format!(
            "SELECT {RT_COLUMNS} FROM refresh_token WHERE tenant_id = $1 AND token_hash = $2"
        ))
        .bind(tenant_id)
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?)
    }

    /// Marks a refresh token rotated and stores its successor in one transaction; `false`
    /// (and nothing written) when someone already rotated it.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        successor: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_token SET rotated_at = $1, successor_hash = $3 \
             WHERE token_hash = $2 AND rotated_at IS NULL",
        )
        .bind(now)
        .bind(old_hash)
        .bind(successor.map(|t| t.token_hash.clone()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(t) = successor {
            Self::insert_refresh_token_in(&mut *tx, t).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A rotation retried with the previous token (its answer was lost): the successor it
    /// made, if nobody has used it yet, is replaced by `replacement`, in one transaction.
    /// `false` (and nothing written) when the successor was used meanwhile.
    pub async fn retry_rotation(
        &self,
        previous_hash: &[u8],
        successor_hash: &[u8],
        replacement: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let new_hash = replacement.map(|t| t.token_hash.clone());
        // The replaced successor never reached its client: whoever presents it later is not
        // that client, so it gets no grace (no successor of its own) and counts as reuse.
        let done = sqlx::query(
            "UPDATE refresh_token SET rotated_at = $1, successor_hash = NULL \
             WHERE token_hash = $2 AND rotated_at IS NULL",
        )
        .bind(now)
        .bind(successor_hash)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // A second retry of the same token then finds the newest successor.
        sqlx::query("UPDATE refresh_token SET successor_hash = $1 WHERE token_hash = $2")
            .bind(&new_hash)
            .bind(previous_hash)
            .execute(&mut *tx)
            .await?;
        if let Some(t) = replacement {
            Self::insert_refresh_token_in(&mut *tx, t).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
