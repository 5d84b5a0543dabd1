//! The one cookie builder: every cookie Tessera sets (session, CSRF, JWT access and refresh)
//! and every removal goes through here, with attributes from the configuration.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::cookie::{Cookie, SameSite};

use crate::config::{self, JwtConfig, SessionConfig};

impl From<config::SameSite> for SameSite {
    fn from(value: config::SameSite) -> Self {
        match value {
            config::SameSite::Lax => SameSite::Lax,
            config::SameSite::Strict => SameSite::Strict,
            config::SameSite::None => SameSite::None,
        }
    }
}

/// The attributes of one kind of cookie.
#[derive(Debug, Clone, Copy)]
pub struct CookieRules<'a> {
    pub path: &'a str,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: config::SameSite,
    pub domain: Option<&'a str>,
}

impl<'a> CookieRules<'a> {
    /// Django's session cookie: never readable by scripts.
    pub fn session(config: &'a SessionConfig) -> Self {
        Self {
            path: "/",
            http_only: true,
            secure: config.cookie_secure,
            same_site: config.cookie_samesite,
            domain: config.cookie_domain.as_deref(),
        }
    }

    /// Django's CSRF cookie: readable by the page, which echoes it in `X-CSRFToken`.
    pub fn csrf(config: &'a SessionConfig) -> Self {
        Self {
            http_only: false,
            ..Self::session(config)
        }
    }

    /// dj-rest-auth's JWT cookies (`JWT_AUTH_*`), on `path`.
    pub fn jwt(config: &'a JwtConfig, path: &'a str) -> Self {
        Self {
            path,
            http_only: config.cookie_httponly,
            secure: config.cookie_secure,
            same_site: config.cookie_samesite,
            domain: config.cookie_domain.as_deref(),
        }
    }

    /// The redirect flow's `state`, bound to the browser that started it: only the callback
    /// (`path`) gets it, never a script. `Lax`, whatever the session cookie's setting: the
    /// provider's redirect back is a cross-site navigation, which `Strict` would strip it from.
    pub fn social_state(config: &'a SessionConfig, path: &'a str) -> Self {
        Self {
            path,
            http_only: true,
            secure: config.cookie_secure,
            same_site: config::SameSite::Lax,
            domain: None,
        }
    }

    /// A cookie that lasts until `expires` (a credential's own end).
    pub fn until(&self, name: &str, value: &str, expires: DateTime<Utc>) -> Cookie {
        let mut cookie = self.build(name, value);
        cookie.set_expires(expires);
        cookie
    }

    /// A cookie that lasts `max_age`.
    pub fn lasting(&self, name: &str, value: &str, max_age: Duration) -> Cookie {
        let mut cookie = self.build(name, value);
        cookie.set_max_age(max_age);
        cookie
    }

    /// Tells the browser to drop the cookie (same path and domain, or it would not match).
    pub fn removal(&self, name: &str) -> Cookie {
        let mut cookie = self.build(name, "");
        cookie.make_removal();
        cookie
    }

    fn build(&self, name: &str, value: &str) -> Cookie {
        let mut cookie = Cookie::new_with_str(name, value);
        cookie.set_path(self.path);
        cookie.set_http_only(self.http_only);
        cookie.set_secure(self.secure);
        cookie.set_same_site(SameSite::from(self.same_site));
        if let Some(domain) = self.domain {
            cookie.set_domain(domain);
        }
        cookie
    }
}
