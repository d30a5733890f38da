//! The one integration-test binary: each test starts a real server on port 0 with a fresh
//! database and drives it over HTTP like a browser and a relying party would.
//!
//! The behaviour suite runs on SQLite always (`sqlite::…`), and again on PostgreSQL
//! (`postgres::…`) when `WARDSTONE_TEST_POSTGRES_URL` names a server (see build.rs); each test
//! gets its own fresh database there.

mod browser;
mod cli;
mod helpers;
mod templates;

/// The same suite on PostgreSQL: the same files compiled a second time, on purpose.
#[cfg(pg_tests)]
#[path = "suite/mod.rs"]
#[allow(clippy::duplicate_mod)]
mod postgres;
#[cfg(pg_tests)]
mod schema;
/// The behaviour suite on SQLite, always.
#[path = "suite/mod.rs"]
mod sqlite;
