//! Test harness: the real application on `127.0.0.1:0` over a fresh database, driven over HTTP.
//!
//! Every scenario runs on SQLite (a temporary file) and, when `TESSERA_TEST_DATABASE_URL` is
//! set (e.g. `postgres://postgres@127.0.0.1:5432/test`), on a new PostgreSQL database created
//! from it for that test alone and dropped afterwards. Without the variable the PostgreSQL
//! twins are reported as ignored; under `CI=true` that is a failure (`main.rs`).
#![allow(dead_code)]

pub mod process;
pub mod smtp;

use std::sync::Once;

use reqwest::header::HeaderMap;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tessera::{App, Config};

pub const PASSWORD: &str = "correct horse battery staple";

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
        rules.clear();
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

pub struct TestApp {
    pub base: String,
    pub prefix: String,
    pub client: reqwest::Client,
    /// A separate connection for looking at what the app stored.
    pub db: DatabaseConnection,
    pub config: Config,
    server: tokio::task::JoinHandle<()>,
    // Dropped last: the database outlives the server and connections above.
    _database: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
    });
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        init_tracing();
        let database = TestDb::create(&backend).await;
        let mut config = test_config(&database);
        configure(&mut config);
        Self::start(database, config).await
    }

    /// Starts an app over an existing database (e.g. to restart with other settings).
    pub async fn start(database: TestDb, config: Config) -> Self {
        let app = App::build(config.clone()).await.expect("the app builds");
        let (addr, server) = app.spawn().await.expect("the app listens");
        let db = tessera::store::connect(&database.url, 2)
            .await
            .expect("inspection connection");
        Self {
            base: format!("http://{addr}"),
            prefix: config.server.prefix.clone(),
            client: reqwest::Client::new(),
            db,
            config,
            server,
            _database: database,
        }
    }

    /// Stops the server and hands back its database, for a restart.
    pub async fn stop(mut self) -> (TestDb, Config) {
        self.server.abort();
        let database = std::mem::replace(
            &mut self._database,
            TestDb {
                url: String::new(),
                _postgres: None,
                dir: tempfile::tempdir().expect("temporary directory"),
            },
        );
        (database, self.config.clone())
    }

    /// An API path (`login/`) as a full URL under the configured prefix.
    pub fn api(&self, path: &str) -> String {
        format!("{}{}{}", self.base, self.prefix, path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Reply::from(
            self.client
                .post(self.api(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_with_token(&self, path: &str, token: &str, body: Value) -> Reply {
        let request = self
            .client
            .post(self.api(path))
            .header("Authorization", format!("Token {token}"));
        Reply::from(request.json(&body).send().await.unwrap()).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        Reply::from(
            self.client
                .post(self.api(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.client.post(self.api(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.api(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::from(request.send().await.unwrap()).await
    }

    /// Registers `email` with the standard test password; returns the token.
    pub async fn register(&self, email: &str) -> String {
        let reply = self
            .post(
                "registration/",
                serde_json::json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 201, "registration failed: {}", reply.text);
        reply.body["key"].as_str().expect("a key").to_owned()
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "login/",
            serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in and returns the token, failing the test otherwise.
    pub async fn login_key(&self, email: &str, password: &str) -> String {
        let reply = self.login(email, password).await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.text);
        reply.body["key"].as_str().expect("a key").to_owned()
    }
}

impl TestApp {
    /// Every message the `file` mail backend has written so far, oldest first.
    pub fn sent_mail(&self) -> Vec<smtp::ReceivedMail> {
        let Ok(entries) = std::fs::read_dir(&self.config.email.file_dir) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|ext| ext == "eml"))
            .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).unwrap(), p))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| smtp::ReceivedMail::parse(std::fs::read(path).unwrap()))
            .collect()
    }

    /// Waits until the outbox worker has delivered at least `count` messages.
    pub async fn wait_for_mail(&self, count: usize) -> Vec<smtp::ReceivedMail> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let mail = self.sent_mail();
            if mail.len() >= count {
                return mail;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {count} message(s), got {}",
                mail.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// What the outbox table holds: (kind, recipient, attempts, sent, failed, last_error).
    pub async fn outbox_rows(&self) -> Vec<entity::outbox_message::Model> {
        use sea_orm::{EntityTrait, QueryOrder};
        entity::outbox_message::Entity::find()
            .order_by_asc(entity::outbox_message::Column::Id)
            .all(&self.db)
            .await
            .unwrap()
    }
}

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
