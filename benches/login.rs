//! The whole-login benchmark: `cargo bench --bench login`.
//!
//! Starts the release server as its own process on a fresh SQLite database, creates its own
//! tenants, and drives real HTTP at concurrency 16 (the load generator shares the machine):
//! - logins with an SSO session (`/authorize` → rules → 303 with a code) for tenants with 0,
//!   1, 5 and 10 SDK sample rules (distinct modules), 1 and 3 JavaScript rules (distinct
//!   scripts, the same add-roles logic) and 1 and 5 post-login Actions (distinct, deployed and
//!   bound, `sample-rules/actions/post-login-add-roles.js`), in interleaved rounds so that the
//!   ratios come from one run;
//! - the floors those rows stand on: a tenant with one hand-written WAT rule that only adds a
//!   static claim (`sample-rules/wat/static-claim.wat`: the sandbox and the host's work around
//!   a rule, with no guest work to speak of) and one with an empty post-login action (the fresh
//!   JavaScript runtime instance and the trigger's host work); `BENCH_ONLY=wat5` or
//!   `emptyaction5` measure five of them;
//! - code exchanges at the token endpoint (client_secret_basic + PKCE), which sign an access
//!   token and an ID token, for tenants signing with RS256, ES256 and EdDSA (their codes come
//!   from logins outside the timed phases), in the same rounds.
//!
//! - the same code exchanges at node-oidc-provider 9 (`benches/peer`, from npm, in memory, RS256
//!   ID token), in the same rounds: its row and Wardstone's ratio to it (skipped with one line
//!   where Node is missing; with `BENCH_ONLY`, only when `BENCH_PEER` is set).
//!
//! Environment: `BENCH_SECONDS` per measured phase (default 5), `BENCH_ROUNDS` (default 3),
//! `BENCH_CONCURRENCY` (default 16), `BENCH_SERVER_BINARY` (a saved server binary to run instead
//! of building one: A/B pairs), `BENCH_ADD_ROLES_WASM` (another build of the add-roles sample for
//! the SDK rows: A/B pairs of SDK builds). Prints a Markdown table for the README.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use wardstone::domain::SigningAlg;
use wardstone::rules::Upload;

const PASSWORD: &str = "bench password 123";
/// The peer's one client (client_secret_basic).
const PEER_CLIENT: (&str, &str) = (
    "bench-peer-client",
    "bench-peer-secret-bench-peer-secret-0123",
);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct TenantSetup {
    name: String,
    client_id: String,
    client_secret: String,
    /// The tenant's Management API client.
    mgmt: (String, String),
    /// Its first rule, if any.
    first_rule: Option<String>,
}

fn authorize_url(base: &str, t: &TenantSetup) -> String {
    let mut url = url::Url::parse(&format!("{base}/t/{}/authorize", t.name)).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", t.client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", "bench-state"),
        ("nonce", "bench-nonce"),
        ("code_challenge", challenge().as_str()),
        ("code_challenge_method", "S256"),
    ]);
    url.to_string()
}

/// What a tenant runs at login: SDK rules, JavaScript rules, post-login actions, or the
/// floors under them (a WAT rule, an empty action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sdk,
    Js,
    Action,
    /// The floor for a wasm rule: a hand-written WAT rule that returns a fixed patch.
    Wat,
    /// The floor for actions: an empty post-login action (the fresh runtime instance, the
    /// handler's call and the trigger's host work).
    EmptyAction,
}

/// A tenant's rules: `count` distinct rules (or actions) of one kind: add-roles, or a floor.
#[derive(Debug, Clone, Copy)]
struct RuleSet {
    count: usize,
    kind: Kind,
}

impl RuleSet {
    fn sdk(count: usize) -> Self {
        RuleSet {
            count,
            kind: Kind::Sdk,
        }
    }

    fn js(count: usize) -> Self {
        RuleSet {
            count,
            kind: Kind::Js,
        }
    }

    fn actions(count: usize) -> Self {
        RuleSet {
            count,
            kind: Kind::Action,
        }
    }

    fn parse(text: &str) -> Self {
        let kinds = [("wat", Kind::Wat), ("emptyaction", Kind::EmptyAction)];
        for (prefix, kind) in kinds {
            if let Some(n) = text.strip_prefix(prefix) {
                let count = n.parse().expect("BENCH_ONLY=watN or emptyactionN");
                return RuleSet { count, kind };
            }
        }
        if let Some(n) = text.strip_prefix("js") {
            return RuleSet::js(n.parse().expect("BENCH_ONLY=jsN"));
        }
        if let Some(n) = text.strip_prefix("action") {
            return RuleSet::actions(n.parse().expect("BENCH_ONLY=actionN"));
        }
        RuleSet::sdk(
            text.parse()
                .expect("BENCH_ONLY is a rule count, jsN, actionN, watN or emptyactionN"),
        )
    }

    fn tag(self) -> &'static str {
        match self.kind {
            Kind::Sdk => "",
            Kind::Js => "js",
            Kind::Action => "action",
            Kind::Wat => "wat",
            Kind::EmptyAction => "emptyaction",
        }
    }

    fn label(self) -> String {
        match self.kind {
            Kind::Sdk => format!("{} SDK rule(s)", self.count),
            Kind::Js => format!("{} JavaScript rule(s)", self.count),
            Kind::Action => format!("{} post-login action(s)", self.count),
            Kind::Wat => format!("{} WAT rule(s) (floor)", self.count),
            Kind::EmptyAction => format!("{} empty action(s) (floor)", self.count),
        }
    }
}

/// Creates tenants with `rules` SDK rules each and signing with `alg`, through the service
/// layer on the database the server will open.
async fn setup(
    database_url: &str,
    master_key: &str,
    specs: &[(RuleSet, SigningAlg)],
) -> Vec<TenantSetup> {
    let (admin, store) = admin(database_url, master_key, Default::default()).await;
    // `BENCH_ADD_ROLES_WASM`: another build of the sample (an older SDK's) for A/B runs.
    let add_roles = match std::env::var_os("BENCH_ADD_ROLES_WASM") {
        Some(path) => std::fs::read(&path).expect("BENCH_ADD_ROLES_WASM is readable"),
        None => sample("add-roles"),
    };
    let mut out = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let add_roles_js = std::fs::read_to_string(root.join("sample-rules/js/add-roles.js")).unwrap();
    let add_roles_action =
        std::fs::read_to_string(root.join("sample-rules/actions/post-login-add-roles.js")).unwrap();
    let static_claim = wat::parse_file(root.join("sample-rules/wat/static-claim.wat")).unwrap();
    for &(set, alg) in specs {
        let n = set.count;
        let name = format!(
            "rules{n}{}-{}",
            set.tag(),
            alg.as_str().to_ascii_lowercase()
        );
        let created = admin.create_tenant(&name, alg).await.unwrap();
        let mgmt = (
            created.management.client_id.clone(),
            created.management.client_secret.clone(),
        );
        let mut first_rule = None;
        let tenant = admin.resolve(&name).await.unwrap();
        let client = admin
            .create_client(&tenant, "Bench App", &[CALLBACK.to_string()], false)
            .await
            .unwrap();
        for i in 0..16 {
            admin
                .create_user(
                    &tenant,
                    &format!("user{i}@example.com"),
                    PASSWORD,
                    Some("Bench User"),
                    true,
                )
                .await
                .unwrap();
        }
        if matches!(set.kind, Kind::Action | Kind::EmptyAction) {
            use wardstone::service::actions::{
                BindingInput, BindingRef, BindingsInput, NewActionInput, TriggerRef,
            };
            let mut bindings = Vec::new();
            for i in 0..n {
                let a = admin
                    .create_action(
                        &tenant,
                        NewActionInput {
                            name: format!("add roles {i}"),
                            supported_triggers: vec![TriggerRef {
                                id: "post-login".into(),
                                version: None,
                            }],
                            // Distinct sources, as a tenant's are: each its own bytecode.
                            code: if set.kind == Kind::EmptyAction {
                                format!("exports.onExecutePostLogin = async () => {{}};\n// {name}-{i}\n")
                            } else {
                                format!("{add_roles_action}\n// {name}-{i}\n")
                            },
                            dependencies: vec![],
                            runtime: None,
                            secrets: vec![],
                            modules: None,
                        },
                    )
                    .await
                    .unwrap();
                admin.deploy_action(&tenant, &a.id).await.unwrap();
                bindings.push(BindingInput {
                    reference: BindingRef {
                        kind: "action_id".into(),
                        value: a.id,
                    },
                    display_name: None,
                    secrets: None,
                });
            }
            admin
                .set_bindings(&tenant, "post-login", BindingsInput { bindings })
                .await
                .unwrap();
        }
        for i in (0..n).filter(|_| !matches!(set.kind, Kind::Action | Kind::EmptyAction)) {
            let upload = if set.kind == Kind::Js {
                // Distinct scripts, as a tenant's are: each its own bytecode.
                Upload::Script(format!("{add_roles_js}\n// {name}-{i}\n"))
            } else if set.kind == Kind::Wat {
                Upload::Module(distinct(&static_claim, &format!("{name}-{i}")))
            } else {
                Upload::Module(distinct(&add_roles, &format!("{name}-{i}")))
            };
            let rule = admin
                .add_rule_upload(
                    &tenant,
                    &format!("add roles {i}"),
                    upload,
                    None,
                    true,
                    Default::default(),
                )
                .await
                .unwrap();
            first_rule.get_or_insert(rule.id);
        }
        out.push(TenantSetup {
            name,
            client_id: client.client_id,
            client_secret: client.client_secret.unwrap(),
            mgmt,
            first_rule,
        });
    }
    store.close().await;
    out
}

/// `concurrency` browsers, each signed in once to the tenant.
async fn signed_in_browsers(
    base: &str,
    t: &TenantSetup,
    concurrency: usize,
) -> Vec<reqwest::Client> {
    let mut out = Vec::new();
    for i in 0..concurrency {
        let http = browser();
        let landed = login(
            &http,
            &authorize_url(base, t),
            &format!("user{i}@example.com"),
            PASSWORD,
        )
        .await;
        assert!(
            query(&landed).contains_key("code"),
            "login failed: {landed}"
        );
        out.push(http);
    }
    out
}

/// Logins with a session for `seconds`; returns the samples and the codes issued.
async fn logins(
    url: Arc<String>,
    browsers: &[reqwest::Client],
    seconds: Duration,
) -> (Samples, Vec<String>) {
    let started = Instant::now();
    let tasks: Vec<_> = browsers
        .iter()
        .cloned()
        .map(|http| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut s = Samples::default();
                let mut codes = Vec::new();
                while started.elapsed() < seconds {
                    let t = Instant::now();
                    let resp = http.get(url.as_str()).send().await.unwrap();
                    let landed = resp
                        .headers()
                        .get("location")
                        .and_then(|l| l.to_str().ok())
                        .map(String::from);
                    match landed.map(|l| query(&l)).and_then(|mut q| q.remove("code")) {
                        Some(code) => {
                            s.ok += 1;
                            s.latencies.push(t.elapsed());
                            codes.push(code);
                        }
                        None => s.errors += 1,
                    }
                }
                (s, codes)
            })
        })
        .collect();
    let mut all = Samples::default();
    let mut codes = Vec::new();
    for t in tasks {
        let (s, c) = t.await.unwrap();
        all.merge(s);
        codes.extend(c);
    }
    all.elapsed = started.elapsed();
    (all, codes)
}

/// Exchanges `codes` at the token endpoint with `concurrency` clients.
/// Exchanges `codes` at `token_url` (Wardstone's or the peer's) as `client` (id, secret).
async fn exchanges(
    token_url: String,
    client: (&str, &str),
    codes: Vec<String>,
    concurrency: usize,
    seconds: Duration,
) -> Samples {
    let codes = Arc::new(std::sync::Mutex::new(codes));
    let token_url = Arc::new(token_url);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (codes, token_url) = (codes.clone(), token_url.clone());
            let (id, secret) = (client.0.to_string(), client.1.to_string());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut s = Samples::default();
                while started.elapsed() < seconds {
                    let Some(code) = codes.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let resp = exchange_code(&http, &token_url, (&id, &secret), &code)
                        .await
                        .unwrap();
                    if resp.status() == 200 && resp.bytes().await.is_ok() {
                        s.ok += 1;
                        s.latencies.push(t.elapsed());
                    } else {
                        s.errors += 1;
                    }
                }
                s
            })
        })
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.unwrap());
    }
    all.elapsed = started.elapsed();
    all
}

/// `BENCH_REPLAY=1`: logins of one tenant (1 SDK rule) alone, then while another tenant replays
/// a candidate on its 200 newest recorded logins back to back (SPEC §18: a replay must not slow
/// anyone's login).
fn replay_under_load(seconds: Duration, rounds: usize, concurrency: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/bench.db", dir.path().display());
        let master_key = random_master_key();
        let specs = [(RuleSet::sdk(1), SigningAlg::Es256), (RuleSet::sdk(1), SigningAlg::Rs256)];
        let tenants = setup(&database_url, &master_key, &specs).await;
        let (server, _) = Server::start(&database_url, &master_key, &[]);
        let base = server.base.clone();
        let (measured, replayer) = (&tenants[0], &tenants[1]);
        let issuer = format!("{base}/t/{}", replayer.name);
        let token = management_token(&issuer, &replayer.mgmt.0, &replayer.mgmt.1).await;
        let http = reqwest::Client::new();
        let api = |path: &str| format!("{base}/t/{}/api/v2{path}", replayer.name);
        let resp = http
            .patch(api("/tenants/settings"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"recording": {"enabled": true, "keep": 500}}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "recording on");
        let measured_browsers = signed_in_browsers(&base, measured, concurrency).await;
        let replayer_browsers = signed_in_browsers(&base, replayer, concurrency).await;
        let url = Arc::new(authorize_url(&base, measured));
        logins(url.clone(), &measured_browsers, Duration::from_secs(1)).await;
        let (recorded, _) = logins(
            Arc::new(authorize_url(&base, replayer)),
            &replayer_browsers,
            Duration::from_secs(2),
        )
        .await;
        eprintln!("recorded {} logins of the replaying tenant", recorded.ok);
        let candidate = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            distinct(&sample("add-roles"), "candidate"),
        );
        let replay_path = api(&format!(
            "/rules/{}/replay",
            replayer.first_rule.as_deref().unwrap()
        ));
        let (mut alone, mut loaded) = (Vec::new(), Vec::new());
        let mut replays = 0;
        let mut replay_ms = Vec::new();
        for round in 0..rounds {
            let s = logins(url.clone(), &measured_browsers, seconds).await.0;
            eprintln!("round {round}: alone:           {:>7.0} logins/s  p50 {}  p99 {}", s.per_second(), ms(s.quantile(0.5)), ms(s.quantile(0.99)));
            alone.push(s);
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let replaying = {
                let (stop, http, token, path, candidate) =
                    (stop.clone(), http.clone(), token.clone(), replay_path.clone(), candidate.clone());
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let t = Instant::now();
                        let resp = http
                            .post(&path)
                            .bearer_auth(&token)
                            .json(&serde_json::json!({"last": 200, "wasm": candidate}))
                            .send()
                            .await
                            .unwrap();
                        assert!(resp.status().is_success(), "replay: {}", resp.text().await.unwrap_or_default());
                        done.push(t.elapsed());
                    }
                    done
                })
            };
            let s = logins(url.clone(), &measured_browsers, seconds).await.0;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let done = replaying.await.unwrap();
            replays += done.len();
            replay_ms.extend(done);
            eprintln!("round {round}: while replaying: {:>7.0} logins/s  p50 {}  p99 {}", s.per_second(), ms(s.quantile(0.5)), ms(s.quantile(0.99)));
            loaded.push(s);
        }
        // Rates per round (merged samples keep no elapsed time), latencies over all rounds.
        let merged = |rs: Vec<Samples>| {
            let rate = rs.iter().map(Samples::per_second).sum::<f64>() / rs.len().max(1) as f64;
            let mut m = Samples::default();
            for s in rs {
                m.merge(s);
            }
            (rate, m)
        };
        let ((alone_rate, alone), (loaded_rate, loaded)) = (merged(alone), merged(loaded));
        replay_ms.sort();
        println!("\n| logins of one tenant (1 SDK rule), c={concurrency}, {rounds}×{}s | per second | p50 | p99 |\n|---|---|---|---|", seconds.as_secs());
        println!("| alone | {alone_rate:.0} | {} | {} |", ms(alone.quantile(0.5)), ms(alone.quantile(0.99)));
        println!(
            "| while another tenant replays 200 logins back to back ({replays} replays, median {:.0} ms each) | {:.0} | {} ({:.2}×) | {} ({:.2}×) |",
            replay_ms.get(replay_ms.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e3),
            loaded_rate,
            ms(loaded.quantile(0.5)),
            loaded.quantile(0.5).as_secs_f64() / alone.quantile(0.5).as_secs_f64(),
            ms(loaded.quantile(0.99)),
            loaded.quantile(0.99).as_secs_f64() / alone.quantile(0.99).as_secs_f64(),
        );
        server.stop();
    });
}

fn main() {
    if std::env::var_os("BENCH_REPLAY").is_some() {
        return replay_under_load(
            Duration::from_secs(env_or("BENCH_SECONDS", 5)),
            env_or("BENCH_ROUNDS", 3) as usize,
            env_or("BENCH_CONCURRENCY", 16) as usize,
        );
    }
    let seconds = Duration::from_secs(env_or("BENCH_SECONDS", 5));
    let rounds = env_or("BENCH_ROUNDS", 3) as usize;
    let concurrency = env_or("BENCH_CONCURRENCY", 16) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/bench.db", dir.path().display());
        let master_key = random_master_key();
        // BENCH_ONLY=5 measures only the tenant with 5 SDK rules, BENCH_ONLY=js3 the one with
        // 3 JavaScript rules (for profiling); BENCH_ONLY=0,action5 those two, in one run;
        // wat5 and emptyaction5 the floors under them.
        let rule_counts: Vec<RuleSet> = match std::env::var("BENCH_ONLY") {
            Ok(n) => n.split(',').map(|n| RuleSet::parse(n.trim())).collect(),
            Err(_) => {
                let mut sets: Vec<RuleSet> = [0, 1, 5, 10].map(RuleSet::sdk).to_vec();
                if wardstone::rules::js::AVAILABLE {
                    sets.extend([1, 3].map(RuleSet::js));
                    sets.extend([1, 5].map(RuleSet::actions));
                    // The floors: what the sandbox costs with (almost) nothing run in it.
                    sets.push(RuleSet { count: 1, kind: Kind::EmptyAction });
                }
                sets.push(RuleSet { count: 1, kind: Kind::Wat });
                sets
            }
        };
        let mut specs: Vec<(RuleSet, SigningAlg)> =
            rule_counts.iter().map(|&n| (n, SigningAlg::Rs256)).collect();
        // Tenants only for the exchange rows: the first rule tenant (no rules) is the RS256 one.
        let exchange_algs = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];
        specs.extend([
            (RuleSet::sdk(0), SigningAlg::Es256),
            (RuleSet::sdk(0), SigningAlg::EdDsa),
        ]);
        let tenants = setup(&database_url, &master_key, &specs).await;
        let (server, _) = Server::start(&database_url, &master_key, &[]);
        eprintln!("server pid {}", server.pid);
        let base = server.base.clone();
        // The peer, started only when the exchange rows are measured.
        let peer = (std::env::var_os("BENCH_ONLY").is_none() || std::env::var_os("BENCH_PEER").is_some())
            .then(|| Server::start_peer(PEER_CLIENT.0, PEER_CLIENT.1, CALLBACK, &challenge()))
            .flatten();
        let mut browsers = Vec::new();
        for t in &tenants {
            browsers.push(signed_in_browsers(&base, t, concurrency).await);
        }
        // Warm-up: every tenant's rules compiled or loaded, connections open.
        for (t, b) in tenants.iter().zip(&browsers) {
            logins(Arc::new(authorize_url(&base, t)), b, Duration::from_secs(1)).await;
        }
        let login_tenants = rule_counts.len();
        let mut login_rounds: Vec<Vec<Samples>> = vec![Vec::new(); login_tenants];
        let mut exchange_rounds: Vec<Vec<Samples>> = vec![Vec::new(); exchange_algs.len()];
        let mut peer_rounds: Vec<Samples> = Vec::new();
        for round in 0..rounds {
            let mut fresh_codes = Vec::new();
            for (i, (t, b)) in tenants.iter().zip(&browsers).take(login_tenants).enumerate() {
                let cpu = server.cpu();
                let (mut s, codes) = logins(Arc::new(authorize_url(&base, t)), b, seconds).await;
                s.server_cpu = server.cpu() - cpu;
                eprintln!(
                    "round {round}: {:>10}: {:>7.0} logins/s  p50 {}  p99 {}  server CPU {:.0} µs/login  errors {}",
                    rule_counts[i].label(), s.per_second(), ms(s.quantile(0.5)), ms(s.quantile(0.99)),
                    s.cpu_per_ok().as_secs_f64() * 1e6, s.errors
                );
                if i == 0 {
                    fresh_codes = codes;
                }
                login_rounds[i].push(s);
            }
            // Codes for the other algorithms' tenants (untimed; twice as long, as their
            // exchanges outrun the logins that mint codes).
            let mut codes_per_alg = vec![fresh_codes];
            for (t, b) in tenants.iter().zip(&browsers).skip(login_tenants) {
                codes_per_alg.push(logins(Arc::new(authorize_url(&base, t)), b, seconds * 2).await.1);
            }
            let exchange_tenants =
                std::iter::once(&tenants[0]).chain(tenants.iter().skip(login_tenants));
            for (i, (t, codes)) in exchange_tenants.zip(codes_per_alg).enumerate() {
                let cpu = server.cpu();
                let token_url = format!("{base}/t/{}/oauth/token", t.name);
                let client = (t.client_id.as_str(), t.client_secret.as_str());
                let mut s = exchanges(token_url, client, codes, concurrency, seconds).await;
                s.server_cpu = server.cpu() - cpu;
                eprintln!(
                    "round {round}: code exchanges {}: {:>7.0}/s  p50 {}  p99 {}  server CPU {:.0} µs  errors {}",
                    exchange_algs[i], s.per_second(), ms(s.quantile(0.5)), ms(s.quantile(0.99)),
                    s.cpu_per_ok().as_secs_f64() * 1e6, s.errors
                );
                exchange_rounds[i].push(s);
            }
            if let Some(peer) = &peer {
                let codes: Vec<String> = reqwest::get(format!("{}/bench/codes?n={}", peer.base, 5_000 * seconds.as_secs()))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let cpu = peer.cpu();
                let mut s = exchanges(format!("{}/token", peer.base), (PEER_CLIENT.0, PEER_CLIENT.1), codes, concurrency, seconds).await;
                s.server_cpu = peer.cpu() - cpu;
                eprintln!(
                    "round {round}: code exchanges node-oidc-provider RS256: {:>7.0}/s  p50 {}  p99 {}  peer CPU {:.0} µs  errors {}",
                    s.per_second(), ms(s.quantile(0.5)), ms(s.quantile(0.99)),
                    s.cpu_per_ok().as_secs_f64() * 1e6, s.errors
                );
                peer_rounds.push(s);
            }
        }
        let median_rate = |rs: &[Samples]| {
            let mut r: Vec<f64> = rs.iter().map(Samples::per_second).collect();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap());
            r[r.len() / 2]
        };
        let merged = |rs: &[Samples]| {
            let mut m = Samples::default();
            for s in rs {
                m.merge(s.clone());
            }
            m
        };
        let base_rate = median_rate(&login_rounds[0]);
        println!(
            "\n| whole login, c={concurrency}, {rounds}×{}s rounds | per second (median round) | cost vs no rules | p50 | p99 | server CPU per request | errors |\n|---|---|---|---|---|---|---|",
            seconds.as_secs()
        );
        for (i, rs) in login_rounds.iter().enumerate() {
            let rate = median_rate(rs);
            let m = merged(rs);
            println!(
                "| login with a session, {} | {:.0} | {:.2}× | {} | {} | {:.0} µs | {} |",
                rule_counts[i].label(), rate, base_rate / rate, ms(m.quantile(0.5)), ms(m.quantile(0.99)),
                m.cpu_per_ok().as_secs_f64() * 1e6, m.errors
            );
        }
        // Where the server ran the rows' rules and actions (its own count, whole bench): on the
        // request's thread, or handed to the executor.
        if let Ok(resp) = reqwest::get(format!("{base}/metrics")).await
            && let Ok(text) = resp.text().await
        {
            let places: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("wardstone_rule_runs_total"))
                .collect();
            println!("\nrule and action runs by place: {}\n", places.join(", "));
        }
        let rs256 = median_rate(&exchange_rounds[0]);
        for (alg, rs) in exchange_algs.iter().zip(&exchange_rounds) {
            let m = merged(rs);
            let rate = median_rate(rs);
            println!(
                "| code exchange, {alg} (ID + access token) | {:.0} | {:.2}× RS256's rate | {} | {} | {:.0} µs | {} |",
                rate, rate / rs256, ms(m.quantile(0.5)), ms(m.quantile(0.99)),
                m.cpu_per_ok().as_secs_f64() * 1e6, m.errors
            );
        }
        if !peer_rounds.is_empty() {
            let peer_rate = median_rate(&peer_rounds);
            let m = merged(&peer_rounds);
            println!(
                "| code exchange, node-oidc-provider 9 in memory, RS256 (ID token; opaque access token) | {:.0} | peer | {} | {} | {:.0} µs | {} |",
                peer_rate, ms(m.quantile(0.5)), ms(m.quantile(0.99)),
                m.cpu_per_ok().as_secs_f64() * 1e6, m.errors
            );
            for (alg, rs) in exchange_algs.iter().zip(&exchange_rounds) {
                println!(
                    "| Wardstone ÷ node-oidc-provider, code exchanges, {alg} | {:.2}× | | | | | |",
                    median_rate(rs) / peer_rate
                );
            }
        }
        if let Some(peer) = peer {
            peer.stop();
        }
        server.stop();
    });
}
