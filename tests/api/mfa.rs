//! Two-factor authentication on dj-rest-auth 7.2's `mfa/` wire contract (issue 11), and
//! reauthentication: TOTP set-up, the login's second step, recovery codes, deactivation and
//! their exact messages, in token, JWT and session mode; then each fix over dj-rest-auth (a
//! code accepted once, a single-use ephemeral token dead after five wrong codes, secrets
//! sealed and codes hashed at rest, MFA kept by a password reset, the replay guard shared by
//! instances, the audit trail and rate limits of `mfa/verify/`); the reauthentication guard;
//! `mfa.enabled = false`; and `tessera mfa disable`.
//!
//! TOTP codes come from `support::totp` (RFC 6238 written from the RFC, checked against its
//! test vectors below), never from the code under test. A test needing two valid codes uses
//! the current step's and the next step's from one reading of the clock: the server accepts
//! one step either side, so both stay valid for at least 30 seconds after that reading.

use std::collections::BTreeSet;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use entity::{audit_event, mfa_authenticator, mfa_challenge, user};
use hmac::{Hmac, Mac};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use sha2::Sha256;
use tessera::Config;
use tessera::config::RateLimitStore;

use crate::support::cookies::{SESSION_COOKIE, set_cookie};
use crate::support::device::Device;
use crate::support::modes::{MODES, Mode};
use crate::support::process;
use crate::support::totp::{self, Authenticator};
use crate::support::{Backend, PASSWORD, Reply, TestApp, confirm_reset, sha256_hex};

on_each_backend!(
    login_and_verify_follow_the_contract_in_every_mode,
    totp_activation_follows_the_contract_in_every_mode,
    messages_are_dj_rest_auths_in_every_mode,
    mfa_operations_take_post_only_and_need_a_login_in_every_mode,
    session_login_waits_for_the_code,
    recovery_codes_regeneration_and_deactivation_in_every_mode,
    expired_tokens_are_refused,
    a_totp_code_is_accepted_once,
    a_code_presented_twice_at_once_is_accepted_once,
    the_ephemeral_token_is_single_use,
    five_wrong_codes_end_the_ephemeral_token,
    recovery_codes_are_single_use_and_case_insensitive,
    codes_and_secrets_are_not_readable_in_the_database,
    password_reset_keeps_mfa,
    verify_failures_and_the_whole_login_reach_the_audit_trail,
    guarded_actions_need_a_recent_password_in_every_mode,
    reauthentication_settings,
    mfa_disabled_removes_the_endpoints_and_the_second_step,
    tessera_mfa_disable_switches_mfa_off,
    verify_is_rate_limited_like_failed_logins,
    a_new_secret_can_be_activated_right_after_deactivation,
);

const EMAIL: &str = "ada@example.com";
const OTHER_EMAIL: &str = "bob@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase 42";
const WRONG_PASSWORD: &str = "definitely not the password";
const SECRET_KEY: &str = "test-secret-key-that-is-long-enough-0123456789";
const RESET_PREFIX: &str = "https://app.example.com/reset/";
const ACCESS_COOKIE: &str = "jwt-access";
const REFRESH_COOKIE: &str = "jwt-refresh";

// dj-rest-auth 7.2's messages, and Tessera's for reauthentication, byte for byte.
const TOKEN_INVALID: &str = "Invalid or expired token.";
const CODE_INVALID: &str = "Invalid code.";
const ACTIVATION_CODE_INVALID: &str =
    "Invalid code. Please check your authenticator app and try again.";
const ACTIVATION_TOKEN_INVALID: &str = "Invalid or expired activation token.";
const ACTIVATION_TOKEN_OTHER_USER: &str = "Invalid activation token for this user.";
const ALREADY_ENABLED: &str = "MFA is already enabled. Deactivate it before activating again.";
const NOT_ENABLED: &str = "MFA is not enabled.";
const USER_DISABLED: &str = "User account is disabled.";
const DEACTIVATED: &str = "TOTP has been deactivated.";
const REAUTHENTICATION_REQUIRED: &str = "Please confirm your password to continue.";
const INCORRECT_PASSWORD: &str = "Incorrect password.";
const REQUIRED: &str = "This field is required.";
const CODE_TOO_LONG: &str = "Ensure this field has no more than 9 characters.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const CSRF_TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";

// ---------------------------------------------------------------------------------------------
// Modes and a client per mode
// ---------------------------------------------------------------------------------------------

/// Every cookie that could carry a credential in some mode.
const CREDENTIAL_COOKIES: [&str; 3] = [SESSION_COOKIE, ACCESS_COOKIE, REFRESH_COOKIE];

/// `mode`; JWT mode with dj-rest-auth's cookies too, to see which answers set them.
fn configure_mode(mode: Mode, config: &mut Config) {
    mode.configure(config);
    if mode == Mode::Jwt {
        config.jwt.auth_cookie = Some(ACCESS_COOKIE.into());
        config.jwt.refresh_cookie = Some(REFRESH_COOKIE.into());
    }
}

/// The cookies a login sets in `mode`.
fn login_cookies(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Token => &[],
        Mode::Jwt => &[ACCESS_COOKIE, REFRESH_COOKIE],
        Mode::Session => &[SESSION_COOKIE],
    }
}

async fn spawn(backend: &Backend, mode: Mode) -> TestApp {
    spawn_with(backend, mode, |_| {}).await
}

/// An app in `mode`, `configure` applied last.
async fn spawn_with(backend: &Backend, mode: Mode, configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend.clone(), |config| {
        configure_mode(mode, config);
        config.frontend.password_reset_url = Some(format!("{RESET_PREFIX}{{uid}}/{{token}}/"));
        configure(config);
    })
    .await
}

/// A frontend of one mode on one device. A token or JWT client keeps no cookies: JWT mode here
/// sets dj-rest-auth's, which it must not send back.
fn new_frontend(app: &TestApp, mode: Mode) -> Device<'_> {
    Device::new(app, mode).cookies_in_session_mode_only()
}

/// The login's second step, and MFA's endpoints, as a frontend calls them.
impl Device<'_> {
    /// `reply` is this mode's normal login answer (token: 200 `{"key"}`; JWT: 200 access,
    /// refresh and user, and its cookies; session: 204 and the session cookie), for `email`;
    /// the client now holds that credential.
    fn adopt_login_for(&mut self, reply: &Reply, email: &str) {
        self.adopt(reply, 200);
        match self.mode {
            Mode::Token => {
                assert_eq!(keys(&reply.body), set(&["key"]), "{}", reply.text);
                let key = string(&reply.body["key"]);
                assert!(
                    key.len() == 40 && key.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{key}"
                );
            }
            Mode::Jwt => {
                assert_eq!(
                    keys(&reply.body),
                    set(&["access", "refresh", "user"]),
                    "{}",
                    reply.text
                );
                assert_eq!(reply.body["user"]["email"], email, "{}", reply.text);
            }
            Mode::Session => assert!(reply.text.is_empty(), "{}", reply.text),
        }
        for cookie in login_cookies(self.mode) {
            let set = set_cookie(reply, cookie)
                .unwrap_or_else(|| panic!("{:?}: the answer sets {cookie}: {reply:?}", self.mode));
            assert!(!set.is_removal(), "{}", set.raw);
        }
    }

    /// Logs in with the password, which must answer `{"ephemeral_token", "mfa_required":
    /// true}` and no credential at all; the ephemeral token.
    async fn login_expecting_mfa(&mut self, email: &str) -> String {
        let reply = self.login(email, PASSWORD).await;
        assert_mfa_required(&reply)
    }

    async fn verify(&mut self, ephemeral_token: &str, code: &str) -> Reply {
        self.post(
            "mfa/verify/",
            json!({"ephemeral_token": ephemeral_token, "code": code}),
        )
        .await
    }

    /// Logs in with the password and `code` on this client, which then holds the credential.
    async fn log_in_with_code(&mut self, email: &str, code: &str) {
        let token = self.login_expecting_mfa(email).await;
        let reply = self.verify(&token, code).await;
        self.adopt_login_for(&reply, email);
    }

    async fn status(&mut self) -> Value {
        let reply = self.get("mfa/status/").await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        assert_eq!(
            keys(&reply.body),
            set(&["mfa_enabled", "created_at", "last_used_at"]),
            "{}",
            reply.text
        );
        reply.body
    }

    /// `GET mfa/totp/activate/`, which must succeed.
    async fn start_activation(&mut self) -> Value {
        let reply = self.get("mfa/totp/activate/").await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        reply.body
    }

    /// Switches TOTP on with the current code: the authenticator app and the recovery codes.
    async fn activate(&mut self) -> (Authenticator, Vec<String>) {
        let setup = self.start_activation().await;
        let authenticator = Authenticator::new(setup["secret"].as_str().expect("a secret"));
        let reply = self
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": setup["activation_token"], "code": authenticator.current()}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        assert_eq!(
            keys(&reply.body),
            set(&["recovery_codes"]),
            "{}",
            reply.text
        );
        (authenticator, recovery_codes(&reply.body["recovery_codes"]))
    }

    /// `POST mfa/recovery-codes/`, which must succeed: the codes listed.
    async fn listed_codes(&mut self) -> Vec<String> {
        let reply = self.post("mfa/recovery-codes/", json!({})).await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        assert_eq!(keys(&reply.body), set(&["codes"]), "{}", reply.text);
        strings(&reply.body["codes"])
    }

    async fn reauthenticate(&mut self, body: Value) -> Reply {
        self.post("reauthenticate/", body).await
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions and helpers
// ---------------------------------------------------------------------------------------------

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string: {value}"))
        .to_owned()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(string)
        .collect()
}

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .unwrap_or_else(|| panic!("an object: {body}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// `xxxx-xxxx`, lowercase hex.
fn is_recovery_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 9
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// Ten distinct codes shaped `xxxx-xxxx` (lowercase hex).
fn recovery_codes(value: &Value) -> Vec<String> {
    let codes = strings(value);
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(codes.iter().all(|c| is_recovery_code(c)), "{codes:?}");
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), 10, "{codes:?}");
    codes
}

/// 200 `{"ephemeral_token", "mfa_required": true}`, and no credential: no key, no JWT, no
/// credential cookie. The ephemeral token.
fn assert_mfa_required(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        keys(&reply.body),
        set(&["ephemeral_token", "mfa_required"]),
        "{}",
        reply.text
    );
    assert_eq!(reply.body["mfa_required"], json!(true), "{}", reply.text);
    for cookie in CREDENTIAL_COOKIES {
        assert!(
            set_cookie(reply, cookie).is_none(),
            "no {cookie} cookie before the code: {reply:?}"
        );
    }
    let token = string(&reply.body["ephemeral_token"]);
    assert!(token.len() >= 32, "{token}");
    token
}

/// 400 with one message for one field (DRF's shape).
fn assert_field_error(reply: &Reply, field: &str, message: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({ field: [message] }), "{}", reply.text);
}

fn assert_detail(reply: &Reply, status: u16, detail: &str) {
    crate::support::assert_detail(reply, status, detail);
}

fn assert_reauthentication_required(reply: &Reply) {
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": REAUTHENTICATION_REQUIRED, "code": "reauthentication_required"}),
        "{}",
        reply.text
    );
}

/// The answer to a request without a credential in `mode`.
fn assert_not_logged_in(mode: Mode, reply: &Reply) {
    let status = match mode {
        Mode::Session => 403,
        Mode::Token | Mode::Jwt => 401,
    };
    assert_detail(reply, status, NOT_PROVIDED);
}

fn assert_datetime(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a datetime: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("an RFC 3339 datetime: {text}: {err}"))
        .with_timezone(&Utc)
}

/// `earlier` is at most a minute before now (and not in the future).
fn assert_recent(at: DateTime<Utc>) {
    let age = Utc::now() - at;
    assert!(
        age >= Duration::seconds(-2) && age < Duration::seconds(60),
        "{at}"
    );
}

async fn user_id(app: &TestApp, email: &str) -> entity::UserId {
    app.stored_user(email).await.id
}

async fn set_active(app: &TestApp, email: &str, active: bool) {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(active))
        .filter(user::Column::Email.eq(email))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
}

async fn authenticators(app: &TestApp, email: &str) -> Vec<mfa_authenticator::Model> {
    let user = user_id(app, email).await;
    mfa_authenticator::Entity::find()
        .filter(mfa_authenticator::Column::UserId.eq(user))
        .order_by_asc(mfa_authenticator::Column::Kind)
        .all(&app.db)
        .await
        .unwrap()
}

/// `(event, outcome, reason)` of every audit row about the user, in order.
async fn audit_of(app: &TestApp, email: &str) -> Vec<(String, String, Option<String>)> {
    let user = user_id(app, email).await;
    audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user))
        .order_by_asc(audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.event, row.outcome, row.reason))
        .collect()
}

fn audit_row(event: &str, outcome: &str, reason: Option<&str>) -> (String, String, Option<String>) {
    (event.into(), outcome.into(), reason.map(Into::into))
}

// ---------------------------------------------------------------------------------------------
// The authenticator of the tests
// ---------------------------------------------------------------------------------------------

/// The tests' own TOTP gives RFC 6238's SHA-1 test vectors (appendix B: the ASCII secret
/// `12345678901234567890`, 8 digits, 30-second steps), and reads that secret in base32.
#[test]
fn the_test_authenticator_gives_the_rfc_6238_test_vectors() {
    let secret = totp::base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
    assert_eq!(secret, b"12345678901234567890");
    assert_eq!(
        totp::base32_decode("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap(),
        secret
    );
    assert_eq!(totp::base32_decode("GEZDG==="), Some(b"123".to_vec()));
    assert_eq!(totp::base32_decode("GEZ1"), None);
    for (time, code) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(totp::totp(&secret, time, 8), code, "T = {time}");
    }
    // Six digits are the last six of the eight (the truncation is modulo 10^digits).
    assert_eq!(totp::totp(&secret, 59, 6), "287082");
}

// ---------------------------------------------------------------------------------------------
// 1. The wire contract, in every mode
// ---------------------------------------------------------------------------------------------

/// `login/` is unchanged for a user without MFA; for a user with TOTP it answers 200
/// `{"ephemeral_token", "mfa_required": true}` and no credential (no key, no JWT, no cookie,
/// no session); `mfa/verify/` with a code (whitespace ignored) answers the mode's normal login
/// answer, whose credential works; a wrong password answers as before, with nothing of MFA;
/// the status then shows when a code was last used.
async fn login_and_verify_follow_the_contract_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;

        let mut bob = new_frontend(&app, mode);
        bob.register(OTHER_EMAIL).await;
        let mut bob_device = new_frontend(&app, mode);
        let login = bob_device.login(OTHER_EMAIL, PASSWORD).await;
        bob_device.adopt_login_for(&login, OTHER_EMAIL);
        assert_eq!(bob_device.me().await.status, 200);

        let mut owner = new_frontend(&app, mode);
        owner.register(EMAIL).await;
        let (authenticator, _) = owner.activate().await;

        let mut device = new_frontend(&app, mode);
        let wrong = device.login(EMAIL, WRONG_PASSWORD).await;
        assert_eq!(wrong.status, 400, "{mode:?}: {}", wrong.text);
        assert_eq!(wrong.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));

        let token = device.login_expecting_mfa(EMAIL).await;
        assert!(!device.jar.contains(SESSION_COOKIE), "{mode:?}");
        assert_not_logged_in(mode, &device.me().await);

        if mode == Mode::Session {
            // The second step is an unsafe request like the first: CSRF applies.
            let body = json!({"ephemeral_token": token, "code": authenticator.next()});
            let forged = device
                .send_without_csrf(Method::POST, "mfa/verify/", Some(body))
                .await;
            assert_detail(&forged, 403, CSRF_TOKEN_MISSING);
        }

        let next = authenticator.next();
        let spaced = format!(" {} {} ", &next[..3], &next[3..]);
        let verified = device.verify(&token, &spaced).await;
        device.adopt_login_for(&verified, EMAIL);
        let me = device.me().await;
        assert_eq!(me.status, 200, "{mode:?}: {}", me.text);
        assert_eq!(me.body["email"], EMAIL);

        let status = device.status().await;
        assert_eq!(status["mfa_enabled"], json!(true), "{status}");
        assert_recent(assert_datetime(&status["created_at"]));
        assert_recent(assert_datetime(&status["last_used_at"]));
    }
}

/// The status before and after activation; `GET mfa/totp/activate/`'s shape (a base32 secret,
/// an `otpauth://totp/` URL with the issuer `email.site_name` and the email as account, an SVG
/// QR code as a `data:` URI, an activation token); `POST` refuses a wrong code and a garbage
/// token with dj-rest-auth's messages, then answers ten `xxxx-xxxx` codes; `last_used_at` is
/// null right after activation; a new `GET` while MFA is on still answers a new secret and
/// the `POST` is refused as "already enabled" before its body is read; `mfa/recovery-codes/`
/// lists the codes in the order they were issued.
async fn totp_activation_follows_the_contract_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;
        let mut client = new_frontend(&app, mode);
        client.register(EMAIL).await;

        assert_eq!(
            client.status().await,
            json!({"mfa_enabled": false, "created_at": null, "last_used_at": null})
        );
        assert_eq!(client.listed_codes().await, Vec::<String>::new());

        let setup = client.start_activation().await;
        assert_eq!(
            keys(&setup),
            set(&["secret", "totp_url", "qr_code_data_uri", "activation_token"]),
            "{setup}"
        );
        let secret = string(&setup["secret"]);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
            "base32 without padding: {secret}"
        );
        let secret_bytes = totp::base32_decode(&secret).unwrap();
        assert!(secret_bytes.len() >= 20, "at least 160 bits: {secret}");

        let url = url::Url::parse(&string(&setup["totp_url"])).expect("a URL");
        assert_eq!(url.scheme(), "otpauth", "{url}");
        assert_eq!(url.host_str(), Some("totp"), "{url}");
        let label = percent_encoding::percent_decode_str(url.path())
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert_eq!(label, format!("/Tessera:{EMAIL}"), "{url}");
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(param("secret").as_deref(), Some(secret.as_str()), "{url}");
        assert_eq!(param("issuer").as_deref(), Some("Tessera"), "{url}");
        for (name, default) in [("digits", "6"), ("period", "30"), ("algorithm", "SHA1")] {
            if let Some(value) = param(name) {
                assert_eq!(value, default, "{url}");
            }
        }

        let qr = string(&setup["qr_code_data_uri"]);
        let encoded = qr
            .strip_prefix("data:image/svg+xml;base64,")
            .unwrap_or_else(|| panic!("an SVG data URI: {qr}"));
        let svg = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        let svg = String::from_utf8(svg).expect("UTF-8 SVG");
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");

        let activation_token = string(&setup["activation_token"]);
        let authenticator = Authenticator::new(&secret);
        let wrong = client
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": activation_token, "code": authenticator.wrong()}),
            )
            .await;
        assert_field_error(&wrong, "code", ACTIVATION_CODE_INVALID);
        let garbage = client
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": "not-a-token", "code": authenticator.current()}),
            )
            .await;
        assert_field_error(&garbage, "activation_token", ACTIVATION_TOKEN_INVALID);
        // Without MFA the body is validated.
        let empty = client.post("mfa/totp/activate/", json!({})).await;
        assert_eq!(empty.status, 400, "{}", empty.text);
        assert_eq!(
            empty.body,
            json!({"activation_token": [REQUIRED], "code": [REQUIRED]})
        );

        let activated = client
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": activation_token, "code": authenticator.current()}),
            )
            .await;
        assert_eq!(activated.status, 200, "{mode:?}: {}", activated.text);
        assert_eq!(keys(&activated.body), set(&["recovery_codes"]));
        let codes = recovery_codes(&activated.body["recovery_codes"]);

        let status = client.status().await;
        assert_eq!(status["mfa_enabled"], json!(true), "{status}");
        assert_recent(assert_datetime(&status["created_at"]));
        assert_eq!(status["last_used_at"], Value::Null, "{status}");

        // MFA on: GET still answers a new secret; POST is refused before the body is read.
        let again = client.start_activation().await;
        assert_ne!(again["secret"], setup["secret"]);
        let refused = client.post("mfa/totp/activate/", json!({})).await;
        assert_detail(&refused, 400, ALREADY_ENABLED);
        let refused = client
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": again["activation_token"], "code": authenticator.next()}),
            )
            .await;
        assert_detail(&refused, 400, ALREADY_ENABLED);

        assert_eq!(
            client.listed_codes().await,
            codes,
            "{mode:?}: in issue order"
        );
    }
}

/// dj-rest-auth's messages, byte for byte: an unknown ephemeral token, a wrong code, a code
/// longer than 9 characters, missing fields, another user's activation token, deactivation
/// with a wrong code or a recovery code (TOTP only), "not enabled" before the body is read,
/// and an account disabled between the password and the code (a list: a serializer error).
async fn messages_are_dj_rest_auths_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;
        let mut bob = new_frontend(&app, mode);
        bob.register(OTHER_EMAIL).await;
        let mut owner = new_frontend(&app, mode);
        owner.register(EMAIL).await;

        // Not enabled: refused before the body is validated.
        assert_detail(
            &owner.post("mfa/totp/deactivate/", json!({})).await,
            400,
            NOT_ENABLED,
        );
        assert_detail(
            &owner
                .post("mfa/recovery-codes/regenerate/", json!({}))
                .await,
            400,
            NOT_ENABLED,
        );

        // Bob's activation token is no good for Ada, even with a right code for its secret.
        let bobs = bob.start_activation().await;
        let bobs_app = Authenticator::new(&string(&bobs["secret"]));
        let stolen = owner
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": bobs["activation_token"], "code": bobs_app.current()}),
            )
            .await;
        assert_field_error(&stolen, "activation_token", ACTIVATION_TOKEN_OTHER_USER);

        let (authenticator, codes) = owner.activate().await;

        let mut device = new_frontend(&app, mode);
        let token = device.login_expecting_mfa(EMAIL).await;
        let unknown = device.verify(&"0".repeat(64), &authenticator.next()).await;
        assert_field_error(&unknown, "ephemeral_token", TOKEN_INVALID);
        let wrong = device.verify(&token, &authenticator.wrong()).await;
        assert_field_error(&wrong, "code", CODE_INVALID);
        let long = device.verify(&token, "1234567890").await;
        assert_field_error(&long, "code", CODE_TOO_LONG);
        let empty = device.post("mfa/verify/", json!({})).await;
        assert_eq!(empty.status, 400, "{}", empty.text);
        assert_eq!(
            empty.body,
            json!({"ephemeral_token": [REQUIRED], "code": [REQUIRED]})
        );

        // Deactivation takes a TOTP code only.
        let wrong = owner
            .post(
                "mfa/totp/deactivate/",
                json!({"code": authenticator.wrong()}),
            )
            .await;
        assert_field_error(&wrong, "code", CODE_INVALID);
        let recovery = owner
            .post("mfa/totp/deactivate/", json!({"code": codes[0]}))
            .await;
        assert_field_error(&recovery, "code", CODE_INVALID);
        assert_eq!(owner.status().await["mfa_enabled"], json!(true));
        assert_eq!(owner.listed_codes().await, codes, "nothing was used");

        // Disabled between the password and the code.
        set_active(&app, EMAIL, false).await;
        let disabled = device.verify(&token, &authenticator.next()).await;
        assert_eq!(disabled.status, 400, "{mode:?}: {}", disabled.text);
        assert_eq!(
            disabled.body,
            json!({"detail": [USER_DISABLED]}),
            "{}",
            disabled.text
        );
        assert_not_logged_in(mode, &device.me().await);
    }
}

/// `mfa/verify/`, `mfa/recovery-codes/`, `regenerate/` and `deactivate/` are POST only: GET
/// answers 405 in DRF's words, with an `Allow` header naming POST. Every `mfa/` operation but
/// `verify/`, and `reauthenticate/`, needs a login.
async fn mfa_operations_take_post_only_and_need_a_login_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;
        let mut client = new_frontend(&app, mode);
        for (method, path) in [
            (Method::GET, "mfa/status/"),
            (Method::GET, "mfa/totp/activate/"),
            (Method::POST, "mfa/totp/activate/"),
            (Method::POST, "mfa/totp/deactivate/"),
            (Method::POST, "mfa/recovery-codes/"),
            (Method::POST, "mfa/recovery-codes/regenerate/"),
            (Method::POST, "reauthenticate/"),
        ] {
            let body = json!({"password": PASSWORD, "code": "123456"});
            let reply = client.send(method, path, Some(body)).await;
            assert_not_logged_in(mode, &reply);
        }
        client.register(EMAIL).await;
        for path in [
            "mfa/verify/",
            "mfa/recovery-codes/",
            "mfa/recovery-codes/regenerate/",
            "mfa/totp/deactivate/",
        ] {
            let reply = client.get(path).await;
            assert_detail(&reply, 405, "Method \"GET\" not allowed.");
            let allow = reply.header("allow").expect("an Allow header");
            assert!(allow.contains("POST"), "{path}: Allow: {allow}");
            assert!(!allow.contains("GET"), "{path}: Allow: {allow}");
        }
    }
}

/// Token mode with `auth.session_login` (dj-rest-auth's `REST_SESSION_LOGIN`): the password
/// step opens no session; `mfa/verify/` answers the key and opens it.
async fn session_login_waits_for_the_code(backend: Backend) {
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.auth.session_login = true
    })
    .await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, _) = owner.activate().await;

    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    let verified = device.verify(&token, &authenticator.next()).await;
    device.adopt_login_for(&verified, EMAIL);
    let session = set_cookie(&verified, SESSION_COOKIE)
        .unwrap_or_else(|| panic!("verify opens the session: {verified:?}"));
    assert!(!session.is_removal(), "{}", session.raw);
    let me = app
        .send(crate::support::cookies::with_cookies(
            app.client.get(app.api("user/")),
            &[(SESSION_COOKIE, &session.value)],
        ))
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
}

/// Recovery codes: listed in issue order; a used one leaves the list and is refused again;
/// `regenerate/` answers ten new codes and the old ones stop working; deactivation with a TOTP
/// code answers `{"detail": "TOTP has been deactivated."}`, the recovery codes go too, and the
/// next login hands out the credential directly.
async fn recovery_codes_regeneration_and_deactivation_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;
        let mut owner = new_frontend(&app, mode);
        owner.register(EMAIL).await;
        let (authenticator, old) = owner.activate().await;

        let regenerated = owner
            .post("mfa/recovery-codes/regenerate/", json!({}))
            .await;
        assert_eq!(regenerated.status, 200, "{mode:?}: {}", regenerated.text);
        assert_eq!(keys(&regenerated.body), set(&["codes"]));
        let new = recovery_codes(&regenerated.body["codes"]);
        assert!(
            new.iter().all(|code| !old.contains(code)),
            "{old:?} {new:?}"
        );
        assert_eq!(owner.listed_codes().await, new);

        let mut device = new_frontend(&app, mode);
        let token = device.login_expecting_mfa(EMAIL).await;
        for code in &old[..3] {
            assert_field_error(&device.verify(&token, code).await, "code", CODE_INVALID);
        }
        let verified = device.verify(&token, &new[3]).await;
        device.adopt_login_for(&verified, EMAIL);
        let mut left = new.clone();
        left.remove(3);
        assert_eq!(
            owner.listed_codes().await,
            left,
            "in issue order, used one gone"
        );

        let deactivated = owner
            .post(
                "mfa/totp/deactivate/",
                json!({"code": authenticator.next()}),
            )
            .await;
        assert_eq!(deactivated.status, 200, "{mode:?}: {}", deactivated.text);
        assert_eq!(deactivated.body, json!({"detail": DEACTIVATED}));
        assert_eq!(
            owner.status().await,
            json!({"mfa_enabled": false, "created_at": null, "last_used_at": null})
        );
        assert_eq!(owner.listed_codes().await, Vec::<String>::new());
        assert!(authenticators(&app, EMAIL).await.is_empty());

        let mut later = new_frontend(&app, mode);
        let login = later.login(EMAIL, PASSWORD).await;
        later.adopt_login_for(&login, EMAIL);
        assert_eq!(later.me().await.status, 200);
    }
}

/// Ephemeral and activation tokens die after `mfa.ephemeral_token_timeout`.
async fn expired_tokens_are_refused(backend: Backend) {
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.mfa.ephemeral_token_timeout = 3;
    })
    .await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, _) = owner.activate().await;
    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    let mut bob = new_frontend(&app, Mode::Token);
    bob.register(OTHER_EMAIL).await;
    let setup = bob.start_activation().await;
    let bobs_app = Authenticator::new(&string(&setup["secret"]));

    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let late = device.verify(&token, &authenticator.next()).await;
    assert_field_error(&late, "ephemeral_token", TOKEN_INVALID);
    let late = bob
        .post(
            "mfa/totp/activate/",
            json!({"activation_token": setup["activation_token"], "code": bobs_app.current()}),
        )
        .await;
    assert_field_error(&late, "activation_token", ACTIVATION_TOKEN_INVALID);
    assert_eq!(bob.status().await["mfa_enabled"], json!(false));
}

// ---------------------------------------------------------------------------------------------
// 2. The fixes over dj-rest-auth
// ---------------------------------------------------------------------------------------------

/// Replay: a TOTP code accepted once is refused while it is still valid, whatever accepted
/// it: the activation code at login and at deactivation, the login code at reauthentication
/// and deactivation; another step's code is accepted.
async fn a_totp_code_is_accepted_once(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, codes) = owner.activate().await;

    // Activation, then deactivation.
    let replayed = owner
        .post(
            "mfa/totp/deactivate/",
            json!({"code": authenticator.current()}),
        )
        .await;
    assert_field_error(&replayed, "code", CODE_INVALID);

    // Activation, then login.
    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    let replayed = device.verify(&token, &authenticator.current()).await;
    assert_field_error(&replayed, "code", CODE_INVALID);
    let verified = device.verify(&token, &authenticator.next()).await;
    device.adopt_login_for(&verified, EMAIL);

    // Login, then a second login, reauthentication and deactivation.
    let mut other = new_frontend(&app, Mode::Token);
    let token = other.login_expecting_mfa(EMAIL).await;
    let replayed = other.verify(&token, &authenticator.next()).await;
    assert_field_error(&replayed, "code", CODE_INVALID);
    let replayed = device
        .reauthenticate(json!({"password": PASSWORD, "code": authenticator.next()}))
        .await;
    assert_field_error(&replayed, "code", CODE_INVALID);
    let replayed = device
        .post(
            "mfa/totp/deactivate/",
            json!({"code": authenticator.next()}),
        )
        .await;
    assert_field_error(&replayed, "code", CODE_INVALID);

    assert_eq!(device.status().await["mfa_enabled"], json!(true));
    // The refusals were about the codes: a recovery code still reauthenticates.
    let reauthenticated = device
        .reauthenticate(json!({"password": PASSWORD, "code": codes[0]}))
        .await;
    assert_eq!(reauthenticated.status, 200, "{}", reauthenticated.text);
}

/// Turning TOTP off and on again with a new secret (a new phone) accepts the new app's current
/// code at once: the replay guard is about codes accepted before, and no code of the new
/// secret was.
async fn a_new_secret_can_be_activated_right_after_deactivation(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (old_phone, _) = owner.activate().await;
    let deactivated = owner
        .post("mfa/totp/deactivate/", json!({"code": old_phone.next()}))
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);

    let setup = owner.start_activation().await;
    let new_phone = Authenticator::new(&string(&setup["secret"]));
    let activated = owner
        .post(
            "mfa/totp/activate/",
            json!({"activation_token": setup["activation_token"], "code": new_phone.current()}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    recovery_codes(&activated.body["recovery_codes"]);
}

/// The same code presented by two logins at the same moment gets exactly one of them in (a
/// TOTP step is claimed, and a recovery code spent, atomically).
async fn a_code_presented_twice_at_once_is_accepted_once(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, codes) = owner.activate().await;

    for code in [
        authenticator.next(),
        codes[0].clone(),
        codes[1].clone(),
        codes[2].clone(),
    ] {
        let mut first = new_frontend(&app, Mode::Token);
        let mut second = new_frontend(&app, Mode::Token);
        let one = first.login_expecting_mfa(EMAIL).await;
        let other = second.login_expecting_mfa(EMAIL).await;
        let verify = |token: String| {
            app.post(
                "mfa/verify/",
                json!({"ephemeral_token": token, "code": code}),
            )
        };
        let (a, b) = tokio::join!(verify(one), verify(other));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "{code}: {} / {}", a.text, b.text);
        let refused = if a.status == 400 { a } else { b };
        assert_field_error(&refused, "code", CODE_INVALID);
    }
}

/// The ephemeral token is single use: after a successful verify it answers "Invalid or
/// expired token." even with another valid code, and a new login gets a new token.
async fn the_ephemeral_token_is_single_use(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, codes) = owner.activate().await;

    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    let verified = device.verify(&token, &codes[0]).await;
    device.adopt_login_for(&verified, EMAIL);

    let mut thief = new_frontend(&app, Mode::Token);
    for code in [authenticator.next(), codes[1].clone()] {
        let again = thief.verify(&token, &code).await;
        assert_field_error(&again, "ephemeral_token", TOKEN_INVALID);
    }
    assert_eq!(thief.bearer, None);

    let token_again = device.login_expecting_mfa(EMAIL).await;
    assert_ne!(token_again, token);
    let verified = device.verify(&token_again, &authenticator.next()).await;
    device.adopt_login_for(&verified, EMAIL);
}

/// A wrong code does not end the ephemeral token by itself (four are survived), but the
/// fifth does: a right code then answers "Invalid or expired token.", and the challenge row
/// is gone.
async fn five_wrong_codes_end_the_ephemeral_token(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, codes) = owner.activate().await;

    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    for _ in 0..4 {
        let wrong = device.verify(&token, &authenticator.wrong()).await;
        assert_field_error(&wrong, "code", CODE_INVALID);
    }
    let verified = device.verify(&token, &codes[0]).await;
    device.adopt_login_for(&verified, EMAIL);

    let mut guesser = new_frontend(&app, Mode::Token);
    let token = guesser.login_expecting_mfa(EMAIL).await;
    for _ in 0..5 {
        let wrong = guesser.verify(&token, &authenticator.wrong()).await;
        assert_field_error(&wrong, "code", CODE_INVALID);
    }
    for code in [authenticator.next(), codes[1].clone()] {
        let dead = guesser.verify(&token, &code).await;
        assert_field_error(&dead, "ephemeral_token", TOKEN_INVALID);
    }
    let challenges = mfa_challenge::Entity::find()
        .filter(mfa_challenge::Column::Digest.eq(sha256_hex(&token)))
        .all(&app.db)
        .await
        .unwrap();
    assert!(challenges.is_empty(), "{challenges:?}");
    // The right codes were not spent on the dead token.
    let token = guesser.login_expecting_mfa(EMAIL).await;
    let verified = guesser.verify(&token, &authenticator.next()).await;
    guesser.adopt_login_for(&verified, EMAIL);
}

/// A recovery code logs in once, in any case and with surrounding spaces; then it is refused
/// (at login and at reauthentication) and no longer listed.
async fn recovery_codes_are_single_use_and_case_insensitive(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (_, codes) = owner.activate().await;

    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    let verified = device
        .verify(&token, &format!(" {} ", codes[2].to_uppercase()))
        .await;
    device.adopt_login_for(&verified, EMAIL);

    let mut other = new_frontend(&app, Mode::Token);
    let token = other.login_expecting_mfa(EMAIL).await;
    for used in [codes[2].clone(), codes[2].to_uppercase()] {
        assert_field_error(&other.verify(&token, &used).await, "code", CODE_INVALID);
    }
    let reused = owner
        .reauthenticate(json!({"password": PASSWORD, "code": codes[2]}))
        .await;
    assert_field_error(&reused, "code", CODE_INVALID);

    let mut left = codes.clone();
    left.remove(2);
    assert_eq!(owner.listed_codes().await, left);
    let verified = other.verify(&token, &codes[5]).await;
    other.adopt_login_for(&verified, EMAIL);
    left.retain(|code| code != &codes[5]);
    assert_eq!(owner.listed_codes().await, left);
}

/// `needle` occurs in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Every reading of a stored text as bytes: itself, and its hex and base64 decodings.
fn readings(text: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![text.as_bytes().to_vec()];
    out.extend(hex::decode(text).ok());
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        out.extend(engine.decode(text).ok());
    }
    // A JSON document (dj-rest-auth keeps `{"seed": hex, ...}`): its strings too.
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        for value in map.values() {
            if let Some(inner) = value.as_str() {
                out.extend(readings(inner));
            }
        }
    }
    out
}

/// `bytes`, and each of its runs of at least 16 bytes (a seed stored beside something else).
fn seeds_within(bytes: &[u8]) -> Vec<&[u8]> {
    let mut seeds = vec![bytes];
    if bytes.len() <= 128 {
        for start in 0..bytes.len() {
            for end in start + 16..=bytes.len() {
                seeds.push(&bytes[start..end]);
            }
        }
    }
    seeds
}

/// dj-rest-auth's recovery code `i` of `seed`: HMAC-SHA256(seed, "i"), 8 hex digits.
fn derived_code(seed: &[u8], i: usize) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(seed).unwrap();
    mac.update(i.to_string().as_bytes());
    let digest = hex::encode(mac.finalize().into_bytes());
    format!("{}-{}", &digest[..4], &digest[4..8])
}

/// What the database holds cannot be turned into a second factor: the TOTP secret is not
/// there in base32, hex or raw bytes (nor in the activation token); no recovery code is there,
/// nor a seed they can be derived from; the ephemeral token is kept only as its SHA-256
/// digest; and the audit trail holds none of them.
async fn codes_and_secrets_are_not_readable_in_the_database(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let setup = owner.start_activation().await;
    let secret = string(&setup["secret"]);
    let secret_bytes = totp::base32_decode(&secret).unwrap();
    let secret_hex = hex::encode(&secret_bytes);
    let activation_token = string(&setup["activation_token"]);
    for reading in readings(&activation_token) {
        assert!(
            !contains_bytes(&reading, secret.as_bytes()),
            "{activation_token}"
        );
        assert!(
            !contains_bytes(&reading, &secret_bytes),
            "{activation_token}"
        );
    }
    let authenticator = Authenticator::new(&secret);
    let activated = owner
        .post(
            "mfa/totp/activate/",
            json!({"activation_token": activation_token, "code": authenticator.current()}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    let codes = recovery_codes(&activated.body["recovery_codes"]);

    let rows = authenticators(&app, EMAIL).await;
    let kinds: Vec<&str> = rows.iter().map(|row| row.kind.as_str()).collect();
    assert_eq!(kinds, ["recovery_codes", "totp"]);
    for row in &rows {
        let stored = &row.secret;
        let upper = stored.to_uppercase();
        let lower = stored.to_lowercase();
        assert!(!upper.contains(&secret), "{}: the base32 secret", row.kind);
        assert!(
            !lower.contains(&secret_hex),
            "{}: the secret in hex",
            row.kind
        );
        for code in &codes {
            assert!(!lower.contains(code.as_str()), "{}: {code}", row.kind);
            assert!(
                !lower.contains(&code.replace('-', "")),
                "{}: {code}",
                row.kind
            );
        }
        for reading in readings(stored) {
            assert!(!contains_bytes(&reading, &secret_bytes), "{}", row.kind);
            // Read as a seed (whole, or any part of at least 128 bits), it derives none of the
            // codes.
            for seed in seeds_within(&reading) {
                for i in 0..codes.len() {
                    assert!(
                        !codes.contains(&derived_code(seed, i)),
                        "{}: the recovery codes derive from what is stored",
                        row.kind
                    );
                }
            }
        }
    }

    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    let challenges = mfa_challenge::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(challenges.len(), 1);
    assert_eq!(challenges[0].digest, sha256_hex(&token));
    assert_eq!(challenges[0].user_id, user_id(&app, EMAIL).await);
    let verified = device.verify(&token, &codes[0]).await;
    device.adopt_login_for(&verified, EMAIL);

    let trail = audit_event::Entity::find().all(&app.db).await.unwrap();
    assert!(!trail.is_empty());
    for row in trail {
        let text = format!(
            "{} {} {:?} {:?} {:?}",
            row.event, row.outcome, row.reason, row.ip, row.user_agent
        );
        for secret in [secret.as_str(), &secret_hex, &token, &codes[0]] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

/// A password reset (the mailed link) does not switch MFA off: logging in with the new
/// password still asks for the code, which then logs in.
async fn password_reset_keeps_mfa(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, _) = owner.activate().await;

    let requested = app.post("password/reset/", json!({"email": EMAIL})).await;
    assert_eq!(requested.status, 200, "{}", requested.text);
    let (uid, token) = app.reset_link(RESET_PREFIX).await;
    let reset = confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(reset.status, 200, "{}", reset.text);

    let mut device = new_frontend(&app, Mode::Token);
    let old = device.login(EMAIL, PASSWORD).await;
    assert_eq!(old.status, 400, "{}", old.text);
    let login = device.login(EMAIL, NEW_PASSWORD).await;
    let ephemeral = assert_mfa_required(&login);
    let verified = device.verify(&ephemeral, &authenticator.next()).await;
    device.adopt_login_for(&verified, EMAIL);
    assert_eq!(device.status().await["mfa_enabled"], json!(true));
    assert_eq!(authenticators(&app, EMAIL).await.len(), 2);
}

/// Each wrong code at `mfa/verify/` is an audited login failure (`invalid_code`), and the
/// whole login, password and code, is audited once, as a success with the reason `mfa`; the
/// password step alone records no login.
async fn verify_failures_and_the_whole_login_reach_the_audit_trail(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, _) = owner.activate().await;
    let before = audit_of(&app, EMAIL).await.len();

    let mut device = new_frontend(&app, Mode::Token);
    let token = device.login_expecting_mfa(EMAIL).await;
    assert_eq!(audit_of(&app, EMAIL).await.len(), before, "nothing yet");
    for _ in 0..2 {
        let wrong = device.verify(&token, &authenticator.wrong()).await;
        assert_field_error(&wrong, "code", CODE_INVALID);
    }
    let verified = device.verify(&token, &authenticator.next()).await;
    device.adopt_login_for(&verified, EMAIL);

    let rows = audit_of(&app, EMAIL).await;
    assert_eq!(
        rows[before..],
        [
            audit_row("login", "failure", Some("invalid_code")),
            audit_row("login", "failure", Some("invalid_code")),
            audit_row("login", "success", Some("mfa")),
        ],
        "{rows:?}"
    );
}

/// `mfa/verify/` counts against `login_failed` per account like a failed login: once over
/// the limit it answers 429 in DRF's words, even for a right code, and the refusal is
/// audited; with counters in memory and in the database.
async fn verify_is_rate_limited_like_failed_logins(backend: Backend) {
    // Counts live in fixed windows: start well clear of a window's end.
    crate::support::clear_of_window_end(300, 15).await;
    for store in [RateLimitStore::Memory, RateLimitStore::Database] {
        let app = spawn_with(&backend, Mode::Token, |config| {
            config.rate_limits.enabled = true;
            config.rate_limits.store = store;
            config.rate_limits.login_failed = "2/300s/key".parse().unwrap();
        })
        .await;
        let mut owner = new_frontend(&app, Mode::Token);
        owner.register(EMAIL).await;
        let (authenticator, _) = owner.activate().await;

        let mut device = new_frontend(&app, Mode::Token);
        let token = device.login_expecting_mfa(EMAIL).await;
        for _ in 0..2 {
            let wrong = device.verify(&token, &authenticator.wrong()).await;
            assert_field_error(&wrong, "code", CODE_INVALID);
        }
        let started = std::time::Instant::now();
        let throttled = device.verify(&token, &authenticator.next()).await;
        assert_eq!(throttled.status, 429, "{store:?}: {}", throttled.text);
        let wait: u64 = throttled
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert_eq!(
            throttled.body,
            json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")})
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{store:?}: refused at once, not after waiting for a lock: {:?}",
            started.elapsed()
        );
        let rows = audit_of(&app, EMAIL).await;
        assert_eq!(
            rows.last(),
            Some(&audit_row("rate_limit", "blocked", Some("login_failed"))),
            "{rows:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Reauthentication
// ---------------------------------------------------------------------------------------------

/// Right after a login the recovery codes are shown without reauthentication; once the
/// credential's proof of the password is older than `account.reauthentication_timeout`,
/// showing and regenerating the codes and deactivating answer 403 `reauthentication_required`
/// (and spend nothing); `reauthenticate/` refuses a wrong password, asks for a code while MFA
/// is on, refuses a wrong code, then answers `{"detail": "ok"}` and the guarded actions work;
/// without MFA the password alone is enough; each step reaches the audit trail.
async fn guarded_actions_need_a_recent_password_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;
        let mut owner = new_frontend(&app, mode);
        owner.register(EMAIL).await;
        let (authenticator, codes) = owner.activate().await;

        let mut device = new_frontend(&app, mode);
        device.log_in_with_code(EMAIL, &codes[0]).await;
        assert_eq!(device.listed_codes().await, codes[1..], "{mode:?}");

        app.age_credentials(EMAIL).await;
        assert_reauthentication_required(&device.post("mfa/recovery-codes/", json!({})).await);
        assert_reauthentication_required(
            &device
                .post("mfa/recovery-codes/regenerate/", json!({}))
                .await,
        );
        assert_reauthentication_required(
            &device
                .post(
                    "mfa/totp/deactivate/",
                    json!({"code": authenticator.next()}),
                )
                .await,
        );
        // Reading the user is not guarded.
        assert_eq!(device.me().await.status, 200);

        let wrong = device
            .reauthenticate(json!({"password": WRONG_PASSWORD, "code": authenticator.next()}))
            .await;
        assert_field_error(&wrong, "password", INCORRECT_PASSWORD);
        let no_code = device.reauthenticate(json!({"password": PASSWORD})).await;
        assert_field_error(&no_code, "code", REQUIRED);
        let wrong_code = device
            .reauthenticate(json!({"password": PASSWORD, "code": authenticator.wrong()}))
            .await;
        assert_field_error(&wrong_code, "code", CODE_INVALID);
        assert_reauthentication_required(&device.post("mfa/recovery-codes/", json!({})).await);

        let ok = device
            .reauthenticate(json!({"password": PASSWORD, "code": codes[1]}))
            .await;
        assert_eq!(ok.status, 200, "{mode:?}: {}", ok.text);
        assert_eq!(ok.body, json!({"detail": "ok"}));
        assert_eq!(device.listed_codes().await, codes[2..], "{mode:?}");
        let regenerated = device
            .post("mfa/recovery-codes/regenerate/", json!({}))
            .await;
        assert_eq!(regenerated.status, 200, "{mode:?}: {}", regenerated.text);
        // The deactivation refused above did not spend this code.
        let deactivated = device
            .post(
                "mfa/totp/deactivate/",
                json!({"code": authenticator.next()}),
            )
            .await;
        assert_eq!(deactivated.status, 200, "{mode:?}: {}", deactivated.text);
        assert_eq!(deactivated.body, json!({"detail": DEACTIVATED}));

        // Without MFA the password alone reauthenticates.
        app.age_credentials(EMAIL).await;
        let ok = device.reauthenticate(json!({"password": PASSWORD})).await;
        assert_eq!(ok.status, 200, "{mode:?}: {}", ok.text);
        assert_eq!(ok.body, json!({"detail": "ok"}));
        assert_eq!(device.listed_codes().await, Vec::<String>::new());

        // Each step is in the audit trail.
        let rows = audit_of(&app, EMAIL).await;
        for expected in [
            audit_row("mfa_activation", "success", None),
            audit_row("reauthentication", "failure", Some("wrong_password")),
            audit_row("reauthentication", "failure", Some("invalid_code")),
            audit_row("reauthentication", "success", None),
            audit_row("recovery_codes_regenerated", "success", None),
            audit_row("mfa_deactivation", "success", None),
        ] {
            assert!(
                rows.contains(&expected),
                "{mode:?}: {expected:?} in {rows:?}"
            );
        }
    }
}

/// `account.reauthentication_timeout = 0` guards even a brand-new credential; with
/// `mfa.recovery_codes_require_reauthentication = false` showing and regenerating the codes
/// are no longer guarded, but deactivation still is.
async fn reauthentication_settings(backend: Backend) {
    let strict = spawn_with(&backend, Mode::Token, |config| {
        config.account.reauthentication_timeout = 0;
    })
    .await;
    let mut owner = new_frontend(&strict, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, _) = owner.activate().await;
    assert_reauthentication_required(&owner.post("mfa/recovery-codes/", json!({})).await);
    assert_reauthentication_required(
        &owner
            .post("mfa/recovery-codes/regenerate/", json!({}))
            .await,
    );
    assert_reauthentication_required(
        &owner
            .post(
                "mfa/totp/deactivate/",
                json!({"code": authenticator.next()}),
            )
            .await,
    );

    let relaxed = spawn_with(&backend, Mode::Token, |config| {
        config.account.reauthentication_timeout = 0;
        config.mfa.recovery_codes_require_reauthentication = false;
    })
    .await;
    let mut owner = new_frontend(&relaxed, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, codes) = owner.activate().await;
    assert_eq!(owner.listed_codes().await, codes);
    let regenerated = owner
        .post("mfa/recovery-codes/regenerate/", json!({}))
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let new = recovery_codes(&regenerated.body["codes"]);
    assert_eq!(owner.listed_codes().await, new);
    assert_reauthentication_required(
        &owner
            .post(
                "mfa/totp/deactivate/",
                json!({"code": authenticator.next()}),
            )
            .await,
    );
}

// ---------------------------------------------------------------------------------------------
// 4. mfa.enabled = false, and 5. tessera mfa disable
// ---------------------------------------------------------------------------------------------

/// `mfa.enabled = false` removes the `mfa/` operations (404, and absent from
/// `/openapi.json`; `reauthenticate/` stays), and a user whose TOTP rows are still stored logs
/// in with the password alone; switched back on, the login asks for the code again.
async fn mfa_disabled_removes_the_endpoints_and_the_second_step(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mfa_paths = |document: &Value| -> Vec<String> {
        keys(&document["paths"])
            .into_iter()
            .filter(|path| path.contains("/mfa/"))
            .collect()
    };
    let document = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(
        mfa_paths(&document.body).len(),
        6,
        "{:?}",
        keys(&document.body["paths"])
    );
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    let (authenticator, _) = owner.activate().await;

    let (database, mut config) = app.stop().await;
    config.mfa.enabled = false;
    let app = TestApp::start(database, config).await;
    let mut device = new_frontend(&app, Mode::Token);
    let login = device.login(EMAIL, PASSWORD).await;
    device.adopt_login_for(&login, EMAIL);
    for (method, path) in [
        (Method::GET, "mfa/status/"),
        (Method::GET, "mfa/totp/activate/"),
        (Method::POST, "mfa/totp/activate/"),
        (Method::POST, "mfa/totp/deactivate/"),
        (Method::POST, "mfa/verify/"),
        (Method::POST, "mfa/recovery-codes/"),
        (Method::POST, "mfa/recovery-codes/regenerate/"),
    ] {
        let reply = device.send(method, path, Some(json!({}))).await;
        assert_detail(&reply, 404, "Not found.");
    }
    let document = app.send(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(document.status, 200);
    assert_eq!(mfa_paths(&document.body), Vec::<String>::new());
    assert!(keys(&document.body["paths"]).contains("/auth/reauthenticate/"));
    assert_eq!(authenticators(&app, EMAIL).await.len(), 2, "the rows stay");

    let (database, mut config) = app.stop().await;
    config.mfa.enabled = true;
    let app = TestApp::start(database, config).await;
    let mut device = new_frontend(&app, Mode::Token);
    device.log_in_with_code(EMAIL, &authenticator.next()).await;
}

/// `tessera mfa disable --email ADDRESS` (the real binary, for support staff) switches MFA
/// off: the next login answers a credential directly; the trail records it as the operator's;
/// an unknown address fails.
async fn tessera_mfa_disable_switches_mfa_off(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let mut owner = new_frontend(&app, Mode::Token);
    owner.register(EMAIL).await;
    owner.activate().await;
    let mut device = new_frontend(&app, Mode::Token);
    device.login_expecting_mfa(EMAIL).await;

    let env = [
        ("TESSERA_DATABASE__URL", app.config.database.url.as_str()),
        ("TESSERA_SECRET_KEY", SECRET_KEY),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = process::run(dir.path(), &["mfa", "disable", "--email", EMAIL], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("MFA is off for {EMAIL}")),
        "{stdout}"
    );

    let login = device.login(EMAIL, PASSWORD).await;
    device.adopt_login_for(&login, EMAIL);
    assert_eq!(device.me().await.status, 200);
    assert!(authenticators(&app, EMAIL).await.is_empty());
    assert_eq!(device.status().await["mfa_enabled"], json!(false));
    let rows = audit_of(&app, EMAIL).await;
    assert!(
        rows.contains(&audit_row("mfa_deactivation", "success", Some("operator"))),
        "{rows:?}"
    );

    let missing = process::run(
        dir.path(),
        &["mfa", "disable", "--email", "nobody@example.com"],
        &env,
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("nobody@example.com"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Two instances on one PostgreSQL database
// ---------------------------------------------------------------------------------------------

mod two_instances {
    use super::*;

    test_support::postgres_test! {
        /// A TOTP code accepted on one instance is refused on another over the same
        /// database (and the other way round): the replay guard is shared, not per process.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_code_accepted_on_one_instance_is_refused_on_the_other() {
            let a = spawn(&Backend::Postgres, Mode::Token).await;
            let b = a.another_instance().await;
            let mut owner = new_frontend(&a, Mode::Token);
            owner.register(EMAIL).await;
            let (authenticator, codes) = owner.activate().await;

            // Accepted on A at activation: refused on B.
            let mut on_b = new_frontend(&b, Mode::Token);
            let token = on_b.login_expecting_mfa(EMAIL).await;
            let replayed = on_b.verify(&token, &authenticator.current()).await;
            assert_field_error(&replayed, "code", CODE_INVALID);
            let verified = on_b.verify(&token, &authenticator.next()).await;
            on_b.adopt_login_for(&verified, EMAIL);

            // Accepted on B: refused on A.
            let mut on_a = new_frontend(&a, Mode::Token);
            let token = on_a.login_expecting_mfa(EMAIL).await;
            let replayed = on_a.verify(&token, &authenticator.next()).await;
            assert_field_error(&replayed, "code", CODE_INVALID);
            // So is a recovery code used on the other instance.
            let token_b = on_b.login_expecting_mfa(EMAIL).await;
            let verified = on_b.verify(&token_b, &codes[0]).await;
            on_b.adopt_login_for(&verified, EMAIL);
            let replayed = on_a.verify(&token, &codes[0]).await;
            assert_field_error(&replayed, "code", CODE_INVALID);
            let verified = on_a.verify(&token, &codes[1]).await;
            on_a.adopt_login_for(&verified, EMAIL);
        }
    }
}
