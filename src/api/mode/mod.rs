//! The auth mode as a type: one credential strategy per `auth.mode` (token, JWT, session).
//!
//! A strategy issues its mode's credential at login and registration, authenticates requests
//! (through the extractors in `credentials`), declares its security scheme and brings the
//! endpoints that exist in its mode alone (logout, and `token/*` or `csrf/`). Everything else
//! (`endpoints/`) is written once over `M: Mode`. `api::mounted` is the one place that looks
//! at `auth.mode`; mode modules never import each other (`session_login` is the one piece
//! token and JWT share, and it is not a mode).

pub mod credentials;
pub mod jwt;
pub mod session;
pub mod session_login;
pub mod token;

use std::future::Future;

use poem::web::cookie::CookieJar;
use poem::{Request, Route};
use poem_openapi::registry::MetaSecurityScheme;
use poem_openapi::{ApiResponse, OpenApi};

use crate::api::edge::reshape::Challenge;
use crate::api::error::ApiError;
use crate::api::session_cookie::CookieSessions;
use crate::config::Config;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::login::LoginStep;
use crate::service::principal::{Principal, User};
use crate::service::registration::Registered;

pub use jwt::Jwt;
pub use session::Session;
pub use token::Token;

/// One auth mode's credential strategy.
pub trait Mode: Send + Sync + 'static {
    /// What the strategy needs at request time, built once at startup and attached as request
    /// data (JWT: its keys; token and session: the account service).
    type State: Clone + Send + Sync + 'static;
    /// `login/`'s success answer (token: 200 `{"key"}`, JWT: 200 pair, session: 204), or, for
    /// a user with MFA, 200 `{"ephemeral_token", "mfa_required"}`.
    type LoggedIn: ApiResponse + poem::IntoResponse + Send;
    /// `registration/`'s success answer (the first credential, or "verification sent").
    type SignedUp: ApiResponse + poem::IntoResponse + Send;
    /// `logout/` and the endpoints that exist in this mode alone.
    type OwnApi: OpenApi + 'static;

    /// How a 401 asks for credentials (session mode has no challenge: DRF answers 403).
    const CHALLENGE: Challenge;
    /// The document's paragraph on how to authorize in this mode (Swagger UI shows it first).
    const AUTHORIZE: &'static str;
    /// Session mode: its login opens a session itself, so `auth.session_login` is moot.
    const IS_SESSION: bool = false;

    fn state(accounts: &Accounts, config: &Config) -> anyhow::Result<Self::State>;
    fn own_api() -> Self::OwnApi;
    /// Routes outside the API prefix (JWT: `/.well-known/jwks.json`).
    fn outside_prefix(route: Route, _state: &Self::State) -> Route {
        route
    }

    /// The security scheme an operation that needs a credential declares, and its name.
    const SCHEME: &'static str;
    fn security_scheme() -> MetaSecurityScheme;

    /// The request's credential, checked: `Ok(None)` when none was presented, an error when
    /// one was presented and refused.
    fn principal(
        request: &Request,
        state: &Self::State,
    ) -> impl Future<Output = Result<Option<Principal>, ApiError>> + Send;

    /// Hands out the mode's credential to a user who just proved who they are.
    fn logged_in(
        state: &Self::State,
        jar: &CookieJar,
        user: User,
        caller: &Caller,
    ) -> impl Future<Output = Result<Self::LoggedIn, ApiError>> + Send;

    /// `login/`'s answer for a user with MFA: no credential, the token of the second step.
    fn second_factor_required(ephemeral_token: String) -> Self::LoggedIn;

    /// Answers a registration: the first credential, or that a confirmation email went out.
    fn signed_up(
        state: &Self::State,
        jar: &CookieJar,
        registered: Registered,
        caller: &Caller,
    ) -> impl Future<Output = Result<Self::SignedUp, ApiError>> + Send;
}

/// The end of every login (password, second factor, identity provider): the session of
/// `auth.session_login` when the mode is not session mode, then the mode's credential; or,
/// while the second factor is outstanding, its step.
pub async fn finish_login<M: Mode>(
    step: LoginStep,
    state: &M::State,
    sessions: &CookieSessions,
    jar: &CookieJar,
    caller: &Caller,
) -> Result<M::LoggedIn, ApiError> {
    let user = match step {
        LoginStep::Done(user) => user,
        LoginStep::SecondFactor(token) => return Ok(M::second_factor_required(token)),
    };
    if !M::IS_SESSION {
        session_login::open(sessions, jar, &user, caller).await?;
    }
    M::logged_in(state, jar, user, caller).await
}

/// A credential sent in a header or cookie (`key_in`) under `name`.
fn api_key(
    name: &'static str,
    key_in: &'static str,
    description: &'static str,
) -> MetaSecurityScheme {
    MetaSecurityScheme {
        ty: "apiKey",
        description: Some(description),
        name: Some(name),
        key_in: Some(key_in),
        scheme: None,
        bearer_format: None,
        flows: None,
        openid_connect_url: None,
    }
}
