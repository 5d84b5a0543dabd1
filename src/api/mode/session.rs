//! Session mode (`auth.mode = "session"`): Django's session and CSRF cookies. Login and
//! registration open a session (204 with `sessionid`); CSRF is enforced at the edge for every
//! unsafe request, login and registration included (`edge::csrf`).

use poem::Request;
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem_openapi::payload::Json;
use poem_openapi::registry::MetaSecurityScheme;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::edge::csrf::Csrf;
use crate::api::edge::reshape::Challenge;
use crate::api::error::ApiError;
use crate::api::mode::Mode;
use crate::api::responses::{Detail, MfaRequired, Success};
use crate::api::session_cookie::CookieSessions;
use crate::api::tags::Tag;
use crate::config::Config;
use crate::messages;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::principal::{Principal, User};
use crate::service::registration::Registered;

/// The default cookie name; `api::document` puts the configured one in the document.
const DEFAULT_COOKIE: &str = "sessionid";

/// The session mode's credential strategy.
pub struct Session;

#[derive(ApiResponse)]
pub enum SessionLoggedIn {
    /// Logged in: the `sessionid` cookie is set (a new one at every login).
    #[oai(status = 204)]
    LoggedIn,
    /// A user with MFA: no session yet; `mfa/verify/` opens it for a code.
    #[oai(status = 200)]
    SecondFactor(Json<MfaRequired>),
}

#[derive(ApiResponse)]
pub enum SessionRegistered {
    /// The account was created and logged in: the `sessionid` cookie is set.
    #[oai(status = 204)]
    LoggedIn,
    /// The account was created and must confirm its email address first.
    #[oai(status = 201)]
    VerificationSent(Json<Detail>),
}

impl Mode for Session {
    type State = CookieSessions;
    type LoggedIn = SessionLoggedIn;
    type SignedUp = SessionRegistered;
    type OwnApi = SessionOwnApi;

    const SCHEME: &'static str = "SessionCookie";
    const CHALLENGE: Challenge = Challenge::Forbidden;
    const AUTHORIZE: &'static str = "This server runs in **session mode**. `login/` and \
        `registration/` set the session cookie, which the browser sends by itself. Every unsafe \
        request (login included) must echo the CSRF cookie's value in the `X-CSRFToken` header; \
        any answer sets the cookie, and `GET csrf/` returns its value. This page copies it for \
        you: nothing to authorize here.";
    const IS_SESSION: bool = true;

    fn state(accounts: &Accounts, config: &Config) -> anyhow::Result<CookieSessions> {
        let csrf = crate::api::edge::csrf::Csrf::from_config(config);
        Ok(CookieSessions::new(accounts.clone(), csrf))
    }

    fn own_api() -> SessionOwnApi {
        SessionOwnApi
    }

    fn security_scheme() -> MetaSecurityScheme {
        super::api_key(
            DEFAULT_COOKIE,
            "cookie",
            "The session cookie set by `login/` and `registration/`.",
        )
    }

    async fn principal(
        request: &Request,
        sessions: &CookieSessions,
    ) -> Result<Option<Principal>, ApiError> {
        sessions.principal(request).await
    }

    async fn logged_in(
        sessions: &CookieSessions,
        jar: &CookieJar,
        user: User,
        caller: &Caller,
    ) -> Result<SessionLoggedIn, ApiError> {
        sessions.open(jar, &user, caller).await?;
        Ok(SessionLoggedIn::LoggedIn)
    }

    fn second_factor_required(ephemeral_token: String) -> SessionLoggedIn {
        SessionLoggedIn::SecondFactor(Json(MfaRequired::new(ephemeral_token)))
    }

    async fn signed_up(
        sessions: &CookieSessions,
        jar: &CookieJar,
        registered: Registered,
        caller: &Caller,
    ) -> Result<SessionRegistered, ApiError> {
        match registered {
            Registered::Active(user) => {
                sessions.open(jar, &user, caller).await?;
                Ok(SessionRegistered::LoggedIn)
            }
            Registered::VerificationSent => Ok(SessionRegistered::VerificationSent(Json(
                Detail::text(messages::VERIFICATION_SENT),
            ))),
        }
    }
}

/// `csrf/`'s answer.
#[derive(Object)]
pub struct CsrfToken {
    detail: String,
    /// The `csrftoken` cookie's value, to send back in `X-CSRFToken`.
    csrf_token: String,
}

/// Session mode's own endpoints: `logout/` and `csrf/`.
pub struct SessionOwnApi;

#[OpenApi]
impl SessionOwnApi {
    /// Log out
    ///
    /// Deletes the session and clears its cookie. Logging out without a live session is
    /// harmless and answers the same.
    #[oai(
        path = "/logout/",
        method = "post",
        operation_id = "logout",
        tag = "Tag::Auth"
    )]
    async fn logout(
        &self,
        sessions: Data<&CookieSessions>,
        jar: &CookieJar,
        caller: Caller,
    ) -> Result<Success<Detail>, ApiError> {
        sessions.close(jar, &caller).await?;
        Ok(Detail::new(messages::LOGGED_OUT))
    }

    /// Get a CSRF cookie
    ///
    /// For single-page apps: makes sure the readable `csrftoken` cookie is set (any response
    /// sets it when the request has none) and answers its value too, for a page that cannot
    /// read the cookie (one on a sibling subdomain); echo it in `X-CSRFToken`.
    #[oai(
        path = "/csrf/",
        method = "get",
        operation_id = "getCsrfToken",
        tag = "Tag::Auth"
    )]
    async fn csrf(&self, csrf: Data<&Csrf>, jar: &CookieJar) -> Json<CsrfToken> {
        Json(CsrfToken {
            detail: messages::CSRF_SET.into(),
            csrf_token: csrf.token(jar),
        })
    }
}
