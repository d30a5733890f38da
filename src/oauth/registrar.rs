//! The registrar: which clients exist and where they may be redirected.
//!
//! Clients are read on every authorize and token request, and each SQLite statement is a round
//! trip to its connection's thread, so a node keeps the clients it has seen in memory. An entry
//! is used only while its generation equals `tenant.clients_generation` of the tenant row the
//! request read; every client write bumps that generation in its transaction, so a new secret,
//! a removed callback or a deleted client takes effect on every node at its next request.

use std::sync::Arc;

use super::{Provider, Tenant};
use crate::cache::GenerationCache;
use crate::store::{ClientRecord, StoreResult};

/// Clients one node keeps in memory.
const CACHED_CLIENTS: usize = 20_000;

/// (tenant id, client id) → the client, at the tenant's `clients_generation`.
pub type ClientCache = GenerationCache<(String, String), ClientRecord>;

/// The node's client cache.
pub fn client_cache() -> ClientCache {
    GenerationCache::new("client", CACHED_CLIENTS)
}

impl Provider {
    /// A client of the tenant, as of the tenant row this request read.
    pub async fn client(
        &self,
        tenant: &Tenant,
        client_id: &str,
    ) -> StoreResult<Option<Arc<ClientRecord>>> {
        if client_id.is_empty() || client_id.len() > 128 {
            return Ok(None);
        }
        let key = (tenant.id.clone(), client_id.to_string());
        self.clients_cache()
            .get_or_try_load(key, tenant.clients_generation, || {
                self.store().client(&tenant.id, client_id)
            })
            .await
    }
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
