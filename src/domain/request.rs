//! The HTTP request behind a login or a token request, as rules and actions see it.

use std::collections::BTreeMap;

/// What rules (`context.request`) and actions (`event.request`) are told about the request
/// that triggered them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RequestInfo {
    /// Client address (through trusted proxies).
    pub ip: String,
    pub method: String,
    /// Host header.
    pub hostname: String,
    pub user_agent: String,
    /// The first language of `Accept-Language`.
    pub language: String,
    /// Recognized query parameters of the authorization request (or of `/continue`).
    pub query: BTreeMap<String, String>,
    /// Form parameters of a `POST /continue`.
    pub body: BTreeMap<String, String>,
}
