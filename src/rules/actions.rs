//! What an action asked for (the JavaScript runtime records the `api` calls and hands them over
//! when the action ends), checked and applied to the trigger run's state — only once the
//! action has finished, so an action that throws after setting a claim leaves nothing behind.
//! Also `api.cache`: per node, per tenant and trigger, within Auth0's limits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::patch::RESTRICTED_CLAIMS;
use crate::domain::TriggerId;

/// One action's requests, as the runtime's `finishAction` reports them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ActionOutput {
    /// A capability Wardstone lacks that the action asked for (the run fails closed).
    #[serde(default)]
    pub(crate) unsupported: Option<String>,
    #[serde(default)]
    pub(crate) denied: Option<Denial>,
    #[serde(default)]
    pub(crate) id_token: Map<String, Value>,
    #[serde(default)]
    pub(crate) access_token: Map<String, Value>,
    /// `["+", scope]` or `["-", scope]`, in call order.
    #[serde(default)]
    pub(crate) scopes: Vec<(String, String)>,
    #[serde(default)]
    pub(crate) app_metadata: Map<String, Value>,
    #[serde(default)]
    pub(crate) user_metadata: Map<String, Value>,
    /// Key → entry, or null for a deletion.
    #[serde(default)]
    pub(crate) cache: BTreeMap<String, Option<CacheEntry>>,
    #[serde(default)]
    pub(crate) redirect: Option<RedirectRequest>,
}

/// `api.access.deny`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub(crate) struct Denial {
    /// The RFC 6749 error code (credentials-exchange only).
    #[serde(default)]
    pub(crate) code: Option<String>,
    pub(crate) reason: String,
}

/// `api.redirect.sendUserTo`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct RedirectRequest {
    /// Where the browser goes.
    pub url: String,
    /// Query parameters added to it (besides `state`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

/// One cached value and when it expires (ms since the epoch), as Auth0's `api.cache` has them.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub(crate) struct CacheEntry {
    pub(crate) value: String,
    pub(crate) expires_at: i64,
}

/// Claim names OpenID Connect registers: an action may not set one unless it is a URL (a
/// namespaced claim), as Auth0.
const REGISTERED_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "org_name",
];

/// Puts an action's custom claims into `target`, leaving out (with a note) the restricted and
/// registered names.
pub(crate) fn set_claims(
    target: &mut Map<String, Value>,
    claims: Map<String, Value>,
    token: &str,
    notes: &mut Vec<String>,
) {
    for (name, value) in claims {
        let is_url = name.starts_with("http://") || name.starts_with("https://");
        if RESTRICTED_CLAIMS.contains(&name.as_str())
            || (!is_url && REGISTERED_CLAIMS.contains(&name.as_str()))
        {
            notes.push(format!(
                "claim {name:?} is restricted and was not set in the {token} (use a namespaced name such as https://example.com/{name})"
            ));
            continue;
        }
        target.insert(name, value);
    }
}

/// Applies `api.user.set*Metadata` calls to a metadata object (`null` deletes a key).
pub(crate) fn set_metadata(target: &mut Value, changes: Map<String, Value>) {
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in changes {
        if value.is_null() {
            map.remove(&key);
        } else {
            map.insert(key, value);
        }
    }
}

/// The actions' cache of one node: per tenant and trigger, Auth0's limits enforced by the
/// runtime when an action sets a value. Best effort, as Auth0 documents it: another node, or a
/// restart, starts empty.
#[derive(Default)]
pub(crate) struct ActionCache {
    entries: Mutex<HashMap<(String, TriggerId), BTreeMap<String, CacheEntry>>>,
}

/// Tenants whose caches one node keeps (each is at most 8 KB); beyond, the map starts over.
const CACHED_TENANTS: usize = 10_000;

impl ActionCache {
    /// What `api.cache.get` sees now (expired entries left out), as a JSON object, with a
    /// run's own changes so far over it.
    pub(crate) fn snapshot_with(
        &self,
        tenant_id: &str,
        trigger: TriggerId,
        now_ms: i64,
        pending: &BTreeMap<String, Option<CacheEntry>>,
    ) -> Value {
        let mut out = Map::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(map) = entries.get(&(tenant_id.to_string(), trigger)) {
                for (k, v) in map.iter().filter(|(_, v)| v.expires_at > now_ms) {
                    out.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
                }
            }
        }
        for (k, v) in pending {
            match v.as_ref().filter(|v| v.expires_at > now_ms) {
                Some(v) => out.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)),
                None => out.remove(k),
            };
        }
        Value::Object(out)
    }

    /// Applies an action's sets and deletions.
    pub(crate) fn apply(
        &self,
        tenant_id: &str,
        trigger: TriggerId,
        changes: BTreeMap<String, Option<CacheEntry>>,
        now_ms: i64,
    ) {
        if changes.is_empty() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHED_TENANTS {
            entries.clear();
        }
        let map = entries.entry((tenant_id.to_string(), trigger)).or_default();
        map.retain(|_, v| v.expires_at > now_ms);
        for (key, value) in changes {
            match value {
                Some(v) => {
                    map.insert(key, v);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn restricted_and_registered_claims_are_left_out() {
        let mut target = Map::new();
        let mut notes = Vec::new();
        let claims =
            json!({"sub": "x", "email": "e", "https://x.example/email": "ok", "plan": "gold"});
        set_claims(
            &mut target,
            claims.as_object().unwrap().clone(),
            "ID token",
            &mut notes,
        );
        assert_eq!(
            Value::Object(target),
            json!({"https://x.example/email": "ok", "plan": "gold"})
        );
        assert_eq!(notes.len(), 2);
    }

    #[test]
    fn the_cache_is_per_tenant_and_trigger_and_forgets_expired_values() {
        let cache = ActionCache::default();
        let none = BTreeMap::new();
        let entry = |v: &str, at| {
            Some(CacheEntry {
                value: v.into(),
                expires_at: at,
            })
        };
        cache.apply(
            "t1",
            TriggerId::PostLogin,
            BTreeMap::from([
                ("a".into(), entry("1", 2000)),
                ("b".into(), entry("2", 500)),
            ]),
            0,
        );
        let seen = cache.snapshot_with("t1", TriggerId::PostLogin, 1000, &none);
        assert_eq!(seen, json!({"a": {"value": "1", "expires_at": 2000}}));
        assert_eq!(
            cache.snapshot_with("t2", TriggerId::PostLogin, 0, &none),
            json!({})
        );
        assert_eq!(
            cache.snapshot_with("t1", TriggerId::CredentialsExchange, 0, &none),
            json!({})
        );
        cache.apply(
            "t1",
            TriggerId::PostLogin,
            BTreeMap::from([("a".into(), None)]),
            1000,
        );
        assert_eq!(
            cache.snapshot_with("t1", TriggerId::PostLogin, 1000, &none),
            json!({})
        );
        // A run's own changes show over the node's cache before it takes them.
        cache.apply(
            "t1",
            TriggerId::PostLogin,
            BTreeMap::from([
                ("kept".into(), entry("k", 5000)),
                ("gone".into(), entry("g", 5000)),
            ]),
            1000,
        );
        let pending = BTreeMap::from([
            ("gone".to_string(), None),
            ("new".to_string(), entry("n", 5000)),
            ("stale".to_string(), entry("s", 500)),
        ]);
        assert_eq!(
            cache.snapshot_with("t1", TriggerId::PostLogin, 1000, &pending),
            json!({"kept": {"value": "k", "expires_at": 5000}, "new": {"value": "n", "expires_at": 5000}})
        );
        assert_eq!(
            cache.snapshot_with("t1", TriggerId::PostLogin, 1000, &none),
            json!({"kept": {"value": "k", "expires_at": 5000}, "gone": {"value": "g", "expires_at": 5000}})
        );
    }
}
