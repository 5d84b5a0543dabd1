//! Session mode (`auth.mode = "session"`): `login/`, `logout/`, `registration/` and `csrf/`
//! with Django's session and CSRF cookies. CSRF itself is enforced at the edge for every
//! unsafe request (`framework_errors`), login and registration included.

use poem::web::Data;
use poem::web::cookie::{Cookie, CookieJar};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use crate::api::Tag;
use crate::api::accounts::{
    Detail, LOGGED_OUT, LoginRequest, RegisterRequest, Success, VERIFICATION_SENT,
};
use crate::api::error::ApiError;
use crate::api::input::Input;
use crate::api::jwt_mode::same_site;
use crate::config::SessionConfig;
use crate::service::accounts::{Accounts, LoginInput, Registered, RegistrationInput, User};
use crate::service::audit::Caller;

pub const CSRF_SET: &str = "CSRF cookie set.";

#[derive(ApiResponse)]
enum SessionLoginResponse {
    /// Logged in: the `sessionid` cookie is set (a new one at every login).
    #[oai(status = 204)]
    LoggedIn,
}

#[derive(ApiResponse)]
enum SessionRegisterResponse {
    /// The account was created and logged in: the `sessionid` cookie is set.
    #[oai(status = 204)]
    LoggedIn,
    /// The account was created and must confirm its email address first.
    #[oai(status = 201)]
    VerificationSent(Json<Detail>),
}

/// The session cookie: HttpOnly always, the other attributes from `[session]`.
fn session_cookie(config: &SessionConfig, value: &str) -> Cookie {
    let mut cookie = Cookie::new_with_str(config.cookie_name.as_str(), value);
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_secure(config.cookie_secure);
    cookie.set_same_site(same_site(config.cookie_samesite));
    if let Some(domain) = &config.cookie_domain {
        cookie.set_domain(domain);
    }
    cookie
}

/// Opens a session for `user` and sets its cookie (also used by `auth.session_login`).
pub(crate) async fn open_session(
    accounts: &Accounts,
    jar: &CookieJar,
    user: &User,
) -> Result<(), ApiError> {
    let config = &accounts.config().session;
    let previous = jar
        .get(&config.cookie_name)
        .map(|c| c.value_str().to_owned());
    let opened = accounts.start_session(user, previous.as_deref()).await?;
    let mut cookie = session_cookie(config, &opened.key);
    cookie.set_expires(opened.expires_at);
    jar.add(cookie);
    // A new CSRF secret with every login, as Django's `rotate_token`.
    jar.add(crate::api::csrf::new_cookie(config));
    Ok(())
}

/// Checks login credentials; with `auth.session_login` (token and jwt modes) also opens a
/// session, as dj-rest-auth's `REST_SESSION_LOGIN`.
pub(crate) async fn authenticate_login(
    accounts: &Accounts,
    jar: &CookieJar,
    input: LoginInput,
    caller: &Caller,
) -> Result<User, ApiError> {
    let user = accounts.authenticate(input, caller).await?;
    if accounts.config().auth.session_login {
        open_session(accounts, jar, &user).await?;
    }
    Ok(user)
}

/// Ends the session of the request's session cookie, if any, and clears the cookie (logout in
/// session mode, and in token/jwt mode with `auth.session_login`).
pub(crate) async fn close_session(
    accounts: &Accounts,
    jar: &CookieJar,
    caller: &Caller,
) -> Result<(), ApiError> {
    let config = &accounts.config().session;
    if let Some(cookie) = jar.get(&config.cookie_name) {
        accounts.end_session(cookie.value_str(), caller).await?;
    }
    clear_session_cookie(jar, config);
    Ok(())
}

fn clear_session_cookie(jar: &CookieJar, config: &SessionConfig) {
    let mut cookie = session_cookie(config, "");
    cookie.make_removal();
    jar.add(cookie);
}

pub struct SessionModeApi;

#[OpenApi]
impl SessionModeApi {
    /// Log in
    ///
    /// Checks the credentials and opens a session: answers 204 with a new `sessionid` cookie.
    /// Needs the `X-CSRFToken` header, like every unsafe request in session mode.
    #[oai(
        path = "/login/",
        method = "post",
        operation_id = "login",
        tag = "Tag::Auth"
    )]
    async fn login(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<LoginRequest, LoginInput>,
    ) -> Result<SessionLoginResponse, ApiError> {
        let user = accounts.authenticate(body.0, &caller).await?;
        open_session(&accounts, jar, &user).await?;
        Ok(SessionLoginResponse::LoggedIn)
    }

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
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
    ) -> Result<Success<Detail>, ApiError> {
        close_session(&accounts, jar, &caller).await?;
        Ok(Detail::new(LOGGED_OUT))
    }

    /// Register
    ///
    /// Creates an account and, unless email verification is mandatory, logs it in (204 with
    /// the `sessionid` cookie); otherwise 201 and a confirmation email.
    #[oai(
        path = "/registration/",
        method = "post",
        operation_id = "register",
        tag = "Tag::Registration"
    )]
    async fn register(
        &self,
        accounts: Data<&Accounts>,
        jar: &CookieJar,
        caller: Caller,
        body: Input<RegisterRequest, RegistrationInput>,
    ) -> Result<SessionRegisterResponse, ApiError> {
        match accounts.register(body.0, &caller).await? {
            Registered::Active(user) => {
                open_session(&accounts, jar, &user).await?;
                Ok(SessionRegisterResponse::LoggedIn)
            }
            Registered::VerificationSent => Ok(SessionRegisterResponse::VerificationSent(Json(
                Detail::text(VERIFICATION_SENT),
            ))),
        }
    }

    /// Get a CSRF cookie
    ///
    /// For single-page apps: makes sure the readable `csrftoken` cookie is set (any response
    /// sets it when the request has none); echo its value in `X-CSRFToken`.
    #[oai(
        path = "/csrf/",
        method = "get",
        operation_id = "getCsrfToken",
        tag = "Tag::Auth"
    )]
    async fn csrf(&self) -> Success<Detail> {
        Detail::new(CSRF_SET)
    }
}
