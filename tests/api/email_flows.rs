//! The email-driven journeys, end to end over HTTP with the `file` mail backend: a message is
//! read as delivered, its link taken apart, and the flow finished with what the link carries.
//!
//! Verification (`none` | `optional` | `mandatory`), resend and its limit, password reset and
//! everything that kills a reset link, enumeration prevention at signup, template overrides
//! and HTML escaping. Links must come from configuration, never from the request's `Host`.

use chrono::{Duration, Utc};
use entity::{email_address, email_confirmation, outbox_message, password_reset_token, user};
use futures_util::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tessera::config::EmailVerification;

use crate::support::mail::{
    PUBLIC_URL, RESET_PREFIX, ReceivedMail, VERIFY_PREFIX, frontend_links, key_from, uid_and_token,
};
use crate::support::{
    Backend, PASSWORD, Reply, TestApp, assert_detail, assert_invalid_token, confirm_reset,
};

on_each_backend!(
    optional_signup_mails_a_key_that_verifies_once,
    links_default_to_public_url_whatever_the_host_header,
    mandatory_verification_gates_login_until_the_key_is_used,
    none_sends_nothing_at_signup_but_resend_mails_a_working_key,
    resend_answers_ok_and_mails_only_unverified_accounts_within_the_limit,
    resend_without_an_email_is_a_field_error,
    concurrent_resends_send_one_mail,
    a_key_confirmed_twice_at_once_works_once,
    garbage_and_expired_keys_are_not_found,
    password_reset_journey,
    reset_for_an_unknown_email_looks_the_same_and_mails_nothing,
    a_newer_reset_kills_the_older_link,
    concurrent_resets_leave_one_live_link,
    a_password_change_kills_an_outstanding_link,
    reset_confirm_errors_use_drf_shapes,
    unknown_reset_uids_are_named_without_enumeration_prevention,
    a_reset_link_used_twice_at_once_works_once,
    an_expired_reset_link_is_refused,
    mandatory_signup_with_a_taken_email_answers_as_new_and_mails_the_owner,
    taken_email_is_refused_when_enumeration_is_not_hidden,
    a_subject_override_changes_only_the_subject,
    html_bodies_escape_user_values_and_text_bodies_do_not,
);

const EVIL_HOST: &str = "evil.example";

const CONFIRM_SUBJECT: &str = "[Tessera] Please confirm your email address";
const RESET_SUBJECT: &str = "[Tessera] Password reset";
const CHANGED_SUBJECT: &str = "[Tessera] Your password has been changed";
const EXISTS_SUBJECT: &str = "[Tessera] Account already exists";

const NEW_PASSWORD: &str = "a completely different passphrase";
const OK: &str = "ok";
const NOT_FOUND: &str = "Not found.";
const VERIFICATION_SENT: &str = "Verification e-mail sent.";
const RESET_SENT: &str = "Password reset e-mail has been sent.";
const RESET_DONE: &str = "Password has been reset with the new password.";
const INVALID_VALUE: &str = "Invalid value";
const MISMATCH: &str = "The two password fields didn\u{2019}t match.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
const EMAIL_TAKEN: &str = "User is already registered with this e-mail address.";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn spawn(backend: Backend, verification: EmailVerification) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        frontend_links(config);
        config.account.email_verification = verification;
    })
    .await
}

/// A POST that claims to be for another site: `Host`, `X-Forwarded-Host` and `Origin` all say
/// `evil.example`. Nothing of it may end up in a link.
async fn post_from_evil_host(app: &TestApp, path: &str, body: Value) -> Reply {
    app.send(
        app.client
            .post(app.api(path))
            .header("Host", EVIL_HOST)
            .header("X-Forwarded-Host", EVIL_HOST)
            .header("X-Forwarded-Proto", "https")
            .header("Origin", format!("https://{EVIL_HOST}"))
            .json(&body),
    )
    .await
}

async fn register_reply(app: &TestApp, email: &str, password: &str) -> Reply {
    app.post(
        "registration/",
        json!({"email": email, "password1": password, "password2": password}),
    )
    .await
}

async fn verify(app: &TestApp, key: &str) -> Reply {
    app.post("registration/verify-email/", json!({"key": key}))
        .await
}

async fn resend(app: &TestApp, email: &str) -> Reply {
    app.post("registration/resend-email/", json!({"email": email}))
        .await
}

async fn request_reset(app: &TestApp, email: &str) -> Reply {
    let reply = app.post("password/reset/", json!({"email": email})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"detail": RESET_SENT}));
    reply
}

fn assert_field_error(reply: &Reply, field: &str, messages: &[&str]) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({ field: messages }), "{}", reply.text);
}

/// Waits for `count` delivered messages and returns those with `subject`.
async fn delivered_with_subject(app: &TestApp, count: usize, subject: &str) -> Vec<ReceivedMail> {
    let all = app.delivered(count).await;
    all.into_iter().filter(|m| m.subject == subject).collect()
}

/// Waits until every queued message has left the outbox, then returns what was delivered.
/// Used before asserting that some message was *not* sent.
async fn all_delivered(app: &TestApp) -> Vec<ReceivedMail> {
    app.delivered(0).await
}

async fn outbox_of_kind(app: &TestApp, kind: &str) -> Vec<outbox_message::Model> {
    app.outbox_rows()
        .await
        .into_iter()
        .filter(|row| row.kind == kind)
        .collect()
}

/// Checks the parts every message must have and returns its link: the first URL of the text
/// part, which must also be an `href` in the HTML part, start with `expected_prefix`, and owe
/// nothing to the request's Host header.
fn checked_link(mail: &ReceivedMail, expected_prefix: &str) -> String {
    assert_eq!(
        mail.content_type, "multipart/alternative",
        "{}",
        mail.subject
    );
    assert!(!mail.text.is_empty(), "a text part: {}", mail.subject);
    assert!(
        mail.html.contains("<!DOCTYPE html>"),
        "an HTML part: {}",
        mail.html
    );
    let link = mail.link(expected_prefix);
    let raw = String::from_utf8_lossy(&mail.raw);
    assert!(
        !raw.contains(EVIL_HOST)
            && !mail.text.contains(EVIL_HOST)
            && !mail.html.contains(EVIL_HOST),
        "the Host header leaked into the message:\n{raw}"
    );
    link
}

/// Django's `int_to_base36`, written independently of the implementation.
fn base36(mut n: i64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

async fn email_verified(app: &TestApp, email: &str) -> bool {
    email_address::Entity::find()
        .filter(email_address::Column::Email.eq(email))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("an email address {email}"))
        .verified
}

async fn expire_all_confirmation_keys(app: &TestApp) {
    email_confirmation::Entity::update_many()
        .col_expr(
            email_confirmation::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::minutes(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
}

/// Moves every confirmation key's creation back past the 180-second resend limit.
async fn age_confirmation_keys(app: &TestApp) {
    email_confirmation::Entity::update_many()
        .col_expr(
            email_confirmation::Column::CreatedAt,
            Expr::value(Utc::now() - Duration::seconds(200)),
        )
        .exec(&app.db)
        .await
        .unwrap();
}

async fn expire_all_reset_tokens(app: &TestApp) {
    password_reset_token::Entity::update_many()
        .col_expr(
            password_reset_token::Column::ExpiresAt,
            Expr::value(Utc::now() - Duration::minutes(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
}

/// Requests a reset for `email` and returns `(uid, token)` from the message that arrives as
/// the `expected_count`-th one.
async fn request_reset_link(app: &TestApp, email: &str, expected_count: usize) -> (String, String) {
    // Everything delivered so far (the caller waited for it): the new message is the other one.
    let earlier: Vec<Vec<u8>> = app.sent_mail().into_iter().map(|m| m.raw).collect();
    request_reset(app, email).await;
    let mail = app.delivered(expected_count).await;
    let new: Vec<&ReceivedMail> = mail.iter().filter(|m| !earlier.contains(&m.raw)).collect();
    assert_eq!(new.len(), 1, "one new message");
    assert_eq!(new[0].subject, RESET_SUBJECT);
    assert_eq!(new[0].to, [email]);
    uid_and_token(&checked_link(new[0], RESET_PREFIX), RESET_PREFIX)
}

// ---------------------------------------------------------------------------------------------
// Email verification
// ---------------------------------------------------------------------------------------------

async fn optional_signup_mails_a_key_that_verifies_once(backend: Backend) {
    let app = spawn(backend, EmailVerification::Optional).await;
    let reply = post_from_evil_host(
        &app,
        "registration/",
        json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.body["key"]
        .as_str()
        .expect("optional verification logs the new user in");
    assert!(!email_verified(&app, "ada@example.com").await);

    let mail = app.delivered(1).await;
    assert_eq!(mail.len(), 1);
    let message = &mail[0];
    assert_eq!(message.to, ["ada@example.com"]);
    assert_eq!(message.subject, CONFIRM_SUBJECT);
    assert!(
        message
            .text
            .contains("user ada has given your email address to register an account on Tessera"),
        "{}",
        message.text
    );
    let link = checked_link(message, VERIFY_PREFIX);
    let key = key_from(&link, VERIFY_PREFIX);

    assert_detail(&verify(&app, &key).await, 200, OK);
    assert!(email_verified(&app, "ada@example.com").await);
    // The signup token still works, and nothing else was mailed.
    assert_eq!(app.get("user/", Some(token)).await.status, 200);

    // Used keys are dead.
    assert_detail(&verify(&app, &key).await, 404, NOT_FOUND);
    assert_eq!(all_delivered(&app).await.len(), 1);
}

async fn links_default_to_public_url_whatever_the_host_header(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.public_url = "https://accounts.example.com/base/".parse().unwrap();
    })
    .await;
    post_from_evil_host(
        &app,
        "registration/",
        json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
    )
    .await;
    let confirmation = &app.delivered(1).await[0];
    let link = checked_link(
        confirmation,
        "https://accounts.example.com/base/verify-email/",
    );
    let key = key_from(&link, "https://accounts.example.com/base/verify-email/");
    assert_detail(&verify(&app, &key).await, 200, OK);

    let reply =
        post_from_evil_host(&app, "password/reset/", json!({"email": "ada@example.com"})).await;
    assert_detail(&reply, 200, RESET_SENT);
    let resets = delivered_with_subject(&app, 2, RESET_SUBJECT).await;
    let link = checked_link(
        &resets[0],
        "https://accounts.example.com/base/password-reset/confirm/",
    );
    let (uid, token) = uid_and_token(
        &link,
        "https://accounts.example.com/base/password-reset/confirm/",
    );
    assert_detail(
        &confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await,
        200,
        RESET_DONE,
    );
    app.login_key("ada@example.com", NEW_PASSWORD).await;
}

async fn mandatory_verification_gates_login_until_the_key_is_used(backend: Backend) {
    let app = spawn(backend, EmailVerification::Mandatory).await;
    let reply = post_from_evil_host(
        &app,
        "registration/",
        json!({"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": VERIFICATION_SENT}),
        "no credential before verification"
    );

    let refused = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );
    // A wrong password says nothing about verification.
    let wrong = app
        .login("ada@example.com", "not the password at all")
        .await;
    assert_eq!(wrong.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));

    let mail = app.delivered(1).await;
    assert_eq!(mail[0].subject, CONFIRM_SUBJECT);
    assert_eq!(mail[0].to, ["ada@example.com"]);
    let key = key_from(&checked_link(&mail[0], VERIFY_PREFIX), VERIFY_PREFIX);
    assert_detail(&verify(&app, &key).await, 200, OK);

    let token = app.login_key("ada@example.com", PASSWORD).await;
    let me = app.get("user/", Some(&token)).await;
    assert_eq!(me.body["email"], "ada@example.com");
}

async fn none_sends_nothing_at_signup_but_resend_mails_a_working_key(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    let token = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&token)).await.status, 200);
    // The outbox is written in the signup's transaction: empty now means no mail, ever.
    assert!(
        app.outbox_rows().await.is_empty(),
        "no confirmation under none"
    );
    assert!(!email_verified(&app, "ada@example.com").await);

    let reply = post_from_evil_host(
        &app,
        "registration/resend-email/",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_detail(&reply, 200, OK);
    let mail = app.delivered(1).await;
    assert_eq!(mail[0].subject, CONFIRM_SUBJECT);
    assert_eq!(mail[0].to, ["ada@example.com"]);
    let key = key_from(&checked_link(&mail[0], VERIFY_PREFIX), VERIFY_PREFIX);

    // A second resend right away is answered alike but limited (1 per 180 s per address).
    assert_detail(&resend(&app, "ada@example.com").await, 200, OK);
    assert_eq!(outbox_of_kind(&app, "email_confirmation").await.len(), 1);

    assert_detail(&verify(&app, &key).await, 200, OK);
    assert!(email_verified(&app, "ada@example.com").await);
    assert_detail(&verify(&app, &key).await, 404, NOT_FOUND);
    assert_eq!(all_delivered(&app).await.len(), 1);
}

async fn resend_answers_ok_and_mails_only_unverified_accounts_within_the_limit(backend: Backend) {
    let app = spawn(backend, EmailVerification::Optional).await;
    app.register("ada@example.com").await;
    let signup_mail = app.delivered(1).await;
    let signup_key = key_from(&checked_link(&signup_mail[0], VERIFY_PREFIX), VERIFY_PREFIX);
    let confirmations = || outbox_of_kind(&app, "email_confirmation");
    assert_eq!(confirmations().await.len(), 1);

    // Unknown address: same answer, nothing queued.
    assert_detail(&resend(&app, "nobody@example.com").await, 200, OK);
    assert_eq!(app.outbox_rows().await.len(), 1);

    // Right after signup the address is within its limit: same answer, no new mail.
    assert_detail(&resend(&app, "ada@example.com").await, 200, OK);
    assert_eq!(confirmations().await.len(), 1, "limited: 1 per 180 s");

    // Once the limit has passed (moved back in the database), a resend mails a new key; the
    // address is matched trimmed and case-insensitively.
    age_confirmation_keys(&app).await;
    assert_detail(&resend(&app, "  ADA@Example.COM ").await, 200, OK);
    assert_eq!(confirmations().await.len(), 2);
    let mail = delivered_with_subject(&app, 2, CONFIRM_SUBJECT).await;
    assert_eq!(mail.len(), 2);
    let keys: Vec<String> = mail
        .iter()
        .map(|m| {
            assert_eq!(m.to, ["ada@example.com"]);
            key_from(&checked_link(m, VERIFY_PREFIX), VERIFY_PREFIX)
        })
        .collect();
    assert!(keys.contains(&signup_key));
    let new_key = keys
        .into_iter()
        .find(|key| *key != signup_key)
        .expect("a fresh key");

    // And a second resend right away is limited again.
    assert_detail(&resend(&app, "ada@example.com").await, 200, OK);
    assert_eq!(confirmations().await.len(), 2, "limited: 1 per 180 s");

    assert_detail(&verify(&app, &new_key).await, 200, OK);
    assert!(email_verified(&app, "ada@example.com").await);

    // A verified address gets nothing, even past the limit.
    age_confirmation_keys(&app).await;
    assert_detail(&resend(&app, "ada@example.com").await, 200, OK);
    assert_eq!(confirmations().await.len(), 2, "verified: nothing to send");
    assert_eq!(all_delivered(&app).await.len(), 2);
}

async fn resend_without_an_email_is_a_field_error(backend: Backend) {
    let app = spawn(backend, EmailVerification::Optional).await;
    app.register("ada@example.com").await;
    age_confirmation_keys(&app).await; // so a wrongly accepted request would queue a mail

    let required = json!({"email": ["This field is required."]});
    let empty_object = app.post("registration/resend-email/", json!({})).await;
    assert_eq!(empty_object.status, 400, "{}", empty_object.text);
    assert_eq!(empty_object.body, required);

    let empty_json = app
        .post_raw(
            "registration/resend-email/",
            Some("application/json"),
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(empty_json.status, 400, "{}", empty_json.text);
    assert_eq!(empty_json.body, required);

    let empty_form = app.post_form("registration/resend-email/", &[]).await;
    assert_eq!(empty_form.status, 400, "{}", empty_form.text);
    assert_eq!(empty_form.body, required);

    let invalid = resend(&app, "not-an-email").await;
    assert_field_error(&invalid, "email", &["Enter a valid email address."]);

    assert_eq!(
        app.outbox_rows().await.len(),
        1,
        "only the signup confirmation was queued"
    );
}

async fn concurrent_resends_send_one_mail(backend: Backend) {
    // Under `none` no key exists yet, so the first resend is due to send one.
    let app = spawn(backend, EmailVerification::None).await;
    app.register("ada@example.com").await;
    let replies = join_all((0..16).map(|_| resend(&app, "ada@example.com"))).await;
    for reply in &replies {
        assert_detail(reply, 200, OK);
    }
    let queued = outbox_of_kind(&app, "email_confirmation").await;
    assert_eq!(
        queued.len(),
        1,
        "1 mail per 180 s per address, also when the requests arrive together"
    );
}

async fn a_key_confirmed_twice_at_once_works_once(backend: Backend) {
    let app = spawn(backend, EmailVerification::Optional).await;
    app.register("ada@example.com").await;
    let mail = app.delivered(1).await;
    let key = key_from(&checked_link(&mail[0], VERIFY_PREFIX), VERIFY_PREFIX);
    let replies = join_all((0..4).map(|_| verify(&app, &key))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_detail(reply, 404, NOT_FOUND);
    }
    assert!(email_verified(&app, "ada@example.com").await);
}

async fn garbage_and_expired_keys_are_not_found(backend: Backend) {
    let app = spawn(backend, EmailVerification::Mandatory).await;
    for garbage in [
        "garbage",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "../../etc/passwd",
    ] {
        assert_detail(&verify(&app, garbage).await, 404, NOT_FOUND);
    }
    // Confirmed by POST only: following the link with GET must not confirm anything.
    let get = app.get("registration/verify-email/", None).await;
    assert_detail(&get, 405, "Method \"GET\" not allowed.");
    let missing = app.post("registration/verify-email/", json!({})).await;
    assert_field_error(&missing, "key", &["This field is required."]);

    let reply = register_reply(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let mail = app.delivered(1).await;
    let key = key_from(&checked_link(&mail[0], VERIFY_PREFIX), VERIFY_PREFIX);
    // A near miss of a real key is not accepted either.
    let mut near = key.clone();
    let last = near.pop().unwrap();
    near.push(if last == '0' { '1' } else { '0' });
    assert_detail(&verify(&app, &near).await, 404, NOT_FOUND);

    expire_all_confirmation_keys(&app).await;
    assert_detail(&verify(&app, &key).await, 404, NOT_FOUND);
    assert!(!email_verified(&app, "ada@example.com").await);
    let refused = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(
        refused.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );
}

// ---------------------------------------------------------------------------------------------
// Password reset
// ---------------------------------------------------------------------------------------------

async fn password_reset_journey(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    // Other users first, so the pk has two base-36 digits' worth of difference from decimal.
    for n in 0..10 {
        app.register(&format!("filler{n}@example.com")).await;
    }
    let signup_token = app.register("ada@example.com").await;
    let other_device = app.login_key("ada@example.com", PASSWORD).await;
    let pk = app.get("user/", Some(&signup_token)).await.body["pk"]
        .as_i64()
        .unwrap();
    assert!(pk >= 10, "pk {pk}");

    let reply =
        post_from_evil_host(&app, "password/reset/", json!({"email": "ada@example.com"})).await;
    assert_detail(&reply, 200, RESET_SENT);
    let mail = app.delivered(1).await;
    assert_eq!(mail.len(), 1);
    let message = &mail[0];
    assert_eq!(message.subject, RESET_SUBJECT);
    assert_eq!(message.to, ["ada@example.com"]);
    let link = checked_link(message, RESET_PREFIX);
    let (uid, token) = uid_and_token(&link, RESET_PREFIX);
    assert_eq!(uid, base36(pk), "uid is the pk in base 36");
    assert_ne!(uid, pk.to_string());

    // Before: the old password still works (a request alone changes nothing).
    app.login_key("ada@example.com", PASSWORD).await;

    let done = confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_detail(&done, 200, RESET_DONE);

    let old = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(old.status, 400, "{}", old.text);
    assert_eq!(old.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
    app.login_key("ada@example.com", NEW_PASSWORD).await;

    // Every credential issued before the reset is dead.
    assert_invalid_token(&app.get("user/", Some(&signup_token)).await);
    assert_invalid_token(&app.get("user/", Some(&other_device)).await);

    // The link works once.
    let again = confirm_reset(
        &app,
        &uid,
        &token,
        "yet another passphrase",
        "yet another passphrase",
    )
    .await;
    assert_field_error(&again, "token", &[INVALID_VALUE]);
    app.login_key("ada@example.com", NEW_PASSWORD).await;

    // The owner is told.
    let notices = delivered_with_subject(&app, 2, CHANGED_SUBJECT).await;
    assert_eq!(notices.len(), 1);
    let notice = &notices[0];
    assert_eq!(notice.to, ["ada@example.com"]);
    assert_eq!(notice.content_type, "multipart/alternative");
    assert!(notice.text.contains("ada@example.com"), "{}", notice.text);
    assert!(notice.html.contains("ada@example.com"), "{}", notice.html);
    assert!(
        !notice.text.contains(&token) && !notice.html.contains(&token),
        "the notice carries no live secret"
    );
    assert_eq!(all_delivered(&app).await.len(), 2);
}

async fn reset_for_an_unknown_email_looks_the_same_and_mails_nothing(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    app.register("ada@example.com").await;

    let known = app
        .post("password/reset/", json!({"email": "ada@example.com"}))
        .await;
    let unknown = app
        .post("password/reset/", json!({"email": "nobody@example.com"}))
        .await;
    assert_eq!(known.status, 200, "{}", known.text);
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.body, known.body);
    assert_eq!(unknown.text, known.text, "byte for byte");
    assert_eq!(known.body, json!({"detail": RESET_SENT}));

    let rows = app.outbox_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let mail = all_delivered(&app).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, ["ada@example.com"]);
    assert_eq!(mail[0].subject, RESET_SUBJECT);
}

async fn a_newer_reset_kills_the_older_link(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    app.register("ada@example.com").await;
    let (uid, first) = request_reset_link(&app, "ada@example.com", 1).await;
    let (uid2, second) = request_reset_link(&app, "ada@example.com", 2).await;
    assert_eq!(uid, uid2);
    assert_ne!(first, second);

    let stale = confirm_reset(&app, &uid, &first, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_field_error(&stale, "token", &[INVALID_VALUE]);
    app.login_key("ada@example.com", PASSWORD).await;

    let fresh = confirm_reset(&app, &uid, &second, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_detail(&fresh, 200, RESET_DONE);
    app.login_key("ada@example.com", NEW_PASSWORD).await;
}

async fn concurrent_resets_leave_one_live_link(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    app.register("ada@example.com").await;
    const REQUESTS: usize = 8;
    join_all((0..REQUESTS).map(|_| request_reset(&app, "ada@example.com"))).await;
    let mail = delivered_with_subject(&app, REQUESTS, RESET_SUBJECT).await;
    assert_eq!(mail.len(), REQUESTS);
    // A mismatched pair tells a live link (`new_password2` error) from a dead one (`token`)
    // without using it up.
    let mut live = 0;
    for message in &mail {
        let (uid, token) = uid_and_token(&checked_link(message, RESET_PREFIX), RESET_PREFIX);
        let probe = confirm_reset(&app, &uid, &token, NEW_PASSWORD, "not the same at all").await;
        assert_eq!(probe.status, 400, "{}", probe.text);
        if probe.body.get("new_password2").is_some() {
            live += 1;
        } else {
            assert_eq!(probe.body, json!({"token": [INVALID_VALUE]}));
        }
    }
    assert_eq!(live, 1, "only the newest reset link may work");
}

async fn a_password_change_kills_an_outstanding_link(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    let token = app.register("ada@example.com").await;
    let (uid, reset_token) = request_reset_link(&app, "ada@example.com", 1).await;

    let changed = app
        .post_with_token(
            "password/change/",
            &token,
            json!({"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
        )
        .await;
    assert_detail(&changed, 200, "New password has been saved.");

    let dead = confirm_reset(
        &app,
        &uid,
        &reset_token,
        "an attacker's passphrase",
        "an attacker's passphrase",
    )
    .await;
    assert_field_error(&dead, "token", &[INVALID_VALUE]);
    app.login_key("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(
        app.login("ada@example.com", "an attacker's passphrase")
            .await
            .status,
        400
    );

    let notices = delivered_with_subject(&app, 2, CHANGED_SUBJECT).await;
    assert_eq!(notices.len(), 1, "a password-changed notice");
    assert_eq!(notices[0].to, ["ada@example.com"]);
    assert!(!notices[0].text.is_empty() && !notices[0].html.is_empty());
}

/// Without enumeration prevention, an unknown uid is named as dj-rest-auth names it.
async fn unknown_reset_uids_are_named_without_enumeration_prevention(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.account.prevent_enumeration = false;
    })
    .await;
    app.register("ada@example.com").await;
    let reply = confirm_reset(
        &app,
        "zzzzzz",
        "0123456789abcdef",
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_field_error(&reply, "uid", &[INVALID_VALUE]);
}

async fn reset_confirm_errors_use_drf_shapes(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    app.register("ada@example.com").await;
    let (uid, token) = request_reset_link(&app, "ada@example.com", 1).await;

    // A malformed uid (whatever the token).
    for bad_uid in ["-1", "!!", "ä"] {
        let reply = confirm_reset(&app, bad_uid, &token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_field_error(&reply, "uid", &[INVALID_VALUE]);
    }
    // A well-formed uid of no user is answered as a real user's with a wrong token, so ids
    // that exist cannot be told from ones that do not (account.prevent_enumeration).
    let reply = confirm_reset(&app, "zzzzzz", &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_field_error(&reply, "token", &[INVALID_VALUE]);
    // A real uid with a wrong token.
    let forged = "0".repeat(token.len());
    for bad_token in [forged.as_str(), "x", &token[..token.len() - 1]] {
        let reply = confirm_reset(&app, &uid, bad_token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_field_error(&reply, "token", &[INVALID_VALUE]);
    }
    // Another user's uid with this token.
    app.register("bob@example.com").await;
    let bob = app.stored_user("bob@example.com").await;
    let crossed = confirm_reset(&app, &base36(bob.id.0), &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_field_error(&crossed, "token", &[INVALID_VALUE]);

    // A live link with passwords that do not match, or that a validator refuses.
    let mismatch = confirm_reset(&app, &uid, &token, NEW_PASSWORD, "something else entirely").await;
    assert_field_error(&mismatch, "new_password2", &[MISMATCH]);
    let weak = confirm_reset(&app, &uid, &token, "1234", "1234").await;
    assert_field_error(
        &weak,
        "new_password2",
        &[
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ],
    );
    let similar = confirm_reset(&app, &uid, &token, "ada@example.com", "ada@example.com").await;
    assert_field_error(
        &similar,
        "new_password2",
        &["The password is too similar to the email address."],
    );
    let missing = app
        .post(
            "password/reset/confirm/",
            json!({"uid": uid, "token": token}),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(
        missing.body,
        json!({"new_password1": ["This field is required."], "new_password2": ["This field is required."]})
    );

    // None of that used the link up or changed the password.
    app.login_key("ada@example.com", PASSWORD).await;
    let done = confirm_reset(&app, &uid, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_detail(&done, 200, RESET_DONE);
    app.login_key("ada@example.com", NEW_PASSWORD).await;
}

async fn a_reset_link_used_twice_at_once_works_once(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    app.register("ada@example.com").await;
    let (uid, token) = request_reset_link(&app, "ada@example.com", 1).await;
    let passwords: Vec<String> = (0..4)
        .map(|n| format!("racing passphrase number {n}"))
        .collect();
    let replies = join_all(
        passwords
            .iter()
            .map(|p| confirm_reset(&app, &uid, &token, p, p)),
    )
    .await;
    let winners: Vec<&String> = replies
        .iter()
        .zip(&passwords)
        .filter(|(reply, _)| reply.status == 200)
        .map(|(_, password)| password)
        .collect();
    assert_eq!(winners.len(), 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_field_error(reply, "token", &[INVALID_VALUE]);
    }
    app.login_key("ada@example.com", winners[0]).await;
    assert_eq!(
        outbox_of_kind(&app, "password_changed").await.len(),
        1,
        "one reset, one notice"
    );
}

async fn an_expired_reset_link_is_refused(backend: Backend) {
    let app = spawn(backend, EmailVerification::None).await;
    let token = app.register("ada@example.com").await;
    let (uid, reset_token) = request_reset_link(&app, "ada@example.com", 1).await;
    expire_all_reset_tokens(&app).await;

    let reply = confirm_reset(&app, &uid, &reset_token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_field_error(&reply, "token", &[INVALID_VALUE]);
    app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(
        app.get("user/", Some(&token)).await.status,
        200,
        "nothing revoked"
    );
    assert!(
        outbox_of_kind(&app, "password_changed").await.is_empty(),
        "no notice for a refused reset"
    );
}

// ---------------------------------------------------------------------------------------------
// Enumeration prevention at signup
// ---------------------------------------------------------------------------------------------

async fn mandatory_signup_with_a_taken_email_answers_as_new_and_mails_the_owner(backend: Backend) {
    let app = spawn(backend, EmailVerification::Mandatory).await;
    let first = register_reply(&app, "ada@example.com", PASSWORD).await;
    let taken = register_reply(&app, " ADA@Example.com ", "an intruder's passphrase").await;
    let fresh = register_reply(&app, "bob@example.com", PASSWORD).await;
    for reply in [&first, &taken, &fresh] {
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.body, json!({"detail": VERIFICATION_SENT}));
    }
    assert_eq!(taken.text, fresh.text, "byte for byte");

    assert_eq!(
        user::Entity::find()
            .filter(user::Column::Email.eq("ada@example.com"))
            .count(&app.db)
            .await
            .unwrap(),
        1,
        "no second account"
    );
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 2);

    let mail = all_delivered(&app).await;
    assert_eq!(mail.len(), 3, "two confirmations and one notice");
    let to_ada: Vec<&ReceivedMail> = mail
        .iter()
        .filter(|m| m.to == ["ada@example.com"])
        .collect();
    let mut subjects: Vec<&str> = to_ada.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, [EXISTS_SUBJECT, CONFIRM_SUBJECT]);
    let notice = *to_ada.iter().find(|m| m.subject == EXISTS_SUBJECT).unwrap();
    let confirmation = *to_ada
        .iter()
        .find(|m| m.subject == CONFIRM_SUBJECT)
        .unwrap();
    let link = checked_link(notice, PUBLIC_URL);
    assert_eq!(link.trim_end_matches('/'), PUBLIC_URL);
    assert!(
        notice
            .text
            .contains("an account using that email address already exists"),
        "{}",
        notice.text
    );

    // The owner's account is untouched: their password, not the intruder's, logs in.
    let key = key_from(&checked_link(confirmation, VERIFY_PREFIX), VERIFY_PREFIX);
    assert_detail(&verify(&app, &key).await, 200, OK);
    app.login_key("ada@example.com", PASSWORD).await;
    let intruder = app
        .login("ada@example.com", "an intruder's passphrase")
        .await;
    assert_eq!(
        intruder.body,
        json!({"non_field_errors": [BAD_CREDENTIALS]})
    );
}

async fn taken_email_is_refused_when_enumeration_is_not_hidden(backend: Backend) {
    let cases = [
        (EmailVerification::Optional, true),
        (EmailVerification::None, true),
        (EmailVerification::Mandatory, false),
    ];
    for (verification, prevent_enumeration) in cases {
        let app = TestApp::spawn_with(backend.clone(), |config| {
            frontend_links(config);
            config.account.email_verification = verification;
            config.account.prevent_enumeration = prevent_enumeration;
        })
        .await;
        let first = register_reply(&app, "ada@example.com", PASSWORD).await;
        assert_eq!(first.status, 201, "{verification:?}: {}", first.text);
        let queued = app.outbox_rows().await.len();

        let taken = register_reply(&app, "Ada@Example.com", "another fine passphrase").await;
        assert_eq!(taken.status, 400, "{verification:?}: {}", taken.text);
        assert_eq!(
            taken.body,
            json!({"email": [EMAIL_TAKEN]}),
            "{verification:?}"
        );
        assert_eq!(
            app.outbox_rows().await.len(),
            queued,
            "{verification:?}: nothing mailed for a refused signup"
        );
        assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// The body with every occurrence of `link` replaced, for comparing two messages.
fn without(body: &str, link: &str) -> String {
    body.replace(link, "LINK")
}

async fn a_subject_override_changes_only_the_subject(backend: Backend) {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("email_confirmation_subject.txt"),
        "Welcome to {{ site_name }}, {{ user.username }}: one more step\n",
    )
    .unwrap();
    let custom = TestApp::spawn_with(backend.clone(), |config| {
        frontend_links(config);
        config.email.templates_dir = Some(templates.path().to_owned());
    })
    .await;
    let standard = spawn(backend, EmailVerification::Optional).await;

    for app in [&custom, &standard] {
        app.register("ada@example.com").await;
        request_reset(app, "ada@example.com").await;
    }
    let custom_mail = custom.delivered(2).await;
    let standard_mail = standard.delivered(2).await;

    let confirmation = |mail: &[ReceivedMail]| {
        mail.iter()
            .find(|m| m.subject != RESET_SUBJECT)
            .cloned()
            .expect("a confirmation")
    };
    let (ours, theirs) = (confirmation(&custom_mail), confirmation(&standard_mail));
    assert_eq!(
        ours.subject,
        "[Tessera] Welcome to Tessera, ada: one more step"
    );
    assert_eq!(theirs.subject, CONFIRM_SUBJECT);
    let our_link = checked_link(&ours, VERIFY_PREFIX);
    let their_link = checked_link(&theirs, VERIFY_PREFIX);
    assert_eq!(
        without(&ours.text, &our_link),
        without(&theirs.text, &their_link),
        "the text body is the built-in one"
    );
    assert_eq!(
        without(&ours.html, &our_link),
        without(&theirs.html, &their_link),
        "the HTML body is the built-in one"
    );
    // Other kinds keep their built-in subject.
    assert!(
        custom_mail.iter().any(|m| m.subject == RESET_SUBJECT),
        "{:?}",
        custom_mail.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    // And the overridden key still confirms.
    assert_detail(
        &verify(&custom, &key_from(&our_link, VERIFY_PREFIX)).await,
        200,
        OK,
    );
}

async fn html_bodies_escape_user_values_and_text_bodies_do_not(backend: Backend) {
    // The built-in templates show no first name, so the reset templates are overridden to
    // show it; the built-in ones are checked with a site name full of markup.
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("password_reset_message.html"),
        "<!DOCTYPE html>\n<p>Dear {{ user.first_name }},</p>\n\
         <p><a href=\"{{ password_reset_url }}\">Reset</a></p>\n",
    )
    .unwrap();
    std::fs::write(
        templates.path().join("password_reset_message.txt"),
        "Dear {{ user.first_name }},\n\nReset at {{ password_reset_url }}\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(backend, |config| {
        config.public_url = PUBLIC_URL.parse().unwrap();
        config.email.site_name = "Tom & Jerry's <Shop>".parse().unwrap();
        config.email.templates_dir = Some(templates.path().to_owned());
        // A query string: `&` must become `&amp;` inside the HTML attribute.
        config.frontend.password_reset_url =
            Some("https://app.example.com/reset?uid={uid}&token={token}".into());
    })
    .await;
    let token = app.register("ada@example.com").await;

    // Built-in confirmation template.
    let confirmation = &app.delivered(1).await[0];
    assert!(
        confirmation
            .html
            .contains("Hello from Tom &amp; Jerry&#x27;s &lt;Shop&gt;!"),
        "{}",
        confirmation.html
    );
    assert!(
        !confirmation.html.contains("<Shop>"),
        "{}",
        confirmation.html
    );
    assert!(
        confirmation
            .text
            .contains("Hello from Tom & Jerry's <Shop>!"),
        "{}",
        confirmation.text
    );

    let patched = app
        .send(
            app.client
                .patch(app.api("user/"))
                .header("Authorization", format!("Token {token}"))
                .json(&json!({"first_name": "<b>x</b>"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["first_name"], "<b>x</b>");

    request_reset(&app, "ada@example.com").await;
    let reset = delivered_with_subject(&app, 2, RESET_SUBJECT).await;
    let reset = &reset[0];
    assert!(
        reset.html.contains("Dear &lt;b&gt;x&lt;/b&gt;,"),
        "{}",
        reset.html
    );
    assert!(!reset.html.contains("<b>"), "{}", reset.html);
    assert!(reset.text.contains("Dear <b>x</b>,"), "{}", reset.text);

    let link = reset.first_link().expect("a link in the text part");
    assert!(
        link.starts_with("https://app.example.com/reset?uid="),
        "{link}"
    );
    assert!(
        reset
            .html
            .contains(&format!("href=\"{}\"", link.replace('&', "&amp;"))),
        "{}",
        reset.html
    );
    let query = link.split_once('?').unwrap().1;
    let (uid, token) = query
        .strip_prefix("uid=")
        .and_then(|q| q.split_once("&token="))
        .unwrap_or_else(|| panic!("uid and token in {link}"));
    assert_detail(
        &confirm_reset(&app, uid, token, NEW_PASSWORD, NEW_PASSWORD).await,
        200,
        RESET_DONE,
    );
}
