//! Wardstone: a multi-tenant OAuth 2.0 / OpenID Connect authorization server whose token
//! pipeline runs tenant-supplied WebAssembly rules. See ARCHITECTURE.md for the codemap.

#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]

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
