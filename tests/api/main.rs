//! Tessera's integration tests, as one test binary: linking the crate once instead of once per
//! file is most of what a test build costs. One module per area; the shared harness (the app
//! on `127.0.0.1:0`, HTTP replies, cookies, mail, JWTs, the real binary, an SMTP server) is in
//! `support/`.
//!
//! `cargo test --test api <filter>` runs a part, e.g. `cargo test --test api jwt_mode::` or
//! `cargo test --test api sqlite::`. Scenarios written with `on_each_backend!` run as
//! `<module>::sqlite::<name>` and `<module>::postgres::<name>`; the PostgreSQL twins are
//! reported as ignored unless `TESSERA_TEST_DATABASE_URL` is set (see `support/mod.rs`).
//!
//! `tests/timing.rs` stays a binary of its own: see why there.

#[macro_use]
mod support;

mod all_modes;
mod audit_trail;
mod binary;
mod cli_users;
mod config;
mod credential_cache;
mod credential_stuffing;
mod database_outage;
mod deployment;
mod django_import;
mod django_passwords;
mod docs_page;
mod email_addresses;
mod email_flows;
mod email_link_pages;
mod email_secrets_at_rest;
mod email_smtp;
mod embedding;
mod error_catalogue;
mod file_modes;
mod generated_client;
mod graceful_shutdown;
mod http_errors;
mod inbox;
mod jwt_mode;
mod leaving;
mod login_logout;
mod mail_transport;
mod metrics;
mod mfa;
mod openapi;
mod password_change;
mod rate_limits;
mod readme;
mod registration;
mod request_ids;
mod security_headers;
mod session_mode;
mod sessions;
mod social_login;
mod social_oidc;
mod two_instances;
mod user_details;

/// CI must not lose the PostgreSQL twins without anyone noticing: with `CI=true`, a run
/// without `TESSERA_TEST_DATABASE_URL` (which would report them all as ignored) fails here,
/// saying how to set it.
#[test]
fn ci_runs_the_postgresql_twins() {
    test_support::assert_postgres_under_ci();
}
