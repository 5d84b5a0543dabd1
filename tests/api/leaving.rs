//! Leaving (issue 12): `GET user/export/` hands the user everything Tessera holds about them
//! (and no secret); `DELETE user/` deletes the account and everything tied to it
//! (`account.deletion = "delete"`), or empties and switches it off (`"deactivate"`), or is
//! refused (`"disabled"`: 405). Both need a recent proof of the password; the last active
//! superuser cannot delete itself. Each scenario runs in token, JWT and session mode where the
//! mode matters, on both backends; the two-instance one on PostgreSQL only.
//!
//! Each client below is one device (`support::device`): it sends its own `User-Agent` and,
//! through a trusted proxy (`server.trusted_proxies` = 127.0.0.1), its own client address
//! (`X-Forwarded-For`), so that what the app stored about that device can be searched for by
//! those strings. It holds its credential the way its kind of frontend does (the key or access
//! token in `Authorization`, the refresh token for `token/refresh/`, cookies and the CSRF
//! header in a browser) and presents it on every request.
//!
//! "Deletion leaves no row that names the user" is tested by reading every row of every table
//! of the database as text (the tables listed by the database itself, so a table added later
//! is searched too) and looking for the user's addresses, username, names, client addresses
//! and user agents, once the goodbye mail has been delivered.

use std::collections::BTreeSet;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use entity::{audit_event, auth_token, email_address, mfa_authenticator, outbox_message};
use entity::{refresh_token, refresh_token_family, session, user};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use sea_orm::{DatabaseConnection, Statement};
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::AccountDeletion;
use tessera::messages::LAST_SUPERUSER;

use crate::support::device::Device;
use crate::support::mail::{RESET_PREFIX, ReceivedMail, VERIFY_PREFIX, key_from, uid_and_token};
use crate::support::modes::{MODES, Mode};
use crate::support::process;
use crate::support::totp::Authenticator;
use crate::support::{Backend, PASSWORD, Reply, TestApp, sha256_hex, signup_body};

on_each_backend!(
    the_export_holds_the_account_and_no_secret_token,
    the_export_holds_the_account_and_no_secret_jwt,
    the_export_holds_the_account_and_no_secret_session,
    deletion_leaves_no_row_that_names_the_user_token,
    deletion_leaves_no_row_that_names_the_user_jwt,
    deletion_leaves_no_row_that_names_the_user_session,
    deactivation_empties_the_account_token,
    deactivation_empties_the_account_jwt,
    deactivation_empties_the_account_session,
    the_guard_protects_export_and_deletion_token,
    the_guard_protects_export_and_deletion_jwt,
    the_guard_protects_export_and_deletion_session,
    anonymous_requests_are_refused_in_every_mode,
    disabled_deletion_answers_405_in_every_mode,
    the_last_superuser_cannot_delete_itself,
);

const EMAIL: &str = "ada.lovelace@analytical.example";
const SECOND_EMAIL: &str = "countess.byron@engines.example";
const USERNAME: &str = "countess_augusta";
const FIRST_NAME: &str = "Augustabyron";
const LAST_NAME: &str = "Kingnoelovelace";
/// Ada's two devices.
const PHONE: &str = "LeavingTest-Phone/9.7 (ua-ada-5e1f)";
const PHONE_IP: &str = "198.51.100.77";
const LAPTOP: &str = "LeavingTest-Laptop/3.1 (ua-ada-77c2)";
const LAPTOP_IP: &str = "198.51.100.78";
/// Another user, whose data must not be touched (nor exported to Ada).
const BOB_EMAIL: &str = "bob.babbage@difference.example";
const BOB: &str = "LeavingTest-Bob/1.0 (ua-bob-0b0b)";
const BOB_IP: &str = "203.0.113.9";
const LOCALHOST: &str = "127.0.0.1";
const SECRET_KEY: &str = "test-secret-key-that-is-long-enough-0123456789";

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const INVALID_TOKEN: &str = "Invalid token.";
const JWT_INVALID: &str = "Token is invalid";
const BLACKLISTED: &str = "Token is blacklisted";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const REAUTHENTICATION_REQUIRED: &str = "Please confirm your password to continue.";
const GOODBYE_SUBJECT: &str = "[Tessera] Your account has been deleted";

/// The fields of the export, no more.
const EXPORT_FIELDS: [&str; 7] = [
    "exported_at",
    "profile",
    "email_addresses",
    "sessions",
    "mfa",
    "social_accounts",
    "audit_events",
];
const PROFILE_FIELDS: [&str; 10] = [
    "pk",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
];
const EVENT_FIELDS: [&str; 7] = [
    "created_at",
    "event",
    "outcome",
    "reason",
    "ip",
    "user_agent",
    "request_id",
];

// ---------------------------------------------------------------------------------------------
// Modes and devices
// ---------------------------------------------------------------------------------------------

async fn spawn(backend: &Backend, mode: Mode) -> TestApp {
    spawn_with(backend, mode, |_| {}).await
}

/// An app in `mode` whose mail links go to a frontend (so keys can be taken out of them), that
/// believes `X-Forwarded-For` from 127.0.0.1; `configure` applied last.
async fn spawn_with(backend: &Backend, mode: Mode, configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend.clone(), |config| {
        mode.configure(config);
        crate::support::mail::frontend_links(config);
        config.server.trusted_proxies = vec![LOCALHOST.parse::<std::net::IpAddr>().unwrap().into()];
        configure(config);
    })
    .await
}

/// A device whose user agent and client address (through the trusted proxy) can be searched
/// for in what the app stored.
fn new_device<'a>(app: &'a TestApp, mode: Mode, user_agent: &str, ip: &str) -> Device<'a> {
    Device::new(app, mode)
        .user_agent(user_agent)
        .forwarded_for(ip)
}

/// What a device does to leave, and to have something to leave with.
impl Device<'_> {
    async fn export(&mut self) -> Reply {
        self.get("user/export/").await
    }

    async fn delete_account(&mut self) -> Reply {
        self.delete("user/").await
    }

    /// Signs up with a chosen username, which logs this device in.
    async fn register_with_username(&mut self, email: &str, username: &str) {
        let mut body = signup_body(email, PASSWORD);
        body["username"] = json!(username);
        let reply = self.post("registration/", body).await;
        self.adopt(&reply, 201);
    }

    /// Sets the user's first and last names.
    async fn name(&mut self, first: &str, last: &str) {
        let reply = self
            .send(
                Method::PATCH,
                "user/",
                Some(json!({"first_name": first, "last_name": last})),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    /// Switches TOTP on: the activation's answer (secret, activation token, QR data), the
    /// authenticator app and the recovery codes.
    async fn activate_mfa(&mut self) -> (Value, Authenticator, Vec<String>) {
        let setup = self.get("mfa/totp/activate/").await;
        assert_eq!(setup.status, 200, "{}", setup.text);
        let authenticator = Authenticator::new(&string(&setup.body["secret"]));
        let reply = self
            .post(
                "mfa/totp/activate/",
                json!({"activation_token": setup.body["activation_token"], "code": authenticator.current()}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let codes = strings(&reply.body["recovery_codes"]);
        assert_eq!(codes.len(), 10, "{}", reply.text);
        (setup.body, authenticator, codes)
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

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn datetime(value: &Value) -> DateTime<Utc> {
    let text = string(value);
    DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|err| panic!("an RFC 3339 datetime: {text}: {err}"))
        .with_timezone(&Utc)
}

/// `at` is within a minute before now (1 ms of slack for the database's precision).
fn assert_recent(at: DateTime<Utc>) {
    let age = Utc::now() - at;
    assert!(
        age >= Duration::seconds(-1) && age < Duration::seconds(60),
        "{at}"
    );
}

/// The same instant, give or take the database's precision (a microsecond).
fn assert_same_instant(exported: &Value, stored: DateTime<Utc>) {
    let exported = datetime(exported);
    assert!(
        (exported - stored).abs() <= Duration::microseconds(1),
        "exported {exported}, stored {stored}"
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

/// The answer to a request without a credential in `mode`.
fn assert_not_logged_in(mode: Mode, reply: &Reply) {
    let status = match mode {
        Mode::Session => 403,
        Mode::Token | Mode::Jwt => 401,
    };
    assert_detail(reply, status, NOT_PROVIDED);
}

/// `device` still works: `user/` answers with the user; a JWT refresh token is still live.
async fn assert_accepted(device: &Device<'_>, email: &str) {
    let mut device = device.clone();
    let me = device.me().await;
    assert_eq!(me.status, 200, "{:?}: {}", device.mode, me.text);
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

/// `device`'s credential no longer works, in the words of its mode: a token is invalid, a
/// session is no login, a JWT's access token is invalid and its refresh token blacklisted
/// (`token/verify/` and `token/refresh/`).
async fn assert_refused(device: &Device<'_>) {
    let mut device = device.clone();
    let me = device.me().await;
    match device.mode {
        Mode::Session => assert_detail(&me, 403, NOT_PROVIDED),
        Mode::Token => {
            assert_detail(&me, 401, INVALID_TOKEN);
            assert_eq!(me.header("www-authenticate"), Some("Token"));
        }
        Mode::Jwt => {
            assert_eq!(me.status, 401, "{}", me.text);
            assert_eq!(me.body["code"], "token_not_valid", "{}", me.text);
            assert_eq!(
                me.body["messages"][0]["message"], JWT_INVALID,
                "{}",
                me.text
            );
            let refresh = device.refresh.clone().expect("a refresh token");
            let verify = device
                .post("token/verify/", json!({"token": refresh}))
                .await;
            assert_detail_code(&verify, BLACKLISTED);
            let refreshed = device
                .post("token/refresh/", json!({"refresh": refresh}))
                .await;
            assert_detail_code(&refreshed, BLACKLISTED);
        }
    }
    // Nor does it reach what a login reaches.
    let export = device.export().await;
    assert!(
        export.status == 401 || export.status == 403,
        "{}",
        export.text
    );
}

/// SimpleJWT's refusal on `token/verify/` and `token/refresh/`.
fn assert_detail_code(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": message, "code": "token_not_valid"}),
        "{}",
        reply.text
    );
}

/// `login/` refuses the address and the password (from a new device of the mode).
async fn assert_login_fails(app: &TestApp, mode: Mode, email: &str) {
    let mut device = new_device(app, mode, PHONE, PHONE_IP);
    let reply = device
        .post("login/", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"non_field_errors": [BAD_CREDENTIALS]}),
        "{}",
        reply.text
    );
}

/// The text holds none of `secrets`.
fn assert_no_secret(text: &str, secrets: &[String]) {
    assert!(secrets.len() > 20, "something to look for: {secrets:?}");
    for secret in secrets {
        assert!(
            secret.len() >= 6,
            "a secret worth searching for: {secret:?}"
        );
        assert!(
            !text.contains(secret.as_str()),
            "the export shows a secret ({secret}): {text}"
        );
    }
}

/// Once every message in the outbox is marked sent: what the `file` backend wrote.
async fn all_delivered(app: &TestApp) -> Vec<ReceivedMail> {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        if rows.iter().all(|row| row.sent_at.is_some()) {
            let mail = app.sent_mail();
            assert_eq!(mail.len(), rows.len(), "one file per sent message");
            return mail;
        }
        assert!(Instant::now() < deadline, "undelivered mail: {rows:?}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// The messages delivered to `to`, oldest first.
fn mail_to(mail: &[ReceivedMail], to: &str) -> Vec<ReceivedMail> {
    mail.iter()
        .filter(|message| message.to == [to.to_owned()])
        .cloned()
        .collect()
}

/// Waits until the goodbye mail is delivered and its outbox row gone; the goodbye messages
/// the `file` backend wrote.
async fn goodbye_delivered(app: &TestApp) -> Vec<ReceivedMail> {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        let goodbyes: Vec<ReceivedMail> = app
            .sent_mail()
            .into_iter()
            .filter(|message| message.subject == GOODBYE_SUBJECT)
            .collect();
        if !goodbyes.is_empty() && rows.iter().all(|row| row.kind != "account_deleted") {
            return goodbyes;
        }
        assert!(
            Instant::now() < deadline,
            "the goodbye is not delivered and gone from the outbox: {rows:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// Queues a message to `recipient` that is due only tomorrow (mail that is still pending
/// when the account is deleted). Its id.
async fn hold_back_mail_to(app: &TestApp, recipient: &str) -> i64 {
    let now = Utc::now();
    let row = outbox_message::ActiveModel {
        kind: Set("password_reset".to_owned()),
        recipient: Set(recipient.to_owned()),
        subject: Set("Held back".to_owned()),
        text_body: Set(format!("Still to be sent to {recipient}")),
        html_body: Set(format!("<p>Still to be sent to {recipient}</p>")),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now + Duration::days(1)),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    row.id
}

/// Every audit row of the user, oldest first.
async fn audit_rows(db: &DatabaseConnection, user: entity::UserId) -> Vec<audit_event::Model> {
    audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user))
        .order_by_asc(audit_event::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// The key of the newest confirmation mail to `to`.
fn confirmation_key(mail: &[ReceivedMail], to: &str) -> String {
    let message = mail_to(mail, to)
        .into_iter()
        .rev()
        .find(|message| {
            message
                .first_link()
                .is_some_and(|link| link.starts_with(VERIFY_PREFIX))
        })
        .unwrap_or_else(|| panic!("a confirmation mail to {to}"));
    key_from(&message.link(VERIFY_PREFIX), VERIFY_PREFIX)
}

/// `(uid, token)` of the newest reset mail to `to`.
fn reset_link_of(mail: &[ReceivedMail], to: &str) -> (String, String) {
    let message = mail_to(mail, to)
        .into_iter()
        .rev()
        .find(|message| {
            message
                .first_link()
                .is_some_and(|link| link.starts_with(RESET_PREFIX))
        })
        .unwrap_or_else(|| panic!("a reset mail to {to}"));
    uid_and_token(&message.link(RESET_PREFIX), RESET_PREFIX)
}

// ---------------------------------------------------------------------------------------------
// Every row of every table
// ---------------------------------------------------------------------------------------------

/// The tables of the database, as the database lists them.
async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        _ => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             ORDER BY table_name"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let tables: Vec<String> = rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    for expected in [
        "users",
        "audit_events",
        "outbox",
        "email_addresses",
        "sessions",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} in {tables:?}"
        );
    }
    tables
}

/// The columns of `table`.
async fn columns(db: &DatabaseConnection, table: &str) -> Vec<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        _ => format!(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' \
             ORDER BY ordinal_position"
        ),
    };
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Every row of every table, each as one line of text: `(table, row)`.
async fn every_row(db: &DatabaseConnection) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let mut all = Vec::new();
    for table in tables(db).await {
        let sql = match backend {
            // SQLite has no row-to-text: each column quoted as an SQL literal (a blob in hex).
            DbBackend::Sqlite => {
                let quoted: Vec<String> = columns(db, &table)
                    .await
                    .iter()
                    .map(|column| format!("quote(\"{column}\")"))
                    .collect();
                format!("SELECT {} FROM \"{table}\"", quoted.join(" || ',' || "))
            }
            _ => format!("SELECT CAST(t AS text) FROM \"{table}\" AS t"),
        };
        let rows = db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap();
        for row in rows {
            all.push((table.clone(), row.try_get_by_index::<String>(0).unwrap()));
        }
    }
    assert!(!all.is_empty());
    all
}

/// The rows (as `(table, text)`) in which any of `needles` appears, whatever its case.
async fn rows_naming(db: &DatabaseConnection, needles: &[&str]) -> Vec<(String, String)> {
    every_row(db)
        .await
        .into_iter()
        .filter(|(_, text)| {
            let text = text.to_lowercase();
            needles
                .iter()
                .any(|needle| text.contains(&needle.to_lowercase()))
        })
        .collect()
}

/// How many rows of each table with a `user_id` column have this user id, for the tables
/// where there are any.
async fn rows_with_user_id(db: &DatabaseConnection, user: entity::UserId) -> Vec<(String, i64)> {
    let backend = db.get_database_backend();
    let mut found = Vec::new();
    for table in tables(db).await {
        if !columns(db, &table).await.iter().any(|c| c == "user_id") {
            continue;
        }
        let sql = format!(
            "SELECT COUNT(*) FROM \"{table}\" WHERE user_id = {}",
            user.0
        );
        let row = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
            .unwrap();
        let count = row.try_get_by_index::<i64>(0).unwrap();
        if count > 0 {
            found.push((table, count));
        }
    }
    found
}

/// What names Ada: her addresses, username, names, and her devices' client addresses and
/// user agents.
const NAMING_ADA: [&str; 9] = [
    EMAIL,
    SECOND_EMAIL,
    USERNAME,
    FIRST_NAME,
    LAST_NAME,
    PHONE,
    PHONE_IP,
    LAPTOP,
    LAPTOP_IP,
];

// ---------------------------------------------------------------------------------------------
// A user with everything: two addresses, two devices, names, MFA
// ---------------------------------------------------------------------------------------------

/// Ada with everything Tessera can hold about a user, and Bob beside her.
struct Setup<'a> {
    phone: Device<'a>,
    laptop: Device<'a>,
    bob: Device<'a>,
    /// The TOTP set-up's answer, the app holding the secret, the recovery codes.
    totp_setup: Value,
    authenticator: Authenticator,
    recovery_codes: Vec<String>,
    /// Keys and tokens the app mailed to Ada (confirmations of both addresses, a reset).
    mailed_secrets: Vec<String>,
}

/// Bob signs up; Ada signs up on her phone with a username, names herself, logs in on her
/// laptop, adds a second address and confirms it, switches MFA on, and asks for a password
/// reset; every message is delivered. With `second_primary`, the second address becomes the
/// primary one first (the reset then goes to it).
async fn set_up(app: &TestApp, mode: Mode, second_primary: bool) -> Setup<'_> {
    let mut bob = new_device(app, mode, BOB, BOB_IP);
    bob.register(BOB_EMAIL).await;
    let mut phone = new_device(app, mode, PHONE, PHONE_IP);
    phone.register_with_username(EMAIL, USERNAME).await;
    phone.name(FIRST_NAME, LAST_NAME).await;
    let mut laptop = new_device(app, mode, LAPTOP, LAPTOP_IP);
    laptop.log_in(EMAIL).await;

    let added = phone.post("emails/", json!({"email": SECOND_EMAIL})).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let mail = all_delivered(app).await;
    let first_key = confirmation_key(&mail, EMAIL);
    let second_key = confirmation_key(&mail, SECOND_EMAIL);
    let verified = phone
        .post("registration/verify-email/", json!({"key": second_key}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    let primary = match second_primary {
        true => {
            let reply = phone
                .post("emails/primary/", json!({"email": SECOND_EMAIL}))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            SECOND_EMAIL
        }
        false => EMAIL,
    };

    let (totp_setup, authenticator, recovery_codes) = phone.activate_mfa().await;
    let reset = phone
        .post("password/reset/", json!({"email": primary}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let mail = all_delivered(app).await;
    let (_, reset_token) = reset_link_of(&mail, primary);
    let mut mailed_secrets = vec![first_key, second_key, reset_token];
    let digests: Vec<String> = mailed_secrets.iter().map(|s| sha256_hex(s)).collect();
    mailed_secrets.extend(digests);
    Setup {
        phone,
        laptop,
        bob,
        totp_setup,
        authenticator,
        recovery_codes,
        mailed_secrets,
    }
}

/// Every secret of the user that the test or the database knows: what the devices hold and
/// its digests, the password and its stored hash, the TOTP secret (as handed out, in hex, and
/// as stored), the activation token and QR data, the recovery codes, the mailed keys and
/// their digests, and every digest or `jti` stored for the user's credentials.
async fn known_secrets(
    app: &TestApp,
    email: &str,
    setup: &Setup<'_>,
    devices: &[&Device<'_>],
) -> Vec<String> {
    let mut secrets: Vec<String> = devices.iter().flat_map(|d| d.secrets()).collect();
    secrets.push(PASSWORD.to_owned());
    let stored = app.stored_user(email).await;
    let hash = stored.password_hash.clone();
    assert!(hash.starts_with("$argon2"), "{hash}");
    secrets.extend(
        hash.split('$')
            .filter(|part| part.len() >= 16)
            .map(str::to_owned),
    );
    secrets.push(hash);
    let totp = string(&setup.totp_setup["secret"]);
    secrets.push(totp.to_uppercase());
    secrets.push(totp.to_lowercase());
    secrets.push(hex::encode(&setup.authenticator.secret));
    secrets.push(string(&setup.totp_setup["activation_token"]));
    secrets.push(string(&setup.totp_setup["qr_code_data_uri"]));
    for code in &setup.recovery_codes {
        secrets.push(code.clone());
        secrets.push(code.replace('-', ""));
    }
    secrets.extend(setup.mailed_secrets.iter().cloned());
    let db = &app.db;
    let user = stored.id;
    for row in mfa_authenticator::Entity::find()
        .filter(mfa_authenticator::Column::UserId.eq(user))
        .all(db)
        .await
        .unwrap()
    {
        secrets.push(row.secret);
    }
    for row in auth_token::Entity::find()
        .filter(auth_token::Column::UserId.eq(user))
        .all(db)
        .await
        .unwrap()
    {
        secrets.push(row.digest);
    }
    for row in session::Entity::find()
        .filter(session::Column::UserId.eq(user))
        .all(db)
        .await
        .unwrap()
    {
        secrets.push(row.digest);
    }
    for row in entity::password_reset_token::Entity::find()
        .filter(entity::password_reset_token::Column::UserId.eq(user))
        .all(db)
        .await
        .unwrap()
    {
        secrets.push(row.digest);
    }
    for row in entity::email_confirmation::Entity::find()
        .all(db)
        .await
        .unwrap()
    {
        secrets.push(row.key_digest);
    }
    let families: Vec<entity::FamilyId> = refresh_token_family::Entity::find()
        .filter(refresh_token_family::Column::UserId.eq(user))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|family| family.id)
        .collect();
    for row in refresh_token::Entity::find()
        .filter(refresh_token::Column::FamilyId.is_in(families))
        .all(db)
        .await
        .unwrap()
    {
        secrets.push(row.jti);
    }
    secrets
}

// ---------------------------------------------------------------------------------------------
// The export
// ---------------------------------------------------------------------------------------------

/// `GET user/export/` answers 200 with a JSON file (`Content-Disposition: attachment` with a
/// file name) of exactly the documented sections, each holding what the other endpoints and
/// the database say: the profile, the addresses as `emails/` lists them, the live sessions
/// as `sessions/` lists them (Ada's only), the MFA status, and Ada's audit trail with its
/// addresses and user agents. It holds no secret: no credential, cookie, refresh token or
/// their digests, no password or hash, no TOTP secret, activation token or recovery code, no
/// mailed key or token. Once the proof of the password is old it answers 403 until
/// `reauthenticate/` (with a recovery code, as Ada has MFA). Bob's export is his own, with
/// MFA off.
async fn the_export_holds_the_account_and_no_secret(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let setup = set_up(&app, mode, false).await;
    let mut phone = setup.phone.clone();
    let user = app.stored_user(EMAIL).await;

    let emails = phone.get("emails/").await;
    assert_eq!(emails.status, 200, "{}", emails.text);
    let listed = phone.get("sessions/").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let status = phone.get("mfa/status/").await;
    assert_eq!(status.status, 200, "{}", status.text);

    let export = phone.export().await;
    assert_eq!(export.status, 200, "{:?}: {}", mode, export.text);
    assert!(
        export
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        export.headers
    );
    let disposition = export
        .header("content-disposition")
        .unwrap_or_else(|| panic!("a Content-Disposition: {:?}", export.headers));
    let file = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("an attachment with a file name: {disposition}"));
    assert!(
        file.ends_with(".json") && file.len() > ".json".len(),
        "{disposition}"
    );
    assert!(
        file.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "a plain file name: {disposition}"
    );
    assert!(
        export
            .header("cache-control")
            .is_some_and(|c| c.contains("no-store")),
        "{:?}",
        export.headers
    );
    let body = &export.body;
    assert_eq!(keys(body), set(&EXPORT_FIELDS), "{}", export.text);
    assert_recent(datetime(&body["exported_at"]));

    // The profile, as stored.
    let profile = &body["profile"];
    assert_eq!(keys(profile), set(&PROFILE_FIELDS), "{profile}");
    assert_eq!(profile["pk"], json!(user.id.0));
    assert_eq!(profile["username"], USERNAME);
    assert_eq!(profile["email"], EMAIL);
    assert_eq!(profile["first_name"], FIRST_NAME);
    assert_eq!(profile["last_name"], LAST_NAME);
    assert_eq!(profile["is_active"], json!(true));
    assert_eq!(profile["is_staff"], json!(false));
    assert_eq!(profile["is_superuser"], json!(false));
    assert_same_instant(&profile["date_joined"], user.date_joined);
    assert_same_instant(&profile["last_login"], user.last_login.expect("a login"));
    assert!(
        file.contains(&user.id.0.to_string()),
        "the file name is the account's: {disposition}"
    );

    // The addresses and the MFA status, as their endpoints answer them.
    assert_eq!(body["email_addresses"], emails.body);
    assert_eq!(
        body["email_addresses"],
        json!([
            {"email": EMAIL, "verified": false, "primary": true},
            {"email": SECOND_EMAIL, "verified": true, "primary": false},
        ]),
        "{}",
        export.text
    );
    assert_eq!(body["mfa"], status.body);
    assert_eq!(body["mfa"]["mfa_enabled"], json!(true), "{}", export.text);
    assert_recent(datetime(&body["mfa"]["created_at"]));

    // The live sessions: Ada's two devices, as `sessions/` lists them (the last use aside,
    // which the listing itself may have recorded), the phone's marked current.
    let without_last_use = |entries: &Value| -> Vec<Value> {
        entries
            .as_array()
            .unwrap_or_else(|| panic!("an array: {entries}"))
            .iter()
            .map(|entry| {
                let mut entry = entry.clone();
                entry.as_object_mut().unwrap().remove("last_used_at");
                entry
            })
            .collect()
    };
    assert_eq!(
        without_last_use(&body["sessions"]),
        without_last_use(&listed.body)
    );
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{}", export.text);
    let agents: BTreeSet<String> = sessions.iter().map(|s| string(&s["user_agent"])).collect();
    assert_eq!(agents, set(&[PHONE, LAPTOP]), "{}", export.text);
    for entry in sessions {
        assert_eq!(entry["kind"], mode.kind(), "{entry}");
        let (ip, current) = match entry["user_agent"] == PHONE {
            true => (PHONE_IP, true),
            false => (LAPTOP_IP, false),
        };
        assert_eq!(entry["ip"], ip, "{entry}");
        assert_eq!(entry["current"], json!(current), "{entry}");
    }

    // The audit trail: every row of Ada's, oldest first, with where it came from.
    let stored = audit_rows(&app.db, user.id).await;
    let events = body["audit_events"].as_array().unwrap();
    assert_eq!(events.len(), stored.len(), "{}", export.text);
    for (event, row) in events.iter().zip(&stored) {
        assert_eq!(keys(event), set(&EVENT_FIELDS), "{event}");
        assert_same_instant(&event["created_at"], row.created_at);
        assert_eq!(event["event"], row.event, "{event}");
        assert_eq!(event["outcome"], row.outcome, "{event}");
        assert_eq!(event["reason"], json!(row.reason), "{event}");
        assert_eq!(event["ip"], json!(row.ip), "{event}");
        assert_eq!(event["user_agent"], json!(row.user_agent), "{event}");
        assert_eq!(event["request_id"], json!(row.request_id), "{event}");
    }
    let named: Vec<String> = events.iter().map(|e| string(&e["event"])).collect();
    for expected in ["registration", "login", "email_added", "mfa_activation"] {
        assert!(
            named.iter().any(|e| e == expected),
            "{expected} in {named:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["ip"] == PHONE_IP && e["user_agent"] == PHONE),
        "{}",
        export.text
    );
    assert!(
        events
            .iter()
            .any(|e| e["ip"] == LAPTOP_IP && e["user_agent"] == LAPTOP),
        "{}",
        export.text
    );

    // Nothing of Bob's.
    for bobs in [BOB_EMAIL, BOB, BOB_IP] {
        assert!(!export.text.contains(bobs), "{bobs} in {}", export.text);
    }

    // No secret.
    let secrets = known_secrets(&app, EMAIL, &setup, &[&setup.phone, &setup.laptop]).await;
    assert_no_secret(&export.text, &secrets);

    // The guard: an old proof of the password is refused until `reauthenticate/`.
    phone.age().await;
    assert_reauthentication_required(&phone.export().await);
    let reauthenticated = phone
        .post(
            "reauthenticate/",
            json!({"password": PASSWORD, "code": setup.recovery_codes[0]}),
        )
        .await;
    assert_eq!(reauthenticated.status, 200, "{}", reauthenticated.text);
    let again = phone.export().await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["profile"], body["profile"]);
    let named_again: Vec<String> = again.body["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| string(&e["event"]))
        .collect();
    assert!(
        named_again.contains(&"reauthentication".to_owned()),
        "{named_again:?}"
    );
    assert_no_secret(&again.text, &secrets);

    // Bob's export is his own: his profile, no MFA, his one session.
    let mut bob = setup.bob.clone();
    let bobs = bob.export().await;
    assert_eq!(bobs.status, 200, "{}", bobs.text);
    assert_eq!(bobs.body["profile"]["email"], BOB_EMAIL);
    assert_eq!(
        bobs.body["mfa"],
        json!({"mfa_enabled": false, "created_at": null, "last_used_at": null})
    );
    assert_eq!(bobs.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(bobs.body["sessions"][0]["user_agent"], BOB);
    for adas in NAMING_ADA {
        assert!(!bobs.text.contains(adas), "{adas} in {}", bobs.text);
    }
}

// ---------------------------------------------------------------------------------------------
// Deletion
// ---------------------------------------------------------------------------------------------

/// `DELETE user/` (`account.deletion = "delete"`) answers 204. Once the goodbye mail is
/// delivered (to the primary address, which is no longer the first one) and gone from the
/// outbox, no row of any table names Ada: not her addresses, username, names, client
/// addresses or user agents; her user id remains only in the audit trail (one
/// `account_deleted` entry without address or user agent, and her older entries, stripped of
/// theirs) and the revocation log. Mail still waiting for her addresses is gone; Bob's is
/// not. Her credentials are refused, her password and reset link no longer work, and her
/// address and username can sign up again. Bob is untouched.
async fn deletion_leaves_no_row_that_names_the_user(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let setup = set_up(&app, mode, true).await;
    let mut phone = setup.phone.clone();
    let user = app.stored_user(SECOND_EMAIL).await;
    assert_eq!(user.username, USERNAME);

    // Mail waiting to go out when she leaves: to each of her addresses, and to Bob.
    let held_back_first = hold_back_mail_to(&app, EMAIL).await;
    let held_back_second = hold_back_mail_to(&app, SECOND_EMAIL).await;
    let held_back_bob = hold_back_mail_to(&app, BOB_EMAIL).await;
    let mail_before = app.sent_mail().len();
    let (reset_uid, reset_token) = reset_link_of(&app.sent_mail(), SECOND_EMAIL);
    let audit_before = audit_rows(&app.db, user.id).await;
    assert!(audit_before.len() >= 4, "{audit_before:?}");
    assert!(
        audit_before
            .iter()
            .all(|row| row.ip.is_some() && row.user_agent.is_some()),
        "{audit_before:?}"
    );
    let bob_audit_before = audit_rows(&app.db, app.stored_user(BOB_EMAIL).await.id).await;

    assert_no_content(&phone.delete_account().await);

    // The goodbye: one message, to the primary address, naming it.
    let goodbyes = goodbye_delivered(&app).await;
    assert_eq!(goodbyes.len(), 1, "{goodbyes:?}");
    assert_eq!(goodbyes[0].to, [SECOND_EMAIL.to_owned()]);
    assert!(
        goodbyes[0].text.contains(SECOND_EMAIL),
        "{}",
        goodbyes[0].text
    );
    assert_eq!(
        app.sent_mail().len(),
        mail_before + 1,
        "nothing but the goodbye went out"
    );

    // No row names her.
    let naming = rows_naming(&app.db, &NAMING_ADA).await;
    assert!(
        naming.is_empty(),
        "rows that name the deleted user: {naming:#?}"
    );
    assert!(
        user::Entity::find_by_id(user.id)
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    let with_id: Vec<String> = rows_with_user_id(&app.db, user.id)
        .await
        .into_iter()
        .map(|(table, _)| table)
        .collect();
    assert!(
        with_id
            .iter()
            .all(|table| table == "audit_events" || table == "credential_revocations"),
        "rows tied to the deleted user: {with_id:?}"
    );

    // The audit trail: her older entries kept, without address or user agent, and one more.
    let audit_after = audit_rows(&app.db, user.id).await;
    assert_eq!(audit_after.len(), audit_before.len() + 1, "{audit_after:?}");
    for (before, after) in audit_before.iter().zip(&audit_after) {
        assert_eq!(
            (before.id, &before.event, &before.outcome, &before.reason),
            (after.id, &after.event, &after.outcome, &after.reason)
        );
        assert_eq!((&after.ip, &after.user_agent), (&None, &None), "{after:?}");
    }
    let deleted = audit_after.last().unwrap();
    assert_eq!(
        (
            deleted.event.as_str(),
            deleted.outcome.as_str(),
            deleted.reason.as_deref(),
            deleted.user_id,
            deleted.ip.as_deref(),
            deleted.user_agent.as_deref(),
        ),
        (
            "account_deleted",
            "success",
            Some("deleted"),
            Some(user.id),
            None,
            None
        )
    );
    let account_deleted = audit_event::Entity::find()
        .filter(audit_event::Column::Event.eq("account_deleted"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(account_deleted.len(), 1, "{account_deleted:?}");

    // Her waiting mail is gone, Bob's is still waiting.
    let outbox = app.outbox_rows().await;
    let ids: Vec<i64> = outbox.iter().map(|row| row.id).collect();
    assert!(!ids.contains(&held_back_first), "{outbox:?}");
    assert!(!ids.contains(&held_back_second), "{outbox:?}");
    let bobs = outbox
        .iter()
        .find(|row| row.id == held_back_bob)
        .expect("Bob's waiting mail is kept");
    assert!(bobs.sent_at.is_none());
    assert!(
        outbox
            .iter()
            .all(|row| row.recipient != EMAIL && row.recipient != SECOND_EMAIL),
        "{outbox:?}"
    );

    // Bob is untouched: his credential, his address, his trail with its addresses.
    assert_accepted(&setup.bob, BOB_EMAIL).await;
    let bob = app.stored_user(BOB_EMAIL).await;
    assert_eq!(audit_rows(&app.db, bob.id).await, bob_audit_before);
    assert!(
        bob_audit_before
            .iter()
            .all(|row| row.ip.as_deref() == Some(BOB_IP) && row.user_agent.as_deref() == Some(BOB)),
        "{bob_audit_before:?}"
    );
    let bobs_addresses = email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(bob.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(bobs_addresses.len(), 1);
    let mut bob_device = setup.bob.clone();
    let bob_sessions = bob_device.get("sessions/").await;
    assert_eq!(
        bob_sessions.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        bob_sessions.text
    );

    // Ada's credentials, password and reset link no longer work.
    assert_refused(&setup.phone).await;
    assert_refused(&setup.laptop).await;
    assert_login_fails(&app, mode, EMAIL).await;
    assert_login_fails(&app, mode, SECOND_EMAIL).await;
    let new_password = "a brand new passphrase 42";
    let confirm = new_device(&app, mode, PHONE, PHONE_IP)
        .post(
            "password/reset/confirm/",
            json!({
                "uid": reset_uid, "token": reset_token,
                "new_password1": new_password, "new_password2": new_password,
            }),
        )
        .await;
    assert_eq!(
        confirm.status, 400,
        "the reset link is dead: {}",
        confirm.text
    );

    // Her addresses and username are free again.
    let mut again = new_device(&app, mode, PHONE, PHONE_IP);
    again.register_with_username(EMAIL, USERNAME).await;
    assert_accepted(&again, EMAIL).await;
    let reborn = app.stored_user(EMAIL).await;
    assert_ne!(reborn.id, user.id);
    assert_eq!(reborn.first_name, "");
    let mut other = new_device(&app, mode, LAPTOP, LAPTOP_IP);
    other.register(SECOND_EMAIL).await;
    assert_accepted(&other, SECOND_EMAIL).await;
}

// ---------------------------------------------------------------------------------------------
// Deactivation
// ---------------------------------------------------------------------------------------------

/// With `account.deletion = "deactivate"`, `DELETE user/` answers 204 and keeps the row,
/// inactive, its username and address replaced by `deleted-<id>` forms, its names empty, its
/// password unusable; its addresses, MFA data and credentials (JWT families too) are gone,
/// so every credential is refused and neither the old address nor the new one logs in. The
/// goodbye goes to the primary address; the trail keeps one `account_deleted` (reason
/// `deactivated`) entry and loses the addresses and user agents of the older ones; no row
/// names her. Her addresses and username can sign up again; Bob is untouched.
async fn deactivation_empties_the_account(backend: Backend, mode: Mode) {
    let app = spawn_with(&backend, mode, |config| {
        config.account.deletion = AccountDeletion::Deactivate;
    })
    .await;
    let setup = set_up(&app, mode, false).await;
    let mut phone = setup.phone.clone();
    let user = app.stored_user(EMAIL).await;
    let audit_before = audit_rows(&app.db, user.id).await;

    assert_no_content(&phone.delete_account().await);
    let goodbyes = goodbye_delivered(&app).await;
    assert_eq!(goodbyes.len(), 1, "{goodbyes:?}");
    assert_eq!(goodbyes[0].to, [EMAIL.to_owned()]);

    // The row stays, emptied and switched off.
    let kept = user::Entity::find_by_id(user.id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("the row is kept");
    let id = user.id.0;
    assert_eq!(kept.username, format!("deleted-{id}"));
    assert_eq!(kept.email, format!("deleted-{id}@deleted.invalid"));
    assert_eq!(
        (kept.first_name.as_str(), kept.last_name.as_str()),
        ("", "")
    );
    assert!(!kept.is_active);
    assert_eq!(kept.last_login, None);
    assert_ne!(kept.password_hash, user.password_hash);
    assert!(!app.password_is(&kept.email, PASSWORD).await);
    assert_eq!(kept.date_joined, user.date_joined);

    // Addresses, MFA data and credentials are gone; JWT families are revoked.
    let db = &app.db;
    let addresses = email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(user.id))
        .all(db)
        .await
        .unwrap();
    assert!(addresses.is_empty(), "{addresses:?}");
    let authenticators = mfa_authenticator::Entity::find()
        .filter(mfa_authenticator::Column::UserId.eq(user.id))
        .all(db)
        .await
        .unwrap();
    assert!(authenticators.is_empty());
    let tokens = auth_token::Entity::find()
        .filter(auth_token::Column::UserId.eq(user.id))
        .all(db)
        .await
        .unwrap();
    assert!(tokens.is_empty());
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(user.id))
        .all(db)
        .await
        .unwrap();
    assert!(sessions.is_empty());
    let families = refresh_token_family::Entity::find()
        .filter(refresh_token_family::Column::UserId.eq(user.id))
        .all(db)
        .await
        .unwrap();
    assert!(families.is_empty(), "{families:?}");
    let resets = entity::password_reset_token::Entity::find()
        .filter(entity::password_reset_token::Column::UserId.eq(user.id))
        .all(db)
        .await
        .unwrap();
    assert!(resets.is_empty());

    // The trail.
    let audit_after = audit_rows(db, user.id).await;
    assert_eq!(audit_after.len(), audit_before.len() + 1);
    assert!(
        audit_after
            .iter()
            .all(|row| row.ip.is_none() && row.user_agent.is_none()),
        "{audit_after:?}"
    );
    let last = audit_after.last().unwrap();
    assert_eq!(
        (
            last.event.as_str(),
            last.outcome.as_str(),
            last.reason.as_deref()
        ),
        ("account_deleted", "success", Some("deactivated"))
    );

    // No row names her (the kept row included).
    let naming = rows_naming(db, &NAMING_ADA).await;
    assert!(
        naming.is_empty(),
        "rows that name the deactivated user: {naming:#?}"
    );

    // Nothing works for her any more.
    assert_refused(&setup.phone).await;
    assert_refused(&setup.laptop).await;
    assert_login_fails(&app, mode, EMAIL).await;
    assert_login_fails(&app, mode, SECOND_EMAIL).await;
    assert_login_fails(&app, mode, &kept.email).await;

    // Bob is untouched.
    assert_accepted(&setup.bob, BOB_EMAIL).await;

    // Her addresses and username are free again.
    let mut again = new_device(&app, mode, PHONE, PHONE_IP);
    again.register_with_username(EMAIL, USERNAME).await;
    assert_accepted(&again, EMAIL).await;
    assert_ne!(app.stored_user(EMAIL).await.id, user.id);
    let mut other = new_device(&app, mode, LAPTOP, LAPTOP_IP);
    other.register(SECOND_EMAIL).await;
    assert_accepted(&other, SECOND_EMAIL).await;
}

// ---------------------------------------------------------------------------------------------
// The guard, anonymous requests, `account.deletion = "disabled"`
// ---------------------------------------------------------------------------------------------

/// Once the credential's proof of the password is older than
/// `account.reauthentication_timeout`, the export and the deletion answer 403
/// `reauthentication_required` and nothing changes (no goodbye, no audit entry, the
/// credential still works); after `reauthenticate/` both go through.
async fn the_guard_protects_export_and_deletion(backend: Backend, mode: Mode) {
    let app = spawn(&backend, mode).await;
    let mut phone = new_device(&app, mode, PHONE, PHONE_IP);
    phone.register(EMAIL).await;
    let user = app.stored_user(EMAIL).await;
    all_delivered(&app).await;

    phone.age().await;
    assert_reauthentication_required(&phone.export().await);
    assert_reauthentication_required(&phone.delete_account().await);
    assert_accepted(&phone, EMAIL).await;
    assert_eq!(app.stored_user(EMAIL).await, user);
    assert!(
        app.outbox_rows()
            .await
            .iter()
            .all(|row| row.kind != "account_deleted")
    );
    assert!(
        audit_rows(&app.db, user.id)
            .await
            .iter()
            .all(|row| row.event != "account_deleted" && row.ip.is_some())
    );

    let reauthenticated = phone
        .post("reauthenticate/", json!({"password": PASSWORD}))
        .await;
    assert_eq!(reauthenticated.status, 200, "{}", reauthenticated.text);
    let export = phone.export().await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_no_content(&phone.delete_account().await);
    assert_refused(&phone).await;
    goodbye_delivered(&app).await;
}

/// Without a credential both answer as every authenticated endpoint does in the mode.
async fn anonymous_requests_are_refused_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(&backend, mode).await;
        let mut anonymous = new_device(&app, mode, PHONE, PHONE_IP);
        assert_not_logged_in(mode, &anonymous.export().await);
        assert_not_logged_in(mode, &anonymous.delete_account().await);
    }
}

/// With `account.deletion = "disabled"`, `DELETE user/` answers 405 with DRF's message and an
/// `Allow` header without DELETE, even for a credential whose proof of the password is old;
/// nothing changes, and the export still works.
async fn disabled_deletion_answers_405_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn_with(&backend, mode, |config| {
            config.account.deletion = AccountDeletion::Disabled;
        })
        .await;
        let mut phone = new_device(&app, mode, PHONE, PHONE_IP);
        phone.register(EMAIL).await;
        let user = app.stored_user(EMAIL).await;

        for aged in [false, true] {
            if aged {
                phone.age().await;
            }
            let refused = phone.delete_account().await;
            assert_detail(&refused, 405, "Method \"DELETE\" not allowed.");
            let allow: BTreeSet<String> = refused
                .header("allow")
                .unwrap_or_else(|| panic!("an Allow header: {refused:?}"))
                .split(',')
                .map(|method| method.trim().to_owned())
                .collect();
            assert!(!allow.contains("DELETE"), "{allow:?}");
            for method in ["GET", "PUT", "PATCH"] {
                assert!(allow.contains(method), "{method} in {allow:?}");
            }
        }
        // Nor does the 405 of another method on user/ offer DELETE.
        let post = phone.post("user/", json!({})).await;
        assert_eq!(post.status, 405, "{post:?}");
        let allow = post.header("allow").unwrap_or_default();
        assert!(!allow.contains("DELETE"), "{allow}");
        assert!(allow.contains("PATCH"), "{allow}");
        assert_accepted(&phone, EMAIL).await;
        let stored = app.stored_user(EMAIL).await;
        assert_eq!(stored.id, user.id);
        assert!(stored.is_active);
        assert!(
            audit_rows(&app.db, user.id)
                .await
                .iter()
                .all(|row| row.event != "account_deleted")
        );
        assert!(
            app.outbox_rows()
                .await
                .iter()
                .all(|row| row.kind != "account_deleted")
        );
        let reauthenticated = phone
            .post("reauthenticate/", json!({"password": PASSWORD}))
            .await;
        assert_eq!(reauthenticated.status, 200, "{}", reauthenticated.text);
        assert_eq!(phone.export().await.status, 200);
    }
}

// ---------------------------------------------------------------------------------------------
// The last superuser
// ---------------------------------------------------------------------------------------------

/// `tessera createsuperuser` over the app's database.
fn create_superuser(app: &TestApp, email: &str) {
    let env = [
        ("TESSERA_DATABASE__URL", app.config.database.url.as_str()),
        ("TESSERA_SECRET_KEY", SECRET_KEY),
        ("TESSERA_PASSWORD", PASSWORD),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = process::run(dir.path(), &["createsuperuser", "--email", email], &env);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A superuser created by `createsuperuser` cannot delete itself while it is the only active
/// one: 403 with the message, and nothing changes. An inactive superuser does not count; with
/// a second active one, either can delete itself, and then the other is the last. An ordinary
/// user is not held back by the superusers.
async fn the_last_superuser_cannot_delete_itself(backend: Backend) {
    let app = spawn(&backend, Mode::Token).await;
    let admin_email = "root@analytical.example";
    let other_admin = "deputy@analytical.example";
    create_superuser(&app, admin_email);
    let mut device = new_device(&app, Mode::Token, PHONE, PHONE_IP);
    device.log_in(admin_email).await;
    let admin = app.stored_user(admin_email).await;
    assert!(admin.is_superuser && admin.is_staff && admin.is_active);

    let refused = device.delete_account().await;
    assert_detail(&refused, 403, LAST_SUPERUSER);
    assert_accepted(&device, admin_email).await;
    assert_eq!(app.stored_user(admin_email).await, admin);
    assert!(
        audit_rows(&app.db, admin.id)
            .await
            .iter()
            .all(|row| row.event != "account_deleted" && row.ip.is_some())
    );
    assert!(
        app.outbox_rows()
            .await
            .iter()
            .all(|row| row.kind != "account_deleted")
    );

    // An inactive superuser is no administrator.
    create_superuser(&app, other_admin);
    let deputy = app.stored_user(other_admin).await;
    let mut deputy_device = new_device(&app, Mode::Token, LAPTOP, LAPTOP_IP);
    deputy_device.log_in(other_admin).await;
    let switch = |active: bool| {
        user::Entity::update_many()
            .col_expr(user::Column::IsActive, Expr::value(active))
            .filter(user::Column::Id.eq(deputy.id))
            .exec(&app.db)
    };
    switch(false).await.unwrap();
    assert_detail(&device.delete_account().await, 403, LAST_SUPERUSER);
    switch(true).await.unwrap();

    // Two active superusers: one leaves; the other is then the last.
    assert_no_content(&device.delete_account().await);
    assert!(
        user::Entity::find_by_id(admin.id)
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    assert_detail(&deputy_device.delete_account().await, 403, LAST_SUPERUSER);
    assert_accepted(&deputy_device, other_admin).await;

    // An ordinary user leaves whatever the superusers.
    let mut ordinary = new_device(&app, Mode::Token, BOB, BOB_IP);
    ordinary.register(BOB_EMAIL).await;
    assert_no_content(&ordinary.delete_account().await);
}

// ---------------------------------------------------------------------------------------------
// Per mode
// ---------------------------------------------------------------------------------------------

/// Each scenario once per mode.
macro_rules! per_mode {
    ($($name:ident => $scenario:ident($mode:expr)),* $(,)?) => {
        $(
            async fn $name(backend: Backend) {
                $scenario(backend, $mode).await
            }
        )*
    };
}

per_mode!(
    the_export_holds_the_account_and_no_secret_token => the_export_holds_the_account_and_no_secret(Mode::Token),
    the_export_holds_the_account_and_no_secret_jwt => the_export_holds_the_account_and_no_secret(Mode::Jwt),
    the_export_holds_the_account_and_no_secret_session => the_export_holds_the_account_and_no_secret(Mode::Session),
    deletion_leaves_no_row_that_names_the_user_token => deletion_leaves_no_row_that_names_the_user(Mode::Token),
    deletion_leaves_no_row_that_names_the_user_jwt => deletion_leaves_no_row_that_names_the_user(Mode::Jwt),
    deletion_leaves_no_row_that_names_the_user_session => deletion_leaves_no_row_that_names_the_user(Mode::Session),
    deactivation_empties_the_account_token => deactivation_empties_the_account(Mode::Token),
    deactivation_empties_the_account_jwt => deactivation_empties_the_account(Mode::Jwt),
    deactivation_empties_the_account_session => deactivation_empties_the_account(Mode::Session),
    the_guard_protects_export_and_deletion_token => the_guard_protects_export_and_deletion(Mode::Token),
    the_guard_protects_export_and_deletion_jwt => the_guard_protects_export_and_deletion(Mode::Jwt),
    the_guard_protects_export_and_deletion_session => the_guard_protects_export_and_deletion(Mode::Session),
);

// ---------------------------------------------------------------------------------------------
// Two instances on one PostgreSQL database
// ---------------------------------------------------------------------------------------------

mod two_instances {
    use super::*;

    /// How long a deletion may take to reach another instance (the bound).
    const ACROSS_INSTANCES: StdDuration = StdDuration::from_secs(2);

    /// Ada's credentials, cached on instance B by requests there, are refused by B within 2 s
    /// of her deleting her account on A (and on A); Bob's keeps working on both.
    async fn a_deleted_users_credential_is_refused_on_the_other_instance(mode: Mode) {
        let a = spawn(&Backend::Postgres, mode).await;
        let b = a.another_instance().await;
        let mut phone = new_device(&a, mode, PHONE, PHONE_IP);
        phone.register(EMAIL).await;
        let mut laptop = new_device(&b, mode, LAPTOP, LAPTOP_IP);
        laptop.log_in(EMAIL).await;
        let mut bob = new_device(&b, mode, BOB, BOB_IP);
        bob.register(BOB_EMAIL).await;

        // B caches both of Ada's credentials.
        let phone_on_b = phone.on(&b);
        assert_accepted(&phone_on_b, EMAIL).await;
        assert_accepted(&laptop, EMAIL).await;

        assert_no_content(&phone.delete_account().await);
        // Within 2 s of the answer, B refuses both credentials it had cached.
        let deleted = Instant::now();
        for device in [&phone_on_b, &laptop] {
            loop {
                let me = device.clone().me().await;
                if me.status == 401 || me.status == 403 {
                    break;
                }
                assert!(
                    deleted.elapsed() < ACROSS_INSTANCES,
                    "{mode:?}: B still accepts a deleted user's credential after {:?}: {}",
                    deleted.elapsed(),
                    me.text
                );
                tokio::time::sleep(StdDuration::from_millis(25)).await;
            }
        }
        for device in [&phone_on_b, &laptop] {
            assert_refused(device).await;
        }
        assert_refused(&phone).await;
        assert_refused(&laptop.on(&a)).await;
        assert_accepted(&bob, BOB_EMAIL).await;
        assert_accepted(&bob.on(&a), BOB_EMAIL).await;
    }

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_deleted_users_credential_is_refused_on_the_other_instance_token() {
            a_deleted_users_credential_is_refused_on_the_other_instance(Mode::Token).await
        }
    }

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_deleted_users_credential_is_refused_on_the_other_instance_jwt() {
            a_deleted_users_credential_is_refused_on_the_other_instance(Mode::Jwt).await
        }
    }

    test_support::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_deleted_users_credential_is_refused_on_the_other_instance_session() {
            a_deleted_users_credential_is_refused_on_the_other_instance(Mode::Session).await
        }
    }
}
