//! The application under test, started on `127.0.0.1:0` over a fresh database, and an HTTP
//! client for it: requests, replies read completely, and the assertions many tests share.

use reqwest::header::HeaderMap;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tessera::{App, Config};

use super::{Backend, PASSWORD, TestDb, init_tracing, test_config};

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
        let db = tessera::store::connect(&database.url, 2, std::time::Duration::from_secs(10))
            .await
            .expect("inspection connection");
        Self {
            base: format!("http://{addr}"),
            prefix: config.server.prefix.clone(),
            client: crate::support::http_client(),
            db,
            config,
            server,
            _database: database,
        }
    }

    /// A second instance over the same database, with the same settings (only PostgreSQL is
    /// meant to be shared). It must be dropped before `self`, which owns the database.
    pub async fn another_instance(&self) -> TestApp {
        let database = TestDb {
            url: self.config.database.url.clone(),
            _postgres: None,
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        Self::start(database, self.config.clone()).await
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
            .post("registration/", signup_body(email, PASSWORD))
            .await;
        assert_eq!(reply.status, 201, "registration failed: {}", reply.text);
        reply.body["key"].as_str().expect("a key").to_owned()
    }

    /// Registers `email` with a chosen `username` and the standard test password; returns the
    /// token.
    pub async fn register_with_username(&self, email: &str, username: &str) -> String {
        let reply = self
            .post(
                "registration/",
                json!({"email": email, "username": username, "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body["key"].as_str().expect("a key").to_owned()
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("login/", credentials(email, password)).await
    }

    /// Logs in and returns the token, failing the test otherwise.
    pub async fn login_key(&self, email: &str, password: &str) -> String {
        let reply = self.login(email, password).await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.text);
        reply.body["key"].as_str().expect("a key").to_owned()
    }
}

impl TestApp {
    /// The stored user with this address; fails the test if there is none.
    pub async fn stored_user(&self, email: &str) -> entity::user::Model {
        use entity::user;
        user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a user {email}"))
    }

    /// Whether `candidate` is the stored password of the user with this address (checked
    /// with the app's own hasher settings, beside the API).
    pub async fn password_is(&self, email: &str, candidate: &str) -> bool {
        use secrecy::SecretString;
        use tessera::service::password_hashing::PasswordHasher;
        let stored = self.stored_user(email).await;
        let hasher = PasswordHasher::new(&self.config.password_hashing).unwrap();
        let candidate = SecretString::from(candidate.to_owned());
        hasher
            .verify(&candidate, Some(&stored.password_hash))
            .await
            .unwrap()
            .matches
    }

    /// What a finished journey leaves in the database, whatever client walked it: the first
    /// name `Ada` and `new_password` instead of `old_password`.
    pub async fn assert_journey_done(&self, email: &str, old_password: &str, new_password: &str) {
        assert_eq!(self.stored_user(email).await.first_name, "Ada");
        assert!(
            self.password_is(email, new_password).await,
            "the new password is not stored"
        );
        assert!(
            !self.password_is(email, old_password).await,
            "the old password still works"
        );
    }
}

/// The body of `login/`.
pub fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

/// The body of `registration/`, both passwords the same.
pub fn signup_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password1": password, "password2": password})
}

/// The body of `password/change/`, both new passwords the same.
pub fn new_passwords(password: &str) -> Value {
    json!({"new_password1": password, "new_password2": password})
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

/// `password/reset/confirm/` with a link's uid and token and the two new passwords.
pub async fn confirm_reset(
    app: &TestApp,
    uid: &str,
    token: &str,
    new_password1: &str,
    new_password2: &str,
) -> Reply {
    app.post(
        "password/reset/confirm/",
        json!({"uid": uid, "token": token, "new_password1": new_password1, "new_password2": new_password2}),
    )
    .await
}

/// DRF's `{"detail": ...}` answer with this status.
pub fn assert_detail(reply: &Reply, status: u16, detail: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body, json!({ "detail": detail }), "{}", reply.text);
}

/// Token mode's refusal of an unknown token: 401, DRF's message, the `Token` challenge.
pub fn assert_invalid_token(reply: &Reply) {
    assert_detail(reply, 401, "Invalid token.");
    assert_eq!(reply.header("www-authenticate"), Some("Token"));
}

impl TestApp {
    /// Makes every credential of the user look as if it last proved the password an hour ago
    /// (past `account.reauthentication_timeout`), for the guarded actions' refusals.
    pub async fn age_credentials(&self, email: &str) {
        let user = self.stored_user(email).await.id;
        let db = &self.db;
        {
            use entity::auth_token::Column::{CreatedAt, ReauthenticatedAt, UserId};
            age_rows(db, CreatedAt, ReauthenticatedAt, UserId.eq(user)).await;
        }
        {
            use entity::session::Column::{CreatedAt, ReauthenticatedAt, UserId};
            age_rows(db, CreatedAt, ReauthenticatedAt, UserId.eq(user)).await;
        }
        {
            use entity::refresh_token_family::Column::{CreatedAt, ReauthenticatedAt, UserId};
            age_rows(db, CreatedAt, ReauthenticatedAt, UserId.eq(user)).await;
        }
    }
}

/// Sets a credential table's `created_at` an hour back and `reauthenticated_at` to null in the
/// rows `filter` picks, so their last proof of the password is old; how many rows it changed.
pub async fn age_rows<C>(
    db: &DatabaseConnection,
    created_at: C,
    reauthenticated_at: C,
    filter: impl sea_orm::sea_query::IntoCondition,
) -> u64
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    use chrono::{DateTime, Duration, Utc};
    use sea_orm::sea_query::Expr;
    let long_ago = Utc::now() - Duration::hours(1);
    let never: Option<DateTime<Utc>> = None;
    <C::EntityName as EntityTrait>::update_many()
        .col_expr(created_at, Expr::value(long_ago))
        .col_expr(reauthenticated_at, Expr::value(never))
        .filter(filter)
        .exec(db)
        .await
        .unwrap()
        .rows_affected
}
