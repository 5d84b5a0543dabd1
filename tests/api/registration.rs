//! `registration/`: accounts are created, usernames generated, every invalid input explained.

use crate::support::{Backend, PASSWORD, TestApp};
use futures_util::future::join_all;
use sea_orm::EntityTrait;
use serde_json::json;
use tessera::config::EmailVerification;

on_each_backend!(
    registration_returns_a_working_token,
    email_only_signup_generates_a_unique_username,
    missing_fields_are_all_reported,
    invalid_email_and_weak_password_are_reported_together,
    mismatched_passwords_are_a_non_field_error,
    password_validators_use_djangos_messages,
    taken_email_is_refused_case_insensitively,
    one_mailbox_holds_one_account_whatever_its_spelling,
    username_rules_apply_at_signup,
    mandatory_verification_withholds_the_credential,
    mandatory_verification_hides_taken_addresses,
    concurrent_signups_for_one_email_create_one_account,
    form_encoded_signup_works,
);

async fn registration_returns_a_working_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "  Ada@Example.COM ", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let key = reply.body["key"].as_str().unwrap();
    assert_eq!(key.len(), 40);
    assert!(
        key.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        reply.body.as_object().unwrap().len(),
        1,
        "only the key: {}",
        reply.text
    );

    let me = app.get("user/", Some(key)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        me.body["email"], "ada@example.com",
        "stored trimmed and lowercased"
    );
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["first_name"], "");
    assert!(me.body["pk"].is_i64());
}

async fn email_only_signup_generates_a_unique_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.register("sam@one.example").await;
    let second = app.register("Sam@two.example").await;
    let explicit = app
        .post(
            "registration/",
            json!({"email": "x@three.example", "username": "sam3", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(explicit.status, 201, "{}", explicit.text);
    let third = app.register("sam@four.example").await;
    let name = |key: String| {
        let app = &app;
        async move {
            app.get("user/", Some(&key)).await.body["username"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(name(first).await, "sam");
    assert_eq!(name(second).await, "sam2");
    // sam3 is taken by an explicit choice, so the next generated one skips it.
    assert_eq!(name(third).await, "sam4");
}

async fn missing_fields_are_all_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.post("registration/", json!({})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({
            "email": ["This field is required."],
            "password1": ["This field is required."],
            "password2": ["This field is required."],
        })
    );
    let blank = app
        .post(
            "registration/",
            json!({"email": "", "password1": "", "password2": PASSWORD}),
        )
        .await;
    assert_eq!(
        blank.body,
        json!({"email": ["This field may not be blank."], "password1": ["This field may not be blank."]})
    );
}

async fn invalid_email_and_weak_password_are_reported_together(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "not-an-email", "password1": "1234", "password2": "1234"}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["email"], json!(["Enter a valid email address."]));
    assert_eq!(
        reply.body["password1"],
        json!([
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric."
        ])
    );
}

async fn mismatched_passwords_are_a_non_field_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "a@example.com", "password1": PASSWORD, "password2": "something else entirely"}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({"non_field_errors": ["The two password fields didn't match."]})
    );
    // Nothing was created: the address is still free.
    app.register("a@example.com").await;
}

async fn password_validators_use_djangos_messages(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.account.password_min_length = 12).await;
    let cases = [
        (
            "password",
            vec![
                "This password is too short. It must contain at least 12 characters.",
                "This password is too common.",
            ],
        ),
        ("98765432109876", vec!["This password is entirely numeric."]),
        (
            "margaret.hamilton",
            vec!["The password is too similar to the email address."],
        ),
    ];
    for (password, expected) in cases {
        let reply = app
            .post(
                "registration/",
                json!({"email": "margaret.hamilton@example.com", "password1": password, "password2": password}),
            )
            .await;
        assert_eq!(reply.status, 400, "{password}: {}", reply.text);
        assert_eq!(reply.body, json!({"password1": expected}), "{password}");
    }
}

async fn taken_email_is_refused_case_insensitively(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("grace@example.com").await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "GRACE@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({"email": ["User is already registered with this e-mail address."]})
    );
}

/// An internationalised domain is one mailbox in Unicode or in A-labels (stored in A-labels);
/// a quoted local part is refused, since `"idn"@` is the mailbox `idn@` too.
async fn one_mailbox_holds_one_account_whatever_its_spelling(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("idn@exämple.com").await;
    let me = app.get("user/", Some(&key)).await;
    assert_eq!(me.body["email"], "idn@xn--exmple-cua.com", "{}", me.text);
    for same in ["idn@xn--exmple-cua.com", "IDN@EXÄMPLE.COM"] {
        let reply = app
            .post(
                "registration/",
                json!({"email": same, "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await;
        assert_eq!(
            reply.body,
            json!({"email": ["User is already registered with this e-mail address."]}),
            "{same}"
        );
    }
    let quoted = app
        .post(
            "registration/",
            json!({"email": "\"idn\"@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(quoted.status, 400);
    assert_eq!(
        quoted.body,
        json!({"email": ["Enter a valid email address."]})
    );
    // Any spelling logs in to the one account.
    for spelling in ["idn@exämple.com", "idn@xn--exmple-cua.com"] {
        assert_eq!(
            app.login(spelling, PASSWORD).await.status,
            200,
            "{spelling}"
        );
    }
    let users = entity::user::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(users.len(), 1);
}

async fn username_rules_apply_at_signup(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signup = |email: &'static str, username: &'static str| {
        let app = &app;
        async move {
            app.post(
                "registration/",
                json!({"email": email, "username": username, "password1": PASSWORD, "password2": PASSWORD}),
            )
            .await
        }
    };
    assert_eq!(signup("one@example.com", "Linus").await.status, 201);
    let taken = signup("two@example.com", "linus").await;
    assert_eq!(
        taken.body,
        json!({"username": ["A user with that username already exists."]})
    );
    let invalid = signup("three@example.com", "no spaces allowed").await;
    assert_eq!(
        invalid.body,
        json!({"username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."]})
    );
    let empty = signup("four@example.com", "").await;
    assert_eq!(
        empty.status, 201,
        "an empty username means none: {}",
        empty.text
    );
}

async fn mandatory_verification_withholds_the_credential(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.account.email_verification = EmailVerification::Mandatory
    })
    .await;
    let reply = app
        .post(
            "registration/",
            json!({"email": "m@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, json!({"detail": "Verification e-mail sent."}));
    // The right password is not enough until the address is confirmed.
    let login = app.login("m@example.com", PASSWORD).await;
    assert_eq!(login.status, 400);
    assert_eq!(
        login.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );
    // A wrong password does not reveal the pending verification.
    let wrong = app.login("m@example.com", "a wrong password").await;
    assert_eq!(
        wrong.body,
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
}

async fn mandatory_verification_hides_taken_addresses(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.account.email_verification = EmailVerification::Mandatory
    })
    .await;
    let body = json!({"email": "taken@example.com", "password1": PASSWORD, "password2": PASSWORD});
    let first = app.post("registration/", body.clone()).await;
    let second = app.post("registration/", body).await;
    assert_eq!((first.status, &first.body), (second.status, &second.body));
}

async fn concurrent_signups_for_one_email_create_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"email": "race@example.com", "password1": PASSWORD, "password2": PASSWORD});
    let replies = join_all((0..6).map(|_| app.post("registration/", body.clone()))).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(
            reply.body,
            json!({"email": ["User is already registered with this e-mail address."]})
        );
    }
}

async fn form_encoded_signup_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post_form(
            "registration",
            &[
                ("email", "form@example.com"),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(reply.body["key"].is_string());
}
