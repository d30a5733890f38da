//! Two build-time jobs:
//! - compiles the PostgreSQL copy of the integration suite only when a test database is named,
//!   so a machine without PostgreSQL runs the SQLite suite alone, and CI (which sets it) can
//!   never silently skip it;
//! - builds the JavaScript rule runtime (`rules-sdk/js-runtime`, QuickJS) for
//!   wasm32-unknown-unknown with Debian's clang, for the server to embed. Without clang or the
//!   wasm32 target the server still builds, without JavaScript rules (a warning says why);
//!   with `WARDSTONE_REQUIRE_TOOLCHAINS=1` (CI) that is an error instead.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=WARDSTONE_TEST_POSTGRES_URL");
    if std::env::var("WARDSTONE_TEST_POSTGRES_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }

    println!("cargo::rustc-check-cfg=cfg(js_runtime)");
    println!("cargo::rerun-if-env-changed=WARDSTONE_REQUIRE_TOOLCHAINS");
    for path in [
        "rules-sdk/js-runtime/src",
        "rules-sdk/js-runtime/Cargo.toml",
        "rules-sdk/js-runtime/Cargo.lock",
    ] {
        println!("cargo::rerun-if-changed={path}");
    }
    match build_js_runtime() {
        Ok(()) => println!("cargo::rustc-cfg=js_runtime"),
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

/// Builds the runtime with a cargo of its own, in a target directory next to ours (so a
/// rebuild is incremental and `cargo clean` removes it), and copies it into OUT_DIR.
fn build_js_runtime() -> Result<(), String> {
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
        .env("AR_wasm32_unknown_unknown", "llvm-ar");
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
