//! Outbound requests of rules and actions: `wardstone.http_fetch` (SPEC §12), through the
//! tenant's allow-list and the operator's reach (SPEC §17).
//!
//! Runs on the rule's executor thread (never an async worker) and holds no lock. The URL's
//! `host[:port]` must be on the tenant's list; then every address the connection may use —
//! the literal one, or those the name resolves to — must be public or inside a range the
//! operator opened (`--rule-http-allow-private`): neither a tenant's list nor its DNS can point
//! a rule at the host, its network or a metadata service. Names resolve through [`dns`], with
//! the rule's deadline and a bounded number of lookups per node, and the connection gets
//! exactly the addresses that were checked. No redirect is followed; the whole exchange must
//! finish within what is left of the rule's deadline; the body is capped. Every refusal or
//! failure is an answer `{"error": ...}` the rule decides about.

pub mod dns;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::domain::{AllowedHost, PrivateRanges};
use dns::Dns;

/// Largest request (JSON) a rule may hand the host.
pub const MAX_REQUEST_BYTES: usize = 256 << 10;

/// What one tenant's executions may reach of the world outside the sandbox.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    /// The tenant's allow-list.
    pub allowed: Arc<[AllowedHost]>,
    /// Largest response body handed to the rule.
    pub body_bytes: usize,
    /// A replay of a run recorded at this Unix time: no request leaves (each is answered
    /// `{"error":"replay"}`) and the JavaScript clock reads that time.
    pub replay_at: Option<i64>,
    /// A bounded attempt on a request's own thread (`rules::Rules::execute`): a request would
    /// wait on the network there, so asking for one ends the attempt (the run then happens
    /// again, from the start, on the executor) and nothing leaves.
    pub offline_attempt: bool,
}

/// What every rule of this node may reach at most, and how names are resolved.
#[derive(Debug)]
struct Reach {
    opened: PrivateRanges,
    dns: Dns,
}

/// The node's outbound client: the operator's reach, the bounded resolver and one HTTP agent.
pub struct Outbound {
    reach: Arc<Reach>,
    agent: ureq::Agent,
}

impl Outbound {
    /// A client that reaches public addresses and the `opened` ranges, resolving names through
    /// `dns_servers` (the system's when empty) with at most `dns_slots` lookups in flight.
    pub fn new(
        opened: PrivateRanges,
        dns_servers: &[SocketAddr],
        dns_slots: usize,
    ) -> std::io::Result<Self> {
        let reach = Arc::new(Reach {
            opened,
            dns: Dns::new(dns_servers, dns_slots)?,
        });
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            // A proxy would resolve the target itself, past the address check.
            .proxy(None)
            .http_status_as_error(false)
            .max_response_header_size(64 << 10)
            .user_agent("wardstone-rules/1")
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            GuardedResolver(reach.clone()),
        );
        Ok(Outbound { reach, agent })
    }

    /// The ranges the operator opened.
    pub fn opened(&self) -> &PrivateRanges {
        &self.reach.opened
    }

    /// DNS lookups that may start now (for tests and metrics).
    pub fn free_dns_slots(&self) -> usize {
        self.reach.dns.free_slots()
    }
}

/// Addresses one connection may try (ureq's bound).
const MAX_ADDRESSES: usize = 16;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchRequest {
    #[serde(default = "get")]
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

fn get() -> String {
    "GET".into()
}

/// Hands a connection only the addresses a rule may reach.
#[derive(Debug)]
struct GuardedResolver(Arc<Reach>);

fn refused(message: String) -> ureq::Error {
    ureq::Error::Io(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        message,
    ))
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .ok_or(ureq::Error::HostNotFound)?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let reach = &self.0;
        let candidates = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let deadline = Instant::now() + *timeout.after;
                reach
                    .dns
                    .lookup(host, deadline)
                    .map_err(|e| refused(e.to_string()))?
            }
        };
        let mut kept = self.empty();
        let mut why = None;
        for ip in candidates {
            match reach.opened.refusal(ip) {
                None if kept.len() < MAX_ADDRESSES => kept.push(SocketAddr::new(ip, port)),
                None => {}
                Some(reason) => why = Some(format!("{ip} is {reason}")),
            }
        }
        if kept.is_empty() {
            return Err(refused(format!(
                "{host} may not be reached: {}; only public addresses, or ranges the operator opened, are allowed",
                why.unwrap_or_else(|| "it has no addresses".into())
            )));
        }
        Ok(kept)
    }
}

fn error(message: impl Into<String>) -> Value {
    json!({ "error": message.into() })
}

/// Performs one request for a rule; `deadline` is the rule's. Never panics, never fails: the
/// answer is the JSON the rule receives.
pub fn fetch(outbound: &Outbound, policy: &NetPolicy, request: &[u8], deadline: Instant) -> Value {
    if policy.replay_at.is_some() {
        return error("replay");
    }
    let request: FetchRequest = match serde_json::from_slice::<Value>(request) {
        Ok(v @ Value::Object(_)) => match serde_json::from_value(v) {
            Ok(r) => r,
            Err(e) => return error(format!("invalid request: {e}")),
        },
        Ok(_) => return error("the request must be a JSON object"),
        Err(e) => return error(format!("the request is not JSON: {e}")),
    };
    let url = match url::Url::parse(&request.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(u) => {
            return error(format!(
                "scheme {:?} is not allowed; use http or https",
                u.scheme()
            ));
        }
        Err(e) => return error(format!("invalid URL: {e}")),
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return error("the URL has no host");
    };
    let default_port = url.port().is_none();
    if !policy
        .allowed
        .iter()
        .any(|a| a.allows(host, port, default_port))
    {
        return error(format!(
            "host {host}:{port} is not on this tenant's allow-list (tenants/settings rules.allowed_hosts)"
        ));
    }
    let method = request.method.to_ascii_uppercase();
    if !matches!(
        method.as_str(),
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD"
    ) {
        return error(format!("method {method:?} is not allowed"));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) {
        return error("timeout: the rule's deadline has passed");
    }
    let mut builder = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(url.as_str());
    for (k, v) in &request.headers {
        // Framing and routing stay the host's: a rule's own `Host` would reach virtual hosts
        // behind an allowed front that are not on the list.
        let name = k.to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "upgrade"
                | "te"
                | "expect"
                | "trailer"
                | "keep-alive"
        ) || name.starts_with("proxy-")
        {
            return error(format!("header {k:?} cannot be set by a rule"));
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = request.body.unwrap_or_default();
    let request = match builder.body(body) {
        Ok(r) => r,
        Err(e) => return error(format!("invalid request: {e}")),
    };
    let request = outbound
        .agent
        .configure_request(request)
        .timeout_global(Some(left))
        .build();
    let sent = outbound.agent.run(request);
    let mut response = match sent {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => {
            return error("timeout: no answer within the rule's deadline");
        }
        Err(e) => return error(format!("request failed: {e}")),
    };
    let status = response.status().as_u16();
    let mut headers = serde_json::Map::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let body: Result<Vec<u8>, ureq::Error> = response
        .body_mut()
        .with_config()
        .limit(policy.body_bytes as u64)
        .read_to_vec();
    match body {
        Ok(bytes) => {
            let text: String = String::from_utf8_lossy(bytes.as_slice()).into_owned();
            json!({ "status": status, "headers": headers, "body": text })
        }
        Err(ureq::Error::BodyExceedsLimit(_)) => error(format!(
            "the response body is larger than {} bytes",
            policy.body_bytes
        )),
        Err(ureq::Error::Timeout(_)) => {
            error("timeout: the response did not end within the rule's deadline")
        }
        Err(e) => error(format!("reading the response failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_outside_the_list_or_malformed_are_answered_with_an_error() {
        let policy = NetPolicy {
            allowed: vec![AllowedHost::parse("api.example.com").unwrap()].into(),
            body_bytes: 1024,
            replay_at: None,
            offline_attempt: false,
        };
        let outbound = Outbound::new(PrivateRanges::default(), &[], 4).unwrap();
        let later = Instant::now() + Duration::from_secs(1);
        for (req, needle) in [
            (&b"[1]"[..], "JSON object"),
            (b"nope", "not JSON"),
            (br#"{"url": "ftp://api.example.com/x"}"#, "scheme"),
            (br#"{"url": "not a url"}"#, "invalid URL"),
            (br#"{"url": "https://evil.example.com/"}"#, "allow-list"),
            (br#"{"url": "https://api.example.com:8443/"}"#, "allow-list"),
            (
                br#"{"url": "https://api.example.com/", "method": "CONNECT"}"#,
                "method",
            ),
            (
                br#"{"url": "https://api.example.com/", "extra": 1}"#,
                "invalid request",
            ),
            (
                br#"{"url": "https://api.example.com/", "headers": {"Host": "internal"}}"#,
                "cannot be set",
            ),
        ] {
            let answer = fetch(&outbound, &policy, req, later);
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains(needle), "{answer} should mention {needle}");
        }
    }
}
