//! The login step: the form, and checking a password without letting anyone turn that into a
//! denial of service or a guessing machine.
//!
//! Every attempt is counted before its password is hashed (see [`super::throttle`]); over a
//! limit the answer comes at once and no hash runs. Hashing itself is bounded (see
//! `crate::passwords`). Lengths are capped, so no attempt stores more than a few hundred bytes.

use serde::Deserialize;

use super::throttle::{Attempt, BUSY_RETRY_AFTER, Ended};
use super::{Answer, Browser, LoginForm, LoginProblem, Outcome, Problem, SignedIn};
use crate::crypto::{hash_token, random_token};
use crate::oauth::{Provider, Tenant};
use crate::store::{LoginTransactionRecord, SessionRecord, UserRecord};

/// The answer when every password check is busy.
const BUSY: LoginProblem = LoginProblem::Busy {
    retry_after: BUSY_RETRY_AFTER,
};

/// Longest username (an email address) accepted.
pub const MAX_USERNAME: usize = 254;
/// Longest password accepted (argon2 takes any length; nobody types more).
pub const MAX_PASSWORD: usize = 1024;

/// The parameters of a login form post.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginSubmission {
    /// Transaction id.
    #[serde(default)]
    pub tx: String,
    #[serde(default)]
    pub csrf: String,
    /// Email address.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

impl Provider {
    /// `GET /login?tx=`.
    pub async fn login_page(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let Some((_, request, client)) = self.transaction(tenant, tx_id, browser).await? else {
            return Ok(Problem::Expired.into());
        };
        let form = LoginForm {
            tx: tx_id.to_string(),
            csrf: self.csrf_token(tx_id),
            client_name: client.name.clone(),
            username: request.login_hint.unwrap_or_default(),
            error: None,
            problem: None,
        };
        Ok(Outcome::Login(form).into())
    }

    /// `POST /login`.
    pub async fn login(
        &self,
        tenant: &Tenant,
        form: LoginSubmission,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        if !self.csrf_ok(&form.tx, &form.csrf) {
            return Ok(Problem::Forbidden.into());
        }
        let Some((tx, request, client)) = self.transaction(tenant, &form.tx, browser).await? else {
            return Ok(Problem::Expired.into());
        };
        let again = |problem: LoginProblem| -> Answer {
            let shown: String = form.username.trim().chars().take(MAX_USERNAME).collect();
            Outcome::Login(LoginForm {
                tx: form.tx.clone(),
                csrf: form.csrf.clone(),
                client_name: client.name.clone(),
                username: shown,
                error: Some(problem.message()),
                problem: Some(problem),
            })
            .into()
        };
        let username = form.username.trim().to_lowercase();
        if username.len() > MAX_USERNAME || form.password.len() > MAX_PASSWORD {
            return Ok(again(LoginProblem::TooLong));
        }
        let attempt = match self.open_attempt(tenant, &username, browser).await? {
            Ok(attempt) => attempt,
            Err(problem) => return Ok(again(problem)),
        };
        // From here the attempt must be closed whatever happens to this request (a client
        // that hangs up would otherwise leave it pending until its window ends).
        let checked = {
            let (provider, tenant, password) =
                (self.clone(), tenant.clone(), form.password.clone());
            let (username, ip) = (username.clone(), browser.ip.clone());
            tokio::spawn(async move {
                provider
                    .check_password(&tenant, &username, password, &attempt, &ip)
                    .await
                    .map(|checked| (checked, attempt))
            })
            .await??
        };
        let (user, attempt) = match checked {
            (Ok(user), attempt) => (user, attempt),
            (Err(problem), _) => return Ok(again(problem)),
        };
        let device = self.device_cookie_after(&attempt, browser.device.as_deref());
        let mut answer = self
            .signed_in(tenant, &form.tx, tx, &client, &request, user, browser)
            .await?;
        answer.cookies.device = Some(device);
        Ok(answer)
    }

    /// Checks a counted attempt's password and closes the attempt: the user, or the answer.
    async fn check_password(
        &self,
        tenant: &Tenant,
        username: &str,
        password: String,
        attempt: &Attempt,
        ip: &str,
    ) -> anyhow::Result<Result<UserRecord, LoginProblem>> {
        let user = match self.store().user_by_email(&tenant.id, username).await {
            Ok(user) => user,
            Err(e) => {
                self.close_attempt(tenant, attempt, Ended::Unchecked)
                    .await?;
                return Err(e.into());
            }
        };
        // An imported user with no password here, on a tenant that migrates lazily: the old
        // tenant decides, once.
        if let Some(u) = &user
            && u.password_hash.is_empty()
        {
            let migration = match self.lazy_migration(tenant).await {
                Ok(m) => m,
                Err(e) => {
                    self.close_attempt(tenant, attempt, Ended::Unchecked)
                        .await?;
                    return Err(e);
                }
            };
            if let Some(m) = migration {
                return self
                    .check_with_old_tenant(tenant, u.clone(), password, attempt, &m, ip)
                    .await;
            }
        }
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| crate::passwords::dummy_hash().to_string());
        let password_again = password.clone();
        let Ok(checked) = self.passwords().check(password, phc).await else {
            // Not this attempt's fault: it does not count against anyone.
            return self.end_attempt(tenant, attempt, Err(BUSY)).await;
        };
        match user {
            Some(u) if checked.ok && !*u.blocked => {
                // An imported hash (bcrypt, PBKDF2, other argon2 parameters) is replaced the
                // first time it verifies; only if it is still the one checked, so a password
                // changed meanwhile is never overwritten.
                let u = match checked.upgraded {
                    Some(new) => {
                        if !self
                            .store()
                            .replace_password_hash(&tenant.id, &u.user_id, &u.password_hash, &new)
                            .await?
                        {
                            // The hash changed while this one was checked (a concurrent first
                            // login upgraded it, or an administrator set a new password): the
                            // password is whatever the row holds now.
                            return self
                                .recheck_stored(tenant, &u.user_id, password_again, attempt)
                                .await;
                        }
                        UserRecord {
                            password_hash: new,
                            ..u
                        }
                    }
                    None => u,
                };
                self.end_attempt(tenant, attempt, Ok(u)).await
            }
            _ => {
                self.end_attempt(tenant, attempt, Err(LoginProblem::WrongCredentials))
                    .await
            }
        }
    }

    /// Closes a counted attempt by its answer and returns the answer: a user is a success, a
    /// busy answer counts against no one (not the attempt's fault), every other refusal is a
    /// failure.
    async fn end_attempt(
        &self,
        tenant: &Tenant,
        attempt: &Attempt,
        answer: Result<UserRecord, LoginProblem>,
    ) -> anyhow::Result<Result<UserRecord, LoginProblem>> {
        let ended = match &answer {
            Ok(_) => Ended::Succeeded,
            Err(LoginProblem::Busy { .. }) => Ended::Unchecked,
            Err(_) => Ended::Failed,
        };
        self.close_attempt(tenant, attempt, ended).await?;
        Ok(answer)
    }

    /// The tenant's lazy-migration settings, opened.
    async fn lazy_migration(
        &self,
        tenant: &Tenant,
    ) -> anyhow::Result<Option<crate::domain::migration::LazyMigration>> {
        use crate::domain::migration::LazyMigration;
        let Some(sealed) = self.store().lazy_migration(&tenant.id).await? else {
            return Ok(None);
        };
        LazyMigration::open(self.master_key(), &tenant.id, &sealed)
            .map(Some)
            .map_err(anyhow::Error::msg)
    }

    /// Lazy migration: the old tenant says whether the password is right — for this very user
    /// (the `sub` of the ID token it issues must be the imported `user_id`); a yes stores it as
    /// an argon2id hash (only while the user still has none), so the old tenant is never asked
    /// about this user again.
    async fn check_with_old_tenant(
        &self,
        tenant: &Tenant,
        user: UserRecord,
        password: String,
        attempt: &Attempt,
        migration: &crate::domain::migration::LazyMigration,
        ip: &str,
    ) -> anyhow::Result<Result<UserRecord, LoginProblem>> {
        use super::lazy::OldAnswer;
        // Nothing the old tenant could say makes these a login: a blocked user, an empty
        // password. Neither is sent.
        if *user.blocked || password.is_empty() {
            return self
                .end_attempt(tenant, attempt, Err(LoginProblem::WrongCredentials))
                .await;
        }
        let answer = self
            .old_tenants()
            .check(migration, &user.email, &password, &user.user_id, ip)
            .await;
        match answer {
            Err(_) => self.end_attempt(tenant, attempt, Err(BUSY)).await,
            // Counted like a failure: otherwise an outage (or a probe that makes the old tenant
            // answer oddly) would be an unthrottled way to tell unmigrated accounts apart.
            Ok(OldAnswer::Unavailable) => {
                self.end_attempt(
                    tenant,
                    attempt,
                    Err(LoginProblem::Unavailable { retry_after: 60 }),
                )
                .await
            }
            Ok(OldAnswer::Refused) => {
                self.end_attempt(tenant, attempt, Err(LoginProblem::WrongCredentials))
                    .await
            }
            Ok(OldAnswer::Accepted) => {
                let Ok(hash) = self.passwords().hash(password.clone()).await else {
                    return self.end_attempt(tenant, attempt, Err(BUSY)).await;
                };
                if !self
                    .store()
                    .replace_password_hash(&tenant.id, &user.user_id, "", &hash)
                    .await?
                {
                    // Someone else set the password meanwhile (a concurrent first login, or
                    // an administrator): the password is whatever is stored now.
                    return self
                        .recheck_stored(tenant, &user.user_id, password, attempt)
                        .await;
                }
                tracing::info!(tenant = %tenant.name, user = %user.user_id, "password migrated from the old tenant");
                let user = UserRecord {
                    password_hash: hash,
                    ..user
                };
                self.end_attempt(tenant, attempt, Ok(user)).await
            }
        }
    }

    /// After a lost compare-and-set on the password hash: checks the password against what
    /// the row holds now (a concurrent first login stored the same password's argon2id, or an
    /// administrator set another one).
    async fn recheck_stored(
        &self,
        tenant: &Tenant,
        user_id: &str,
        password: String,
        attempt: &Attempt,
    ) -> anyhow::Result<Result<UserRecord, LoginProblem>> {
        let now = self.store().user(&tenant.id, user_id).await?;
        let checked = match &now {
            Some(u) if !*u.blocked && !u.password_hash.is_empty() => {
                self.passwords()
                    .check(password, u.password_hash.clone())
                    .await
            }
            _ => Ok(crate::passwords::Checked {
                ok: false,
                upgraded: None,
            }),
        };
        match (now, checked) {
            (_, Err(_)) => self.end_attempt(tenant, attempt, Err(BUSY)).await,
            // Right against the current hash (an upgrade of it, if any, is left to the next
            // login: this one already lost a race for the row).
            (Some(u), Ok(c)) if c.ok => self.end_attempt(tenant, attempt, Ok(u)).await,
            _ => {
                self.end_attempt(tenant, attempt, Err(LoginProblem::WrongCredentials))
                    .await
            }
        }
    }

    /// The password was right: start a session and go on with the transaction.
    #[allow(clippy::too_many_arguments)]
    async fn signed_in(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        tx: LoginTransactionRecord,
        client: &crate::store::ClientRecord,
        request: &super::AuthorizationRequest,
        user: UserRecord,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let now = self.now();
        self.store()
            .record_login(&tenant.id, &user.user_id, now)
            .await?;
        // The rules see the counters with this login included, as stored.
        let user = UserRecord {
            logins_count: user.logins_count + 1,
            last_login: Some(now),
            ..user
        };
        if let Some(old) = &browser.session_id {
            self.store().delete_session(&hash_token(old)).await?;
        }
        let session_id = random_token(32);
        let session = SessionRecord {
            id_hash: hash_token(&session_id),
            tenant_id: tenant.id.clone(),
            user_id: user.user_id.clone(),
            auth_time: now,
            created_at: now,
            expires_at: now + self.lifetimes().session,
        };
        self.store().insert_session(&session).await?;
        self.store()
            .mark_transaction_logged_in(&tx.id_hash, now)
            .await?;
        let tx = LoginTransactionRecord {
            logged_in_at: Some(now),
            ..tx
        };
        let mut answer = self
            .proceed(
                tenant,
                tx_id,
                &tx,
                client,
                request,
                Some(SignedIn {
                    session,
                    user,
                    roles: None,
                }),
                browser,
            )
            .await?;
        answer.cookies.session_id = Some(session_id);
        Ok(answer)
    }
}
