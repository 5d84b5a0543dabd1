//! `auth.session_login` (dj-rest-auth's `REST_SESSION_LOGIN`): in token and JWT mode, login
//! also opens a cookie session, logout ends it, and the session authenticates requests (with
//! CSRF enforced, since a cookie travels on its own). Session mode has no use for it.

use poem::Request;
use poem::web::cookie::CookieJar;

use crate::api::edge::csrf;
use crate::api::error::ApiError;
use crate::api::session_cookie::CookieSessions;
use crate::service::audit::Caller;
use crate::service::principal::{Principal, User};

fn enabled(sessions: &CookieSessions) -> bool {
    sessions.accounts().config().auth.session_login
}

/// At login: opens the session when the setting is on.
pub async fn open(
    sessions: &CookieSessions,
    jar: &CookieJar,
    user: &User,
    caller: &Caller,
) -> Result<(), ApiError> {
    if enabled(sessions) {
        sessions.open(jar, user, caller).await?;
    }
    Ok(())
}

/// At logout: ends the session when the setting is on. Returns whether it is on (then a
/// logout without the mode's own credential is no error, as in dj-rest-auth).
pub async fn close(
    sessions: &CookieSessions,
    jar: &CookieJar,
    caller: &Caller,
) -> Result<bool, ApiError> {
    if !enabled(sessions) {
        return Ok(false);
    }
    sessions.close(jar, caller).await?;
    Ok(true)
}

/// On requests without the mode's credential: the session's user, CSRF checked.
pub async fn principal(request: &Request) -> Result<Option<Principal>, ApiError> {
    let Some(sessions) = request.data::<CookieSessions>() else {
        return Ok(None);
    };
    if !enabled(sessions) {
        return Ok(None);
    }
    let principal = sessions.principal(request).await?;
    if principal.is_some() {
        csrf::require(request)?;
    }
    Ok(principal)
}
