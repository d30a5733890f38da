use super::{Invalid, invalid};

/// A registered redirect URI. Matching is exact string comparison (OAuth 2.0 Security BCP
/// §4.1.3); parsing only refuses what can never be safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Parses a callback URL: absolute, no fragment, no userinfo; `http` only for loopback
    /// hosts (local development), `https` or a private-use scheme (RFC 8252, `com.example.app:`)
    /// otherwise.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| invalid(format!("invalid callback URL {s:?}: {why}"));
        if s.len() > 2000 {
            return Err(bad("longer than 2000 characters"));
        }
        let url = url::Url::parse(s).map_err(|_| bad("not an absolute URL"))?;
        if url.fragment().is_some() {
            return Err(bad("must not contain a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain credentials"));
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
                    || url.host_str().is_some_and(|h| h.ends_with(".localhost"));
                if !loopback {
                    return Err(bad("http is only allowed for localhost; use https"));
                }
            }
            "javascript" | "data" | "file" | "vbscript" | "blob" => {
                return Err(bad("scheme not allowed"));
            }
            scheme if scheme.contains('.') => {}
            _ => {
                return Err(bad(
                    "use https, http on localhost, or a reverse-DNS app scheme",
                ));
            }
        }
        Ok(RedirectUri(s.to_string()))
    }

    /// The URI exactly as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_callbacks_parse() {
        for ok in [
            "https://app.example.com/callback",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb?x=1",
            "com.example.app:/oauth",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn unsafe_callbacks_are_refused() {
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "https://user:pw@app.example.com/",
            "myapp:/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }
}
