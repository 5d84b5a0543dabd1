//! One device of a user in one auth mode: it holds its credential as its kind of frontend does
//! and presents it on every request, so that a test reads as what that client does.

use entity::{auth_token, refresh_token_family, session};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use super::app::age_rows;
use super::cookies::{CSRF_COOKIE, CSRF_HEADER, Jar, SESSION_COOKIE, set_cookie};
use super::jwt::claims_of;
use super::modes::Mode;
use super::{PASSWORD, Reply, TestApp, credentials, sha256_hex, signup_body};

/// Token mode sends `Authorization: Token <key>`, JWT `Bearer <access>` (keeping the refresh
/// token for `token/refresh/`); a browser in session mode fetches `csrf/` before its first
/// unsafe request and echoes the `csrftoken` cookie in `X-CSRFToken`.
#[derive(Clone)]
pub struct Device<'a> {
    pub app: &'a TestApp,
    pub mode: Mode,
    /// `None`: the app's client.
    http: Option<reqwest::Client>,
    pub user_agent: Option<String>,
    /// Sent as if behind a proxy, so what the app stored of this device can be told apart.
    pub forwarded_for: Option<String>,
    /// Token mode: the key; JWT: the access token. `None` for a device that logs in with a
    /// cookie only (session mode, or the session `auth.session_login` opens).
    pub bearer: Option<String>,
    /// JWT: the refresh token.
    pub refresh: Option<String>,
    /// Cookies the app gave this device (a session, the CSRF cookie, a flow's state).
    pub jar: Jar,
    /// `false`: a token or JWT client without a cookie store, which never sends back the
    /// cookies those modes may set (JWT cookies, `auth.session_login`).
    cookies_in_every_mode: bool,
}

impl<'a> Device<'a> {
    pub fn new(app: &'a TestApp, mode: Mode) -> Self {
        Self {
            app,
            mode,
            http: None,
            user_agent: None,
            forwarded_for: None,
            bearer: None,
            refresh: None,
            jar: Jar::default(),
            cookies_in_every_mode: true,
        }
    }

    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = Some(user_agent.to_owned());
        self
    }

    pub fn forwarded_for(mut self, address: &str) -> Self {
        self.forwarded_for = Some(address.to_owned());
        self
    }

    /// Sends with `http` instead of the app's client (one that follows no redirect, say).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Keeps and presents cookies in session mode only: token and JWT clients without a
    /// cookie store.
    pub fn cookies_in_session_mode_only(mut self) -> Self {
        self.cookies_in_every_mode = false;
        self
    }

    /// The same credential presented to another instance.
    pub fn on<'b>(&self, app: &'b TestApp) -> Device<'b> {
        Device {
            app,
            mode: self.mode,
            http: self.http.clone(),
            user_agent: self.user_agent.clone(),
            forwarded_for: self.forwarded_for.clone(),
            bearer: self.bearer.clone(),
            refresh: self.refresh.clone(),
            jar: self.jar.clone(),
            cookies_in_every_mode: self.cookies_in_every_mode,
        }
    }

    /// The same device presenting its cookies only (the session `auth.session_login` opened).
    pub fn cookies_only(&self) -> Self {
        assert!(self.jar.contains(SESSION_COOKIE), "a session cookie");
        Self {
            bearer: None,
            refresh: None,
            ..self.clone()
        }
    }

    /// Whether the credential presented is a cookie session.
    pub fn uses_session(&self) -> bool {
        self.bearer.is_none()
    }

    /// What this device's credential is listed as (`sessions/`).
    pub fn kind(&self) -> &'static str {
        match self.uses_session() {
            true => "session",
            false => self.mode.kind(),
        }
    }

    /// `method path` as this device, the CSRF cookie echoed on an unsafe request.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send_with(method, path, body, true).await
    }

    /// As [`Self::send`], but without the CSRF header (a forgery, a careless client).
    pub async fn send_without_csrf(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.send_with(method, path, body, false).await
    }

    async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> Reply {
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        if self.mode == Mode::Session && unsafe_method && !self.jar.contains(CSRF_COOKIE) {
            let reply = self.request(Method::GET, "csrf/", None, false).await;
            assert!(self.jar.contains(CSRF_COOKIE), "{reply:?}");
        }
        self.request(method, path, body, csrf && unsafe_method)
            .await
    }

    /// One request with this device's headers and credential; keeps the cookies it is given.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> Reply {
        let http = self.http.as_ref().unwrap_or(&self.app.client);
        let mut request = http.request(method, self.app.api(path));
        if let Some(agent) = &self.user_agent {
            request = request.header("User-Agent", agent);
        }
        if let Some(address) = &self.forwarded_for {
            request = request.header("X-Forwarded-For", address);
        }
        if let Some(bearer) = &self.bearer {
            request = match self.mode {
                Mode::Token => request.header("Authorization", format!("Token {bearer}")),
                _ => request.bearer_auth(bearer),
            };
        }
        let cookies = self.cookies_in_every_mode || self.mode == Mode::Session;
        if cookies {
            request = self.jar.attach(request);
            if csrf && let Some(token) = self.jar.get(CSRF_COOKIE) {
                request = request.header(CSRF_HEADER, token);
            }
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = self.app.send(request).await;
        if cookies {
            self.jar.apply(&reply);
        }
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&mut self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn me(&mut self) -> Reply {
        self.get("user/").await
    }

    /// Signs up with the standard password, which logs this device in.
    pub async fn register(&mut self, email: &str) {
        let reply = self
            .post("registration/", signup_body(email, PASSWORD))
            .await;
        self.adopt(&reply, 201);
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Reply {
        self.post("login/", credentials(email, password)).await
    }

    /// Logs in with the standard password, which must work.
    pub async fn log_in(&mut self, email: &str) {
        let reply = self.login(email, PASSWORD).await;
        self.adopt(&reply, 200);
    }

    /// Takes the credential of a login or registration answer: the key (token mode, `status`),
    /// the access and refresh tokens (JWT, `status`), or the session cookie (session mode, 204).
    pub fn adopt(&mut self, reply: &Reply, status: u16) {
        let status = if self.mode == Mode::Session {
            204
        } else {
            status
        };
        assert_eq!(reply.status, status, "{:?}: {}", self.mode, reply.text);
        let text = |field: &str| {
            reply.body[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} in {}", reply.text))
                .to_owned()
        };
        match self.mode {
            Mode::Token => self.bearer = Some(text("key")),
            Mode::Jwt => {
                self.bearer = Some(text("access"));
                self.refresh = Some(text("refresh"));
            }
            Mode::Session => {
                assert!(set_cookie(reply, SESSION_COOKIE).is_some(), "{reply:?}");
                assert!(self.jar.contains(SESSION_COOKIE), "{reply:?}");
            }
        }
    }

    /// Everything secret this device holds, and the digests the app stores of it, for
    /// asserting that no answer or row gives one away.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        secrets.extend(self.bearer.clone());
        secrets.extend(self.refresh.clone());
        for cookie in [SESSION_COOKIE, CSRF_COOKIE] {
            secrets.extend(self.jar.get(cookie).map(str::to_owned));
        }
        let digests: Vec<String> = secrets.iter().map(|s| sha256_hex(s)).collect();
        secrets.extend(digests);
        let jti = |token: &str| claims_of(token)["jti"].as_str().expect("a jti").to_owned();
        if let Some(refresh) = &self.refresh {
            secrets.push(jti(refresh));
        }
        if self.mode == Mode::Jwt
            && let Some(access) = &self.bearer
        {
            secrets.push(jti(access));
        }
        secrets
    }

    /// The JWT refresh family this device's tokens belong to.
    pub fn family(&self) -> entity::FamilyId {
        let access = self.bearer.as_deref().expect("an access token");
        let sid = claims_of(access)["sid"].as_str().expect("a sid").to_owned();
        entity::FamilyId(sid.parse().expect("a numeric sid"))
    }

    /// The database row of this device's credential: `(table, id)`.
    pub async fn row(&self) -> (&'static str, i64) {
        let db = &self.app.db;
        if self.uses_session() {
            let cookie = self.jar.get(SESSION_COOKIE).expect("a session cookie");
            let row = session::Entity::find()
                .filter(session::Column::Digest.eq(sha256_hex(cookie)))
                .one(db)
                .await
                .unwrap()
                .expect("a stored session");
            return ("session", row.id.0);
        }
        match self.mode {
            Mode::Token => {
                let key = self.bearer.as_deref().unwrap();
                let row = auth_token::Entity::find()
                    .filter(auth_token::Column::Digest.eq(sha256_hex(key)))
                    .one(db)
                    .await
                    .unwrap()
                    .expect("a stored token");
                ("token", row.id.0)
            }
            Mode::Jwt => ("jwt", self.family().0),
            Mode::Session => unreachable!(),
        }
    }

    /// Makes this credential's last proof of the password an hour old (its creation, and no
    /// reauthentication since), for the reauthentication guard's refusals.
    pub async fn age(&self) {
        let db = &self.app.db;
        let updated = match self.row().await {
            ("session", id) => {
                use session::Column::{CreatedAt, Id, ReauthenticatedAt};
                age_rows(db, CreatedAt, ReauthenticatedAt, Id.eq(id)).await
            }
            ("token", id) => {
                use auth_token::Column::{CreatedAt, Id, ReauthenticatedAt};
                age_rows(db, CreatedAt, ReauthenticatedAt, Id.eq(id)).await
            }
            (_, id) => {
                use refresh_token_family::Column::{CreatedAt, Id, ReauthenticatedAt};
                age_rows(db, CreatedAt, ReauthenticatedAt, Id.eq(id)).await
            }
        };
        assert_eq!(updated, 1);
    }
}
