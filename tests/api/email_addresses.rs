//! The user's email addresses (`emails/`, issue 12): allauth's `EmailAddress` rules on the
//! wire, in token, JWT and session mode. Listing, adding (a key mailed to the new address that
//! `registration/verify-email/` takes), making a confirmed address primary (which moves login
//! by email and password reset to it, and mails the old address), removing, resending; the
//! exact messages; the reauthentication guard; enumeration prevention (a taken address is
//! answered and listed as a free one, its owner is told, no key is ever mailed for it); the
//! first account to confirm an address keeps it; `account.max_email_addresses`;
//! `account.change_email`; and the audit trail.

use std::collections::BTreeSet;

use entity::audit_event;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tessera::Config;

use crate::support::device::Device;
use crate::support::mail::{RESET_PREFIX, ReceivedMail, VERIFY_PREFIX, frontend_links, key_from};
use crate::support::modes::{MODES, Mode};
use crate::support::{Backend, PASSWORD, Reply, TestApp};

on_each_backend!(
    the_contract_in_every_mode,
    messages_are_allaths,
    guarded_operations_need_a_recent_password_in_every_mode,
    a_taken_address_is_answered_as_a_free_one,
    the_first_account_to_confirm_an_address_keeps_it,
    a_signup_takes_an_address_others_only_wait_to_confirm,
    at_most_max_email_addresses,
    change_email_replaces_the_primary_address,
    login_and_password_reset_follow_the_primary_address,
    resend_mails_a_new_key_within_the_limit,
);

const ADA: &str = "ada@example.com";
const ADA_WORK: &str = "ada@work.example.com";
const ADA_HOME: &str = "ada@home.example.com";
const BOB: &str = "bob@example.com";
const BOB_WORK: &str = "bob@work.example.com";

// allauth's messages, byte for byte.
const ALREADY_YOURS: &str = "This e-mail address is already associated with this account.";
const TAKEN: &str = "A user is already registered with this e-mail address.";
const CANNOT_REMOVE_PRIMARY: &str = "You cannot remove your primary e-mail address.";
const MUST_BE_VERIFIED: &str = "Your primary e-mail address must be verified.";
const UNKNOWN_EMAIL: &str = "Unknown email address.";
const TOO_MANY_5: &str = "You cannot add more than 5 e-mail addresses.";
const INVALID_EMAIL: &str = "Enter a valid email address.";
const REQUIRED: &str = "This field is required.";
const REAUTHENTICATION_REQUIRED: &str = "Please confirm your password to continue.";
const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const NOT_FOUND: &str = "Not found.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const RESET_SENT: &str = "Password reset e-mail has been sent.";
const CSRF_TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";

const CONFIRM_SUBJECT: &str = "[Tessera] Please confirm your email address";
const EXISTS_SUBJECT: &str = "[Tessera] Account already exists";
const CHANGED_SUBJECT: &str = "[Tessera] Your email address has been changed";

// ---------------------------------------------------------------------------------------------
// Modes and a client per mode
// ---------------------------------------------------------------------------------------------

/// An app in `mode` whose mails link to a frontend (keys and reset links can be taken apart),
/// `configure` applied last.
async fn spawn_with(backend: &Backend, mode: Mode, configure: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend.clone(), |config| {
        mode.configure(config);
        frontend_links(config);
        configure(config);
    })
    .await
}

async fn spawn(backend: &Backend) -> TestApp {
    spawn_with(backend, Mode::Token, |_| {}).await
}

/// A frontend of one mode on one device; a token or JWT client keeps no cookies.
fn new_frontend(app: &TestApp, mode: Mode) -> Device<'_> {
    Device::new(app, mode).cookies_in_session_mode_only()
}

/// What a client does with `emails/`.
impl Device<'_> {
    async fn list(&mut self) -> Value {
        let reply = self.get("emails/").await;
        assert_eq!(reply.status, 200, "{:?}: {}", self.mode, reply.text);
        reply.body
    }

    async fn add(&mut self, email: &str) -> Reply {
        self.post("emails/", json!({ "email": email })).await
    }

    /// Adds the address, which must answer 201 `{"email", "verified": false, "primary": false}`.
    async fn added(&mut self, email: &str) {
        let reply = self.add(email).await;
        assert_eq!(reply.status, 201, "{:?}: {}", self.mode, reply.text);
        assert_eq!(reply.body, address(email, false, false), "{}", reply.text);
    }

    async fn make_primary(&mut self, email: &str) -> Reply {
        self.post("emails/primary/", json!({ "email": email }))
            .await
    }

    async fn remove(&mut self, email: &str) -> Reply {
        let body = json!({ "email": email });
        self.send(Method::DELETE, "emails/", Some(body)).await
    }

    async fn resend(&mut self, email: &str) -> Reply {
        self.post("emails/resend/", json!({ "email": email })).await
    }

    /// `registration/verify-email/` from this client (a browser sends its CSRF token).
    async fn confirm(&mut self, key: &str) -> Reply {
        self.post("registration/verify-email/", json!({ "key": key }))
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn address(email: &str, verified: bool, primary: bool) -> Value {
    json!({"email": email, "verified": verified, "primary": primary})
}

fn assert_field_error(reply: &Reply, field: &str, message: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({ field: [message] }), "{}", reply.text);
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

fn assert_ok(reply: &Reply) {
    crate::support::assert_detail(reply, 200, "ok");
}

/// The messages delivered so far to `recipient`, oldest first.
fn mail_to(mail: &[ReceivedMail], recipient: &str) -> Vec<ReceivedMail> {
    mail.iter()
        .filter(|m| m.to.iter().any(|to| to == recipient))
        .cloned()
        .collect()
}

/// Waits for `count` delivered messages; the newest confirmation key mailed to `recipient`.
async fn key_for(app: &TestApp, count: usize, recipient: &str) -> String {
    let mail = app.delivered(count).await;
    let confirmation = mail_to(&mail, recipient)
        .into_iter()
        .rev()
        .find(|m| m.subject == CONFIRM_SUBJECT)
        .unwrap_or_else(|| panic!("a confirmation mailed to {recipient}: {mail:?}"));
    key_from(&confirmation.link(VERIFY_PREFIX), VERIFY_PREFIX)
}

async fn verify(app: &TestApp, key: &str) -> Reply {
    app.post("registration/verify-email/", json!({ "key": key }))
        .await
}

/// Waits until the outbox has exactly `count` messages, all delivered, and a moment more in
/// which nothing else is queued.
async fn delivered_exactly(app: &TestApp, count: usize) -> Vec<ReceivedMail> {
    let mail = app.delivered(count).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.outbox_rows().await.len(),
        count,
        "no other message: {:?}",
        app.sent_mail()
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    mail
}

async fn user_id(app: &TestApp, email: &str) -> entity::UserId {
    app.stored_user(email).await.id
}

/// `(event, outcome, reason)` of the user's audit rows about addresses, in order.
async fn address_events(
    app: &TestApp,
    user: entity::UserId,
) -> Vec<(String, String, Option<String>)> {
    audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user))
        .order_by_asc(audit_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.event.starts_with("email_"))
        .map(|row| (row.event, row.outcome, row.reason))
        .collect()
}

fn event(name: &str, outcome: &str, reason: Option<&str>) -> (String, String, Option<String>) {
    (name.into(), outcome.into(), reason.map(Into::into))
}

// ---------------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------------

/// Every row of the contract in each mode: the list (primary first); adding answers 201 and
/// mails a key to the new address that `registration/verify-email/` takes; a confirmed address
/// becomes primary (200 and the list; `user/` follows; the old address gets the notice);
/// resend answers `{"detail": "ok"}`; removing answers 204, the primary address cannot go.
/// Without a credential each operation is refused as the mode refuses, and session mode
/// checks CSRF on the unsafe ones. Each change is in the audit trail.
async fn the_contract_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn_with(&backend, mode, |_| {}).await;
        let mut ada = new_frontend(&app, mode);
        ada.register(ADA).await;
        assert_eq!(ada.list().await, json!([address(ADA, false, true)]));
        let signup_key = key_for(&app, 1, ADA).await;
        assert_ok(&ada.confirm(&signup_key).await);
        assert_eq!(ada.list().await, json!([address(ADA, true, true)]));

        ada.added(ADA_WORK).await;
        let mail = app.delivered(2).await;
        let confirmation = &mail_to(&mail, ADA_WORK)[0];
        assert_eq!(confirmation.subject, CONFIRM_SUBJECT);
        assert_eq!(
            ada.list().await,
            json!([address(ADA, true, true), address(ADA_WORK, false, false)])
        );
        // Resending within the limit answers the same and sends nothing.
        assert_ok(&ada.resend(ADA_WORK).await);
        let key = key_for(&app, 2, ADA_WORK).await;
        assert_ok(&ada.confirm(&key).await);
        assert_eq!(
            ada.list().await,
            json!([address(ADA, true, true), address(ADA_WORK, true, false)])
        );

        let switched = ada.make_primary(ADA_WORK).await;
        assert_eq!(switched.status, 200, "{mode:?}: {}", switched.text);
        assert_eq!(
            switched.body,
            json!([address(ADA_WORK, true, true), address(ADA, true, false)])
        );
        assert_eq!(ada.me().await.body["email"], ADA_WORK);
        // Already primary: the same answer, and no second notice.
        let again = ada.make_primary(ADA_WORK).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body, switched.body);
        let mail = delivered_exactly(&app, 3).await;
        let notice = mail_to(&mail, ADA);
        let notice = notice.last().unwrap();
        assert_eq!(notice.subject, CHANGED_SUBJECT);
        assert!(
            notice.text.contains(&format!(
                "Your email has been changed from {ADA} to {ADA_WORK}."
            )),
            "{}",
            notice.text
        );
        assert!(notice.html.contains(ADA_WORK), "{}", notice.html);

        let primary = ada.remove(ADA_WORK).await;
        assert_field_error(&primary, "email", CANNOT_REMOVE_PRIMARY);
        let removed = ada.remove(ADA).await;
        assert_eq!(removed.status, 204, "{mode:?}: {}", removed.text);
        assert!(removed.text.is_empty());
        assert_eq!(ada.list().await, json!([address(ADA_WORK, true, true)]));

        // Without a credential.
        let mut stranger = new_frontend(&app, mode);
        let status = match mode {
            Mode::Session => 403,
            Mode::Token | Mode::Jwt => 401,
        };
        for reply in [
            stranger.get("emails/").await,
            stranger.add(ADA_HOME).await,
            stranger.make_primary(ADA).await,
            stranger.remove(ADA).await,
            stranger.resend(ADA).await,
        ] {
            crate::support::assert_detail(&reply, status, NOT_PROVIDED);
        }
        if mode == Mode::Session {
            for (method, path) in [
                (Method::POST, "emails/"),
                (Method::DELETE, "emails/"),
                (Method::POST, "emails/primary/"),
                (Method::POST, "emails/resend/"),
            ] {
                let forged = ada
                    .send_without_csrf(method, path, Some(json!({"email": ADA_HOME})))
                    .await;
                crate::support::assert_detail(&forged, 403, CSRF_TOKEN_MISSING);
            }
        }

        let ada_id = user_id(&app, ADA_WORK).await;
        assert_eq!(
            address_events(&app, ada_id).await,
            vec![
                event("email_verification", "success", None),
                event("email_added", "success", None),
                event("email_verification", "success", None),
                event("email_primary_changed", "success", None),
                event("email_removed", "success", None),
            ],
            "{mode:?}"
        );
    }
}

/// Each refusal in allauth's words: an address already on the account, one another account
/// holds (enumeration prevention off), an address that is not the user's (primary, remove,
/// resend), an unconfirmed one made primary; and DRF's for a missing or malformed address.
/// Addresses are compared in their one stored form.
async fn messages_are_allaths(backend: Backend) {
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.account.prevent_enumeration = false;
    })
    .await;
    let mut bob = new_frontend(&app, Mode::Token);
    bob.register(BOB).await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;

    assert_field_error(&ada.add(ADA).await, "email", ALREADY_YOURS);
    assert_field_error(&ada.add(" Ada@Example.COM ").await, "email", ALREADY_YOURS);
    assert_field_error(&ada.add(BOB).await, "email", TAKEN);
    assert_field_error(&ada.add("not an address").await, "email", INVALID_EMAIL);
    let missing = ada.post("emails/", json!({})).await;
    assert_field_error(&missing, "email", REQUIRED);
    for reply in [
        ada.make_primary(BOB).await,
        ada.remove(BOB).await,
        ada.resend(BOB).await,
        ada.make_primary(ADA_WORK).await,
    ] {
        assert_field_error(&reply, "email", UNKNOWN_EMAIL);
    }
    ada.added(ADA_WORK).await;
    assert_field_error(&ada.add(ADA_WORK).await, "email", ALREADY_YOURS);
    assert_field_error(&ada.make_primary(ADA_WORK).await, "email", MUST_BE_VERIFIED);
    // An unconfirmed primary address still cannot be removed.
    assert_field_error(
        &ada.remove("ADA@example.com").await,
        "email",
        CANNOT_REMOVE_PRIMARY,
    );
    assert_eq!(
        ada.list().await,
        json!([address(ADA, false, true), address(ADA_WORK, false, false)])
    );
}

/// Adding and removing need a recent proof of the password in every mode; listing, making
/// primary and resending do not. `reauthenticate/` lets them through again.
async fn guarded_operations_need_a_recent_password_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn_with(&backend, mode, |_| {}).await;
        let mut ada = new_frontend(&app, mode);
        ada.register(ADA).await;
        ada.added(ADA_WORK).await;
        app.age_credentials(ADA).await;

        assert_reauthentication_required(&ada.add(ADA_HOME).await);
        assert_reauthentication_required(&ada.remove(ADA_WORK).await);
        assert_eq!(ada.get("emails/").await.status, 200);
        assert_ok(&ada.resend(ADA_WORK).await);
        assert_field_error(&ada.make_primary(ADA_WORK).await, "email", MUST_BE_VERIFIED);
        assert_eq!(
            ada.list().await,
            json!([address(ADA, false, true), address(ADA_WORK, false, false)]),
            "{mode:?}: nothing changed"
        );

        let proved = ada
            .post("reauthenticate/", json!({ "password": PASSWORD }))
            .await;
        assert_ok(&proved);
        ada.added(ADA_HOME).await;
        let removed = ada.remove(ADA_WORK).await;
        assert_eq!(removed.status, 204, "{mode:?}: {}", removed.text);
    }
}

/// Under enumeration prevention (the default) adding an address another account holds (its
/// primary address, or one it confirmed) is answered and listed exactly as a free one; the
/// owner is mailed "account already exists" at that address, and no key is ever mailed for it
/// (neither at adding nor at a resend); it cannot become primary.
async fn a_taken_address_is_answered_as_a_free_one(backend: Backend) {
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.rate_limits.confirm_email = Default::default();
    })
    .await;
    let mut bob = new_frontend(&app, Mode::Token);
    bob.register(BOB).await;
    bob.added(BOB_WORK).await;
    let key = key_for(&app, 2, BOB_WORK).await;
    assert_ok(&verify(&app, &key).await);

    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    let before = app.delivered(3).await.len();
    let free = ada.add(ADA_WORK).await;
    let taken_primary = ada.add(BOB).await;
    let taken_confirmed = ada.add(BOB_WORK).await;
    for (reply, email) in [
        (&free, ADA_WORK),
        (&taken_primary, BOB),
        (&taken_confirmed, BOB_WORK),
    ] {
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.body, address(email, false, false));
        assert_eq!(
            reply.text.replace(email, "E"),
            free.text.replace(ADA_WORK, "E")
        );
    }
    assert_eq!(
        ada.list().await,
        json!([
            address(ADA, false, true),
            address(ADA_WORK, false, false),
            address(BOB, false, false),
            address(BOB_WORK, false, false),
        ])
    );
    assert_ok(&ada.resend(BOB).await);
    assert_ok(&ada.resend(BOB_WORK).await);

    let mail = delivered_exactly(&app, before + 5).await;
    let new_mail = &mail[before..];
    assert_eq!(mail_to(new_mail, ADA_WORK)[0].subject, CONFIRM_SUBJECT);
    for owner_address in [BOB, BOB_WORK] {
        let subjects: Vec<String> = mail_to(new_mail, owner_address)
            .into_iter()
            .map(|m| m.subject)
            .collect();
        assert_eq!(
            subjects,
            [EXISTS_SUBJECT, EXISTS_SUBJECT],
            "{owner_address}"
        );
    }
    assert!(
        mail_to(&mail, BOB)
            .iter()
            .chain(&mail_to(&mail, BOB_WORK))
            .filter(|m| m.subject == CONFIRM_SUBJECT)
            .count()
            == 2,
        "only Bob's own two confirmations went to his addresses"
    );
    assert_field_error(&ada.make_primary(BOB).await, "email", MUST_BE_VERIFIED);
    let ada_id = user_id(&app, ADA).await;
    assert_eq!(
        address_events(&app, ada_id).await,
        vec![
            event("email_added", "success", None),
            event("email_added", "success", Some("email_taken")),
            event("email_added", "success", Some("email_taken")),
        ]
    );
}

/// Two accounts may wait to confirm one address; the first to confirm it keeps it, and the
/// other's key then answers 404 as an expired key does (the address stays unconfirmed on that
/// account, and cannot become primary there).
async fn the_first_account_to_confirm_an_address_keeps_it(backend: Backend) {
    // The per-address mail limit would keep Bob's key from going out right after Ada's.
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.rate_limits.confirm_email = Default::default();
    })
    .await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    let mut bob = new_frontend(&app, Mode::Token);
    bob.register(BOB).await;
    const SHARED: &str = "shared@example.com";
    ada.added(SHARED).await;
    let ada_key = key_for(&app, 3, SHARED).await;
    bob.added(SHARED).await;
    let bob_key = key_for(&app, 4, SHARED).await;
    assert_ne!(ada_key, bob_key);

    assert_ok(&verify(&app, &bob_key).await);
    crate::support::assert_detail(&verify(&app, &ada_key).await, 404, NOT_FOUND);
    assert_eq!(
        ada.list().await,
        json!([address(ADA, false, true), address(SHARED, false, false)])
    );
    assert_field_error(&ada.make_primary(SHARED).await, "email", MUST_BE_VERIFIED);
    assert_eq!(
        bob.list().await,
        json!([address(BOB, false, true), address(SHARED, true, false)])
    );
    let switched = bob.make_primary(SHARED).await;
    assert_eq!(switched.status, 200, "{}", switched.text);
    // The key was not spent: still 404 while Bob holds the address.
    crate::support::assert_detail(&verify(&app, &ada_key).await, 404, NOT_FOUND);
    let ada_id = user_id(&app, ADA).await;
    let failures: Vec<_> = address_events(&app, ada_id)
        .await
        .into_iter()
        .filter(|(_, outcome, _)| outcome == "failure")
        .collect();
    assert_eq!(
        failures,
        vec![
            event("email_verification", "failure", Some("email_taken")),
            event("email_verification", "failure", Some("email_taken")),
        ]
    );
}

/// An address someone only added (unconfirmed) holds nobody back: its owner signs up with it,
/// and the earlier key then answers 404. An address an account confirmed is taken at signup.
async fn a_signup_takes_an_address_others_only_wait_to_confirm(backend: Backend) {
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.account.prevent_enumeration = false;
    })
    .await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    ada.added(BOB).await;
    let squatter_key = key_for(&app, 2, BOB).await;

    let mut bob = new_frontend(&app, Mode::Token);
    bob.register(BOB).await;
    assert_eq!(bob.me().await.body["email"], BOB);
    crate::support::assert_detail(&verify(&app, &squatter_key).await, 404, NOT_FOUND);
    let bob_key = key_for(&app, 3, BOB).await;
    assert_ok(&verify(&app, &bob_key).await);
    assert_eq!(bob.list().await, json!([address(BOB, true, true)]));

    // Bob confirms a second address: it is taken for signups now.
    bob.added(BOB_WORK).await;
    let key = key_for(&app, 4, BOB_WORK).await;
    assert_ok(&verify(&app, &key).await);
    let signup = app
        .post(
            "registration/",
            json!({"email": BOB_WORK, "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_field_error(
        &signup,
        "email",
        "User is already registered with this e-mail address.",
    );
}

/// At most `account.max_email_addresses` (5) per user, the primary one included; removing
/// one makes room again.
async fn at_most_max_email_addresses(backend: Backend) {
    let app = spawn(&backend).await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    for n in 1..5 {
        ada.added(&format!("ada{n}@example.com")).await;
    }
    assert_field_error(&ada.add("ada5@example.com").await, "email", TOO_MANY_5);
    // The limit comes after the other checks, as allauth's.
    assert_field_error(&ada.add("ada1@example.com").await, "email", ALREADY_YOURS);
    assert_eq!(ada.list().await.as_array().unwrap().len(), 5);
    assert_eq!(ada.remove("ada1@example.com").await.status, 204);
    ada.added("ada5@example.com").await;

    let app = spawn_with(&backend, Mode::Token, |config| {
        config.account.max_email_addresses = 2;
    })
    .await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    ada.added(ADA_WORK).await;
    assert_field_error(
        &ada.add(ADA_HOME).await,
        "email",
        "You cannot add more than 2 e-mail addresses.",
    );
}

/// `account.change_email`: a new address replaces the pending one (whose key dies with it),
/// the limit does not apply, and confirming it makes it the only, primary address: `user/`,
/// login and password reset move to it, and the old address is told.
async fn change_email_replaces_the_primary_address(backend: Backend) {
    let app = spawn_with(&backend, Mode::Token, |config| {
        config.account.change_email = true;
        config.account.max_email_addresses = 1;
        config.rate_limits.confirm_email = Default::default();
    })
    .await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    ada.added(ADA_HOME).await;
    let replaced_key = key_for(&app, 2, ADA_HOME).await;
    ada.added(ADA_WORK).await;
    assert_eq!(
        ada.list().await,
        json!([address(ADA, false, true), address(ADA_WORK, false, false)])
    );
    crate::support::assert_detail(&verify(&app, &replaced_key).await, 404, NOT_FOUND);

    let key = key_for(&app, 3, ADA_WORK).await;
    assert_ok(&verify(&app, &key).await);
    assert_eq!(ada.list().await, json!([address(ADA_WORK, true, true)]));
    assert_eq!(ada.me().await.body["email"], ADA_WORK);
    let mail = delivered_exactly(&app, 4).await;
    let notice = mail.last().unwrap();
    assert_eq!(notice.to, [ADA]);
    assert_eq!(notice.subject, CHANGED_SUBJECT);
    assert!(notice.text.contains(&format!("from {ADA} to {ADA_WORK}")));

    assert_eq!(ada.login(ADA_WORK, PASSWORD).await.status, 200);
    assert_eq!(ada.login(ADA, PASSWORD).await.status, 400);
    let ada_id = user_id(&app, ADA_WORK).await;
    assert_eq!(
        address_events(&app, ada_id).await,
        vec![
            event("email_added", "success", None),
            event("email_removed", "success", Some("replaced")),
            event("email_added", "success", None),
            event("email_verification", "success", None),
            event("email_removed", "success", Some("changed")),
            event("email_primary_changed", "success", None),
        ]
    );
}

/// Login by email and password reset use the primary address alone: before the switch a
/// reset for the other (confirmed) address sends nothing and it does not log in; after it, the
/// new address logs in and gets the reset link, and the old one neither.
async fn login_and_password_reset_follow_the_primary_address(backend: Backend) {
    let app = spawn(&backend).await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    ada.added(ADA_WORK).await;
    let key = key_for(&app, 2, ADA_WORK).await;
    assert_ok(&verify(&app, &key).await);

    let reset = |email: &'static str| {
        let app = &app;
        async move {
            let reply = app.post("password/reset/", json!({ "email": email })).await;
            crate::support::assert_detail(&reply, 200, RESET_SENT);
        }
    };
    reset(ADA_WORK).await;
    assert_eq!(
        ada.login(ADA_WORK, PASSWORD).await.body,
        json!({"non_field_errors": [BAD_CREDENTIALS]})
    );
    delivered_exactly(&app, 2).await;

    assert_eq!(ada.make_primary(ADA_WORK).await.status, 200);
    let mut phone = new_frontend(&app, Mode::Token);
    phone.log_in(ADA_WORK).await;
    assert_eq!(phone.me().await.body["email"], ADA_WORK);
    assert_eq!(
        phone.login(ADA, PASSWORD).await.body,
        json!({"non_field_errors": [BAD_CREDENTIALS]})
    );
    reset(ADA).await;
    delivered_exactly(&app, 3).await;
    reset(ADA_WORK).await;
    let mail = delivered_exactly(&app, 4).await;
    let link = mail.last().unwrap();
    assert_eq!(link.to, [ADA_WORK]);
    assert!(link.link(RESET_PREFIX).starts_with(RESET_PREFIX));
}

/// `emails/resend/` is limited like `registration/resend-email/` (`rate_limits.confirm_email`,
/// per address, the key of adding included): within the limit nothing more is sent; without
/// it a new key goes out, and the first one still works. A confirmed address gets nothing.
async fn resend_mails_a_new_key_within_the_limit(backend: Backend) {
    let app = spawn(&backend).await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    ada.added(ADA_WORK).await;
    assert_ok(&ada.resend(ADA_WORK).await);
    assert_ok(
        &app.post("registration/resend-email/", json!({ "email": ADA_WORK }))
            .await,
    );
    delivered_exactly(&app, 2).await;

    let app = spawn_with(&backend, Mode::Token, |config| {
        config.rate_limits.confirm_email = Default::default();
    })
    .await;
    let mut ada = new_frontend(&app, Mode::Token);
    ada.register(ADA).await;
    ada.added(ADA_WORK).await;
    let first = key_for(&app, 2, ADA_WORK).await;
    assert_ok(&ada.resend(ADA_WORK).await);
    let second = key_for(&app, 3, ADA_WORK).await;
    assert_ne!(first, second);
    assert_ok(&verify(&app, &first).await);
    assert_eq!(
        ada.list().await,
        json!([address(ADA, false, true), address(ADA_WORK, true, false)])
    );
    assert_ok(&ada.resend(ADA_WORK).await);
    let mail = delivered_exactly(&app, 3).await;
    let subjects: BTreeSet<String> = mail.iter().map(|m| m.subject.clone()).collect();
    assert_eq!(subjects, BTreeSet::from([CONFIRM_SUBJECT.to_owned()]));
}
