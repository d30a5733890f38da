//! Wardstone: a multi-tenant OAuth 2.0 / OpenID Connect authorization server whose token
//! pipeline runs tenant-supplied WebAssembly rules. See ARCHITECTURE.md for the codemap.

#![deny(clippy::unwrap_used)]
// `missing_docs` is on for the Management API's wire types only (each says
// `#[warn(missing_docs)]`): their docs are the OpenAPI descriptions. Elsewhere a doc comment is
// written where it says something the name does not.

pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod passwords;
pub mod rules;
pub mod service;
pub mod startup;
pub mod store;
pub mod tokens;
