//! `password/change/`: the new password works, other credentials die, Django's messages.

use serde_json::{Value, json};

use crate::support::{Backend, PASSWORD, Reply, TestApp, assert_invalid_token, new_passwords};

on_each_backend!(
    change_sets_the_new_password,
    change_ends_the_other_tokens_but_not_the_current_one,
    logout_on_password_change_ends_the_current_token_too,
    mismatch_is_reported_on_new_password2,
    validators_report_on_new_password2,
    password_similar_to_the_email_is_refused,
    wrong_old_password_is_refused_even_when_not_required,
    right_old_password_is_accepted_when_not_required,
    old_password_is_required_when_enabled,
    missing_new_passwords_are_required,
    change_needs_credentials,
    form_encoded_change_works,
);

const NEW_PASSWORD: &str = "a brand new passphrase";
const SAVED: &str = "New password has been saved.";
const MISMATCH: &str = "The two password fields didn\u{2019}t match.";
const WRONG_OLD: &str = "Your old password was entered incorrectly. Please enter it again.";
const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";

async fn change(app: &TestApp, token: &str, body: Value) -> Reply {
    app.post_with_token("password/change/", token, body).await
}

/// After a refused change: the old password still logs in, the new one does not, and the
/// given tokens still work.
async fn assert_nothing_changed(app: &TestApp, email: &str, tokens: &[&str]) {
    app.login_key(email, PASSWORD).await;
    let new = app.login(email, NEW_PASSWORD).await;
    assert_eq!(
        new.status, 400,
        "the new password was not set: {}",
        new.text
    );
    for token in tokens {
        let me = app.get("user/", Some(token)).await;
        assert_eq!(me.status, 200, "token still valid: {}", me.text);
    }
}

async fn change_sets_the_new_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let reply = change(&app, &key, new_passwords(NEW_PASSWORD)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"detail": SAVED}));

    let key = app.login_key("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    let old = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(old.status, 400, "{}", old.text);
    assert_eq!(old.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));

    // No trailing slash works too.
    let again = app
        .post_with_token("password/change", &key, new_passwords(PASSWORD))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    app.login_key("ada@example.com", PASSWORD).await;
}

async fn change_ends_the_other_tokens_but_not_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let registration = app.register("ada@example.com").await;
    let laptop = app.login_key("ada@example.com", PASSWORD).await;
    let phone = app.login_key("ada@example.com", PASSWORD).await;
    // Another user's token is none of this change's business.
    let bystander = app.register("grace@example.com").await;

    let reply = change(&app, &laptop, new_passwords(NEW_PASSWORD)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let me = app.get("user/", Some(&laptop)).await;
    assert_eq!(me.status, 200, "the current token lives: {}", me.text);
    assert_invalid_token(&app.get("user/", Some(&registration)).await);
    assert_invalid_token(&app.get("user/", Some(&phone)).await);
    assert_eq!(app.get("user/", Some(&bystander)).await.status, 200);
}

async fn logout_on_password_change_ends_the_current_token_too(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth.logout_on_password_change = true).await;
    let other = app.register("ada@example.com").await;
    let current = app.login_key("ada@example.com", PASSWORD).await;
    let bystander = app.register("grace@example.com").await;

    let reply = change(&app, &current, new_passwords(NEW_PASSWORD)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"detail": SAVED}));

    assert_invalid_token(&app.get("user/", Some(&current)).await);
    assert_invalid_token(&app.get("user/", Some(&other)).await);
    assert_eq!(app.get("user/", Some(&bystander)).await.status, 200);
    app.login_key("ada@example.com", NEW_PASSWORD).await;
}

async fn mismatch_is_reported_on_new_password2(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let other = app.login_key("ada@example.com", PASSWORD).await;
    let reply = change(
        &app,
        &key,
        json!({"new_password1": NEW_PASSWORD, "new_password2": "a different passphrase"}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({"new_password2": [MISMATCH]}));
    // Byte for byte: RIGHT SINGLE QUOTATION MARK, U+2019, as Django's SetPasswordForm.
    assert!(
        reply.text.contains("didn\u{2019}t") || reply.text.contains("didn\\u2019t"),
        "{}",
        reply.text
    );
    assert_nothing_changed(&app, "ada@example.com", &[&key, &other]).await;
}

async fn validators_report_on_new_password2(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let other = app.login_key("ada@example.com", PASSWORD).await;
    let cases = [
        (
            "1234",
            vec![
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ],
        ),
        (
            "short",
            vec!["This password is too short. It must contain at least 8 characters."],
        ),
        ("password", vec!["This password is too common."]),
        ("98765432109876", vec!["This password is entirely numeric."]),
    ];
    for (password, expected) in cases {
        let reply = change(&app, &key, new_passwords(password)).await;
        assert_eq!(reply.status, 400, "{password}: {}", reply.text);
        assert_eq!(reply.body, json!({"new_password2": expected}), "{password}");
    }
    assert_nothing_changed(&app, "ada@example.com", &[&key, &other]).await;
}

async fn password_similar_to_the_email_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "margaret.hamilton@example.com", "username": "mh", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let key = reply.body["key"].as_str().unwrap().to_owned();
    let reply = change(&app, &key, new_passwords("margaret.hamilton")).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"new_password2": ["The password is too similar to the email address."]})
    );
    // Django checks the username first: a generated `margaret.hamilton` is what matches.
    let key = app.register("grace.hopper@example.com").await;
    let reply = change(&app, &key, new_passwords("grace.hopper")).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"new_password2": ["The password is too similar to the username."]})
    );
    app.login_key("margaret.hamilton@example.com", PASSWORD)
        .await;
    app.login_key("grace.hopper@example.com", PASSWORD).await;
}

async fn wrong_old_password_is_refused_even_when_not_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let other = app.login_key("ada@example.com", PASSWORD).await;
    let reply = change(
        &app,
        &key,
        json!({"old_password": "not my password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({"old_password": [WRONG_OLD]}));
    assert_nothing_changed(&app, "ada@example.com", &[&key, &other]).await;
}

async fn right_old_password_is_accepted_when_not_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let reply = change(
        &app,
        &key,
        json!({"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"detail": SAVED}));
    app.login_key("ada@example.com", NEW_PASSWORD).await;
}

async fn old_password_is_required_when_enabled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth.old_password_field_enabled = true).await;
    let key = app.register("ada@example.com").await;
    let other = app.login_key("ada@example.com", PASSWORD).await;

    let missing = change(&app, &key, new_passwords(NEW_PASSWORD)).await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(
        missing.body,
        json!({"old_password": ["This field is required."]})
    );
    let wrong = change(
        &app,
        &key,
        json!({"old_password": "not my password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    assert_eq!(wrong.body, json!({"old_password": [WRONG_OLD]}));
    assert_nothing_changed(&app, "ada@example.com", &[&key, &other]).await;

    let right = change(
        &app,
        &key,
        json!({"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.text);
    assert_eq!(right.body, json!({"detail": SAVED}));
    app.login_key("ada@example.com", NEW_PASSWORD).await;
    assert_invalid_token(&app.get("user/", Some(&other)).await);
}

async fn missing_new_passwords_are_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let reply = change(&app, &key, json!({})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "new_password1": ["This field is required."],
            "new_password2": ["This field is required."],
        })
    );
    let blank = change(
        &app,
        &key,
        json!({"new_password1": "", "new_password2": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(blank.status, 400, "{}", blank.text);
    assert_eq!(
        blank.body,
        json!({"new_password1": ["This field may not be blank."]})
    );
    assert_nothing_changed(&app, "ada@example.com", &[&key]).await;
}

async fn change_needs_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let reply = app
        .post("password/change/", new_passwords(NEW_PASSWORD))
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(reply.header("www-authenticate"), Some("Token"));
    let bogus = change(
        &app,
        "0123456789abcdef0123456789abcdef01234567",
        new_passwords(NEW_PASSWORD),
    )
    .await;
    assert_invalid_token(&bogus);
    assert_nothing_changed(&app, "ada@example.com", &[]).await;
}

async fn form_encoded_change_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let request = app
        .client
        .post(app.api("password/change/"))
        .header("Authorization", format!("Token {key}"))
        .form(&[
            ("new_password1", NEW_PASSWORD),
            ("new_password2", NEW_PASSWORD),
        ]);
    let reply = app.send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"detail": SAVED}));
    app.login_key("ada@example.com", NEW_PASSWORD).await;
}
