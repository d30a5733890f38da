//! Compiles the PostgreSQL copy of the integration suite only when a test database is named,
//! so a machine without PostgreSQL runs the SQLite suite alone, and CI (which sets it) can
//! never silently skip it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=WARDSTONE_TEST_POSTGRES_URL");
    if std::env::var("WARDSTONE_TEST_POSTGRES_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
