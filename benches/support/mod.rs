//! What the benchmarks share: building the sample rules, starting the release server as its
//! own process, a cookie-keeping HTTP client that logs in like a browser, and statistics.
#![allow(dead_code)] // each bench uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Every bench client's redirect URI (nothing listens there: the code is read off the 303).
pub const CALLBACK: &str = "http://127.0.0.1:9/callback";
/// Every bench login's PKCE verifier.
pub const VERIFIER: &str = "bench-verifier-bench-verifier-bench-verifier-0123456789";

/// The S256 challenge of [`VERIFIER`].
pub fn challenge() -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER))
}

/// Exchanges `code` at `token_url` as `client` (id, secret: client_secret_basic) with
/// [`VERIFIER`], as a regular web app does after its callback.
pub async fn exchange_code(
    http: &reqwest::Client,
    token_url: &str,
    client: (&str, &str),
    code: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(token_url)
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
}

/// The service layer on `database_url`'s store, for set-up before the server starts (rule
/// engine with `limits`). Close the store when done, so the server sees every write.
pub async fn admin(
    database_url: &str,
    master_key: &str,
    limits: wardstone::rules::Limits,
) -> (wardstone::service::Admin, wardstone::store::Store) {
    let store = wardstone::startup::open_store(database_url, 4)
        .await
        .unwrap();
    let key = wardstone::crypto::MasterKey::from_base64(master_key).unwrap();
    let url = wardstone::config::PublicUrl::parse("http://127.0.0.1:1").unwrap();
    let admin = wardstone::service::Admin::standalone(store.clone(), key, url, limits).unwrap();
    (admin, store)
}

/// Builds the sample rules for wasm32 (as a rule author would) and returns their folder.
pub fn build_samples() -> PathBuf {
    let dir = root().join("sample-rules");
    let status = cargo()
        .current_dir(&dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--locked",
            "--target-dir",
            "target",
        ])
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the sample rules failed");
    dir.join("target/wasm32-unknown-unknown/release")
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(build_samples().join(format!("{}.wasm", name.replace('-', "_"))))
        .expect("the sample rule was built")
}

/// `module` made distinct by a custom section naming `tag`: same code, another SHA-256, so the
/// server treats it as another module (as it would a tenant's own build).
pub fn distinct(module: &[u8], tag: &str) -> Vec<u8> {
    let name = b"wardstone-bench";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = module.to_vec();
    out.push(0); // custom section id
    let mut len = payload.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}

/// Builds the release server binary and returns its path.
pub fn server_binary() -> PathBuf {
    // A/B runs point at two saved binaries instead (and skip the build).
    if let Some(binary) = std::env::var_os("BENCH_SERVER_BINARY") {
        return PathBuf::from(binary);
    }
    let status = cargo()
        .current_dir(root())
        .args(["build", "--release", "--locked", "--bin", "wardstone"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the server failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    target.join("release/wardstone")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The release server running as its own process.
pub struct Server {
    child: Child,
    pub base: String,
    pub pid: u32,
}

impl Server {
    /// Starts `wardstone serve` on `database_url` with `master_key` and extra flags, and waits
    /// until `/readyz` answers. Returns it and how long that took.
    pub fn start(database_url: &str, master_key: &str, extra: &[&str]) -> (Server, Duration) {
        let binary = server_binary();
        let port = free_port();
        let started = Instant::now();
        let child = Command::new(binary)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(
                std::env::var("BENCH_SERVER_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("WARDSTONE_DATABASE_URL", database_url)
            .env("WARDSTONE_MASTER_KEY", master_key)
            .env(
                "WARDSTONE_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("the server starts");
        let pid = child.id();
        let base = format!("http://127.0.0.1:{port}");
        let server = Server { child, base, pid };
        let ready = format!("{}/readyz", server.base);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = write!(s, "GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{ready} never answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = started.elapsed();
        (server, took)
    }

    /// Starts the token-endpoint peer, node-oidc-provider (`benches/peer/server.js`), with one
    /// client, and waits until it listens. `None`, after one line on stderr, where Node or the
    /// peer's npm packages cannot be had: the benchmark then runs without its peer row.
    pub fn start_peer(
        client_id: &str,
        secret: &str,
        redirect_uri: &str,
        challenge: &str,
    ) -> Option<Server> {
        use std::io::BufRead;
        let dir = root().join("benches/peer");
        let skip = |why: &str| {
            eprintln!("peer: node-oidc-provider skipped ({why})");
            None
        };
        if Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            return skip("node is not installed");
        }
        if !dir.join("node_modules/oidc-provider").exists() {
            let installed = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .status();
            if !matches!(installed, Ok(s) if s.success()) {
                return skip("npm ci in benches/peer failed");
            }
        }
        let port = free_port();
        let mut child = Command::new("node")
            .arg("server.js")
            .current_dir(&dir)
            .env("PEER_PORT", port.to_string())
            .env("CLIENT_ID", client_id)
            .env("CLIENT_SECRET", secret)
            .env("REDIRECT_URI", redirect_uri)
            .env("CODE_CHALLENGE", challenge)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        std::io::BufReader::new(stdout).read_line(&mut line).ok()?;
        if !line.starts_with("listening") {
            let _ = child.kill();
            return skip("server.js did not start");
        }
        let pid = child.id();
        Some(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            pid,
        })
    }

    /// Resident memory of the server process, bytes.
    pub fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    /// CPU time the server process has used so far (user + system).
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of /proc/PID/stat; 11 and 12 after the ')'.
        let hz = 100; // USER_HZ on Linux
        Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
    }

    /// Stops the server as an orchestrator would (SIGTERM, then a kill after 10 s).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn random_master_key() -> String {
    use base64::Engine;
    let bytes: [u8; 32] =
        std::array::from_fn(|i| (uuid::Uuid::new_v4().as_bytes()[i % 16]) ^ (i as u8));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Latencies of one kind of request, and how many were answered as expected.
#[derive(Default, Clone)]
pub struct Samples {
    pub ok: u64,
    pub errors: u64,
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    /// Server CPU time spent meanwhile.
    pub server_cpu: Duration,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.server_cpu += other.server_cpu;
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
    }

    /// Server CPU per successful request.
    pub fn cpu_per_ok(&self) -> Duration {
        self.server_cpu / (self.ok.max(1) as u32)
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l.sort();
        l[((l.len() - 1) as f64 * q).round() as usize]
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A browser: keeps cookies and does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(4)
        .build()
        .unwrap()
}

pub fn location(resp: &reqwest::Response) -> String {
    let loc = resp
        .headers()
        .get("location")
        .unwrap_or_else(|| {
            panic!(
                "{} answered {} without a redirect",
                resp.url(),
                resp.status()
            )
        })
        .to_str()
        .unwrap();
    resp.url().join(loc).unwrap().to_string()
}

/// The fields of the first form in `html` and its action resolved against `page`.
pub fn form(html: &str, page: &str) -> (String, Vec<(String, String)>) {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let input_sel = scraper::Selector::parse("input").unwrap();
    let form = doc.select(&form_sel).next().expect("the page has a form");
    let action = url::Url::parse(page)
        .unwrap()
        .join(form.value().attr("action").unwrap_or(""))
        .unwrap()
        .to_string();
    let fields = form
        .select(&input_sel)
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_string(),
                i.value().attr("value").unwrap_or("").to_string(),
            ))
        })
        .collect();
    (action, fields)
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_string(), value.to_string()));
}

/// Logs in and consents from `authorize_url` like a person would; returns the final redirect.
pub async fn login(
    http: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    password: &str,
) -> String {
    let mut next = location(&http.get(authorize_url).send().await.unwrap());
    if next.contains("/login?tx=") {
        let html = http.get(&next).send().await.unwrap().text().await.unwrap();
        let (action, mut fields) = form(&html, &next);
        set(&mut fields, "username", email);
        set(&mut fields, "password", password);
        next = location(&http.post(&action).form(&fields).send().await.unwrap());
    }
    if next.contains("/consent?tx=") {
        let html = http.get(&next).send().await.unwrap().text().await.unwrap();
        let (action, mut fields) = form(&html, &next);
        set(&mut fields, "decision", "allow");
        next = location(&http.post(&action).form(&fields).send().await.unwrap());
    }
    next
}

pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A Management API token of the tenant at `issuer` (`{base}/t/{name}`), from its management
/// client.
pub async fn management_token(issuer: &str, client_id: &str, client_secret: &str) -> String {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(client_id, Some(client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", &format!("{issuer}/api/v2/")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"]
        .as_str()
        .expect("a management token")
        .to_string()
}
