//! Session mode (`auth.mode = "session"`) and `auth.session_login`, over real HTTP: Django's
//! `sessionid` and `csrftoken` cookies with their exact attributes, CSRF on every unsafe
//! request (login and registration included) in Django's words, masked tokens, no session
//! fixation, digests at rest, idle and absolute expiry, logout, password change and reset, and
//! the OpenAPI document's cookie and CSRF schemes.
//!
//! Requests are built by hand (the harness client keeps no cookies): `Browser`
//! (`support/cookies.rs`) sends exactly the cookies it was given and remembers what
//! `Set-Cookie` tells it, as a browser does.

use chrono::{DateTime, Duration, Utc};
use entity::session;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::{AuthMode, EmailVerification, SameSite};

use crate::support::cookies::{
    Browser, CSRF_COOKIE, CSRF_HEADER, Csrf, SESSION_COOKIE, SetCookie, issued, set_cookie,
    set_cookies, with_cookies,
};
use crate::support::{
    Backend, PASSWORD, Reply, TestApp, assert_detail, credentials, new_passwords, sha256_hex,
};

on_each_backend!(
    login_answers_204_and_sets_the_session_cookie,
    login_and_registration_hand_out_a_new_csrf_cookie,
    secure_domain_and_samesite_follow_the_settings,
    csrf_failures_use_djangos_messages,
    cross_site_origins_are_refused,
    a_trusted_proxy_says_which_scheme_the_page_used,
    every_unsafe_request_needs_the_csrf_header,
    masked_csrf_tokens_are_accepted,
    missing_credentials_are_403_without_a_challenge,
    every_answer_to_a_cookieless_request_sets_the_csrf_cookie,
    login_replaces_the_session_the_browser_already_had,
    a_planted_session_id_never_becomes_a_session,
    session_ids_are_stored_only_as_digests,
    idle_sessions_expire_and_use_keeps_them_alive,
    absolute_expiry_ends_even_a_busy_session,
    logout_deletes_the_session_and_clears_the_cookie,
    logging_out_twice_is_harmless,
    registration_logs_in_unless_verification_is_mandatory,
    mandatory_verification_registration_opens_no_session,
    password_change_keeps_this_session_and_ends_the_others,
    password_reset_ends_every_session,
    session_login_opens_a_session_in_token_mode,
    session_login_opens_a_session_in_jwt_mode,
    without_session_login_no_cookie_is_set,
    session_login_logout_ends_the_session_too,
    openapi_document_declares_the_cookie_and_csrf_schemes,
);

/// Django's `CSRF_COOKIE_AGE`: a year (52 weeks), in seconds.
const CSRF_COOKIE_AGE: i64 = 31449600;
/// Django's `CSRF_ALLOWED_CHARS`.
const CSRF_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

const NEW_PASSWORD: &str = "a brand new passphrase";
const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const COOKIE_NOT_SET: &str = "CSRF Failed: CSRF cookie not set.";
const TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";
const TOKEN_INCORRECT: &str =
    "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.";
const LOGGED_OUT: &str = "Successfully logged out.";
const SAVED: &str = "New password has been saved.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const RESET_SENT: &str = "Password reset e-mail has been sent.";
const RESET_DONE: &str = "Password has been reset with the new password.";
const VERIFICATION_SENT: &str = "Verification e-mail sent.";
const RESET_PREFIX: &str = "https://app.example.com/reset/";

async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

/// An app in session mode, `configure` applied last.
async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        config.auth.mode = AuthMode::Session;
        config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
        configure(config);
    })
    .await
}

/// DRF's `SessionAuthentication` has no challenge, so "no credentials" is a 403 without
/// `WWW-Authenticate`.
fn assert_not_provided(reply: &Reply) {
    assert_detail(reply, 403, NOT_PROVIDED);
    assert_eq!(
        reply.header("www-authenticate"),
        None,
        "no challenge in session mode"
    );
}

/// Cookie attributes the settings decide.
struct Expected {
    secure: bool,
    domain: Option<&'static str>,
    same_site: &'static str,
}

const DEFAULTS: Expected = Expected {
    secure: false,
    domain: None,
    same_site: "Lax",
};

const KNOWN_ATTRIBUTES: &[&str] = &[
    "httponly", "secure", "samesite", "path", "domain", "expires", "max-age",
];

fn assert_common_attributes(cookie: &SetCookie, expected: &Expected) {
    assert_eq!(
        cookie.same_site().as_deref(),
        Some(expected.same_site),
        "{}",
        cookie.raw
    );
    assert_eq!(cookie.path(), Some("/"), "{}", cookie.raw);
    assert_eq!(
        cookie.secure(),
        expected.secure,
        "Secure exactly when configured: {}",
        cookie.raw
    );
    assert_eq!(
        cookie.domain(),
        expected.domain,
        "Domain exactly when configured: {}",
        cookie.raw
    );
    for name in cookie.attribute_names() {
        assert!(
            KNOWN_ATTRIBUTES.contains(&name.as_str()),
            "unexpected attribute {name}: {}",
            cookie.raw
        );
    }
}

/// `sessionid`: HttpOnly, `Path=/`, SameSite, Secure/Domain as configured, persistent.
fn assert_session_cookie(cookie: &SetCookie, expected: &Expected) {
    assert_eq!(cookie.name, SESSION_COOKIE);
    assert!(
        cookie.value.len() >= 32 && cookie.value.chars().all(|c| c.is_ascii_alphanumeric()),
        "an unguessable session id: {}",
        cookie.raw
    );
    assert!(cookie.http_only(), "HttpOnly: {}", cookie.raw);
    assert!(
        cookie.expires().is_some() || cookie.max_age().is_some(),
        "a persistent cookie: {}",
        cookie.raw
    );
    assert_common_attributes(cookie, expected);
}

/// `csrftoken`: readable by the page (not HttpOnly), a year long, 32 characters of Django's
/// alphabet.
fn assert_csrf_cookie(cookie: &SetCookie, expected: &Expected) {
    assert_eq!(cookie.name, CSRF_COOKIE);
    assert_eq!(cookie.value.len(), 32, "{}", cookie.raw);
    assert!(
        cookie.value.bytes().all(|b| CSRF_ALPHABET.contains(&b)),
        "{}",
        cookie.raw
    );
    assert!(!cookie.http_only(), "the page must read it: {}", cookie.raw);
    assert_eq!(cookie.max_age(), Some(CSRF_COOKIE_AGE), "{}", cookie.raw);
    assert_common_attributes(cookie, expected);
}

/// Django's `_mask_cipher_secret`: `mask + cipher`, each cipher character being
/// `(secret + mask) mod 62` in `CSRF_ALLOWED_CHARS`.
fn mask_cipher_secret(secret: &str, mask: &str) -> String {
    assert_eq!(secret.len(), 32);
    assert_eq!(mask.len(), 32);
    let index = |c: u8| CSRF_ALPHABET.iter().position(|a| *a == c).unwrap();
    let cipher: String = secret
        .bytes()
        .zip(mask.bytes())
        .map(|(s, m)| CSRF_ALPHABET[(index(s) + index(m)) % CSRF_ALPHABET.len()] as char)
        .collect();
    format!("{mask}{cipher}")
}

/// Another well-formed secret: every character moved one place along the alphabet.
fn other_secret(secret: &str) -> String {
    let index = |c: u8| CSRF_ALPHABET.iter().position(|a| *a == c).unwrap();
    secret
        .bytes()
        .map(|c| CSRF_ALPHABET[(index(c) + 1) % CSRF_ALPHABET.len()] as char)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A browser: cookies in, Set-Cookie out, the CSRF cookie echoed by the page's script
// ---------------------------------------------------------------------------------------------

/// A new browser that signed up (and so is logged in).
async fn register<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let reply = browser
        .post(
            "registration/",
            json!({"email": email, "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 204, "registration failed: {}", reply.text);
    browser
}

/// `GET user/` presenting only this session cookie.
async fn with_session(app: &TestApp, session: &str) -> Reply {
    let mut browser = Browser::new(app);
    browser.plant(SESSION_COOKIE, session);
    browser.me().await
}

async fn sessions_of(app: &TestApp, email: &str) -> Vec<session::Model> {
    let user = entity::user::Entity::find()
        .filter(entity::user::Column::Email.eq(email))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("a user {email}"));
    session::Entity::find()
        .filter(session::Column::UserId.eq(user.id))
        .all(&app.db)
        .await
        .unwrap()
}

async fn all_sessions(app: &TestApp) -> Vec<session::Model> {
    session::Entity::find().all(&app.db).await.unwrap()
}

async fn session_with_cookie(app: &TestApp, cookie: &str) -> session::Model {
    session::Entity::find()
        .filter(session::Column::Digest.eq(sha256_hex(cookie)))
        .one(&app.db)
        .await
        .unwrap()
        .expect("a session stored under the digest of its cookie")
}

async fn set_session_column(app: &TestApp, column: session::Column, at: DateTime<Utc>) {
    session::Entity::update_many()
        .col_expr(column, Expr::value(at))
        .exec(&app.db)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Login and the cookies
// ---------------------------------------------------------------------------------------------

async fn login_answers_204_and_sets_the_session_cookie(backend: Backend) {
    let app = spawn(backend).await;
    register(&app, "ada@example.com").await;

    let mut browser = Browser::new(&app);
    let csrf = browser.fetch_csrf().await;
    let cookie = issued(&csrf, CSRF_COOKIE);
    assert_csrf_cookie(&cookie, &DEFAULTS);
    // The body carries the same token, for pages that cannot read the cookie; once the
    // browser has the cookie, its value is answered and no new cookie is set.
    assert_eq!(
        csrf.body,
        json!({"detail": "CSRF cookie set.", "csrf_token": cookie.value})
    );
    assert_eq!(
        csrf.headers.get_all("set-cookie").iter().count(),
        1,
        "{csrf:?}"
    );
    let again = browser.fetch_csrf().await;
    assert_eq!(again.body["csrf_token"], json!(cookie.value));
    assert_eq!(set_cookie(&again, CSRF_COOKIE).map(|c| c.raw), None);

    let login = browser.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status, 204, "{}", login.text);
    assert!(login.text.is_empty(), "204 has no body: {:?}", login.text);
    let cookie = issued(&login, SESSION_COOKIE);
    assert_session_cookie(&cookie, &DEFAULTS);

    let me = browser.me().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(me.body["username"], "ada");
    assert!(me.body["pk"].is_i64());
    assert_eq!(
        set_cookie(&me, CSRF_COOKIE).map(|c| c.raw),
        None,
        "the browser has a CSRF cookie already"
    );
    // The session cookie alone authenticates (no CSRF on safe methods).
    assert_eq!(with_session(&app, &cookie.value).await.status, 200);
    // Bad credentials open no session.
    let mut other = Browser::new(&app);
    let refused = other.login("ada@example.com", "not the password").await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
    assert_eq!(set_cookie(&refused, SESSION_COOKIE).map(|c| c.raw), None);
}

/// Django's `login()` rotates the CSRF token, and the spec says login "sets `sessionid` and
/// `csrftoken`"; registration logs in "the same way".
async fn login_and_registration_hand_out_a_new_csrf_cookie(backend: Backend) {
    let app = spawn(backend).await;
    let mut signup = Browser::new(&app);
    signup.fetch_csrf().await;
    let before = signup.csrf();
    let reply = signup
        .post(
            "registration/",
            json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    issued(&reply, SESSION_COOKIE);
    let rotated = issued(&reply, CSRF_COOKIE);
    assert_csrf_cookie(&rotated, &DEFAULTS);
    assert_ne!(rotated.value, before, "a new CSRF secret at login");

    let mut browser = Browser::new(&app);
    browser.fetch_csrf().await;
    let before = browser.csrf();
    let login = browser.login_ok("ada@example.com").await;
    let rotated = issued(&login, CSRF_COOKIE);
    assert_csrf_cookie(&rotated, &DEFAULTS);
    assert_ne!(rotated.value, before, "a new CSRF secret at login");
    // The page goes on with the new token.
    let update = browser
        .unsafe_request(Method::PATCH, "user/", json!({"first_name": "Ada"}))
        .await;
    assert_eq!(update.status, 200, "{}", update.text);
}

async fn secure_domain_and_samesite_follow_the_settings(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.session.cookie_secure = true;
        config.session.cookie_domain = Some("example.test".into());
        config.session.cookie_samesite = SameSite::Strict;
    })
    .await;
    let expected = Expected {
        secure: true,
        domain: Some("example.test"),
        same_site: "Strict",
    };
    register(&app, "ada@example.com").await;

    let mut browser = Browser::new(&app);
    let csrf = browser.fetch_csrf().await;
    assert_csrf_cookie(&issued(&csrf, CSRF_COOKIE), &expected);
    let login = browser.login_ok("ada@example.com").await;
    assert_session_cookie(&issued(&login, SESSION_COOKIE), &expected);

    // Clearing must name the same path and domain, or the browser keeps the cookie.
    let logout = browser.post("logout/", json!({})).await;
    assert_eq!(logout.status, 200, "{}", logout.text);
    let removal = issued(&logout, SESSION_COOKIE);
    assert!(removal.is_removal(), "{}", removal.raw);
    assert_eq!(removal.path(), Some("/"), "{}", removal.raw);
    assert_eq!(removal.domain(), Some("example.test"), "{}", removal.raw);
}

// ---------------------------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------------------------

/// Django's Origin check: a page elsewhere cannot act even with a valid token pair (a sibling
/// subdomain can set cookies for the parent domain); this service's own origin, the origin of
/// the Host addressed (its scheme included), and `cors.allowed_origins` can.
async fn cross_site_origins_are_refused(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.public_url = "https://auth.example.com".parse().unwrap();
        config.cors.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    register(&app, "ada@example.com").await;
    let host = app.base.trim_start_matches("http://").to_owned();
    for (origin, trusted) in [
        ("https://evil.example.net", false),
        ("null", false),
        ("https://auth.example.com.evil.example.net", false),
        ("https://auth.example.com", true),
        ("HTTPS://APP.EXAMPLE.COM", true),
        (app.base.as_str(), true),
        // The host addressed, but over another scheme: Django compares both.
        (&format!("https://{host}"), false),
    ] {
        let mut browser = Browser::new(&app);
        browser.fetch_csrf().await;
        browser.origin = Some(origin.to_owned());
        let reply = browser.login("ada@example.com", PASSWORD).await;
        if trusted {
            assert_eq!(reply.status, 204, "{origin}: {}", reply.text);
        } else {
            assert_detail(
                &reply,
                403,
                &format!(
                    "CSRF Failed: Origin checking failed - {origin} does not match any trusted \
                     origins."
                ),
            );
            assert_eq!(set_cookie(&reply, SESSION_COOKIE).map(|c| c.raw), None);
        }
    }
    // No Origin at all (older clients, non-browser callers): the token pair decides.
    let mut browser = Browser::new(&app);
    browser.login_ok("ada@example.com").await;
}

/// Behind a trusted proxy that ends TLS, the page's `https://` origin is this service's own;
/// the same `X-Forwarded-Proto` from a client that is not a trusted proxy counts for nothing.
async fn a_trusted_proxy_says_which_scheme_the_page_used(backend: Backend) {
    for (trusted, expected) in [(true, 204), (false, 403)] {
        let app = spawn_with(backend.clone(), |config| {
            if trusted {
                config.server.trusted_proxies =
                    vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap().into()];
            }
        })
        .await;
        register(&app, "ada@example.com").await;
        let host = app.base.trim_start_matches("http://").to_owned();
        let mut browser = Browser::new(&app);
        browser.fetch_csrf().await;
        let secret = browser.csrf();
        let request = app
            .client
            .post(app.api("login/"))
            .json(&credentials("ada@example.com", PASSWORD))
            .header(CSRF_HEADER, &secret)
            .header("origin", format!("https://{host}"))
            .header("x-forwarded-proto", "https");
        let reply = app
            .send(with_cookies(request, &[(CSRF_COOKIE, secret.as_str())]))
            .await;
        assert_eq!(
            reply.status, expected,
            "trusted proxy: {trusted}: {}",
            reply.text
        );
    }
}

async fn csrf_failures_use_djangos_messages(backend: Backend) {
    let app = spawn(backend).await;
    register(&app, "ada@example.com").await;
    let login = || Some(credentials("ada@example.com", PASSWORD));

    // No cookie at all: refused, and handed a cookie for next time.
    let mut browser = Browser::new(&app);
    let reply = browser
        .send(Method::POST, "login/", login(), Csrf::Omit)
        .await;
    assert_detail(&reply, 403, COOKIE_NOT_SET);
    assert_eq!(set_cookie(&reply, SESSION_COOKIE).map(|c| c.raw), None);
    assert_csrf_cookie(&issued(&reply, CSRF_COOKIE), &DEFAULTS);
    let secret = browser.csrf();

    // A header without the cookie is still "cookie not set".
    let mut cookieless = Browser::new(&app);
    let reply = cookieless
        .send(Method::POST, "login/", login(), Csrf::Header(&secret))
        .await;
    assert_detail(&reply, 403, COOKIE_NOT_SET);

    // The cookie without the header.
    let reply = browser
        .send(Method::POST, "login/", login(), Csrf::Omit)
        .await;
    assert_detail(&reply, 403, TOKEN_MISSING);
    assert_eq!(set_cookie(&reply, SESSION_COOKIE).map(|c| c.raw), None);

    // A well-formed header for another secret, plain or masked.
    let wrong = other_secret(&secret);
    for header in [
        wrong.clone(),
        mask_cipher_secret(&wrong, "abcdefghijABCDEFGHIJ0123456789zZ"),
    ] {
        let reply = browser
            .send(Method::POST, "login/", login(), Csrf::Header(&header))
            .await;
        assert_detail(&reply, 403, TOKEN_INCORRECT);
        assert_eq!(set_cookie(&reply, SESSION_COOKIE).map(|c| c.raw), None);
    }
    assert_eq!(
        all_sessions(&app).await.len(),
        1,
        "only the signup's session: no refused login opened one"
    );

    // Registration and the anonymous password endpoints are guarded too.
    let reply = browser
        .send(
            Method::POST,
            "registration/",
            Some(json!({"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD})),
            Csrf::Omit,
        )
        .await;
    assert_detail(&reply, 403, TOKEN_MISSING);
    let reply = browser
        .send(
            Method::POST,
            "password/reset/",
            Some(json!({"email": "ada@example.com"})),
            Csrf::Omit,
        )
        .await;
    assert_detail(&reply, 403, TOKEN_MISSING);
    let reply = browser.login("bob@example.com", PASSWORD).await;
    assert_eq!(
        reply.status, 400,
        "bob was never registered: {}",
        reply.text
    );

    // The matching header logs in.
    let reply = browser
        .send(Method::POST, "login/", login(), Csrf::Header(&secret))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

async fn every_unsafe_request_needs_the_csrf_header(backend: Backend) {
    let app = spawn(backend).await;
    let mut browser = register(&app, "ada@example.com").await;
    let session = browser.session();

    for method in [Method::PUT, Method::PATCH] {
        let reply = browser
            .send(
                method.clone(),
                "user/",
                Some(json!({"username": "mallory", "first_name": "Mallory"})),
                Csrf::Omit,
            )
            .await;
        assert_detail(&reply, 403, TOKEN_MISSING);
    }
    let change = browser
        .send(
            Method::POST,
            "password/change/",
            Some(new_passwords(NEW_PASSWORD)),
            Csrf::Omit,
        )
        .await;
    assert_detail(&change, 403, TOKEN_MISSING);
    let logout = browser
        .send(Method::POST, "logout/", Some(json!({})), Csrf::Omit)
        .await;
    assert_detail(&logout, 403, TOKEN_MISSING);

    // None of them did anything.
    let me = with_session(&app, &session).await;
    assert_eq!(me.status, 200, "the session survived: {}", me.text);
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["first_name"], "");
    let mut other = Browser::new(&app);
    other.login_ok("ada@example.com").await;

    // With the header they work.
    let update = browser
        .unsafe_request(Method::PATCH, "user/", json!({"first_name": "Ada"}))
        .await;
    assert_eq!(update.status, 200, "{}", update.text);
    assert_eq!(update.body["first_name"], "Ada");
    let logout = browser.post("logout/", json!({})).await;
    assert_detail(&logout, 200, LOGGED_OUT);
}

async fn masked_csrf_tokens_are_accepted(backend: Backend) {
    let app = spawn(backend).await;
    register(&app, "ada@example.com").await;

    let mut browser = Browser::new(&app);
    browser.fetch_csrf().await;
    let secret = browser.csrf();
    // Masks that wrap around the alphabet and one that does not.
    for mask in [
        "9876543210ZYXWVUTSRQPONMLKJIHGFE",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "zZ9yY8xX7wW6vV5uU4tT3sS2rR1qQ0pP",
    ] {
        let masked = mask_cipher_secret(&secret, mask);
        assert_eq!(masked.len(), 64);
        let reply = browser
            .send(
                Method::POST,
                "login/",
                Some(credentials("ada@example.com", PASSWORD)),
                Csrf::Header(&masked),
            )
            .await;
        assert_eq!(reply.status, 204, "masked with {mask}: {}", reply.text);
        // Keep presenting the secret this loop was built on.
        browser.plant(CSRF_COOKIE, &secret);
    }

    // One altered character of a masked token is a wrong token.
    let mut tampered = mask_cipher_secret(&secret, "9876543210ZYXWVUTSRQPONMLKJIHGFE").into_bytes();
    tampered[40] = if tampered[40] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let reply = browser
        .send(
            Method::POST,
            "login/",
            Some(credentials("ada@example.com", PASSWORD)),
            Csrf::Header(&tampered),
        )
        .await;
    assert_detail(&reply, 403, TOKEN_INCORRECT);

    // Older Django kept a masked token in the cookie; the plain secret in the header matches it.
    let mut old = Browser::new(&app);
    old.plant(
        CSRF_COOKIE,
        &mask_cipher_secret(&secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
    );
    let reply = old
        .send(
            Method::POST,
            "login/",
            Some(credentials("ada@example.com", PASSWORD)),
            Csrf::Header(&secret),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

// ---------------------------------------------------------------------------------------------
// No credentials, and the CSRF cookie on every kind of answer
// ---------------------------------------------------------------------------------------------

async fn missing_credentials_are_403_without_a_challenge(backend: Backend) {
    let app = spawn(backend).await;
    register(&app, "ada@example.com").await;

    // A cookie-less GET: 403, and it hands out the CSRF cookie.
    let reply = app.get("user/", None).await;
    assert_not_provided(&reply);
    assert_csrf_cookie(&issued(&reply, CSRF_COOKIE), &DEFAULTS);

    // Unsafe requests with a good CSRF token but no session.
    let mut browser = Browser::new(&app);
    browser.fetch_csrf().await;
    for (method, path, body) in [
        (Method::PATCH, "user/", json!({"first_name": "X"})),
        (Method::PUT, "user/", json!({"username": "x"})),
        (
            Method::POST,
            "password/change/",
            new_passwords(NEW_PASSWORD),
        ),
    ] {
        let reply = browser.unsafe_request(method.clone(), path, body).await;
        assert_not_provided(&reply);
    }

    // Unknown, malformed and never-issued session ids are no credentials either.
    for value in [
        "nonsense".to_owned(),
        tessera::secrets::random_hex(32),
        "0".repeat(64),
    ] {
        assert_not_provided(&with_session(&app, &value).await);
    }
    // An opaque token is not a credential in session mode.
    let request = app
        .client
        .get(app.api("user/"))
        .header("Authorization", format!("Token {}", "a".repeat(40)));
    assert_not_provided(&app.send(request).await);
}

async fn every_answer_to_a_cookieless_request_sets_the_csrf_cookie(backend: Backend) {
    let app = spawn(backend).await;
    let mut logged_in = register(&app, "ada@example.com").await;

    let not_found = app.get("no-such-thing/", None).await;
    assert_detail(&not_found, 404, "Not found.");
    assert_csrf_cookie(&issued(&not_found, CSRF_COOKIE), &DEFAULTS);

    let wrong_method = app.get("login/", None).await;
    assert_detail(&wrong_method, 405, "Method \"GET\" not allowed.");
    assert_csrf_cookie(&issued(&wrong_method, CSRF_COOKIE), &DEFAULTS);

    let refused = app.post("password/reset/", json!({})).await;
    assert_detail(&refused, 403, COOKIE_NOT_SET);
    assert_csrf_cookie(&issued(&refused, CSRF_COOKIE), &DEFAULTS);

    let outside_the_api = app.send(app.client.get(app.url("/health/live"))).await;
    assert_eq!(outside_the_api.status, 200, "{}", outside_the_api.text);
    assert_csrf_cookie(&issued(&outside_the_api, CSRF_COOKIE), &DEFAULTS);

    // A logged-in browser that lost its CSRF cookie gets a new one with its next answer.
    logged_in.jar.remove(CSRF_COOKIE);
    let me = logged_in.me().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_csrf_cookie(&issued(&me, CSRF_COOKIE), &DEFAULTS);

    // A request that has the cookie is not handed another, whatever the answer.
    let mut browser = Browser::new(&app);
    browser.fetch_csrf().await;
    let invalid = browser.post("login/", json!({})).await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    assert_eq!(
        invalid.body,
        json!({"password": ["This field is required."]})
    );
    assert_eq!(set_cookie(&invalid, CSRF_COOKIE).map(|c| c.raw), None);
    let missing = browser.get("no-such-thing/").await;
    assert_eq!(missing.status, 404);
    assert_eq!(set_cookie(&missing, CSRF_COOKIE).map(|c| c.raw), None);
}

// ---------------------------------------------------------------------------------------------
// Fixation and storage
// ---------------------------------------------------------------------------------------------

async fn login_replaces_the_session_the_browser_already_had(backend: Backend) {
    let app = spawn(backend).await;
    register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;

    // Logging in again from a logged-in browser: a new id, and the old one is dead.
    let mut browser = Browser::new(&app);
    browser.login_ok("ada@example.com").await;
    let first = browser.session();
    let again = browser.login_ok("ada@example.com").await;
    let second = issued(&again, SESSION_COOKIE).value;
    assert_ne!(second, first, "a new session id at every login");
    assert_not_provided(&with_session(&app, &first).await);
    assert_eq!(with_session(&app, &second).await.status, 200);

    // An attacker plants his own logged-in session in the victim's browser; the victim logs
    // in: she gets a session of her own, and the planted one is not hers (nor anyone's).
    let mut attacker = Browser::new(&app);
    attacker.login_ok("bob@example.com").await;
    let planted = attacker.session();
    let mut victim = Browser::new(&app);
    victim.plant(SESSION_COOKIE, &planted);
    let login = victim.login_ok("ada@example.com").await;
    let hers = issued(&login, SESSION_COOKIE).value;
    assert_ne!(hers, planted);
    let me = with_session(&app, &hers).await;
    assert_eq!(me.body["email"], "ada@example.com", "{}", me.text);
    assert_not_provided(&with_session(&app, &planted).await);
}

async fn a_planted_session_id_never_becomes_a_session(backend: Backend) {
    let app = spawn(backend).await;
    register(&app, "ada@example.com").await;

    for planted in [
        // The shape of our ids, and the shape of Django's.
        tessera::secrets::random_hex(32),
        "k3v9x0q2m8w1z7p4r6t5y0u2i9o8e7a1".to_owned(),
    ] {
        let mut victim = Browser::new(&app);
        victim.plant(SESSION_COOKIE, &planted);
        let login = victim.login_ok("ada@example.com").await;
        let given = issued(&login, SESSION_COOKIE).value;
        assert_ne!(given, planted, "the planted id was adopted");
        assert_not_provided(&with_session(&app, &planted).await);
        assert_eq!(with_session(&app, &given).await.status, 200);
        for row in all_sessions(&app).await {
            assert_ne!(row.digest, sha256_hex(&planted));
            assert_ne!(row.digest, planted);
        }
    }
}

async fn session_ids_are_stored_only_as_digests(backend: Backend) {
    let app = spawn(backend).await;
    let signup = register(&app, "ada@example.com").await;
    let mut browser = Browser::new(&app);
    browser.login_ok("ada@example.com").await;

    let rows = sessions_of(&app, "ada@example.com").await;
    assert_eq!(rows.len(), 2, "one per login (signup included)");
    for cookie in [signup.session(), browser.session()] {
        for row in &rows {
            assert_ne!(row.digest, cookie, "the id itself is not stored");
            assert!(!row.digest.contains(&cookie));
        }
        let row = session_with_cookie(&app, &cookie).await;
        assert_eq!(row.digest.len(), 64);
        assert!(row.digest.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

async fn idle_sessions_expire_and_use_keeps_them_alive(backend: Backend) {
    // Activity is moved behind the server's back, so the cache is off: these are the
    // database's rules (the cache keeps them too, for what it has seen).
    let app = spawn_with(backend, |config| {
        config.session.idle_timeout_seconds = 3600;
        config.credential_cache.capacity = 0;
    })
    .await;
    let mut browser = register(&app, "ada@example.com").await;
    let cookie = browser.session();

    // Unused for 50 minutes of an hour: still alive, and using it counts as activity.
    let fifty_minutes_ago = Utc::now() - Duration::minutes(50);
    set_session_column(&app, session::Column::LastSeenAt, fifty_minutes_ago).await;
    let before = Utc::now() - Duration::seconds(1);
    assert_eq!(browser.me().await.status, 200);
    let row = session_with_cookie(&app, &cookie).await;
    assert!(
        row.last_seen_at >= before,
        "use moves last_seen_at forward: {:?}",
        row.last_seen_at
    );
    assert_eq!(browser.me().await.status, 200);

    // Unused for longer than the idle timeout: gone.
    set_session_column(
        &app,
        session::Column::LastSeenAt,
        Utc::now() - Duration::minutes(61),
    )
    .await;
    assert_not_provided(&browser.me().await);
    let change = browser
        .post("password/change/", new_passwords(NEW_PASSWORD))
        .await;
    assert_not_provided(&change);

    // A stale session never blocks logging in again.
    let login = browser.login_ok("ada@example.com").await;
    assert_ne!(issued(&login, SESSION_COOKIE).value, cookie);
    assert_eq!(browser.me().await.status, 200);
}

async fn absolute_expiry_ends_even_a_busy_session(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.session.absolute_timeout_seconds = 7 * 24 * 3600;
    })
    .await;
    register(&app, "ada@example.com").await;
    let mut browser = Browser::new(&app);
    let login = browser.login_ok("ada@example.com").await;
    let cookie = issued(&login, SESSION_COOKIE);

    let row = session_with_cookie(&app, &cookie.value).await;
    assert_eq!(
        (row.expires_at - row.created_at).num_seconds(),
        7 * 24 * 3600,
        "the configured absolute lifetime"
    );
    let expires = cookie.expires().expect("the cookie has Expires");
    assert!(
        (expires - row.expires_at).num_seconds().abs() <= 1,
        "the cookie ends with the session: {expires} vs {}",
        row.expires_at
    );

    // Used a moment ago, but past its absolute end.
    set_session_column(
        &app,
        session::Column::ExpiresAt,
        Utc::now() - Duration::minutes(1),
    )
    .await;
    set_session_column(&app, session::Column::LastSeenAt, Utc::now()).await;
    assert_not_provided(&browser.me().await);
}

// ---------------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------------

async fn logout_deletes_the_session_and_clears_the_cookie(backend: Backend) {
    let app = spawn(backend).await;
    let mut other_device = register(&app, "ada@example.com").await;
    let mut browser = Browser::new(&app);
    browser.login_ok("ada@example.com").await;
    let cookie = browser.session();
    session_with_cookie(&app, &cookie).await;

    let logout = browser.post("logout/", json!({})).await;
    assert_detail(&logout, 200, LOGGED_OUT);
    let removal = issued(&logout, SESSION_COOKIE);
    assert!(
        removal.is_removal(),
        "the cookie is cleared: {}",
        removal.raw
    );
    assert_eq!(removal.path(), Some("/"), "{}", removal.raw);
    assert_eq!(browser.cookie(SESSION_COOKIE), None);

    let rows = session::Entity::find()
        .filter(session::Column::Digest.eq(sha256_hex(&cookie)))
        .all(&app.db)
        .await
        .unwrap();
    assert!(rows.is_empty(), "the session row is deleted");
    assert_not_provided(&with_session(&app, &cookie).await);
    assert_not_provided(&browser.me().await);

    // Only that session ended.
    assert_eq!(other_device.me().await.status, 200);
    assert_eq!(sessions_of(&app, "ada@example.com").await.len(), 1);
}

/// dj-rest-auth's logout (with session login) answers 200 whether or not a session exists.
async fn logging_out_twice_is_harmless(backend: Backend) {
    let app = spawn(backend).await;
    let mut browser = register(&app, "ada@example.com").await;
    let cookie = browser.session();
    let first = browser.post("logout/", json!({})).await;
    assert_detail(&first, 200, LOGGED_OUT);

    // The same (now dead) cookie again, as a second tab would send it.
    browser.plant(SESSION_COOKIE, &cookie);
    let second = browser.post("logout/", json!({})).await;
    assert_detail(&second, 200, LOGGED_OUT);
    let removal = issued(&second, SESSION_COOKIE);
    assert!(removal.is_removal(), "{}", removal.raw);
    assert_not_provided(&with_session(&app, &cookie).await);

    // And with no session cookie at all.
    let third = browser.post("logout/", json!({})).await;
    assert_detail(&third, 200, LOGGED_OUT);
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

async fn registration_logs_in_unless_verification_is_mandatory(backend: Backend) {
    for level in [EmailVerification::None, EmailVerification::Optional] {
        let app = spawn_with(backend.clone(), |config| {
            config.account.email_verification = level;
        })
        .await;
        let mut browser = Browser::new(&app);
        let reply = browser
            .post(
                "registration/",
                json!({"email": "Ada@Example.com", "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 204, "{level:?}: {}", reply.text);
        assert!(reply.text.is_empty(), "{:?}", reply.text);
        assert_session_cookie(&issued(&reply, SESSION_COOKIE), &DEFAULTS);
        let me = browser.me().await;
        assert_eq!(me.status, 200, "{level:?}: {}", me.text);
        assert_eq!(me.body["email"], "ada@example.com");
        assert_eq!(sessions_of(&app, "ada@example.com").await.len(), 1);
    }
}

async fn mandatory_verification_registration_opens_no_session(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.account.email_verification = EmailVerification::Mandatory;
    })
    .await;
    let mut browser = Browser::new(&app);
    let reply = browser
        .post(
            "registration/",
            json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_detail(&reply, 201, VERIFICATION_SENT);
    assert_eq!(set_cookie(&reply, SESSION_COOKIE).map(|c| c.raw), None);
    assert!(all_sessions(&app).await.is_empty());
    assert_not_provided(&browser.me().await);

    let login = browser.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status, 400, "{}", login.text);
    assert_eq!(
        login.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );
    assert_eq!(set_cookie(&login, SESSION_COOKIE).map(|c| c.raw), None);
}

// ---------------------------------------------------------------------------------------------
// Password change and reset
// ---------------------------------------------------------------------------------------------

async fn password_change_keeps_this_session_and_ends_the_others(backend: Backend) {
    let app = spawn(backend).await;
    let mut signup = register(&app, "ada@example.com").await;
    let mut laptop = Browser::new(&app);
    laptop.login_ok("ada@example.com").await;
    let mut phone = Browser::new(&app);
    phone.login_ok("ada@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;

    let change = laptop
        .post("password/change/", new_passwords(NEW_PASSWORD))
        .await;
    assert_detail(&change, 200, SAVED);

    // The browser that changed it stays logged in (with whatever session cookie it now holds).
    let me = laptop.me().await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(sessions_of(&app, "ada@example.com").await.len(), 1);
    // Every other session of hers ended; other users are untouched.
    assert_not_provided(&signup.me().await);
    assert_not_provided(&phone.me().await);
    assert_eq!(bob.me().await.status, 200);

    let mut fresh = Browser::new(&app);
    let old = fresh.login("ada@example.com", PASSWORD).await;
    assert_eq!(old.status, 400, "{}", old.text);
    assert_eq!(old.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
    let new = fresh.login("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(new.status, 204, "{}", new.text);
}

async fn password_reset_ends_every_session(backend: Backend) {
    let app = spawn(backend).await;
    let mut signup = register(&app, "ada@example.com").await;
    let mut laptop = Browser::new(&app);
    laptop.login_ok("ada@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;

    let mut forgetful = Browser::new(&app);
    let request = forgetful
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    assert_detail(&request, 200, RESET_SENT);
    let (uid, token) = app.reset_link(RESET_PREFIX).await;
    let confirm = json!({
        "uid": uid, "token": token,
        "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    });
    // Confirming is an unsafe request like any other.
    let unguarded = forgetful
        .send(
            Method::POST,
            "password/reset/confirm/",
            Some(confirm.clone()),
            Csrf::Omit,
        )
        .await;
    assert_detail(&unguarded, 403, TOKEN_MISSING);
    assert_eq!(signup.me().await.status, 200, "nothing happened yet");

    let done = forgetful.post("password/reset/confirm/", confirm).await;
    assert_detail(&done, 200, RESET_DONE);

    assert_not_provided(&signup.me().await);
    assert_not_provided(&laptop.me().await);
    assert!(sessions_of(&app, "ada@example.com").await.is_empty());
    assert_eq!(bob.me().await.status, 200);

    let old = forgetful.login("ada@example.com", PASSWORD).await;
    assert_eq!(old.status, 400, "{}", old.text);
    let new = forgetful.login("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(new.status, 204, "{}", new.text);
    assert_eq!(forgetful.me().await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// `auth.session_login` in token and jwt modes
// ---------------------------------------------------------------------------------------------

/// Logs in without any cookie; returns the answer (with its Set-Cookie).
async fn cookieless_login(app: &TestApp, email: &str) -> Reply {
    app.post("login/", credentials(email, PASSWORD)).await
}

/// A browser holding the cookies this answer set.
fn browser_from<'a>(app: &'a TestApp, reply: &Reply) -> Browser<'a> {
    let mut browser = Browser::new(app);
    browser.jar.apply(reply);
    browser
}

/// The session opened by a token/jwt login authenticates `user/`, with CSRF on unsafe requests.
async fn assert_login_session_works(app: &TestApp, login: &Reply) {
    assert_session_cookie(&issued(login, SESSION_COOKIE), &DEFAULTS);
    assert_csrf_cookie(&issued(login, CSRF_COOKIE), &DEFAULTS);
    let mut browser = browser_from(app, login);

    let me = browser.me().await;
    assert_eq!(me.status, 200, "the session authenticates: {}", me.text);
    assert_eq!(me.body["email"], "ada@example.com");

    let missing = browser
        .send(
            Method::PATCH,
            "user/",
            Some(json!({"first_name": "Mallory"})),
            Csrf::Omit,
        )
        .await;
    assert_detail(&missing, 403, TOKEN_MISSING);
    let wrong = other_secret(&browser.csrf());
    let incorrect = browser
        .send(
            Method::PATCH,
            "user/",
            Some(json!({"first_name": "Mallory"})),
            Csrf::Header(&wrong),
        )
        .await;
    assert_detail(&incorrect, 403, TOKEN_INCORRECT);
    assert_eq!(browser.me().await.body["first_name"], "");

    let update = browser
        .unsafe_request(Method::PATCH, "user/", json!({"first_name": "Ada"}))
        .await;
    assert_eq!(update.status, 200, "{}", update.text);
    assert_eq!(browser.me().await.body["first_name"], "Ada");
}

async fn session_login_opens_a_session_in_token_mode(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.auth.session_login = true;
    })
    .await;
    let key = app.register("ada@example.com").await;
    let login = cookieless_login(&app, "ada@example.com").await;
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.body["key"].as_str().expect("a key").to_owned();
    assert_login_session_works(&app, &login).await;
    // The tokens work as ever.
    for key in [&key, &token] {
        assert_eq!(app.get("user/", Some(key)).await.status, 200);
    }
    // An error answer to a cookie-less request hands out the CSRF cookie too.
    let invalid = app.post("login/", json!({})).await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    assert_csrf_cookie(&issued(&invalid, CSRF_COOKIE), &DEFAULTS);
    let missing = app.get("nowhere/", None).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_csrf_cookie(&issued(&missing, CSRF_COOKIE), &DEFAULTS);
}

async fn session_login_opens_a_session_in_jwt_mode(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.auth.mode = AuthMode::Jwt;
        config.auth.session_login = true;
    })
    .await;
    let signup = app
        .post(
            "registration/",
            json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(signup.status, 201, "{}", signup.text);
    let login = cookieless_login(&app, "ada@example.com").await;
    assert_eq!(login.status, 200, "{}", login.text);
    for field in ["access", "refresh"] {
        assert!(
            login.body[field].as_str().is_some_and(|t| !t.is_empty()),
            "{field}: {}",
            login.text
        );
    }
    assert_eq!(login.body["user"]["email"], "ada@example.com");
    assert_login_session_works(&app, &login).await;
}

async fn without_session_login_no_cookie_is_set(backend: Backend) {
    for mode in [AuthMode::Token, AuthMode::Jwt] {
        let app = TestApp::spawn_with(backend.clone(), |config| {
            config.auth.mode = mode;
        })
        .await;
        let signup = app
            .post(
                "registration/",
                json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await;
        assert_eq!(signup.status, 201, "{}", signup.text);
        let login = cookieless_login(&app, "ada@example.com").await;
        assert_eq!(login.status, 200, "{mode:?}: {}", login.text);
        assert!(
            set_cookies(&login).is_empty(),
            "{mode:?}: no cookies when none authenticate: {:?}",
            set_cookies(&login)
        );
        assert!(all_sessions(&app).await.is_empty());
    }
}

/// dj-rest-auth's logout calls Django's `logout()` when `SESSION_LOGIN`: the session the login
/// opened ends with it.
async fn session_login_logout_ends_the_session_too(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.auth.session_login = true;
    })
    .await;
    app.register("ada@example.com").await;
    let login = cookieless_login(&app, "ada@example.com").await;
    assert_eq!(login.status, 200, "{}", login.text);
    let key = login.body["key"].as_str().expect("a key").to_owned();
    let mut browser = browser_from(&app, &login);
    let session = browser.session();
    assert_eq!(browser.me().await.status, 200);

    // The browser logs out with both credentials of this login.
    let csrf = browser.csrf();
    let request = with_cookies(
        app.client
            .post(app.api("logout/"))
            .header("Authorization", format!("Token {key}")),
        &[(SESSION_COOKIE, &session), (CSRF_COOKIE, &csrf)],
    )
    .header(CSRF_HEADER, browser.csrf())
    .json(&json!({}));
    let logout = app.send(request).await;
    assert_detail(&logout, 200, LOGGED_OUT);
    assert_eq!(app.get("user/", Some(&key)).await.status, 401);

    let after = with_session(&app, &session).await;
    assert_eq!(
        after.status, 401,
        "the session opened at login must end at logout: {}",
        after.text
    );
    assert!(
        sessions_of(&app, "ada@example.com").await.is_empty(),
        "the session row is deleted"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------------------------

/// The name of the one security scheme matching `wanted`.
fn scheme_named(spec: &Value, wanted: impl Fn(&Value) -> bool) -> String {
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let found: Vec<&String> = schemes
        .iter()
        .filter(|(_, scheme)| wanted(scheme))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(found.len(), 1, "one such scheme in {schemes:?}");
    found[0].clone()
}

/// The scheme names each requirement of an operation lists (alternatives, each AND-ed).
fn requirements(spec: &Value, path: &str, method: &str) -> Vec<Vec<String>> {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    operation["security"]
        .as_array()
        .map(|alternatives| {
            alternatives
                .iter()
                .map(|requirement| {
                    let mut names: Vec<String> = requirement
                        .as_object()
                        .expect("a requirement object")
                        .keys()
                        .cloned()
                        .collect();
                    names.sort();
                    names
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn openapi_document_declares_the_cookie_and_csrf_schemes(backend: Backend) {
    let app = spawn(backend).await;
    let spec = tessera::api::openapi_document(&app.config);

    let cookie = scheme_named(&spec, |s| {
        s["type"] == "apiKey" && s["in"] == "cookie" && s["name"] == SESSION_COOKIE
    });
    let csrf = scheme_named(&spec, |s| {
        s["type"] == "apiKey"
            && s["in"] == "header"
            && s["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(CSRF_HEADER))
    });
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(
        schemes.len(),
        2,
        "no token scheme in session mode: {schemes:?}"
    );

    let mut both = vec![cookie.clone(), csrf.clone()];
    both.sort();
    assert_eq!(
        requirements(&spec, "/auth/user/", "get"),
        [[cookie.clone()]]
    );
    for method in ["put", "patch"] {
        assert_eq!(requirements(&spec, "/auth/user/", method), [both.clone()]);
    }
    assert_eq!(
        requirements(&spec, "/auth/password/change/", "post"),
        [both.clone()]
    );
    // Login, registration and the reset flow need no session, but do need the CSRF header.
    for path in [
        "/auth/login/",
        "/auth/registration/",
        "/auth/password/reset/",
        "/auth/password/reset/confirm/",
    ] {
        assert_eq!(
            requirements(&spec, path, "post"),
            [[csrf.clone()]],
            "{path}"
        );
    }
    assert!(spec["paths"]["/auth/csrf/"]["get"].is_object());
    let login = &spec["paths"]["/auth/login/"]["post"]["responses"];
    assert!(login["204"].is_object(), "login answers 204: {login}");

    // The document served is this one, and it follows the configured cookie name.
    let served = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body, spec);
    let mut renamed = app.config.clone();
    renamed.session.cookie_name = "appsession".into();
    let spec = tessera::api::openapi_document(&renamed);
    scheme_named(&spec, |s| s["in"] == "cookie" && s["name"] == "appsession");
}
