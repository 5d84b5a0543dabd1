//! Server-side sessions carried by Django's `sessionid` cookie: opened at login, read on
//! requests, closed at logout. Session mode is built on these, and so is `auth.session_login`
//! in the other modes.

use std::sync::Arc;

use poem::Request;
use poem::web::cookie::CookieJar;

use crate::api::caller::client_ip;
use crate::api::cookies::CookieRules;
use crate::api::edge::csrf::Csrf;
use crate::api::error::ApiError;
use crate::service::accounts::Accounts;
use crate::service::audit::Caller;
use crate::service::principal::{Principal, User};

/// The account service plus the cookie rules; attached once as request data (shared, so
/// every request's copy is one reference count).
#[derive(Clone)]
pub struct CookieSessions(Arc<Shared>);

struct Shared {
    accounts: Accounts,
    csrf: Csrf,
}

impl CookieSessions {
    pub fn new(accounts: Accounts, csrf: Csrf) -> Self {
        Self(Arc::new(Shared { accounts, csrf }))
    }

    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }

    fn cookie_name(&self) -> &str {
        &self.0.accounts.config().session.cookie_name
    }

    /// Opens a session for `user` and sets its cookie. A session id the client presented is
    /// replaced, never promoted (no fixation), and the CSRF secret rotates, as Django's login.
    pub async fn open(
        &self,
        jar: &CookieJar,
        user: &User,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        let config = &self.0.accounts.config().session;
        let previous = jar
            .get(self.cookie_name())
            .map(|c| c.value_str().to_owned());
        let opened = self
            .0
            .accounts
            .start_session(user, previous.as_deref(), caller)
            .await?;
        let rules = CookieRules::session(config);
        jar.add(rules.until(self.cookie_name(), &opened.key, opened.expires_at));
        jar.add(self.0.csrf.new_cookie());
        Ok(())
    }

    /// Ends the session of the request's cookie, if any, and clears the cookie.
    pub async fn close(&self, jar: &CookieJar, caller: &Caller) -> Result<(), ApiError> {
        if let Some(cookie) = jar.get(self.cookie_name()) {
            self.0
                .accounts
                .end_session(cookie.value_str(), caller)
                .await?;
        }
        let rules = CookieRules::session(&self.0.accounts.config().session);
        jar.add(rules.removal(self.cookie_name()));
        Ok(())
    }

    /// The user of the request's session cookie; an unknown or expired session counts as no
    /// credential (DRF's `SessionAuthentication` treats it as anonymous).
    pub async fn principal(&self, request: &Request) -> Result<Option<Principal>, ApiError> {
        let Some(cookie) = request.cookie().get(self.cookie_name()) else {
            return Ok(None);
        };
        Ok(self
            .0
            .accounts
            .authenticate_session(cookie.value_str(), client_ip(request))
            .await?)
    }
}
