//! The registrar: which clients exist and where they may be redirected.

use crate::store::{ClientRecord, Store, StoreResult};

/// Looks up a client of the tenant.
pub async fn find_client(
    store: &Store,
    tenant_id: &str,
    client_id: &str,
) -> StoreResult<Option<ClientRecord>> {
    if client_id.is_empty() || client_id.len() > 128 {
        return Ok(None);
    }
    store.client(tenant_id, client_id).await
}

/// Exact string comparison against the registered callbacks (Security BCP §4.1.3): no prefix,
/// no wildcard, no normalisation.
pub fn redirect_uri_is_registered(client: &ClientRecord, redirect_uri: &str) -> bool {
    client.redirect_uris().iter().any(|r| r == redirect_uri)
}

/// Appends parameters to a redirect URI, keeping any query it already has.
pub fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        // Registered URIs were parsed at registration; this cannot happen, but never panic.
        Err(_) => redirect_uri.to_string(),
    }
}
