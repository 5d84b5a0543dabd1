//! The same journeys in every mode: each scenario is written once against a small client that
//! knows how its kind of frontend holds and presents a credential, and runs as
//!
//! - a mobile app in token mode (`Authorization: Token`),
//! - a mobile app in jwt mode (`Authorization: Bearer`, the refresh token in bodies),
//! - a browser in jwt mode with dj-rest-auth's cookies (`jwt.auth_cookie`,
//!   `jwt.refresh_cookie`, `jwt.cookie_use_csrf`),
//! - a browser in session mode (`sessionid` and `csrftoken`, `X-CSRFToken` on unsafe requests),
//!
//! on each backend. Journeys: register → log in → `user/` → change the password → log out;
//! and register → log in elsewhere → reset the password by mail → every credential refused.
//!
//! What "the credential is refused" means per mode: a token or a session is refused by
//! `user/`; for JWT it is the refresh token (the long-lived credential: `token/refresh/` and
//! `token/verify/` refuse it), since SimpleJWT's access tokens are stateless and live out
//! their few minutes by design.

use reqwest::Method;
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::AuthMode;

use crate::support::cookies::{CSRF_COOKIE, CSRF_HEADER, Jar, SESSION_COOKIE};
use crate::support::{Backend, PASSWORD, Reply, TestApp};

on_each_backend!(
    password_journey_token_mobile,
    password_journey_jwt_mobile,
    password_journey_jwt_browser,
    password_journey_session_browser,
    reset_journey_token_mobile,
    reset_journey_jwt_mobile,
    reset_journey_jwt_browser,
    reset_journey_session_browser,
);

const EMAIL: &str = "ada@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";
const SAVED: &str = "New password has been saved.";
const LOGGED_OUT: &str = "Successfully logged out.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const RESET_SENT: &str = "Password reset e-mail has been sent.";
const RESET_DONE: &str = "Password has been reset with the new password.";
const RESET_PREFIX: &str = "https://app.example.com/reset/";

const ACCESS_COOKIE: &str = "app-auth";
const REFRESH_COOKIE: &str = "app-refresh-token";

/// A kind of frontend, with the configuration it is deployed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TokenMobile,
    JwtMobile,
    JwtBrowser,
    SessionBrowser,
}

impl Kind {
    fn configure(self, config: &mut Config) {
        match self {
            Kind::TokenMobile => config.auth.mode = AuthMode::Token,
            Kind::JwtMobile => config.auth.mode = AuthMode::Jwt,
            Kind::JwtBrowser => {
                config.auth.mode = AuthMode::Jwt;
                config.jwt.auth_cookie = Some(ACCESS_COOKIE.into());
                config.jwt.refresh_cookie = Some(REFRESH_COOKIE.into());
                config.jwt.cookie_use_csrf = true;
            }
            Kind::SessionBrowser => config.auth.mode = AuthMode::Session,
        }
    }

    fn is_browser(self) -> bool {
        matches!(self, Kind::JwtBrowser | Kind::SessionBrowser)
    }

    /// The cookies that make up a browser's login.
    fn credential_cookies(self) -> &'static [&'static str] {
        match self {
            Kind::JwtBrowser => &[ACCESS_COOKIE, REFRESH_COOKIE],
            Kind::SessionBrowser => &[SESSION_COOKIE],
            Kind::TokenMobile | Kind::JwtMobile => &[],
        }
    }

    /// `registration/` and `login/` succeed with these statuses.
    fn signup_and_login_status(self) -> (u16, u16) {
        match self {
            Kind::SessionBrowser => (204, 204),
            _ => (201, 200),
        }
    }
}

async fn spawn(backend: Backend, kind: Kind) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        kind.configure(config);
        config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
    })
    .await
}

/// What a client holds once logged in; kept to be replayed after it should have died.
#[derive(Debug, Clone, Default)]
struct Held {
    /// Token mode: the key.
    token: Option<String>,
    /// JWT mobile: the access and refresh tokens from the body.
    access: Option<String>,
    refresh: Option<String>,
    /// Browsers: the cookie jar (the CSRF cookie included).
    cookies: Jar,
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// One request as `kind` makes it with `held`: the key or access token in `Authorization`
/// (mobile), or the cookies and, on unsafe methods, the CSRF cookie echoed (browsers).
async fn send(
    app: &TestApp,
    kind: Kind,
    held: &Held,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let unsafe_method = !is_safe(&method);
    let mut request = app.client.request(method, app.api(path));
    match kind {
        Kind::TokenMobile => {
            if let Some(key) = &held.token {
                request = request.header("Authorization", format!("Token {key}"));
            }
        }
        Kind::JwtMobile => {
            if let Some(access) = &held.access {
                request = request.header("Authorization", format!("Bearer {access}"));
            }
        }
        Kind::JwtBrowser | Kind::SessionBrowser => {
            request = held.cookies.attach(request);
            if unsafe_method && let Some(csrf) = held.cookies.get(CSRF_COOKIE) {
                request = request.header(CSRF_HEADER, csrf);
            }
        }
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

/// A frontend of one kind, on one device.
struct Client<'a> {
    app: &'a TestApp,
    kind: Kind,
    held: Held,
}

impl<'a> Client<'a> {
    fn new(app: &'a TestApp, kind: Kind) -> Self {
        Self {
            app,
            kind,
            held: Held::default(),
        }
    }

    /// A request with this client's credential; browsers fetch the CSRF cookie before their
    /// first unsafe request, and remember every cookie they are given.
    async fn request(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        if self.kind.is_browser() && !is_safe(&method) && !self.held.cookies.contains(CSRF_COOKIE) {
            self.fetch_csrf_cookie().await;
        }
        let reply = send(self.app, self.kind, &self.held, method, path, body).await;
        if self.kind.is_browser() {
            self.held.cookies.apply(&reply);
        }
        reply
    }

    /// A single-page app asks `csrf/` in session mode; in jwt mode any answer carries it.
    async fn fetch_csrf_cookie(&mut self) {
        let path = match self.kind {
            Kind::SessionBrowser => "csrf/",
            _ => "user/",
        };
        let reply = send(self.app, self.kind, &self.held, Method::GET, path, None).await;
        self.held.cookies.apply(&reply);
        assert!(
            self.held.cookies.contains(CSRF_COOKIE),
            "{:?}: GET {path} sets the CSRF cookie: {reply:?}",
            self.kind
        );
    }

    async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(body)).await
    }

    async fn me(&mut self) -> Reply {
        self.request(Method::GET, "user/", None).await
    }

    /// Signs up (which logs this client in unless verification is mandatory).
    async fn register(&mut self, email: &str) {
        let reply = self
            .post(
                "registration/",
                json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await;
        self.adopt(&reply, self.kind.signup_and_login_status().0);
    }

    async fn login(&mut self, email: &str, password: &str) -> Reply {
        self.post("login/", json!({"email": email, "password": password}))
            .await
    }

    async fn log_in(&mut self, email: &str, password: &str) {
        let reply = self.login(email, password).await;
        self.adopt(&reply, self.kind.signup_and_login_status().1);
    }

    /// Takes the credential out of a successful signup or login, as this frontend would.
    fn adopt(&mut self, reply: &Reply, status: u16) {
        assert_eq!(reply.status, status, "{:?}: {}", self.kind, reply.text);
        let text = |field: &str| {
            reply.body[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} in {}", reply.text))
                .to_owned()
        };
        match self.kind {
            Kind::TokenMobile => self.held.token = Some(text("key")),
            Kind::JwtMobile => {
                self.held.access = Some(text("access"));
                self.held.refresh = Some(text("refresh"));
                assert!(!text("refresh").is_empty());
            }
            Kind::JwtBrowser => {
                // The HttpOnly refresh cookie is the only copy of the refresh token.
                assert_eq!(text("refresh"), "", "{}", reply.text);
            }
            Kind::SessionBrowser => {
                assert!(reply.text.is_empty(), "204 has no body: {}", reply.text);
            }
        }
        for cookie in self.kind.credential_cookies() {
            assert!(
                self.held.cookies.contains(cookie),
                "{:?}: {cookie} is set: {reply:?}",
                self.kind
            );
        }
    }

    async fn change_password(&mut self, new: &str) -> Reply {
        self.post(
            "password/change/",
            json!({"new_password1": new, "new_password2": new}),
        )
        .await
    }

    /// Logs out and forgets the credential, as the frontend does.
    async fn log_out(&mut self) {
        let body = match self.kind {
            Kind::JwtMobile => json!({"refresh": self.held.refresh}),
            _ => json!({}),
        };
        let reply = self.post("logout/", body).await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.kind, reply.text);
        assert_eq!(reply.body, json!({"detail": LOGGED_OUT}));
        for cookie in self.kind.credential_cookies() {
            assert!(
                !self.held.cookies.contains(cookie),
                "{:?}: logout clears {cookie}: {reply:?}",
                self.kind
            );
        }
        self.held.token = None;
        self.held.access = None;
        self.held.refresh = None;
    }

    fn held(&self) -> Held {
        self.held.clone()
    }
}

/// The user's details through `held`.
async fn me_with(app: &TestApp, kind: Kind, held: &Held) -> Reply {
    send(app, kind, held, Method::GET, "user/", None).await
}

/// `held` still works: `user/` answers with the user, and a JWT refresh token is still live.
async fn assert_accepted(app: &TestApp, kind: Kind, held: &Held, email: &str) {
    let me = me_with(app, kind, held).await;
    assert_eq!(me.status, 200, "{kind:?}: {}", me.text);
    assert_eq!(me.body["email"], email);
    if let Some(refresh) = refresh_token(kind, held) {
        // `token/verify/` changes nothing (refreshing would rotate the token).
        let verify = app.post("token/verify/", json!({"token": refresh})).await;
        assert_eq!(
            verify.status, 200,
            "{kind:?}: refresh is live: {}",
            verify.text
        );
    }
}

fn refresh_token(kind: Kind, held: &Held) -> Option<String> {
    match kind {
        Kind::JwtMobile => held.refresh.clone(),
        Kind::JwtBrowser => held.cookies.get(REFRESH_COOKIE).map(str::to_owned),
        Kind::TokenMobile | Kind::SessionBrowser => None,
    }
}

/// `held` no longer works (see the module comment for what that means for JWT).
async fn assert_refused(app: &TestApp, kind: Kind, held: &Held) {
    match kind {
        Kind::TokenMobile => {
            let me = me_with(app, kind, held).await;
            assert_eq!(me.status, 401, "{}", me.text);
            assert_eq!(me.body, json!({"detail": "Invalid token."}));
        }
        Kind::SessionBrowser => {
            let me = me_with(app, kind, held).await;
            assert_eq!(me.status, 403, "{}", me.text);
            assert_eq!(
                me.body,
                json!({"detail": "Authentication credentials were not provided."})
            );
        }
        Kind::JwtMobile | Kind::JwtBrowser => {
            let refresh = refresh_token(kind, held).expect("a refresh token was held");
            let verify = app.post("token/verify/", json!({"token": refresh})).await;
            assert_eq!(verify.status, 401, "{kind:?}: {}", verify.text);
            assert_eq!(verify.body["code"], "token_not_valid", "{}", verify.text);
            // Presented the way this client presents it.
            let body = match kind {
                Kind::JwtMobile => json!({"refresh": refresh}),
                _ => json!({}),
            };
            let refreshed = send(app, kind, held, Method::POST, "token/refresh/", Some(body)).await;
            assert_eq!(refreshed.status, 401, "{kind:?}: {}", refreshed.text);
            assert_eq!(refreshed.body["code"], "token_not_valid");
            assert!(
                refreshed.body.get("access").is_none(),
                "no new access token: {}",
                refreshed.text
            );
        }
    }
}

fn assert_bad_credentials(reply: &Reply) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
}

// ---------------------------------------------------------------------------------------------
// The journeys
// ---------------------------------------------------------------------------------------------

/// Register → log in on another device → `user/` → change the password there (the old one is
/// refused, the new one works, the other device's credential dies, this one lives) → log out
/// → the credential is refused.
async fn password_journey(backend: Backend, kind: Kind) {
    let app = spawn(backend, kind).await;

    let mut signup = Client::new(&app, kind);
    signup.register(EMAIL).await;
    assert_accepted(&app, kind, &signup.held(), EMAIL).await;

    let mut device = Client::new(&app, kind);
    device.log_in(EMAIL, PASSWORD).await;
    let me = device.me().await;
    assert_eq!(me.status, 200, "{kind:?}: {}", me.text);
    assert_eq!(me.body["email"], EMAIL);
    assert_eq!(me.body["username"], "ada");
    assert!(me.body["pk"].is_i64(), "{}", me.text);

    let change = device.change_password(NEW_PASSWORD).await;
    assert_eq!(change.status, 200, "{kind:?}: {}", change.text);
    assert_eq!(change.body, json!({"detail": SAVED}));

    // This device stays logged in; the signup's credential ended with the old password.
    assert_eq!(device.me().await.status, 200);
    assert_accepted(&app, kind, &device.held(), EMAIL).await;
    assert_refused(&app, kind, &signup.held()).await;

    let mut third = Client::new(&app, kind);
    assert_bad_credentials(&third.login(EMAIL, PASSWORD).await);
    third.log_in(EMAIL, NEW_PASSWORD).await;
    assert_accepted(&app, kind, &third.held(), EMAIL).await;

    // Logging out ends this device's credential only.
    let before_logout = device.held();
    device.log_out().await;
    assert_refused(&app, kind, &before_logout).await;
    assert_accepted(&app, kind, &third.held(), EMAIL).await;
    // The browser that logged out is anonymous again; it can log back in.
    if kind.is_browser() {
        let me = device.me().await;
        assert!(
            me.status == 401 || me.status == 403,
            "{kind:?}: {}",
            me.text
        );
    }
    device.log_in(EMAIL, NEW_PASSWORD).await;
    assert_eq!(device.me().await.status, 200);
}

/// Register → log in on another device → a third asks for a reset → the mailed link's uid and
/// token set a new password → every credential the user held is refused; only the new
/// password logs in.
async fn reset_journey(backend: Backend, kind: Kind) {
    let app = spawn(backend, kind).await;

    let mut signup = Client::new(&app, kind);
    signup.register(EMAIL).await;
    let mut device = Client::new(&app, kind);
    device.log_in(EMAIL, PASSWORD).await;
    let mut bob = Client::new(&app, kind);
    bob.register("bob@example.com").await;

    let mut forgetful = Client::new(&app, kind);
    let request = forgetful
        .post("password/reset/", json!({"email": EMAIL}))
        .await;
    assert_eq!(request.status, 200, "{kind:?}: {}", request.text);
    assert_eq!(request.body, json!({"detail": RESET_SENT}));
    let (uid, token) = app.reset_link(RESET_PREFIX).await;
    // The link has not been used yet: everything still works.
    assert_accepted(&app, kind, &signup.held(), EMAIL).await;
    assert_accepted(&app, kind, &device.held(), EMAIL).await;

    let confirm = forgetful
        .post(
            "password/reset/confirm/",
            json!({
                "uid": uid, "token": token,
                "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
            }),
        )
        .await;
    assert_eq!(confirm.status, 200, "{kind:?}: {}", confirm.text);
    assert_eq!(confirm.body, json!({"detail": RESET_DONE}));

    assert_refused(&app, kind, &signup.held()).await;
    assert_refused(&app, kind, &device.held()).await;
    // Another user's credential is untouched.
    assert_accepted(&app, kind, &bob.held(), "bob@example.com").await;

    assert_bad_credentials(&forgetful.login(EMAIL, PASSWORD).await);
    forgetful.log_in(EMAIL, NEW_PASSWORD).await;
    let me = forgetful.me().await;
    assert_eq!(me.status, 200, "{kind:?}: {}", me.text);
    assert_eq!(me.body["email"], EMAIL);
    assert_accepted(&app, kind, &forgetful.held(), EMAIL).await;
}

/// Each journey once per kind of client.
macro_rules! journeys {
    ($($name:ident => $journey:ident($kind:expr)),* $(,)?) => {
        $(
            async fn $name(backend: Backend) {
                $journey(backend, $kind).await
            }
        )*
    };
}

journeys!(
    password_journey_token_mobile => password_journey(Kind::TokenMobile),
    password_journey_jwt_mobile => password_journey(Kind::JwtMobile),
    password_journey_jwt_browser => password_journey(Kind::JwtBrowser),
    password_journey_session_browser => password_journey(Kind::SessionBrowser),
    reset_journey_token_mobile => reset_journey(Kind::TokenMobile),
    reset_journey_jwt_mobile => reset_journey(Kind::JwtMobile),
    reset_journey_jwt_browser => reset_journey(Kind::JwtBrowser),
    reset_journey_session_browser => reset_journey(Kind::SessionBrowser),
);
