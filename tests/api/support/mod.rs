//! Test harness: the real application on `127.0.0.1:0` over a fresh database, driven over HTTP.
//!
//! Every scenario runs on SQLite (a temporary file) and, when `TESSERA_TEST_DATABASE_URL` is
//! set (e.g. `postgres://postgres@127.0.0.1:5432/test`), on a new PostgreSQL database created
//! from it for that test alone and dropped afterwards. Without the variable the PostgreSQL
//! twins are reported as ignored; under `CI=true` that is a failure (`main.rs`).
//!
//! - `app`: [`TestApp`] (the app, its database, requests) and [`Reply`], with the request bodies
//!   and reply assertions tests share;
//! - `cookies`: `Set-Cookie` read as a browser reads it, a cookie jar and a [`cookies::Browser`];
//! - `modes`: the three auth modes, for scenarios run in each;
//! - `device`: [`device::Device`], one client of a mode holding its credential (key, JWTs,
//!   cookies and CSRF), which the per-mode scenarios drive;
//! - `mail`: what the app mailed ([`mail::ReceivedMail`]), waiting for it, links in it;
//! - `jwt`: JWTs taken apart and forged, and the key fixtures;
//! - `process`: the real `tessera` binary; `smtp`: a real SMTP server (`smtp_sink.py`);
//! - `tcp_proxy`: a TCP proxy to the database that a test cuts and restores;
//! - `totp`: an authenticator app (RFC 6238 codes from the secret the API hands out);
//! - `oidc`: a real OpenID Connect provider (oidc-provider-mock, with key rotation and minted
//!   id_tokens) and a stand-in for GitHub's OAuth endpoints, for social login (issue 13);
//! - `django`: a database built by a real Django (dj-rest-auth, allauth), for the import;
//! - `browser`: a real browser (headless Chromium) for pages, and Playwright to drive it;
//! - `tools`: the test-only tools above, installed once per machine, pinned.

pub mod app;
pub mod browser;
pub mod cookies;
pub mod device;
pub mod django;
pub mod jwt;
pub mod mail;
pub mod modes;
pub mod oidc;
pub mod process;
pub mod smtp;
pub mod tcp_proxy;
pub mod tools;
pub mod totp;

use std::sync::Once;

use sha2::{Digest, Sha256};
use tessera::Config;

pub use app::{
    Reply, TestApp, assert_detail, assert_invalid_token, confirm_reset, credentials, new_passwords,
    signup_body,
};

pub const PASSWORD: &str = "correct horse battery staple";

/// Every HTTP client of the tests is built here: reqwest has no TLS crypto provider of its
/// own, and panics unless rustls' is installed first (`tessera::tls`).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    tessera::tls::install();
    reqwest::Client::builder()
}

pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

/// Runs each named `async fn(Backend)` scenario once per backend, as separate tests:
/// `sqlite::<name>` always, `postgres::<name>` on a throwaway PostgreSQL database when
/// `TESSERA_TEST_DATABASE_URL` is set, and reported as ignored (with how to run it) when not
/// (`test_support::postgres_test!`).
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                test_support::postgres_test! {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::$name(crate::support::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A database of its own on the server `TESSERA_TEST_DATABASE_URL` names.
    Postgres,
}

/// A database that exists for one test, with a scratch directory (the SQLite file, mail).
pub struct TestDb {
    pub url: String,
    /// Dropped with the `TestDb`, and the PostgreSQL database with it.
    _postgres: Option<test_support::PostgresDatabase>,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn create(backend: &Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
                _postgres: None,
                dir,
            },
            Backend::Postgres => {
                let postgres = test_support::PostgresDatabase::create().await;
                Self {
                    url: postgres.url().to_owned(),
                    _postgres: Some(postgres),
                    dir,
                }
            }
        }
    }
}

/// A configuration for tests: cheap argon2 (the defaults are exercised where they matter),
/// a fixed secret, mail written as files into the test's directory, quick retries, and rate
/// limits off but for `confirm_email`.
pub fn test_config(database: &TestDb) -> Config {
    let mut config = Config::default();
    config.database.url = database.url.clone();
    config.email.backend = tessera::config::EmailBackend::File;
    config.email.file_dir = database.dir.path().join("mail");
    config.email.retry_initial_seconds = 0.2;
    config.email.retry_max_seconds = 1.0;
    // Every test comes from 127.0.0.1: per-IP limits would trip over each other, so only the
    // per-address confirmation limit stays (the email tests rely on it); tests/api/rate_limits.rs
    // turns the others back on.
    unlimit_all_but_confirm_email(&mut config.rate_limits);
    config.secret_key = Some(
        "test-secret-key-that-is-long-enough-0123456789"
            .to_owned()
            .into(),
    );
    config.password_hashing.memory_kib = 1024;
    config.password_hashing.iterations = 1;
    config
}

/// Leaves every rate limit unset except `confirm_email` (per address, so tests do not trip
/// over each other's counts).
pub fn unlimit_all_but_confirm_email(limits: &mut tessera::config::RateLimitsConfig) {
    for rules in [
        &mut limits.login,
        &mut limits.login_failed,
        &mut limits.signup,
        &mut limits.reset_password,
        &mut limits.reset_password_from_key,
        &mut limits.change_password,
    ] {
        *rules = Default::default();
    }
}

/// The server counts in fixed windows aligned to the Unix epoch. A run that straddled the
/// end of one would see its counters restart half-way; so, when fewer than `margin` seconds
/// of the current `period` window remain, wait for the next one.
pub async fn clear_of_window_end(period: u64, margin: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let left = std::time::Duration::from_secs(period - now.as_secs() % period)
        - std::time::Duration::from_nanos(u64::from(now.subsec_nanos()));
    if left < std::time::Duration::from_secs(margin) {
        tokio::time::sleep(left + std::time::Duration::from_millis(200)).await;
    }
}

/// Tracing output of the app under test, at `RUST_LOG` (default `warn`), once per process.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
    });
}

/// Lowercase hex SHA-256: how the app stores tokens, session ids and keys.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
