//! The consent step: which permissions the application asks for, and remembering the answer.

use serde::Deserialize;

use super::{Answer, Browser, ConsentForm, Outcome, Problem, SignedIn};
use crate::oauth::registrar::with_params;
use crate::oauth::scopes::describe;
use crate::oauth::{ErrorCode, Provider, Tenant};
use crate::store::LoginTransactionRecord;

/// The parameters of a consent form post.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsentSubmission {
    /// Transaction id.
    #[serde(default)]
    pub tx: String,
    #[serde(default)]
    pub csrf: String,
    /// `allow` or `deny`.
    #[serde(default)]
    pub decision: String,
}

impl Provider {
    /// `GET /consent?tx=`.
    pub async fn consent_page(
        &self,
        tenant: &Tenant,
        tx_id: &str,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        let Some((_, request, client)) = self.transaction(tenant, tx_id, browser).await? else {
            return Ok(Problem::Expired.into());
        };
        let Some(SignedIn { user, .. }) = self.current_session(tenant, browser).await? else {
            return Ok(
                Outcome::Redirect(with_params(&tenant.url("/login"), &[("tx", tx_id)])).into(),
            );
        };
        let (api_name, api_scopes) = match &request.audience {
            Some(aud) => match self
                .store()
                .resource_server_by_identifier(&tenant.id, aud)
                .await?
            {
                Some(api) => (Some(api.name.clone()), api.scopes().to_vec()),
                None => (None, vec![]),
            },
            None => (None, vec![]),
        };
        let scopes = describe(&request.scope.clone(), &api_scopes);
        Ok(Outcome::Consent(ConsentForm {
            tx: tx_id.to_string(),
            csrf: self.csrf_token(tx_id),
            client_name: client.name.clone(),
            user_email: user.email,
            api_name,
            scopes,
        })
        .into())
    }

    /// `POST /consent`.
    pub async fn consent(
        &self,
        tenant: &Tenant,
        form: ConsentSubmission,
        browser: &Browser,
    ) -> anyhow::Result<Answer> {
        if !self.csrf_ok(&form.tx, &form.csrf) {
            return Ok(Problem::Forbidden.into());
        }
        let Some((tx, request, client)) = self.transaction(tenant, &form.tx, browser).await? else {
            return Ok(Problem::Expired.into());
        };
        let Some(signed_in) = self.current_session(tenant, browser).await? else {
            return Ok(
                Outcome::Redirect(with_params(&tenant.url("/login"), &[("tx", &form.tx)])).into(),
            );
        };
        match form.decision.as_str() {
            "allow" => {}
            "deny" => {
                self.store().delete_login_transaction(&tx.id_hash).await?;
                return Ok(self.fail(
                    tenant,
                    &request,
                    ErrorCode::AccessDenied,
                    "the user denied access",
                ));
            }
            _ => return Ok(Problem::BadRequest("Choose Allow or Deny.".into()).into()),
        }
        let now = self.now();
        let audience = request.audience.as_deref().unwrap_or("");
        let requested = request.scope.clone();
        let user_id = &signed_in.user.user_id;
        let previous = self
            .store()
            .consent(&tenant.id, user_id, &client.client_id, audience)
            .await?;
        let all = requested.union(&previous.unwrap_or_default());
        self.store()
            .save_consent(
                &tenant.id,
                user_id,
                &client.client_id,
                audience,
                &all.to_string(),
                now,
            )
            .await?;
        self.store()
            .mark_transaction_consented(&tx.id_hash, now)
            .await?;
        let tx = LoginTransactionRecord {
            consented_at: Some(now),
            ..tx
        };
        self.proceed(
            tenant,
            &form.tx,
            &tx,
            &client,
            &request,
            Some(signed_in),
            browser,
        )
        .await
    }
}
