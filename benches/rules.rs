//! Rule execution benchmark: `cargo bench --bench rules`.
//!
//! Measures, on the realistic input in `sample-rules/example-input.json` with every field a login
//! adds (≈ 2.3 KB):
//! - one execution of the `add-roles` SDK rule in a fresh instance (instantiate + write input +
//!   run + read and parse the output) — the number the ≤ 15 µs target is about;
//! - the same with a minimal hand-written WAT rule (the host's floor);
//! - pipelines of 1, 5 and 10 rules, as a login runs them (merge patches, host-owned fields,
//!   restricted claims);
//! - the same logic as a native Rust function (parse input, run, serialize, parse output).
//!
//! Prints a Markdown table (median, p99, fuel) to paste into the README.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rules_sdk::{Configuration, Context, Deny, User, Value};
use support::{build_samples, distinct, root};
use wardstone::rules::trigger::bench_post_login;
use wardstone::rules::{CodeKind, CompiledRule, Limits, RuleEngine, TriggerOutcome};

const CLAIM: &str = "https://wardstone.dev/roles";

/// The `add-roles` sample, compiled natively.
fn add_roles(user: &mut User, context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
    let roles: Vec<Value> = match user.app_metadata.get("roles") {
        Some(Value::Array(roles)) => roles.iter().filter(|r| r.is_string()).cloned().collect(),
        _ => Vec::new(),
    };
    context.id_token.set_claim(CLAIM, roles.clone());
    context.access_token.set_claim(CLAIM, roles);
    Ok(())
}

struct Stats {
    median: Duration,
    p99: Duration,
    /// Minor page faults of the process per run: a fresh instance that re-faults its memory
    /// image pays for it here, not in fuel.
    faults: f64,
}

/// The process's minor page faults so far.
fn minor_faults() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..iterations / 10 {
        f();
    }
    let faults_before = minor_faults();
    let samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    Stats::of(samples, minor_faults() - faults_before)
}

impl Stats {
    /// Median and p99 of `samples`, and `faults` spread over as many runs.
    fn of(mut samples: Vec<Duration>, faults: i64) -> Stats {
        let faults = faults as f64 / samples.len() as f64;
        samples.sort();
        Stats {
            median: samples[samples.len() / 2],
            p99: samples[samples.len() * 99 / 100],
            faults,
        }
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_nanos() as f64 / 1000.0)
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let release = build_samples();
    // Every field a login gives a rule (`riskAssessment`, `sso`, ...), as `wardstone rules run`
    // fills them: a rule pays for the whole input it receives.
    let input_value = wardstone::rules::test_run::offline_rule_input(
        &serde_json::from_slice(
            &std::fs::read(root().join("sample-rules/example-input.json")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let input = wardstone::rules::test_run::rule_input_bytes(&input_value);
    let engine = Arc::new(RuleEngine::new(Limits::default()).unwrap());
    let load = |bytes: Vec<u8>| Arc::new(engine.compile(&bytes).unwrap());
    let sdk_rule = load(std::fs::read(release.join("add_roles.wasm")).unwrap());
    let wat_rule = load(
        engine
            .assemble(wardstone::rules::Upload::Module(
                std::fs::read(root().join("sample-rules/wat/static-claim.wat")).unwrap(),
            ))
            .unwrap(),
    );
    let timeout = Duration::from_millis(50);
    eprintln!(
        "SDK rule: {} KiB of wasm; compiled size in memory: SDK rule {} KiB, WAT rule {} KiB; artifacts {} / {} KiB",
        std::fs::metadata(release.join("add_roles.wasm"))
            .unwrap()
            .len()
            / 1024,
        sdk_rule.weight() / 1024,
        wat_rule.weight() / 1024,
        engine.serialize(&sdk_rule).unwrap().len() / 1024,
        engine.serialize(&wat_rule).unwrap().len() / 1024
    );

    let mut rows: Vec<(String, Stats, String)> = Vec::new();
    let mut bench = |name: &str, fuel: String, f: &mut dyn FnMut()| {
        if filter.as_deref().is_some_and(|flt| !name.contains(flt)) {
            return;
        }
        let stats = measure(iterations, f);
        eprintln!(
            "{name:<55} median {:>10}  p99 {:>10}  faults/run {:>6.1}",
            us(stats.median),
            us(stats.p99),
            stats.faults
        );
        rows.push((name.to_string(), stats, fuel));
    };

    let artifact = engine.serialize(&sdk_rule).unwrap();
    bench(
        "load a precompiled SDK rule (deserialize + link)",
        "—".into(),
        &mut || {
            // SAFETY: the artifact was made by this engine just above.
            let loaded = unsafe { engine.deserialize(&sdk_rule.sha256, &artifact) }.unwrap();
            std::hint::black_box(loaded);
        },
    );
    let fuel_of = |rule: &wardstone::rules::CompiledRule| {
        engine.execute(rule, &input, timeout).fuel_used.to_string()
    };
    let sdk_fuel = fuel_of(&sdk_rule);
    let wat_fuel = fuel_of(&wat_rule);
    bench(
        "SDK rule (add-roles), fresh instance, end to end",
        sdk_fuel.clone(),
        &mut || {
            let e = engine.execute(&sdk_rule, &input, timeout);
            assert!(e.result.is_ok());
        },
    );
    // Another build of the same rule (e.g. with an older SDK), measured in the same run:
    // BENCH_COMPARE_WASM=/path/to/add_roles.wasm.
    if let Ok(path) = std::env::var("BENCH_COMPARE_WASM") {
        let bytes = std::fs::read(&path).unwrap();
        let other = load(bytes.clone());
        eprintln!(
            "comparison module {path}: {} KiB of wasm, {} KiB compiled",
            bytes.len() / 1024,
            other.weight() / 1024
        );
        bench(
            "SDK rule, comparison build (BENCH_COMPARE_WASM), fresh instance",
            fuel_of(&other),
            &mut || {
                let e = engine.execute(&other, &input, timeout);
                assert!(e.result.is_ok());
            },
        );
    }
    bench(
        "hand-written WAT rule (static claim), fresh instance",
        wat_fuel,
        &mut || {
            let e = engine.execute(&wat_rule, &input, timeout);
            assert!(e.result.is_ok());
        },
    );
    bench(
        "same logic as a native Rust function",
        "—".into(),
        &mut || {
            let out = rules_sdk::run_json(add_roles, &input);
            let parsed: serde_json::Map<String, Value> = serde_json::from_slice(&out).unwrap();
            assert!(parsed.contains_key("context"));
        },
    );
    let user = input_value["user"].clone();
    let context = input_value["context"].clone();
    let configuration = input_value["configuration"].to_string();
    // Distinct modules (as a tenant's rules are): each has its own compiled code.
    let copies = |module: &[u8]| -> Vec<Arc<CompiledRule>> {
        (0..10)
            .map(|i| load(distinct(module, &format!("copy{i}"))))
            .collect()
    };
    let ten_distinct = copies(&std::fs::read(release.join("add_roles.wasm")).unwrap());
    // One login's post-login run over `items`, which must let it through.
    let run_allowed = |items: &[(CodeKind, Arc<CompiledRule>)]| {
        let outcome = bench_post_login(
            &engine,
            items,
            user.clone(),
            context.clone(),
            &configuration,
        );
        assert!(
            matches!(outcome, TriggerOutcome::Allow { .. }),
            "{outcome:?}"
        );
    };
    let same: Vec<_> = (0..10)
        .map(|_| (CodeKind::Rule, sdk_rule.clone()))
        .collect();
    bench(
        "pipeline of 10 × the same SDK rule, login path",
        "—".into(),
        &mut || {
            run_allowed(&same);
        },
    );
    for n in [1usize, 5, 10] {
        let rules: Vec<_> = (0..n)
            .map(|i| (CodeKind::Rule, ten_distinct[i].clone()))
            .collect();
        bench(
            &format!("pipeline of {n} distinct SDK rule(s), login path"),
            "—".into(),
            &mut || {
                run_allowed(&rules);
            },
        );
    }
    // The comparison build's pipeline right after this build's, in the same process.
    if let Ok(path) = std::env::var("BENCH_COMPARE_WASM") {
        let rules: Vec<_> = copies(&std::fs::read(&path).unwrap())
            .into_iter()
            .map(|c| (CodeKind::Rule, c))
            .collect();
        bench(
            "pipeline of 10 distinct SDK rule(s), comparison build (BENCH_COMPARE_WASM)",
            "—".into(),
            &mut || {
                run_allowed(&rules);
            },
        );
    }

    // JavaScript: one runtime snapshot shared by every script, the script's bytecode loaded
    // into each fresh instance.
    if wardstone::rules::js::AVAILABLE {
        let script = |name: &str| {
            std::fs::read_to_string(root().join(format!("sample-rules/js/{name}.js"))).unwrap()
        };
        let started = Instant::now();
        engine.warm_js().unwrap();
        eprintln!(
            "JavaScript runtime ready in {:?} (snapshot + compile)",
            started.elapsed()
        );
        let add_roles_js = script("add-roles");
        let js_rule = load(add_roles_js.clone().into_bytes());
        let js_fuel = fuel_of(&js_rule);
        bench(
            "compile a JavaScript rule at upload (source → bytecode)",
            "—".into(),
            &mut || {
                std::hint::black_box(engine.compile(add_roles_js.as_bytes()).unwrap());
            },
        );
        bench(
            "JavaScript rule (add-roles.js), fresh instance, end to end",
            js_fuel.clone(),
            &mut || {
                let e = engine.execute(&js_rule, &input, timeout);
                assert!(e.result.is_ok(), "{:?}", e.result);
            },
        );
        // A rule that requires a built-in module and calls it once (the host computes).
        let crypto_rule = load(
            b"function (user, context, callback) {
                const crypto = require('crypto');
                context.idToken['https://example.com/h'] =
                  crypto.createHmac('sha256', 'k').update(user.user_id).digest('hex');
                callback(null, user, context);
              }"
            .to_vec(),
        );
        let crypto_fuel = fuel_of(&crypto_rule);
        bench(
            "JavaScript rule that requires crypto and makes one HMAC, fresh instance",
            crypto_fuel,
            &mut || {
                let e = engine.execute(&crypto_rule, &input, timeout);
                assert!(e.result.is_ok(), "{:?}", e.result);
            },
        );
        // The bundled npm modules: in the snapshot, so requiring one costs only the call.
        let lodash_rule = load(
            b"function (user, context, callback) {
                const _ = require('lodash');
                context.idToken['https://example.com/plan'] = _.get(user, 'app_metadata.plan', 'free');
                callback(null, user, context);
              }"
            .to_vec(),
        );
        let lodash_fuel = fuel_of(&lodash_rule);
        bench(
            "JavaScript rule that requires lodash and calls _.get once, fresh instance",
            lodash_fuel,
            &mut || {
                let e = engine.execute(&lodash_rule, &input, timeout);
                assert!(e.result.is_ok(), "{:?}", e.result);
            },
        );
        // Distinct scripts, as a tenant's are.
        let js_rules: Vec<_> = (0..3)
            .map(|i| {
                (
                    CodeKind::Rule,
                    load(format!("{add_roles_js}\n// copy {i}\n").into_bytes()),
                )
            })
            .collect();
        bench(
            "pipeline of 3 distinct JavaScript rules, login path",
            "—".into(),
            &mut || {
                run_allowed(&js_rules);
            },
        );
        // Actions: Auth0's post-login handler, one JavaScript runtime instance per login
        // shared by every action in it.
        let action_src =
            std::fs::read_to_string(root().join("sample-rules/actions/post-login-add-roles.js"))
                .unwrap();
        let action = |i: usize| {
            let code = format!("{action_src}\n// copy {i}\n");
            let bytes = engine
                .assemble(wardstone::rules::Upload::Action(code))
                .unwrap();
            (CodeKind::Action, load(bytes))
        };
        for n in [1usize, 5] {
            let actions: Vec<_> = (0..n).map(action).collect();
            bench(
                &format!("post-login with {n} distinct action(s), login path"),
                "—".into(),
                &mut || {
                    run_allowed(&actions);
                },
            );
        }
        // Other modules take the pool's slots in between (as other tenants' rules do), so the
        // runtime's memory image is not warm in the slot it gets. Only the JavaScript
        // execution is timed.
        let name = "JavaScript rule after 20 other modules ran (cold slot)";
        if filter.as_deref().is_none_or(|flt| name.contains(flt)) {
            let faults_before = minor_faults();
            let samples: Vec<Duration> = (0..(iterations / 20).max(50))
                .map(|_| {
                    for other in ten_distinct.iter().chain(ten_distinct.iter()) {
                        std::hint::black_box(engine.execute(other, &input, timeout));
                    }
                    let t = Instant::now();
                    let e = engine.execute(&js_rule, &input, timeout);
                    let spent = t.elapsed();
                    assert!(e.result.is_ok());
                    spent
                })
                .collect();
            // Includes the 20 other modules' runs: an upper bound for the JavaScript one.
            let stats = Stats::of(samples, minor_faults() - faults_before);
            eprintln!(
                "{name:<55} median {:>10}  p99 {:>10}  faults/run {:>6.1}",
                us(stats.median),
                us(stats.p99),
                stats.faults
            );
            rows.push((name.to_string(), stats, "—".into()));
        }
    }

    println!(
        "\n| what (login input ≈ 2.3 KB, {iterations} runs) | median | p99 | fuel | page faults per run |\n|---|---|---|---|---|"
    );
    for (name, stats, fuel) in &rows {
        println!(
            "| {name} | {} | {} | {fuel} | {:.1} |",
            us(stats.median),
            us(stats.p99),
            stats.faults
        );
    }
}
