//! What a rule does when it fails.

use super::{Invalid, invalid};

/// A rule's failure mode (SPEC §12). A *denial* always denies; this governs traps, timeouts,
/// exhausted fuel or memory and bad output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String", into = "String")]
pub enum OnFailure {
    /// Fail closed: the login fails with the execution id.
    #[default]
    Deny,
    /// Fail open: the failure is logged (`skipped: true`) and the pipeline goes on with the
    /// objects as they were before this rule.
    Skip,
}

impl OnFailure {
    /// Parses `deny` or `skip`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "deny" => Ok(OnFailure::Deny),
            "skip" => Ok(OnFailure::Skip),
            other => Err(invalid(format!(
                "unsupported on_failure {other:?}; use deny or skip"
            ))),
        }
    }

    /// The stored and shown value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Deny => "deny",
            OnFailure::Skip => "skip",
        }
    }
}

impl TryFrom<String> for OnFailure {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        OnFailure::parse(&s).map_err(|e| e.0)
    }
}

impl From<OnFailure> for String {
    fn from(v: OnFailure) -> String {
        v.as_str().to_string()
    }
}

/// One entry of a tenant's outbound allow-list: `host` (the scheme's default port only) or
/// `host:port`. Hosts are DNS names or IP literals (`[…]` for IPv6), compared without case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// Parses `host` or `host:port`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || {
            invalid(format!(
                "invalid allowed host {s:?}: use host or host:port (no scheme or path), e.g. api.example.com or 127.0.0.1:8089"
            ))
        };
        if s.is_empty() || s.len() > 260 || s.contains(['/', '@', '?', '#', ' ']) {
            return Err(bad());
        }
        let url = url::Url::parse(&format!("http://{s}/")).map_err(|_| bad())?;
        let host = url.host_str().ok_or_else(bad)?.to_ascii_lowercase();
        // `url` drops port 80 for http: keep what was written.
        let port = match s.rsplit_once(':') {
            Some((_, p)) if !s.ends_with(']') => Some(p.parse::<u16>().map_err(|_| bad())?),
            _ => None,
        };
        Ok(AllowedHost { host, port })
    }

    /// Whether a URL's `host` and `port` are allowed (`default_port`: the URL gave none).
    pub fn allows(&self, host: &str, port: u16, default_port: bool) -> bool {
        self.host.eq_ignore_ascii_case(host)
            && match self.port {
                Some(p) => p == port,
                None => default_port,
            }
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        AllowedHost::parse(&s).map_err(|e| e.0)
    }
}

impl From<AllowedHost> for String {
    fn from(v: AllowedHost) -> String {
        v.to_string()
    }
}
