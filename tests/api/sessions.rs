//! Devices and sessions (issue 12): `GET sessions/` lists every live credential of the user
//! (a token, a cookie session, a JWT refresh family) under an opaque id, newest first, with
//! the address and user agent of its login and when it was last used; `DELETE sessions/{id}/`
//! ends one at once (on every instance); `DELETE sessions/` ends all but the caller's, behind
//! the reauthentication guard. Each scenario runs in token, JWT and session mode, on both
//! backends; the two-instance ones on PostgreSQL only.
//!
//! Each client below is one device (`support::device`): it sends its own `User-Agent`, holds
//! its credential the way its kind of frontend does (the key or access token in
//! `Authorization`, the refresh token for `token/refresh/`, cookies and the CSRF header in a
//! browser) and presents it on every request. A device's listed entry is found by its user
//! agent (unique per device), so that a device can be looked up without being used.
//!
//! What "refused" means per credential: a token answers 401 `Invalid token.`; a cookie session
//! is no longer a login (session mode: 403, `auth.session_login`: 401, "not provided"); a JWT
//! family refuses its access token (401, SimpleJWT's "Token is invalid") and its refresh
//! token (`token/verify/` and `token/refresh/`: "Token is blacklisted").
//!
//! `last_used_at` is written behind the credential cache, at most once a minute per credential
//! (and instance): a token's and a JWT family's start null and are set by their first use (the
//! listing request itself is one); a session's is its `last_seen_at`, which its login sets, so
//! it is never null. Tests read the columns to count writes, never the clock; one scenario
//! waits out the minute.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use entity::{audit_event, auth_token, refresh_token, refresh_token_family, session};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tessera::Config;

use crate::support::cookies::SESSION_COOKIE;
use crate::support::device::Device;
use crate::support::modes::{MODES, Mode};
use crate::support::{Backend, PASSWORD, Reply, TestApp};

on_each_backend!(
    the_listing_shows_every_live_credential_token,
    the_listing_shows_every_live_credential_jwt,
    the_listing_shows_every_live_credential_session,
    ended_and_expired_credentials_are_not_listed_token,
    ended_and_expired_credentials_are_not_listed_jwt,
    ended_and_expired_credentials_are_not_listed_session,
    session_login_lists_the_session_beside_the_token,
    session_login_lists_the_session_beside_the_jwt,
    last_use_is_recorded_at_most_once_a_minute_token,
    last_use_is_recorded_at_most_once_a_minute_jwt,
    last_use_is_recorded_at_most_once_a_minute_session,
    a_jwt_refresh_is_a_use_of_the_same_entry,
    ending_one_credential_token,
    ending_one_credential_jwt,
    ending_one_credential_session,
    ending_every_other_credential_token,
    ending_every_other_credential_jwt,
    ending_every_other_credential_session,
    the_guard_follows_reauthentication_timeout,
    anonymous_requests_are_refused_token,
    anonymous_requests_are_refused_jwt,
    anonymous_requests_are_refused_session,
    the_login_origin_is_kept_token,
    the_login_origin_is_kept_jwt,
    the_login_origin_is_kept_session,
    a_use_a_minute_later_is_recorded_again,
);

const EMAIL: &str = "ada@example.com";
const OTHER_EMAIL: &str = "bob@example.com";
const LOCALHOST: &str = "127.0.0.1";
const ID_CHARS: usize = 22;

const NOT_FOUND: &str = "Not found.";
const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const INVALID_TOKEN: &str = "Invalid token.";
const JWT_INVALID: &str = "Token is invalid";
const BLACKLISTED: &str = "Token is blacklisted";
const LOGGED_OUT: &str = "Successfully logged out.";
const REAUTHENTICATION_REQUIRED: &str = "Please confirm your password to continue.";
const CSRF_TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";
const TOKEN_CHALLENGE: &str = "Token";
const BEARER_CHALLENGE: &str = "Bearer realm=\"api\"";

/// The fields of a listed entry, no more.
const FIELDS: [&str; 7] = [
    "id",
    "kind",
    "created_at",
    "last_used_at",
    "ip",
    "user_agent",
    "current",
];

// ---------------------------------------------------------------------------------------------
// Modes and devices
// ---------------------------------------------------------------------------------------------

async fn spawn(backend: &Backend, mode: Mode) -> TestApp {
    spawn_with(backend, mode, |_| {}).await
}

/// An app in `mode`, `configure` applied last.
async fn spawn_with(backend: &Backend, mode: Mode, configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend.clone(), |config| {
        mode.configure(config);
        configure(config);
    })
    .await
}

/// What a device does with `sessions/`, and its credential's row read and written directly.
impl Device<'_> {
    /// `token/refresh/` with this device's refresh token; the device holds the new pair.
    async fn refresh_tokens(&mut self) {
        let refresh = self.refresh.clone().expect("a refresh token");
        let reply = self
            .post("token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        self.bearer = Some(string(&reply.body["access"]));
        self.refresh = Some(string(&reply.body["refresh"]));
        assert_ne!(self.refresh.as_deref(), Some(refresh.as_str()), "rotated");
    }

    async fn log_out(&mut self) {
        let body = match self.mode {
            Mode::Jwt => json!({"refresh": self.refresh}),
            _ => json!({}),
        };
        let reply = self.post("logout/", body).await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        assert_eq!(reply.body, json!({"detail": LOGGED_OUT}));
    }

    /// `GET sessions/`, which must answer a well-formed listing.
    async fn sessions(&mut self) -> Vec<Value> {
        let reply = self.get("sessions/").await;
        listing(&reply)
    }

    /// The listing as text, and parsed.
    async fn sessions_text(&mut self) -> (String, Vec<Value>) {
        let reply = self.get("sessions/").await;
        let entries = listing(&reply);
        (reply.text, entries)
    }

    /// The id of this device's credential: the one entry its own listing marks current.
    async fn own_id(&mut self) -> String {
        let entries = self.sessions().await;
        let current: Vec<&Value> = entries.iter().filter(|e| e["current"] == true).collect();
        assert_eq!(current.len(), 1, "one current entry: {entries:?}");
        assert_eq!(current[0]["kind"], self.kind(), "{entries:?}");
        string(&current[0]["id"])
    }

    async fn end(&mut self, id: &str) -> Reply {
        self.delete(&format!("sessions/{id}/")).await
    }

    async fn end_others(&mut self) -> Reply {
        self.delete("sessions/").await
    }

    /// When the database says this credential was last used (a session's `last_seen_at`).
    async fn stored_last_use(&self) -> Option<DateTime<Utc>> {
        let db = &self.app.db;
        match self.row().await {
            ("session", id) => session::Entity::find_by_id(entity::SessionId(id))
                .one(db)
                .await
                .unwrap()
                .map(|row| row.last_seen_at),
            ("token", id) => {
                auth_token::Entity::find_by_id(entity::TokenId(id))
                    .one(db)
                    .await
                    .unwrap()
                    .expect("a token")
                    .last_used_at
            }
            (_, id) => {
                refresh_token_family::Entity::find_by_id(entity::FamilyId(id))
                    .one(db)
                    .await
                    .unwrap()
                    .expect("a family")
                    .last_used_at
            }
        }
    }

    /// Sets the stored last use (to play a minute forward).
    async fn set_stored_last_use(&self, at: DateTime<Utc>) {
        let db = &self.app.db;
        let updated = match self.row().await {
            ("session", id) => {
                session::Entity::update_many()
                    .col_expr(session::Column::LastSeenAt, Expr::value(at))
                    .filter(session::Column::Id.eq(id))
                    .exec(db)
                    .await
            }
            ("token", id) => {
                auth_token::Entity::update_many()
                    .col_expr(auth_token::Column::LastUsedAt, Expr::value(at))
                    .filter(auth_token::Column::Id.eq(id))
                    .exec(db)
                    .await
            }
            (_, id) => {
                refresh_token_family::Entity::update_many()
                    .col_expr(refresh_token_family::Column::LastUsedAt, Expr::value(at))
                    .filter(refresh_token_family::Column::Id.eq(id))
                    .exec(db)
                    .await
            }
        };
        assert_eq!(updated.unwrap().rows_affected, 1);
    }

    /// Makes this credential expire (a JWT family: its refresh tokens), in the database.
    async fn expire(&self) {
        let db = &self.app.db;
        let past = Utc::now() - Duration::minutes(1);
        let updated = match self.row().await {
            ("session", id) => {
                session::Entity::update_many()
                    .col_expr(session::Column::ExpiresAt, Expr::value(past))
                    .filter(session::Column::Id.eq(id))
                    .exec(db)
                    .await
            }
            ("token", id) => {
                auth_token::Entity::update_many()
                    .col_expr(auth_token::Column::ExpiresAt, Expr::value(Some(past)))
                    .filter(auth_token::Column::Id.eq(id))
                    .exec(db)
                    .await
            }
            (_, id) => {
                refresh_token::Entity::update_many()
                    .col_expr(refresh_token::Column::ExpiresAt, Expr::value(past))
                    .filter(refresh_token::Column::FamilyId.eq(id))
                    .exec(db)
                    .await
            }
        };
        assert!(updated.unwrap().rows_affected >= 1);
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

fn datetime(value: &Value) -> DateTime<Utc> {
    let text = string(value);
    DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|err| panic!("an RFC 3339 datetime: {text}: {err}"))
        .with_timezone(&Utc)
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// A well-formed `GET sessions/` answer: 200, entries of exactly the documented fields, each
/// with an opaque id of 22 URL-safe characters (all different), a kind, datetimes, and newest
/// first.
fn listing(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let entries = reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("an array: {}", reply.text))
        .clone();
    let fields: BTreeSet<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let mut ids = BTreeSet::new();
    for entry in &entries {
        assert_eq!(keys(entry), fields, "{entry}");
        let id = string(&entry["id"]);
        assert_eq!(id.len(), ID_CHARS, "{entry}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe: {entry}"
        );
        assert!(ids.insert(id), "ids differ: {}", reply.text);
        assert!(
            ["token", "session", "jwt"].contains(&entry["kind"].as_str().unwrap_or("")),
            "{entry}"
        );
        datetime(&entry["created_at"]);
        if !entry["last_used_at"].is_null() {
            datetime(&entry["last_used_at"]);
        }
        assert!(entry["ip"].is_string() || entry["ip"].is_null(), "{entry}");
        assert!(
            entry["user_agent"].is_string() || entry["user_agent"].is_null(),
            "{entry}"
        );
        assert!(entry["current"].is_boolean(), "{entry}");
    }
    let created: Vec<DateTime<Utc>> = entries.iter().map(|e| datetime(&e["created_at"])).collect();
    assert!(
        created.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {}",
        reply.text
    );
    entries
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| string(&e["id"])).collect()
}

/// The entry of the device with this user agent (exactly one).
fn entry_of<'e>(entries: &'e [Value], user_agent: &str) -> &'e Value {
    let found: Vec<&Value> = entries
        .iter()
        .filter(|e| e["user_agent"] == user_agent)
        .collect();
    assert_eq!(found.len(), 1, "one entry for {user_agent}: {entries:?}");
    found[0]
}

/// The ids of the current entries.
fn current(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["current"] == true)
        .map(|e| string(&e["id"]))
        .collect()
}

/// `at` lies between two readings of the clock taken around the request that set it (1 ms
/// either side for the database's precision).
fn assert_between(at: DateTime<Utc>, before: DateTime<Utc>, after: DateTime<Utc>) {
    let slack = Duration::milliseconds(1);
    assert!(
        before - slack <= at && at <= after + slack,
        "{at} not within {before} .. {after}"
    );
}

fn assert_detail(reply: &Reply, status: u16, detail: &str) {
    crate::support::assert_detail(reply, status, detail);
}

fn assert_no_content(reply: &Reply) {
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty(), "{}", reply.text);
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

/// The listing's text holds none of `secrets`.
fn assert_no_secret(text: &str, secrets: &[String]) {
    assert!(secrets.len() > 1, "something to look for");
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret.as_str()),
            "the listing shows a secret ({secret}): {text}"
        );
    }
}

/// `device` still works: `user/` answers with the user; a JWT refresh token is still live.
async fn assert_accepted(device: &Device<'_>, email: &str) {
    let mut device = device.clone();
    let me = device.me().await;
    assert_eq!(
        me.status,
        200,
        "{:?} {}: {}",
        device.mode,
        device.kind(),
        me.text
    );
    assert_eq!(me.body["email"], email, "{}", me.text);
    if let Some(refresh) = device.refresh.clone() {
        let verify = device
            .post("token/verify/", json!({"token": refresh}))
            .await;
        assert_eq!(
            verify.status, 200,
            "the refresh token is live: {}",
            verify.text
        );
    }
}

/// `device`'s credential no longer works, in the words of its kind.
async fn assert_refused(device: &Device<'_>) {
    let mut device = device.clone();
    let me = device.me().await;
    match (device.mode, device.uses_session()) {
        (Mode::Session, _) => assert_detail(&me, 403, NOT_PROVIDED),
        (_, true) => assert_detail(&me, 401, NOT_PROVIDED),
        (Mode::Token, false) => {
            assert_detail(&me, 401, INVALID_TOKEN);
            assert_eq!(me.header("www-authenticate"), Some(TOKEN_CHALLENGE));
        }
        (Mode::Jwt, false) => {
            assert_bad_access(&me, JWT_INVALID);
            let refresh = device.refresh.clone().expect("a refresh token");
            let verify = device
                .post("token/verify/", json!({"token": refresh}))
                .await;
            assert_token_not_valid(&verify, BLACKLISTED);
            let refreshed = device
                .post("token/refresh/", json!({"refresh": refresh}))
                .await;
            assert_token_not_valid(&refreshed, BLACKLISTED);
        }
    }
}

/// SimpleJWT's refusal of a bad access token on an authenticated endpoint.
fn assert_bad_access(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{
                "token_class": "AccessToken",
                "token_type": "access",
                "message": message,
            }],
        }),
        "{}",
        reply.text
    );
    assert_eq!(reply.header("www-authenticate"), Some(BEARER_CHALLENGE));
}

/// SimpleJWT's refusal on `token/verify/` and `token/refresh/`.
fn assert_token_not_valid(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": message, "code": "token_not_valid"}),
        "{}",
        reply.text
    );
}

/// Polls `check` until it holds; fails after `limit`.
async fn within<F, Fut>(limit: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// `(outcome, reason, ip, user agent)` of every `session_ended` audit entry of the user, in
/// order.
async fn endings(
    app: &TestApp,
    email: &str,
) -> Vec<(String, Option<String>, Option<String>, Option<String>)> {
    let user = app.stored_user(email).await.id;
    audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user))
        .filter(audit_event::Column::Event.eq("session_ended"))
        .order_by_asc(audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.outcome, row.reason, row.ip, row.user_agent))
        .collect()
}

fn ending(
    reason: &str,
    user_agent: &str,
) -> (String, Option<String>, Option<String>, Option<String>) {
    (
        "success".into(),
        Some(reason.into()),
        Some(LOCALHOST.into()),
        Some(user_agent.into()),
    )
}

/// Every digest and `jti` the database holds for the user's credentials.
async fn stored_secrets(app: &TestApp, email: &str) -> Vec<String> {
    let user = app.stored_user(email).await.id;
    let mut found = Vec::new();
    for row in auth_token::Entity::find()
        .filter(auth_token::Column::UserId.eq(user))
        .all(&app.db)
        .await
        .unwrap()
    {
        found.push(row.digest);
    }
    for row in session::Entity::find()
        .filter(session::Column::UserId.eq(user))
        .all(&app.db)
        .await
        .unwrap()
    {
        found.push(row.digest);
    }
    let families: Vec<entity::FamilyId> = refresh_token_family::Entity::find()
        .filter(refresh_token_family::Column::UserId.eq(user))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    for row in refresh_token::Entity::find()
        .filter(refresh_token::Column::FamilyId.is_in(families))
        .all(&app.db)
        .await
        .unwrap()
    {
        found.push(row.jti);
    }
    found
}

/// Waits a few milliseconds, so that logins one after the other have distinct times.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// Each scenario once per mode.
macro_rules! in_every_mode {
    ($($scenario:ident => $token:ident, $jwt:ident, $session:ident;)*) => {
        $(
            async fn $token(backend: Backend) {
                $scenario(backend, Mode::Token).await
            }
            async fn $jwt(backend: Backend) {
                $scenario(backend, Mode::Jwt).await
            }
            async fn $session(backend: Backend) {
                $scenario(backend, Mode::Session).await
            }
        )*
    };
}

in_every_mode!(
    the_listing_shows_every_live_credential =>
        the_listing_shows_every_live_credential_token,
        the_listing_shows_every_live_credential_jwt,
        the_listing_shows_every_live_credential_session;
    ended_and_expired_credentials_are_not_listed =>
        ended_and_expired_credentials_are_not_listed_token,
        ended_and_expired_credentials_are_not_listed_jwt,
        ended_and_expired_credentials_are_not_listed_session;
    last_use_is_recorded_at_most_once_a_minute =>
        last_use_is_recorded_at_most_once_a_minute_token,
        last_use_is_recorded_at_most_once_a_minute_jwt,
        last_use_is_recorded_at_most_once_a_minute_session;
    ending_one_credential =>
        ending_one_credential_token,
        ending_one_credential_jwt,
        ending_one_credential_session;
    ending_every_other_credential =>
        ending_every_other_credential_token,
        ending_every_other_credential_jwt,
        ending_every_other_credential_session;
    anonymous_requests_are_refused =>
        anonymous_requests_are_refused_token,
        anonymous_requests_are_refused_jwt,
        anonymous_requests_are_refused_session;
    the_login_origin_is_kept =>
        the_login_origin_is_kept_token,
        the_login_origin_is_kept_jwt,
        the_login_origin_is_kept_session;
);

// ---------------------------------------------------------------------------------------------
// GET sessions/
// ---------------------------------------------------------------------------------------------

/// Ada signs up on one device and logs in on three more (one sends no user agent); Bob has
/// two. Each of Ada's devices lists exactly her four credentials, newest first, each of the
/// mode's kind, created when its login ran, from 127.0.0.1, with the user agent its login
/// sent, and marks its own as current and no other; the ids are the same from every device
/// and on every call; Bob's listing holds his two and nothing of Ada's (and the other way
/// round); no listing shows a token, key, cookie, refresh token, `jti`, their digests, or a
/// row id.
async fn the_listing_shows_every_live_credential(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let kind = mode.kind();
    let mut devices = Vec::new();
    let mut times = Vec::new();
    for (i, agent) in ["Signup/1.0", "Phone/2.0 (Android)", "Laptop/3.0", ""]
        .into_iter()
        .enumerate()
    {
        tick().await;
        let mut device = Device::new(&app, mode);
        if !agent.is_empty() {
            device = device.user_agent(agent);
        }
        let before = Utc::now();
        match i {
            0 => device.register(EMAIL).await,
            _ => device.log_in(EMAIL).await,
        }
        times.push((before, Utc::now()));
        devices.push(device);
    }
    let mut bob = Device::new(&app, mode).user_agent("Bob/1.0");
    bob.register(OTHER_EMAIL).await;
    let mut bob_phone = Device::new(&app, mode).user_agent("Bob's phone");
    bob_phone.log_in(OTHER_EMAIL).await;

    let (text, entries) = devices[2].sessions_text().await;
    assert_eq!(entries.len(), 4, "{text}");
    // Newest first: the device without a user agent, the laptop, the phone, the signup.
    let agents: Vec<&Value> = entries.iter().map(|e| &e["user_agent"]).collect();
    assert_eq!(
        agents,
        [
            &Value::Null,
            &json!("Laptop/3.0"),
            &json!("Phone/2.0 (Android)"),
            &json!("Signup/1.0")
        ],
        "{text}"
    );
    for (entry, (before, after)) in entries.iter().zip(times.iter().rev()) {
        assert_eq!(entry["kind"], kind, "{entry}");
        assert_eq!(entry["ip"], LOCALHOST, "{entry}");
        assert_between(datetime(&entry["created_at"]), *before, *after);
    }
    let laptop_id = string(&entry_of(&entries, "Laptop/3.0")["id"]);
    assert_eq!(
        current(&entries),
        std::slice::from_ref(&laptop_id),
        "{text}"
    );

    // Every device sees the same entries (the same ids, times, addresses and agents), with
    // only its own marked current.
    let strip = |entries: &[Value]| -> Vec<Value> {
        entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e["current"] = Value::Null;
                e["last_used_at"] = Value::Null;
                e
            })
            .collect()
    };
    let mut own_ids = Vec::new();
    for device in &mut devices {
        let seen = device.sessions().await;
        assert_eq!(strip(&seen), strip(&entries), "{:?}", device.user_agent);
        let mine = current(&seen);
        assert_eq!(mine.len(), 1, "{seen:?}");
        if let Some(agent) = &device.user_agent {
            assert_eq!(mine[0], string(&entry_of(&seen, agent)["id"]));
        }
        own_ids.push(mine[0].clone());
    }
    let distinct: BTreeSet<&String> = own_ids.iter().collect();
    assert_eq!(distinct.len(), 4, "{own_ids:?}");
    // Stable across calls.
    assert_eq!(ids(&devices[2].sessions().await), ids(&entries));

    // Bob sees his own two, never Ada's; Ada never sees Bob's.
    let (bob_text, bob_entries) = bob.sessions_text().await;
    assert_eq!(bob_entries.len(), 2, "{bob_text}");
    let bob_agents: BTreeSet<String> = bob_entries
        .iter()
        .map(|e| string(&e["user_agent"]))
        .collect();
    assert_eq!(
        bob_agents,
        ["Bob/1.0", "Bob's phone"].map(String::from).into()
    );
    for id in ids(&bob_entries) {
        assert!(!ids(&entries).contains(&id), "{bob_text} / {text}");
    }
    assert!(!text.contains("Bob"), "{text}");
    assert!(!bob_text.contains("Laptop"), "{bob_text}");

    // No secret: nothing any device holds, no digest, no row id.
    let mut secrets: Vec<String> = devices.iter().flat_map(Device::secrets).collect();
    secrets.extend(bob.secrets());
    secrets.extend(bob_phone.secrets());
    secrets.extend(stored_secrets(&app, EMAIL).await);
    secrets.extend(stored_secrets(&app, OTHER_EMAIL).await);
    secrets.push(PASSWORD.to_owned());
    assert_no_secret(&text, &secrets);
    let (text, entries) = devices[1].sessions_text().await;
    assert_no_secret(&text, &secrets);
    assert_no_secret(&bob_text, &secrets);
    let mut row_ids = BTreeSet::new();
    for device in devices.iter().chain([&bob, &bob_phone]) {
        row_ids.insert(device.row().await.1.to_string());
    }
    for id in ids(&entries).iter().chain(ids(&bob_entries).iter()) {
        assert!(!row_ids.contains(id), "{id} is a row id");
        assert!(!id.chars().all(|c| c.is_ascii_digit()), "{id}");
    }
}

/// A credential that logged out, expired, or (a session) idled out is no longer listed, and
/// its id answers 404; the rest stay, with the same ids.
async fn ended_and_expired_credentials_are_not_listed(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let mut signup = Device::new(&app, mode).user_agent("Signup");
    signup.register(EMAIL).await;
    let mut leaving = Device::new(&app, mode).user_agent("Leaving");
    leaving.log_in(EMAIL).await;
    let mut expiring = Device::new(&app, mode).user_agent("Expiring");
    expiring.log_in(EMAIL).await;
    let mut idle = Device::new(&app, mode).user_agent("Idle");
    idle.log_in(EMAIL).await;
    let mut lister = Device::new(&app, mode).user_agent("Lister");
    lister.log_in(EMAIL).await;

    let before = lister.sessions().await;
    assert_eq!(before.len(), 5, "{before:?}");
    let id_of = |agent: &str| string(&entry_of(&before, agent)["id"]);

    leaving.log_out().await;
    expiring.expire().await;
    let mut gone = vec![id_of("Leaving"), id_of("Expiring")];
    let mut staying = vec!["Lister", "Idle", "Signup"];
    if mode == Mode::Session {
        // A session unused for longer than the idle limit is over too.
        let idle_limit = app.config.session.idle_timeout_seconds as i64;
        idle.set_stored_last_use(Utc::now() - Duration::seconds(idle_limit + 1))
            .await;
        gone.push(id_of("Idle"));
        staying.retain(|agent| *agent != "Idle");
    }

    let after = lister.sessions().await;
    let agents: Vec<String> = after.iter().map(|e| string(&e["user_agent"])).collect();
    assert_eq!(agents, staying, "{after:?}");
    for agent in &staying {
        assert_eq!(string(&entry_of(&after, agent)["id"]), id_of(agent));
    }
    for id in &gone {
        assert_detail(&lister.end(id).await, 404, NOT_FOUND);
    }
    assert_eq!(ids(&lister.sessions().await), ids(&after));
}

/// `auth.session_login` (token or JWT mode): a login opens a cookie session beside its
/// token or JWT family, and both are listed, from the same address and user agent, with
/// different ids; the one presented is current (the key or access token, or the cookie
/// alone); either can end the other (reason `session`, and the mode's kind); no cookie or
/// token shows.
async fn session_login_lists_the_login_session_too(backend: Backend, mode: Mode) {
    let app = spawn_with(&backend, mode, |config| config.auth.session_login = true).await;
    // A signup answers the mode's credential only (no session).
    let mut signup = Device::new(&app, mode).user_agent("Signup");
    signup.register(EMAIL).await;
    let mut device = Device::new(&app, mode).user_agent("Both/1.0");
    device.log_in(EMAIL).await;
    let browser = device.cookies_only();

    let (text, entries) = device.sessions_text().await;
    let listed: Vec<(String, String)> = entries
        .iter()
        .map(|e| (string(&e["kind"]), string(&e["user_agent"])))
        .collect();
    // The login's session opens first, its token or family right after: newest first.
    let expected = [
        (mode.kind(), "Both/1.0"),
        ("session", "Both/1.0"),
        (mode.kind(), "Signup"),
    ]
    .map(|(kind, agent)| (kind.to_owned(), agent.to_owned()));
    assert_eq!(listed, expected, "{text}");
    for entry in &entries {
        assert_eq!(entry["ip"], LOCALHOST, "{entry}");
    }
    let (own, session) = (string(&entries[0]["id"]), string(&entries[1]["id"]));
    let signup_id = string(&entries[2]["id"]);
    assert_eq!(current(&entries), std::slice::from_ref(&own));
    let mut as_browser = browser.clone();
    let seen = as_browser.sessions().await;
    assert_eq!(ids(&seen), ids(&entries));
    assert_eq!(current(&seen), std::slice::from_ref(&session));
    let mut secrets = device.secrets();
    secrets.extend(signup.secrets());
    secrets.extend(stored_secrets(&app, EMAIL).await);
    assert_no_secret(&text, &secrets);

    // The token (or JWT) ends the session: the cookie is refused, the token still works.
    assert_no_content(&device.end(&session).await);
    assert_refused(&browser).await;
    assert_accepted(&device, EMAIL).await;
    assert_eq!(ids(&device.sessions().await), [own.clone(), signup_id]);

    // A new login's cookie session ends the token (or JWT family) of that login.
    let mut second = Device::new(&app, mode).user_agent("Second");
    second.log_in(EMAIL).await;
    let mut cookie = second.cookies_only();
    let listed = cookie.sessions().await;
    assert_eq!(listed.len(), 4, "{listed:?}");
    let second_own = listed
        .iter()
        .find(|e| e["user_agent"] == "Second" && e["kind"] == mode.kind())
        .map(|e| string(&e["id"]))
        .expect("the second login's credential");
    // Unsafe requests with a cookie need the CSRF header.
    let forged = cookie
        .send_without_csrf(Method::DELETE, &format!("sessions/{second_own}/"), None)
        .await;
    assert_detail(&forged, 403, CSRF_TOKEN_MISSING);
    assert_accepted(&second, EMAIL).await;
    assert_no_content(&cookie.end(&second_own).await);
    assert_refused(&second).await;
    assert_accepted(&cookie, EMAIL).await;
    assert_accepted(&device, EMAIL).await;

    assert_eq!(
        endings(&app, EMAIL).await,
        [ending("session", "Both/1.0"), ending(mode.kind(), "Second")]
    );
}

async fn session_login_lists_the_session_beside_the_token(backend: Backend) {
    session_login_lists_the_login_session_too(backend, Mode::Token).await
}

async fn session_login_lists_the_session_beside_the_jwt(backend: Backend) {
    session_login_lists_the_login_session_too(backend, Mode::Jwt).await
}

// ---------------------------------------------------------------------------------------------
// last_used_at
// ---------------------------------------------------------------------------------------------

/// A token or JWT family that has not been used since its login lists `last_used_at` null; a
/// session's is its login (a session's last activity starts there). A use is recorded in the
/// database and listed; twenty more within the minute write nothing (the column keeps the
/// first use's instant); the listing request itself is a use. Without the credential cache
/// (`credential_cache.capacity = 0`), the stored instant decides: once it is more than a
/// minute old the next use writes, and again only once.
async fn last_use_is_recorded_at_most_once_a_minute(backend: Backend, mode: Mode) {
    for capacity in [None, Some(0)] {
        let app = spawn_with(&backend, mode, |config| {
            if let Some(capacity) = capacity {
                config.credential_cache.capacity = capacity;
            }
        })
        .await;
        let mut idle = Device::new(&app, mode).user_agent("Idle");
        idle.register(EMAIL).await;
        let mut busy = Device::new(&app, mode).user_agent("Busy");
        busy.log_in(EMAIL).await;
        let mut lister = Device::new(&app, mode).user_agent("Lister");
        lister.log_in(EMAIL).await;

        let before = Utc::now();
        let entries = lister.sessions().await;
        let after = Utc::now();
        for agent in ["Idle", "Busy"] {
            let entry = entry_of(&entries, agent);
            match mode {
                Mode::Session => assert_eq!(
                    entry["last_used_at"], entry["created_at"],
                    "{capacity:?}: {entry}"
                ),
                _ => assert_eq!(entry["last_used_at"], Value::Null, "{capacity:?}: {entry}"),
            }
        }
        // The listing request used the lister's credential.
        let own = entry_of(&entries, "Lister");
        let used = datetime(&own["last_used_at"]);
        match mode {
            Mode::Session => assert_eq!(own["last_used_at"], own["created_at"]),
            _ => assert_between(used, before, after),
        }
        assert_eq!(lister.stored_last_use().await, Some(used));

        // A use, then twenty more within the minute: one write at most.
        let first_use = Utc::now();
        assert_eq!(busy.me().await.status, 200);
        let after_use = Utc::now();
        let recorded = busy.stored_last_use().await.expect("a recorded use");
        if mode == Mode::Session {
            // Its login's instant, written less than a minute ago.
            let created = datetime(&entry_of(&entries, "Busy")["created_at"]);
            assert_eq!(recorded, created, "{capacity:?}");
        } else {
            assert_between(recorded, first_use, after_use);
        }
        for _ in 0..20 {
            assert_eq!(busy.me().await.status, 200);
        }
        assert_eq!(busy.stored_last_use().await, Some(recorded), "{capacity:?}");
        let listed = lister.sessions().await;
        assert_eq!(
            datetime(&entry_of(&listed, "Busy")["last_used_at"]),
            recorded
        );
        assert_eq!(
            idle.stored_last_use().await,
            entries_last_use(&entries, "Idle")
        );

        if capacity == Some(0) {
            // A minute later (as far as the database can tell), the next use is written,
            // and again the ones after it are not.
            busy.set_stored_last_use(Utc::now() - Duration::seconds(61))
                .await;
            let before = Utc::now();
            assert_eq!(busy.me().await.status, 200);
            let after = Utc::now();
            let rewritten = busy.stored_last_use().await.expect("a recorded use");
            assert_between(rewritten, before, after);
            for _ in 0..20 {
                assert_eq!(busy.me().await.status, 200);
            }
            assert_eq!(busy.stored_last_use().await, Some(rewritten));
        }
    }
}

fn entries_last_use(entries: &[Value], agent: &str) -> Option<DateTime<Utc>> {
    let value = &entry_of(entries, agent)["last_used_at"];
    (!value.is_null()).then(|| datetime(value))
}

/// A refresh uses the family: its `last_used_at` is recorded, and the listing keeps one
/// entry with the same id (the new tokens belong to it); the new access token is current.
async fn a_jwt_refresh_is_a_use_of_the_same_entry(backend: Backend) {
    let app = spawn(&backend, Mode::Jwt).await;
    let mut phone = Device::new(&app, Mode::Jwt).user_agent("Phone");
    phone.register(EMAIL).await;
    let mut lister = Device::new(&app, Mode::Jwt).user_agent("Lister");
    lister.log_in(EMAIL).await;
    let entries = lister.sessions().await;
    assert_eq!(entries.len(), 2);
    let phone_entry = entry_of(&entries, "Phone").clone();
    assert_eq!(phone_entry["last_used_at"], Value::Null);

    let family = phone.family();
    let before = Utc::now();
    phone.refresh_tokens().await;
    let after = Utc::now();
    assert_eq!(phone.family(), family, "the same family");
    let listed = lister.sessions().await;
    assert_eq!(ids(&listed), ids(&entries));
    let refreshed = entry_of(&listed, "Phone");
    assert_eq!(refreshed["created_at"], phone_entry["created_at"]);
    assert_between(datetime(&refreshed["last_used_at"]), before, after);
    assert_eq!(phone.own_id().await, string(&phone_entry["id"]));
    // A second refresh: still one entry.
    phone.refresh_tokens().await;
    assert_eq!(ids(&lister.sessions().await), ids(&entries));
}

// ---------------------------------------------------------------------------------------------
// DELETE sessions/{id}/
// ---------------------------------------------------------------------------------------------

/// Ending one credential: 204, and it is refused at once (it was in the credential cache)
/// while the user's others and another user's keep working; the listing loses it. A JWT
/// family ends with its refresh token and every access token it minted. Its id, an unknown
/// id, a row id and another user's id answer 404 (and end nothing), even after a new login.
/// A device may end its own credential. Each ending is audited as `session_ended` with the
/// kind as reason; a 404 is not. In a browser, the DELETE needs the CSRF header.
async fn ending_one_credential(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let mut signup = Device::new(&app, mode).user_agent("Signup");
    signup.register(EMAIL).await;
    let mut phone = Device::new(&app, mode).user_agent("Phone");
    phone.log_in(EMAIL).await;
    let mut laptop = Device::new(&app, mode).user_agent("Laptop");
    laptop.log_in(EMAIL).await;
    let mut bob = Device::new(&app, mode).user_agent("Bob");
    bob.register(OTHER_EMAIL).await;

    // The phone is cached, and (JWT) has refreshed: two access tokens of one family.
    assert_accepted(&phone, EMAIL).await;
    let old_phone = phone.clone();
    if mode == Mode::Jwt {
        phone.refresh_tokens().await;
    }
    assert_accepted(&phone, EMAIL).await;

    let entries = laptop.sessions().await;
    let phone_id = string(&entry_of(&entries, "Phone")["id"]);
    let bob_id = bob.own_id().await;

    if mode == Mode::Session {
        let forged = laptop
            .send_without_csrf(Method::DELETE, &format!("sessions/{phone_id}/"), None)
            .await;
        assert_detail(&forged, 403, CSRF_TOKEN_MISSING);
        assert_accepted(&phone, EMAIL).await;
    }

    assert_no_content(&laptop.end(&phone_id).await);
    assert_refused(&phone).await;
    if mode == Mode::Jwt {
        // The access token from before the refresh too.
        let mut old = old_phone.clone();
        assert_bad_access(&old.me().await, JWT_INVALID);
    }
    assert_accepted(&signup, EMAIL).await;
    assert_accepted(&laptop, EMAIL).await;
    assert_accepted(&bob, OTHER_EMAIL).await;
    let listed = laptop.sessions().await;
    let agents: Vec<String> = listed.iter().map(|e| string(&e["user_agent"])).collect();
    assert_eq!(agents, ["Laptop", "Signup"], "{listed:?}");

    // Not one of the caller's live credentials: 404, and nothing ends.
    let mut new_phone = Device::new(&app, mode).user_agent("New phone");
    new_phone.log_in(EMAIL).await;
    let row_id = new_phone.row().await.1.to_string();
    for id in [
        phone_id.as_str(),
        bob_id.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        "not-an-id",
        row_id.as_str(),
    ] {
        assert_detail(&laptop.end(id).await, 404, NOT_FOUND);
    }
    assert_accepted(&bob, OTHER_EMAIL).await;
    assert_accepted(&new_phone, EMAIL).await;
    assert_eq!(bob.sessions().await.len(), 1);
    assert_eq!(laptop.sessions().await.len(), 3);
    assert_ne!(new_phone.own_id().await, phone_id);
    // Bob cannot end Ada's either.
    let laptop_id = laptop.own_id().await;
    assert_detail(&bob.end(&laptop_id).await, 404, NOT_FOUND);
    assert_accepted(&laptop, EMAIL).await;

    // Its own credential: 204, and the device is logged out.
    let signup_id = signup.own_id().await;
    assert_no_content(&signup.end(&signup_id).await);
    assert_refused(&signup).await;
    assert_accepted(&laptop, EMAIL).await;
    assert_eq!(laptop.sessions().await.len(), 2);

    assert_eq!(
        endings(&app, EMAIL).await,
        [ending(mode.kind(), "Laptop"), ending(mode.kind(), "Signup")]
    );
    assert_eq!(endings(&app, OTHER_EMAIL).await, []);
}

// ---------------------------------------------------------------------------------------------
// DELETE sessions/
// ---------------------------------------------------------------------------------------------

/// Ending every other credential (guarded): right after its login the caller may, and every
/// other credential of the user is refused at once while the caller's and another user's keep
/// working (a JWT caller can still refresh); audited once as `all_others`. Once the caller's
/// proof of the password is older than `account.reauthentication_timeout`: 403
/// `reauthentication_required` and nothing ends (however fresh the other credentials are),
/// until `reauthenticate/`; ending one credential by its id is not guarded.
async fn ending_every_other_credential(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let mut signup = Device::new(&app, mode).user_agent("Signup");
    signup.register(EMAIL).await;
    let mut phone = Device::new(&app, mode).user_agent("Phone");
    phone.log_in(EMAIL).await;
    let mut laptop = Device::new(&app, mode).user_agent("Laptop");
    laptop.log_in(EMAIL).await;
    let mut bob = Device::new(&app, mode).user_agent("Bob");
    bob.register(OTHER_EMAIL).await;
    assert_accepted(&phone, EMAIL).await;
    assert_accepted(&signup, EMAIL).await;
    let laptop_id = laptop.own_id().await;

    if mode == Mode::Session {
        let forged = laptop
            .send_without_csrf(Method::DELETE, "sessions/", None)
            .await;
        assert_detail(&forged, 403, CSRF_TOKEN_MISSING);
        assert_accepted(&phone, EMAIL).await;
    }

    assert_no_content(&laptop.end_others().await);
    assert_refused(&phone).await;
    assert_refused(&signup).await;
    assert_accepted(&laptop, EMAIL).await;
    assert_accepted(&bob, OTHER_EMAIL).await;
    assert_eq!(bob.sessions().await.len(), 1);
    let listed = laptop.sessions().await;
    assert_eq!(ids(&listed), std::slice::from_ref(&laptop_id));
    assert_eq!(current(&listed), std::slice::from_ref(&laptop_id));
    if mode == Mode::Jwt {
        laptop.refresh_tokens().await;
        assert_accepted(&laptop, EMAIL).await;
    }
    assert_eq!(endings(&app, EMAIL).await, [ending("all_others", "Laptop")]);

    // An hour after the laptop's login, a fresh login elsewhere does not make it recent.
    let mut tablet = Device::new(&app, mode).user_agent("Tablet");
    tablet.log_in(EMAIL).await;
    let mut watch = Device::new(&app, mode).user_agent("Watch");
    watch.log_in(EMAIL).await;
    laptop.age().await;
    assert_reauthentication_required(&laptop.end_others().await);
    assert_accepted(&tablet, EMAIL).await;
    assert_accepted(&watch, EMAIL).await;
    let listed = laptop.sessions().await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Ending one credential is not guarded.
    let watch_id = string(&entry_of(&listed, "Watch")["id"]);
    assert_no_content(&laptop.end(&watch_id).await);
    assert_refused(&watch).await;
    assert_accepted(&tablet, EMAIL).await;
    let reauthenticated = laptop
        .post("reauthenticate/", json!({"password": PASSWORD}))
        .await;
    assert_eq!(reauthenticated.status, 200, "{}", reauthenticated.text);
    assert_eq!(reauthenticated.body, json!({"detail": "ok"}));
    assert_no_content(&laptop.end_others().await);
    assert_refused(&tablet).await;
    assert_accepted(&laptop, EMAIL).await;
    assert_eq!(ids(&laptop.sessions().await), [laptop_id]);
    assert_eq!(
        endings(&app, EMAIL).await,
        [
            ending("all_others", "Laptop"),
            ending(mode.kind(), "Laptop"),
            ending("all_others", "Laptop")
        ]
    );
}

/// The guard's limit is `account.reauthentication_timeout`: with two hours, a credential whose
/// login was an hour ago may end the others; with 0, even a brand-new one may not.
async fn the_guard_follows_reauthentication_timeout(backend: Backend) {
    for (timeout, allowed) in [(7200, true), (0, false)] {
        let app = spawn_with(&backend, Mode::Token, |config| {
            config.account.reauthentication_timeout = timeout;
        })
        .await;
        let mut phone = Device::new(&app, Mode::Token).user_agent("Phone");
        phone.register(EMAIL).await;
        let mut laptop = Device::new(&app, Mode::Token).user_agent("Laptop");
        laptop.log_in(EMAIL).await;
        if allowed {
            laptop.age().await;
            assert_no_content(&laptop.end_others().await);
            assert_refused(&phone).await;
        } else {
            assert_reauthentication_required(&laptop.end_others().await);
            assert_accepted(&phone, EMAIL).await;
        }
        assert_accepted(&laptop, EMAIL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Without a credential
// ---------------------------------------------------------------------------------------------

/// Without a credential every operation answers the mode's refusal (401 with its challenge,
/// or session mode's 403), and so does an unknown credential; nothing ends.
async fn anonymous_requests_are_refused(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let mut owner = Device::new(&app, mode).user_agent("Owner");
    owner.register(EMAIL).await;
    let id = owner.own_id().await;

    let mut anonymous = Device::new(&app, mode).user_agent("Anonymous");
    let mut forged = Device::new(&app, mode).user_agent("Forged");
    match mode {
        Mode::Session => forged.jar.insert(SESSION_COOKIE, &"0".repeat(64)),
        _ => forged.bearer = Some("0".repeat(40)),
    }
    for (method, path) in [
        (Method::GET, "sessions/".to_owned()),
        (Method::DELETE, format!("sessions/{id}/")),
        (Method::DELETE, "sessions/".to_owned()),
    ] {
        let reply = anonymous.send(method.clone(), &path, None).await;
        match mode {
            Mode::Session => assert_detail(&reply, 403, NOT_PROVIDED),
            Mode::Token => {
                assert_detail(&reply, 401, NOT_PROVIDED);
                assert_eq!(reply.header("www-authenticate"), Some(TOKEN_CHALLENGE));
            }
            Mode::Jwt => {
                assert_detail(&reply, 401, NOT_PROVIDED);
                assert_eq!(reply.header("www-authenticate"), Some(BEARER_CHALLENGE));
            }
        }
        let reply = forged.send(method, &path, None).await;
        match mode {
            Mode::Session => assert_detail(&reply, 403, NOT_PROVIDED),
            Mode::Token => assert_detail(&reply, 401, INVALID_TOKEN),
            Mode::Jwt => assert_bad_access(&reply, JWT_INVALID),
        }
    }
    assert_accepted(&owner, EMAIL).await;
    assert_eq!(ids(&owner.sessions().await), [id]);
    assert_eq!(endings(&app, EMAIL).await, []);
}

// ---------------------------------------------------------------------------------------------
// User agents
// ---------------------------------------------------------------------------------------------

/// Where a credential was issued: its login's client address (the socket's, or behind a trusted
/// proxy the one it forwards; from anyone else the header is ignored) and user agent, cut to
/// the column's 255 characters (a longer one still logs in, on PostgreSQL too, whose
/// `varchar(255)` refuses a longer value). Later requests from elsewhere, with another user
/// agent, change neither.
async fn the_login_origin_is_kept(backend: Backend, mode: Mode) {
    let app = spawn_with(&backend, mode, |config| {
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let agent = format!("Mozilla/5.0 ({})", "x".repeat(400));
    let mut device = Device::new(&app, mode).user_agent(&agent);
    device.forwarded_for = Some("203.0.113.9".into());
    device.register(EMAIL).await;
    let mut again = Device::new(&app, mode).user_agent(&agent[..256]);
    again.forwarded_for = Some("2001:db8::7".into());
    again.log_in(EMAIL).await;
    device.user_agent = Some("Elsewhere/1.0".into());
    device.forwarded_for = Some("198.51.100.1".into());
    assert_eq!(device.me().await.status, 200);

    let entries = device.sessions().await;
    let origins: Vec<(Value, Value)> = entries
        .iter()
        .map(|e| (e["ip"].clone(), e["user_agent"].clone()))
        .collect();
    let cut = json!(agent[..255]);
    assert_eq!(
        origins,
        [
            (json!("2001:db8::7"), cut.clone()),
            (json!("203.0.113.9"), cut)
        ],
        "{entries:?}"
    );

    // Without a trusted proxy, the socket's address.
    let direct = spawn(&backend, mode).await;
    let mut device = Device::new(&direct, mode).user_agent("Direct");
    device.forwarded_for = Some("203.0.113.9".into());
    device.register(EMAIL).await;
    let entries = device.sessions().await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["ip"], LOCALHOST, "{entries:?}");
}

/// A minute after a credential's recorded use, the next use is recorded again (once): a
/// token's, a JWT family's and a session's, served from the credential cache all along. The
/// one scenario that waits (61 s), the three modes at once.
async fn a_use_a_minute_later_is_recorded_again(backend: Backend) {
    let mut apps = Vec::new();
    for mode in MODES {
        apps.push((mode, spawn(&backend, mode).await));
    }
    let mut devices = Vec::new();
    for (mode, app) in &apps {
        let mut device = Device::new(app, *mode).user_agent("Busy");
        device.register(EMAIL).await;
        assert_eq!(device.me().await.status, 200);
        let first = device.stored_last_use().await.expect("a recorded use");
        devices.push((device, first));
    }
    tokio::time::sleep(std::time::Duration::from_secs(61)).await;
    for (device, first) in &mut devices {
        let before = Utc::now();
        assert_eq!(device.me().await.status, 200);
        let after = Utc::now();
        let second = device.stored_last_use().await.expect("a recorded use");
        assert_between(second, before, after);
        assert!(second - *first > Duration::seconds(60), "{first} {second}");
        for _ in 0..20 {
            assert_eq!(device.me().await.status, 200);
        }
        assert_eq!(
            device.stored_last_use().await,
            Some(second),
            "{:?}",
            device.mode
        );
        let entries = device.sessions().await;
        assert_eq!(datetime(&entries[0]["last_used_at"]), second);
    }
}

// ---------------------------------------------------------------------------------------------
// Two instances on one PostgreSQL database
// ---------------------------------------------------------------------------------------------

mod two_instances {
    use super::*;

    /// How long an ending may take to reach another instance (the bound).
    const ACROSS_INSTANCES: std::time::Duration = std::time::Duration::from_secs(2);

    /// A credential ended on instance A is refused on instance B within 2 s although B had it
    /// cached, and so are those `DELETE sessions/` ends; the ids are the same on both
    /// instances (B can end what A listed); the rest keep working on both.
    async fn an_ending_reaches_the_other_instance(mode: Mode) {
        let a = spawn(&Backend::Postgres, mode).await;
        let b = a.another_instance().await;
        let mut on_a = Device::new(&a, mode).user_agent("On A");
        on_a.register(EMAIL).await;
        let mut phone = Device::new(&a, mode).user_agent("Phone");
        phone.log_in(EMAIL).await;
        let mut on_b = Device::new(&b, mode).user_agent("On B");
        on_b.log_in(EMAIL).await;
        let mut tablet = Device::new(&b, mode).user_agent("Tablet");
        tablet.log_in(EMAIL).await;

        // B caches the phone's credential, A the tablet's.
        let phone_on_b = phone.on(&b);
        assert_accepted(&phone_on_b, EMAIL).await;
        let tablet_on_a = tablet.on(&a);
        assert_accepted(&tablet_on_a, EMAIL).await;

        let listed_a = on_a.sessions().await;
        let listed_b = on_b.sessions().await;
        assert_eq!(ids(&listed_a), ids(&listed_b), "the same ids on both");
        let phone_id = string(&entry_of(&listed_a, "Phone")["id"]);
        let tablet_id = string(&entry_of(&listed_b, "Tablet")["id"]);

        assert_no_content(&on_a.end(&phone_id).await);
        assert_refused(&phone).await;
        within(ACROSS_INSTANCES, "B refuses the ended credential", || {
            let device = phone_on_b.clone();
            async move {
                let mut device = device;
                let me = device.me().await;
                me.status == 401 || me.status == 403
            }
        })
        .await;
        assert_refused(&phone_on_b).await;
        assert_accepted(&on_b, EMAIL).await;
        assert_accepted(&tablet_on_a, EMAIL).await;

        // B ends what A listed for the tablet... then everything but itself.
        assert_no_content(&on_b.end(&tablet_id).await);
        within(ACROSS_INSTANCES, "A refuses the tablet", || {
            let device = tablet_on_a.clone();
            async move {
                let mut device = device;
                let me = device.me().await;
                me.status == 401 || me.status == 403
            }
        })
        .await;
        assert_refused(&tablet_on_a).await;
        assert_accepted(&on_a, EMAIL).await;
        assert_no_content(&on_b.end_others().await);
        within(ACROSS_INSTANCES, "A refuses every other credential", || {
            let device = on_a.clone();
            async move {
                let mut device = device;
                let me = device.me().await;
                me.status == 401 || me.status == 403
            }
        })
        .await;
        assert_refused(&on_a).await;
        assert_accepted(&on_b, EMAIL).await;
        assert_accepted(&on_b.on(&a), EMAIL).await;
        assert_eq!(ids(&on_b.sessions().await).len(), 1);
    }

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_ending_reaches_the_other_instance_token() {
            an_ending_reaches_the_other_instance(Mode::Token).await
        }
    }

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_ending_reaches_the_other_instance_jwt() {
            an_ending_reaches_the_other_instance(Mode::Jwt).await
        }
    }

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_ending_reaches_the_other_instance_session() {
            an_ending_reaches_the_other_instance(Mode::Session).await
        }
    }
}
