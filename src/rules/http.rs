//! `wardstone.http_fetch`: outbound HTTP for rules, through the tenant's allow-list (SPEC §12).
//!
//! Runs on the rule's executor thread (never an async worker) and holds no lock. The URL's
//! `host[:port]` must be on the tenant's list; the name is resolved once, by the resolver that
//! also hands the connection its addresses, and private, loopback and link-local addresses are
//! dropped unless the URL names the address literally (then the tenant listed it literally) —
//! so DNS cannot point an allowed name at the inside of the network. No redirect is followed;
//! the whole exchange must finish within what is left of the rule's deadline; the body is
//! capped. Every refusal or failure is an answer `{"error": ...}` the rule decides about.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::domain::AllowedHost;

/// Largest request (JSON) a rule may hand the host.
pub const MAX_REQUEST_BYTES: usize = 256 << 10;

/// What one execution may reach.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    /// The tenant's allow-list.
    pub allowed: Arc<[AllowedHost]>,
    /// Largest response body handed to the rule.
    pub body_bytes: usize,
}

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

/// Keeps only addresses a rule may reach for this URL.
#[derive(Debug)]
struct GuardedResolver(DefaultResolver);

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = self.0.resolve(uri, config, timeout)?;
        let literal = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .is_some_and(|h| h.parse::<IpAddr>().is_ok());
        let mut kept = self.0.empty();
        for addr in resolved.iter().copied() {
            if literal || is_public(addr.ip()) {
                kept.push(addr);
            }
        }
        if kept.is_empty() {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the host resolves only to private, loopback or link-local addresses; list the address itself to allow it",
            )));
        }
        Ok(kept)
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, CGNAT,
/// unique-local, multicast, unspecified or documentation ranges).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)))
            };
            // Addresses that carry an IPv4 address are judged by it: mapped, compatible,
            // NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16).
            if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
                return embedded(s[6], s[7]);
            }
            if s[0] == 0x64 && s[1] == 0xff9b {
                return embedded(s[6], s[7]);
            }
            if s[0] == 0x2002 {
                return embedded(s[1], s[2]);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0)
        }
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            // A proxy would resolve the target itself, past the resolver's address check.
            .proxy(None)
            .http_status_as_error(false)
            .max_response_header_size(64 << 10)
            .user_agent("wardstone-rules/1")
            .build();
        ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            GuardedResolver(DefaultResolver::default()),
        )
    })
}

fn error(message: impl Into<String>) -> Value {
    json!({ "error": message.into() })
}

/// Performs one request for a rule; `deadline` is the rule's. Never panics, never fails: the
/// answer is the JSON the rule receives.
pub fn fetch(policy: &NetPolicy, request: &[u8], deadline: Instant) -> Value {
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
    let request = agent()
        .configure_request(request)
        .timeout_global(Some(left))
        .build();
    let sent = agent().run(request);
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
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::10.0.0.1",
            "fec0::1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn requests_outside_the_list_or_malformed_are_answered_with_an_error() {
        let policy = NetPolicy {
            allowed: vec![AllowedHost::parse("api.example.com").unwrap()].into(),
            body_bytes: 1024,
        };
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
            let answer = fetch(&policy, req, later);
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains(needle), "{answer} should mention {needle}");
        }
    }
}
