//! # Wardstone rules SDK
//!
//! Write [Wardstone](https://github.com/) rules in Rust. A rule runs during a login (and again at
//! every token refresh) with the user, the login context and the tenant's configuration; it can
//! add claims to the ID and access tokens, change the user's `app_metadata`/`user_metadata`,
//! or deny access. It compiles to a tiny WebAssembly module that implements rule ABI v1, and it
//! is also a plain Rust function that your unit tests call natively.
//!
//! ```
//! use rules_sdk::{Configuration, Context, Deny, User};
//!
//! /// Adds the user's roles to both tokens and refuses unverified emails.
//! pub fn add_roles(user: &mut User, context: &mut Context, _config: &Configuration) -> Result<(), Deny> {
//!     if !user.email_verified {
//!         return Err(Deny::new("Please verify your email before logging in."));
//!     }
//!     let roles = user.app_metadata.get("roles").cloned().unwrap_or_default();
//!     context.id_token.set_claim("https://example.com/roles", roles.clone());
//!     context.access_token.set_claim("https://example.com/roles", roles);
//!     rules_sdk::log::info("roles added");
//!     Ok(())
//! }
//!
//! // Generates the `alloc` and `rule` exports when compiled for wasm32.
//! rules_sdk::export_rule!(add_roles);
//!
//! // A rule is a plain function: test it natively.
//! let mut user = User { email_verified: true, ..User::default() };
//! user.app_metadata.insert("roles".into(), serde_json::json!(["admin"]));
//! let mut context = Context::default();
//! add_roles(&mut user, &mut context, &Configuration::default()).unwrap();
//! assert_eq!(context.id_token.claims["https://example.com/roles"], serde_json::json!(["admin"]));
//! ```
//!
//! Build it with `cargo build --release --target wasm32-unknown-unknown` in a `cdylib` crate and
//! upload `target/wasm32-unknown-unknown/release/<name>.wasm` (see `docs/writing-rules.md`).
//!
//! The wire types here are the ones the server uses to build the rule's input, so the SDK and
//! the host cannot disagree on field names.

#![deny(missing_docs)]

mod abi;
#[cfg(target_arch = "wasm32")]
pub mod bump;
mod float;
pub mod http;
pub mod json;
mod lazy;
pub mod log;
mod types;

pub use abi::{RuleFn, run_json};
pub use lazy::Lazy;
pub use serde_json::{Map, Value, json};
pub use types::*;

/// The rule's allocator on wasm32 (see [`bump`]); turn it off with
/// `default-features = false` to bring your own.
#[cfg(all(target_arch = "wasm32", feature = "bump-allocator"))]
#[global_allocator]
static ALLOCATOR: bump::Bump = bump::Bump::new();

#[doc(hidden)]
pub mod __private {
    pub use crate::abi::{guest_alloc, guest_rule};
}

/// Exports a rule function as the ABI v1 `alloc` and `rule` functions of the wasm module.
///
/// The function has the signature
/// `fn(&mut User, &mut Context, &Configuration) -> Result<(), Deny>`. On targets other than
/// wasm32 the macro expands to nothing, so the same crate can be unit-tested natively.
#[macro_export]
macro_rules! export_rule {
    ($rule:path) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn alloc(len: i32) -> i32 {
            $crate::__private::guest_alloc(len)
        }

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn rule(ptr: i32, len: i32) -> i64 {
            $crate::__private::guest_rule(ptr, len, $rule)
        }
    };
}
