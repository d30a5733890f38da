//! Two build-time jobs:
//! - compiles the PostgreSQL copy of the integration suite only when a test database is named,
//!   so a machine without PostgreSQL runs the SQLite suite alone, and CI (which sets it) can
//!   never silently skip it;
//! - builds the JavaScript rule runtime (`rules-sdk/js-runtime`, QuickJS) for
//!   wasm32-unknown-unknown with Debian's clang, for the server to embed. Without clang or the
//!   wasm32 target the server still builds, without JavaScript rules (a warning says why);
//!   with `WARDSTONE_REQUIRE_TOOLCHAINS=1` (CI) that is an error instead;
//! - bundles the built-in modules (`rules-sdk/js-runtime/modules/entries`, one file each, npm
//!   packages pinned by its lockfile) with esbuild for the runtime, installing them with
//!   `npm ci` when missing. Without npm the runtime is built without them (a warning says so;
//!   `require` then offers only `crypto`); with `WARDSTONE_REQUIRE_TOOLCHAINS=1` that is an
//!   error.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=WARDSTONE_TEST_POSTGRES_URL");
    if std::env::var("WARDSTONE_TEST_POSTGRES_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }

    println!("cargo::rustc-check-cfg=cfg(js_runtime)");
    println!("cargo::rustc-check-cfg=cfg(js_modules)");
    println!("cargo::rerun-if-env-changed=WARDSTONE_REQUIRE_TOOLCHAINS");
    for path in [
        "rules-sdk/js-runtime/src",
        "rules-sdk/js-runtime/build.rs",
        "rules-sdk/js-runtime/Cargo.toml",
        "rules-sdk/js-runtime/Cargo.lock",
        "rules-sdk/js-runtime/modules/package.json",
        "rules-sdk/js-runtime/modules/package-lock.json",
        "rules-sdk/js-runtime/modules/entries",
        "rules-sdk/js-runtime/modules/shared",
    ] {
        println!("cargo::rerun-if-changed={path}");
    }
    let required = std::env::var("WARDSTONE_REQUIRE_TOOLCHAINS").is_ok_and(|v| v == "1");
    let modules = match bundle_modules() {
        Ok(path) => Some(path),
        Err(why) => {
            if required {
                panic!("cannot bundle the built-in JavaScript modules: {why}");
            }
            println!(
                "cargo::warning=the built-in JavaScript modules (lodash, uuid, ...) are not in this build: {}",
                why.lines().last().unwrap_or("bundling failed")
            );
            None
        }
    };
    match build_js_runtime(modules.as_deref()) {
        Ok(()) => {
            println!("cargo::rustc-cfg=js_runtime");
            if modules.is_some() {
                println!("cargo::rustc-cfg=js_modules");
            }
        }
        Err(why) => {
            if std::env::var("WARDSTONE_REQUIRE_TOOLCHAINS").is_ok_and(|v| v == "1") {
                panic!("cannot build the JavaScript rule runtime: {why}");
            }
            println!(
                "cargo::warning=JavaScript rules are disabled in this build: {}",
                why.lines().last().unwrap_or("the runtime did not build")
            );
            // Installing clang or the wasm32 target (.ci/setup) changes PATH or the toolchain
            // directory more often than not; try again then instead of keeping a build
            // without JavaScript until the runtime's sources change.
            println!("cargo::rerun-if-env-changed=PATH");
            println!("cargo::rerun-if-changed=/usr/bin/clang");
            if let Ok(home) = std::env::var("RUSTUP_HOME")
                .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.rustup")))
            {
                println!("cargo::rerun-if-changed={home}/toolchains");
            }
        }
    }
}

/// Bundles each built-in module into a script of its own in OUT_DIR/js-modules (`npm ci`
/// first when the npm packages are not installed); returns the directory.
fn bundle_modules() -> Result<PathBuf, String> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules-sdk/js-runtime/modules");
    let esbuild = dir.join("node_modules/.bin/esbuild");
    let run = |command: &mut Command, what: &str| -> Result<(), String> {
        let output = command
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    if !esbuild.exists() || !dir.join("node_modules/.package-lock.json").exists() {
        run(
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
            "npm ci (rules-sdk/js-runtime/modules)",
        )?;
    }
    let bundle = out_dir.join("js-modules");
    let _ = std::fs::remove_dir_all(&bundle);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join("entries"))
        .map_err(|e| format!("cannot read the module entries: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .collect();
    entries.sort();
    run(
        Command::new(&esbuild)
            .args(&entries)
            .args([
                "--bundle",
                "--format=cjs",
                "--platform=browser",
                "--minify",
                "--keep-names",
                // What the runtime provides itself (host-backed), and built-ins another
                // built-in uses: required at run time, so there is one copy of each.
                "--external:crypto",
                "--external:buffer",
                "--external:jsonwebtoken",
                "--external:request",
                "--log-level=error",
            ])
            .arg(format!("--outdir={}", bundle.display())),
        "esbuild",
    )?;
    Ok(bundle)
}

/// Builds the runtime with a cargo of its own, in a target directory next to ours (so a
/// rebuild is incremental and `cargo clean` removes it), and copies it into OUT_DIR.
fn build_js_runtime(modules: Option<&Path>) -> Result<(), String> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("js-runtime"))
        .ok_or("unexpected OUT_DIR")?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules-sdk/js-runtime/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CC_wasm32_unknown_unknown", "clang")
        .env("AR_wasm32_unknown_unknown", "llvm-ar")
        .env(
            "WARDSTONE_JS_MODULES",
            modules.map(|p| p.display().to_string()).unwrap_or_default(),
        );
    // What the outer build sets for itself must not leak into this one (clippy's wrapper and
    // lint flags, host RUSTFLAGS).
    for var in [
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let built = target_dir.join("wasm32-unknown-unknown/release/wardstone_js_runtime.wasm");
    std::fs::copy(&built, out_dir.join("js-runtime.wasm"))
        .map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
    Ok(())
}
