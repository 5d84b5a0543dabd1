//! Tessera: account management (registration, login, logout, user details, password change)
//! as a library and a single binary, wire-compatible with dj-rest-auth.
//!
//! Layers, outside in: `api` (HTTP, OpenAPI) → `service` (use cases, transactions) →
//! `store` (sea-orm queries) → the `entity` and `migration` crates. `app` wires them together
//! and `cli` is the command line.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod mail;
pub mod messages;
pub mod metrics;
pub mod private_files;
pub mod secrets;
pub mod service;
pub mod store;
pub mod templates;
pub mod tls;

pub use api::guard::{CurrentUser, Guard, MaybeUser};
pub use app::{App, Background};
pub use config::Config;
