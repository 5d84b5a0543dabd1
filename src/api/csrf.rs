//! CSRF protection by Django's convention: a readable `csrftoken` cookie whose value the page
//! echoes in an `X-CSRFToken` header on every unsafe request. A cross-site form can send the
//! cookie but cannot read it, so it cannot produce the header.
//!
//! As Django's `CsrfViewMiddleware`, a request that names its `Origin` must come from a trusted
//! one: this service's own (`public_url`, or the `Host` it was sent to) or a listed
//! `cors.allowed_origins` entry. Browsers send `Origin` on every cross-site unsafe request.
//!
//! Django may hand out the token masked (64 characters: a random mask, then the secret
//! shifted by it) so that it differs on every page; both forms are accepted and compared by
//! their secret, in constant time.

use std::sync::Arc;

use poem::Request;
use poem::http::header::{HOST, ORIGIN};
use poem::http::{Method, StatusCode};
use poem::web::cookie::Cookie;
use subtle::ConstantTimeEq;

use crate::api::error::ApiError;
use crate::config::{Config, SessionConfig};

pub const HEADER: &str = "X-CSRFToken";
const SECRET_LENGTH: usize = 32;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

const COOKIE_NOT_SET: &str = "CSRF Failed: CSRF cookie not set.";
const TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";
const TOKEN_INCORRECT: &str =
    "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.";

/// Origins whose pages may send unsafe requests: `public_url`'s and `cors.allowed_origins`
/// (scheme://host[:port], compared case-insensitively). Attached as request data.
#[derive(Debug, Clone, Default)]
pub struct TrustedOrigins(Arc<Vec<String>>);

impl TrustedOrigins {
    pub fn from_config(config: &Config) -> Self {
        let own = origin_of(&config.public_url);
        let listed = config
            .cors
            .allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/'));
        Self(Arc::new(
            own.into_iter()
                .chain(listed)
                .map(str::to_ascii_lowercase)
                .collect(),
        ))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(&url[..scheme.len() + 3 + authority.len()])
}

/// Whether a request's `Origin` is one whose pages may act here. Besides the listed origins,
/// the one the request was addressed to (its `Host`) counts, as in Django; the scheme is not
/// compared there, since TLS often ends at a proxy in front of this service.
fn origin_trusted(request: &Request, origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    let listed = request
        .data::<TrustedOrigins>()
        .is_some_and(|trusted| trusted.0.contains(&origin));
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let same_host = match (origin.split_once("://"), host) {
        (Some((_, origin_host)), Some(host)) => origin_host.eq_ignore_ascii_case(host),
        _ => false,
    };
    listed || same_host
}

/// GET, HEAD, OPTIONS and TRACE change nothing and need no token (RFC 9110 "safe").
pub fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A new secret for the `csrftoken` cookie: 32 characters of Django's alphabet.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_LENGTH];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    // 62 does not divide 256; the bias (under 1%) does not matter for an unguessable token.
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A `csrftoken` cookie with a new secret, Django-style: readable by the page (not HttpOnly),
/// a year long, with the `[session]` cookie attributes.
pub fn new_cookie(config: &SessionConfig) -> Cookie {
    let mut cookie = Cookie::new_with_str(config.csrf_cookie_name.as_str(), new_secret());
    cookie.set_path("/");
    cookie.set_max_age(std::time::Duration::from_secs(31_449_600));
    cookie.set_http_only(false);
    cookie.set_secure(config.cookie_secure);
    cookie.set_same_site(crate::api::jwt_mode::same_site(config.cookie_samesite));
    if let Some(domain) = &config.cookie_domain {
        cookie.set_domain(domain);
    }
    cookie
}

/// Refuses an unsafe request whose header does not match its `cookie` (403, Django's words).
pub fn check(request: &Request, cookie: &str) -> Result<(), ApiError> {
    if is_safe(request.method()) {
        return Ok(());
    }
    let forbidden = |message: &str| ApiError::detail(StatusCode::FORBIDDEN, message);
    if let Some(origin) = request.headers().get(ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !origin_trusted(request, &origin) {
            return Err(forbidden(&format!(
                "CSRF Failed: Origin checking failed - {origin} does not match any trusted \
                 origins."
            )));
        }
    }
    let Some(cookie) = request.cookie().get(cookie) else {
        return Err(forbidden(COOKIE_NOT_SET));
    };
    let Some(header) = request.headers().get(HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(forbidden(TOKEN_MISSING));
    };
    match (secret_of(cookie.value_str()), secret_of(header)) {
        (Some(expected), Some(given)) if bool::from(expected.ct_eq(&given)) => Ok(()),
        _ => Err(forbidden(TOKEN_INCORRECT)),
    }
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
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://auth.example.com:8443/base/?x#y"),
            Some("https://auth.example.com:8443")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8000"),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn malformed_tokens_have_no_secret() {
        for bad in ["", "short", &"a".repeat(33), &"!".repeat(32)] {
            assert_eq!(secret_of(bad), None, "{bad}");
        }
    }
}
