//! CSRF protection by Django's convention: a readable `csrftoken` cookie whose value the page
//! echoes in an `X-CSRFToken` header on every unsafe request. A cross-site form can send the
//! cookie but cannot read it, so it cannot produce the header.
//!
//! As Django's `CsrfViewMiddleware`, a request that names its `Origin` must come from a trusted
//! one: this service's own (`public_url`, or the scheme and `Host` it was sent to) or a listed
//! `cors.allowed_origins` entry. Browsers send `Origin` on every cross-site unsafe request.
//!
//! Django may hand out the token masked (64 characters: a random mask, then the secret
//! shifted by it) so that it differs on every page; both forms are accepted and compared by
//! their secret, in constant time.

use std::sync::Arc;

use poem::http::Method;
use poem::http::header::{HOST, ORIGIN};
use poem::web::cookie::{Cookie, CookieJar};
use poem::{Endpoint, IntoResponse, Request, Response};
use subtle::ConstantTimeEq;

use crate::api::caller::TrustedProxies;
use crate::api::cookies::CookieRules;
use crate::api::edge::link_paths;
use crate::api::error::ApiError;
use crate::config::{AuthMode, Config, SessionConfig};
use crate::messages;

pub const HEADER: &str = "X-CSRFToken";
/// Where an HTML form presents the token instead (Django's name).
pub const FORM_FIELD: &str = "csrfmiddlewaretoken";
const SECRET_LENGTH: usize = 32;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Django's `CSRF_COOKIE_AGE`: a year.
const COOKIE_AGE: std::time::Duration = std::time::Duration::from_secs(31_449_600);

/// Where CSRF applies in this configuration, set once as request data: the cookie's settings
/// and the origins whose pages may send unsafe requests.
#[derive(Debug, Clone)]
pub struct Csrf {
    /// Shared, so attaching it to every request copies no strings.
    cookie: Arc<SessionConfig>,
    /// `public_url`'s origin and `cors.allowed_origins` (scheme://host[:port], lowercase).
    trusted_origins: Arc<Vec<String>>,
    /// Session mode: every unsafe request needs the token, login and registration included.
    everywhere: bool,
    /// Whether cookies authenticate at all here (then the readable cookie is handed out).
    hand_out: bool,
}

impl Csrf {
    pub fn from_config(config: &Config) -> Self {
        let own = config.public_url.origin().ascii_serialization();
        let listed = config
            .cors
            .allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase());
        let session = config.auth.mode == AuthMode::Session;
        let jwt_cookie = config.auth.mode == AuthMode::Jwt && config.jwt.cookie_use_csrf;
        Self {
            cookie: Arc::new(config.session.clone()),
            trusted_origins: Arc::new(std::iter::once(own).chain(listed).collect()),
            everywhere: session,
            hand_out: session || config.auth.session_login || jwt_cookie,
        }
    }

    /// A `csrftoken` cookie with a new secret (also at every login, as Django's
    /// `rotate_token`): readable by the page, a year long.
    /// The CSRF token of the request whose cookies are `jar`: its cookie's, or a new one set
    /// in the jar now (so `hand_out_cookie` adds no second one).
    pub fn token(&self, jar: &CookieJar) -> String {
        if let Some(cookie) = jar.get(&self.cookie.csrf_cookie_name) {
            return cookie.value_str().to_owned();
        }
        let cookie = self.new_cookie();
        let token = cookie.value_str().to_owned();
        jar.add(cookie);
        token
    }

    pub fn new_cookie(&self) -> Cookie {
        CookieRules::csrf(&self.cookie).lasting(
            &self.cookie.csrf_cookie_name,
            &new_secret(),
            COOKIE_AGE,
        )
    }

    /// Whether a request's `Origin` is one whose pages may act here: a listed origin, or, as
    /// in Django, the origin the request was addressed to, scheme and host both. The scheme is
    /// the connection's, or `X-Forwarded-Proto` when a trusted proxy ends TLS in front of us
    /// (Django's `SECURE_PROXY_SSL_HEADER`).
    fn origin_trusted(&self, request: &Request, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.trusted_origins.contains(&origin) {
            return true;
        }
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        match host {
            Some(host) => {
                origin == format!("{}://{}", request_scheme(request), host).to_ascii_lowercase()
            }
            None => false,
        }
    }

    /// The one CSRF check: refuses an unsafe request from an untrusted origin, or whose
    /// `X-CSRFToken` header does not match its cookie (403, Django's words).
    pub fn check(&self, request: &Request) -> Result<(), ApiError> {
        if is_safe(request.method()) {
            return Ok(());
        }
        self.check_origin(request)?;
        let header = request.headers().get(HEADER).and_then(|v| v.to_str().ok());
        self.check_token(request, header, messages::CSRF_TOKEN_INCORRECT)
    }

    /// The same check for an HTML form, which presents the token in its
    /// [`FORM_FIELD`] field (`field`, read from the body by the page) instead of the header.
    pub fn check_form(&self, request: &Request, field: Option<&str>) -> Result<(), ApiError> {
        if is_safe(request.method()) {
            return Ok(());
        }
        self.check_origin(request)?;
        self.check_token(request, field, messages::CSRF_FORM_TOKEN_INCORRECT)
    }

    /// A request that names its `Origin` must name a trusted one.
    fn check_origin(&self, request: &Request) -> Result<(), ApiError> {
        if let Some(origin) = request.headers().get(ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self.origin_trusted(request, &origin) {
                return Err(ApiError::csrf_failed(&messages::csrf_bad_origin(&origin)));
            }
        }
        Ok(())
    }

    /// The presented token must have the cookie's secret.
    fn check_token(
        &self,
        request: &Request,
        presented: Option<&str>,
        incorrect: &str,
    ) -> Result<(), ApiError> {
        let Some(cookie) = request.cookie().get(&self.cookie.csrf_cookie_name) else {
            return Err(ApiError::csrf_failed(messages::CSRF_COOKIE_NOT_SET));
        };
        let Some(presented) = presented else {
            return Err(ApiError::csrf_failed(messages::CSRF_TOKEN_MISSING));
        };
        match (secret_of(cookie.value_str()), secret_of(presented)) {
            (Some(expected), Some(given)) if bool::from(expected.ct_eq(&given)) => Ok(()),
            _ => Err(ApiError::csrf_failed(incorrect)),
        }
    }
}

/// `https` when the connection is TLS, or when a trusted proxy says it ended TLS; else `http`.
fn request_scheme(request: &Request) -> &'static str {
    let via_trusted_proxy = request
        .data::<TrustedProxies>()
        .is_some_and(|trusted| trusted.forwarded(request));
    let forwarded_https = via_trusted_proxy
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    if forwarded_https || request.uri().scheme_str() == Some("https") {
        "https"
    } else {
        "http"
    }
}

/// For a credential carried by a cookie: the request must pass the CSRF check.
pub fn require(request: &Request) -> Result<(), ApiError> {
    match request.data::<Csrf>() {
        Some(csrf) => csrf.check(request),
        // Without the edge's settings there is nothing to check against: refuse.
        None => Err(ApiError::internal()),
    }
}

/// Session mode: every unsafe request passes the check before anything else reads it. The
/// email-link pages are left to check it themselves, in every mode, with the token their form
/// posts (a middleware cannot read it without buffering every body).
pub async fn enforce<E: Endpoint>(next: Arc<E>, request: Request) -> poem::Result<Response> {
    if let Some(csrf) = request.data::<Csrf>()
        && csrf.everywhere
        && !link_paths::is_page_path(request.uri().path())
        && let Err(refusal) = csrf.check(&request)
    {
        return Ok(refusal.into_response());
    }
    Ok(next.call(request).await?.into_response())
}

/// Wherever cookies authenticate: any answer to a request without the CSRF cookie sets one
/// (unless the handler just did), errors included, so a page always has a token to echo.
pub async fn hand_out_cookie<E: Endpoint>(
    next: Arc<E>,
    request: Request,
) -> poem::Result<Response> {
    let csrf = request.data::<Csrf>().filter(|c| c.hand_out).cloned();
    let jar = request.cookie().clone();
    let response = next.call(request).await?.into_response();
    if let Some(csrf) = csrf
        && jar.get(&csrf.cookie.csrf_cookie_name).is_none()
    {
        jar.add(csrf.new_cookie());
    }
    Ok(response)
}

/// GET, HEAD, OPTIONS and TRACE change nothing and need no token (RFC 9110 "safe").
pub fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A new secret for the `csrftoken` cookie: 32 characters of Django's alphabet.
fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_LENGTH];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    // 62 does not divide 256; the bias (under 1%) does not matter for an unguessable token.
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The secret behind a token: itself when 32 characters, unmasked when 64, else none.
fn secret_of(token: &str) -> Option<Vec<u8>> {
    let token = token.as_bytes();
    if !token.iter().all(|c| ALPHABET.contains(c)) {
        return None;
    }
    match token.len() {
        SECRET_LENGTH => Some(token.to_vec()),
        len if len == 2 * SECRET_LENGTH => {
            let (mask, cipher) = token.split_at(SECRET_LENGTH);
            let index = |c: &u8| ALPHABET.iter().position(|a| a == c).unwrap_or(0);
            Some(
                mask.iter()
                    .zip(cipher)
                    .map(|(m, c)| {
                        let n = ALPHABET.len();
                        ALPHABET[(index(c) + n - index(m)) % n]
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Django's `_mask_cipher_secret`, to produce masked tokens the way Django does.
    fn mask(secret: &str, mask: &str) -> String {
        let index = |c: u8| ALPHABET.iter().position(|a| *a == c).unwrap();
        let cipher: String = secret
            .bytes()
            .zip(mask.bytes())
            .map(|(s, m)| ALPHABET[(index(s) + index(m)) % ALPHABET.len()] as char)
            .collect();
        format!("{mask}{cipher}")
    }

    #[test]
    fn plain_and_masked_tokens_unmask_to_the_secret() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(secret_of(&secret).unwrap(), secret.as_bytes());
        let masked = mask(&secret, &new_secret());
        assert_eq!(masked.len(), 64);
        assert_eq!(secret_of(&masked).unwrap(), secret.as_bytes());
    }

    #[test]
    fn malformed_tokens_have_no_secret() {
        for bad in ["", "short", &"a".repeat(33), &"!".repeat(32)] {
            assert_eq!(secret_of(bad), None, "{bad}");
        }
    }
}
