//! Settings from flags and environment. Secrets are wrapped so they cannot be printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use url::Url;

use crate::crypto::MasterKey;

/// Default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://wardstone.db";

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// sqlx URL: `sqlite://path` or `postgres://...`.
    pub database_url: String,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Base URL users and clients see; issuers are `{public_url}/t/{tenant}`.
    pub public_url: PublicUrl,
    /// Encrypts private keys and rule settings at rest.
    pub master_key: MasterKey,
    /// Lifetimes and throttling limits.
    pub lifetimes: Lifetimes,
}

/// Token, code and session lifetimes in seconds, plus login throttling.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    /// Authorization codes (RFC 6749 recommends at most 10 minutes).
    pub code: i64,
    /// Access and ID tokens.
    pub access_token: i64,
    /// Refresh tokens (absolute, per token; each rotation issues a fresh one).
    pub refresh_token: i64,
    /// Seconds after a rotation during which the same client may present the previous refresh
    /// token again and get a fresh successor instead of revoking the family (0: never).
    pub refresh_reuse_grace: i64,
    /// SSO session cookie.
    pub session: i64,
    /// A pending /authorize request waiting for login or consent.
    pub login_transaction: i64,
    /// Login attempts allowed per (account, address) within `throttle_window`.
    pub max_failed_logins: i64,
    /// Login attempts allowed per account, from anywhere, within `throttle_window`.
    pub max_failed_logins_per_account: i64,
    /// Login attempts allowed per client address, for any account, within `throttle_window`.
    pub max_failed_logins_per_ip: i64,
    /// Window of the failed-login counter, seconds.
    pub throttle_window: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            code: 300,
            access_token: 3600,
            refresh_token: 30 * 24 * 3600,
            refresh_reuse_grace: 5,
            session: 7 * 24 * 3600,
            login_transaction: 1800,
            max_failed_logins: 5,
            max_failed_logins_per_account: 20,
            max_failed_logins_per_ip: 100,
            throttle_window: 900,
        }
    }
}

/// The server's public base URL, without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Parses an absolute http(s) URL with no query or fragment.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let url = Url::parse(text).with_context(|| format!("invalid public URL {text:?}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("public URL {text:?} must use http or https");
        }
        if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            bail!("public URL {text:?} must not have a query or fragment");
        }
        Ok(PublicUrl(url.as_str().trim_end_matches('/').to_string()))
    }

    /// The URL as text, no trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// The issuer of `tenant`.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{}", self.0, tenant)
    }

    /// The URL path prefix of the public URL (for cookie paths behind a reverse proxy).
    pub fn path(&self) -> String {
        Url::parse(&self.0)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }
}

/// The SQLite file a `sqlite:` URL points at, if it is one.
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Reads `WARDSTONE_MASTER_KEY`, or for SQLite reads/creates a key file beside the database.
pub fn load_master_key(env_value: Option<&str>, database_url: &str) -> anyhow::Result<MasterKey> {
    if let Some(text) = env_value {
        return MasterKey::from_base64(text).context("WARDSTONE_MASTER_KEY is invalid");
    }
    let Some(db_path) = sqlite_path(database_url) else {
        bail!("WARDSTONE_MASTER_KEY must be set when the database is not a local SQLite file");
    };
    let key_path = key_file_beside(&db_path);
    if key_path.exists() {
        let text = std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read master key file {}", key_path.display()))?;
        return MasterKey::from_base64(&text)
            .with_context(|| format!("master key file {} is invalid", key_path.display()));
    }
    if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    let key = MasterKey::generate();
    write_private_file(&key_path, key.to_base64().as_bytes())
        .with_context(|| format!("cannot write master key file {}", key_path.display()))?;
    tracing::warn!(
        path = %key_path.display(),
        "WARDSTONE_MASTER_KEY is not set: generated a master key file; production deployments must set WARDSTONE_MASTER_KEY"
    );
    Ok(key)
}

/// `wardstone.db` → `wardstone.db.key`.
pub fn key_file_beside(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".key");
    db_path.with_file_name(name)
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_drops_trailing_slash_and_rejects_queries() {
        assert_eq!(
            PublicUrl::parse("http://a:1/").unwrap().as_str(),
            "http://a:1"
        );
        assert!(PublicUrl::parse("ftp://a").is_err());
        assert!(PublicUrl::parse("http://a/?x=1").is_err());
        assert_eq!(
            PublicUrl::parse("https://id.example/auth/")
                .unwrap()
                .issuer("acme"),
            "https://id.example/auth/t/acme"
        );
    }

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(
            sqlite_path("sqlite://x/y.db?mode=rwc"),
            Some(PathBuf::from("x/y.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
        assert_eq!(
            key_file_beside(Path::new("d/w.db")),
            PathBuf::from("d/w.db.key")
        );
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/w.db", dir.path().display());
        let k1 = load_master_key(None, &url).unwrap();
        let k2 = load_master_key(None, &url).unwrap();
        assert_eq!(k1.to_base64(), k2.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join("sub/w.db.key")).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        assert!(load_master_key(None, "postgres://h/db").is_err());
    }
}
