//! `user/`: the user object, DRF's token-authentication errors, PUT and PATCH rules.

use entity::user;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

use crate::support::{Backend, PASSWORD, Reply, TestApp};

on_each_backend!(
    get_returns_exactly_the_user_object,
    no_credentials_is_unauthorized,
    token_keyword_without_key_is_unauthorized,
    token_with_spaces_is_unauthorized,
    other_schemes_count_as_no_credentials,
    unknown_token_is_unauthorized,
    put_with_own_username_in_any_case_works,
    put_requires_username,
    put_and_patch_cannot_change_email_or_pk,
    patch_changes_only_what_is_sent,
    username_taken_by_another_user_is_refused,
    invalid_username_is_refused,
    names_over_150_characters_are_refused,
    inactive_users_token_is_refused,
    update_without_credentials_is_unauthorized,
);

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const TAKEN: &str = "A user with that username already exists.";
const INVALID_USERNAME: &str = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";

async fn put(app: &TestApp, token: &str, body: Value) -> Reply {
    app.send(
        app.client
            .put(app.api("user/"))
            .header("Authorization", format!("Token {token}"))
            .json(&body),
    )
    .await
}

async fn patch(app: &TestApp, token: &str, body: Value) -> Reply {
    app.send(
        app.client
            .patch(app.api("user/"))
            .header("Authorization", format!("Token {token}"))
            .json(&body),
    )
    .await
}

async fn get_with_header(app: &TestApp, authorization: &str) -> Reply {
    app.send(
        app.client
            .get(app.api("user/"))
            .header("Authorization", authorization),
    )
    .await
}

fn assert_unauthorized(reply: &Reply, detail: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.body, json!({ "detail": detail }));
    assert_eq!(reply.header("www-authenticate"), Some("Token"));
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{:?}",
        reply.headers
    );
}

async fn get_returns_exactly_the_user_object(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register_with_username("ada@example.com", "Ada").await;
    let stored = app.stored_user("ada@example.com").await;
    let reply = app.get("user/", Some(&key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "pk": stored.id,
            "username": "Ada",
            "email": "ada@example.com",
            "first_name": "",
            "last_name": "",
        })
    );
    assert!(reply.body["pk"].is_i64(), "pk is a JSON integer");
    // The path without its trailing slash answers the same.
    let bare = app.get("user", Some(&key)).await;
    assert_eq!((bare.status, &bare.body), (200, &reply.body));
}

async fn no_credentials_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.get("user/", None).await;
    assert_unauthorized(&reply, NOT_PROVIDED);
}

async fn token_keyword_without_key_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for header in ["Token", "token", "Token   "] {
        let reply = get_with_header(&app, header).await;
        assert_unauthorized(&reply, "Invalid token header. No credentials provided.");
    }
}

async fn token_with_spaces_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    for header in ["Token a b".to_owned(), format!("Token {key} extra")] {
        let reply = get_with_header(&app, &header).await;
        assert_unauthorized(
            &reply,
            "Invalid token header. Token string should not contain spaces.",
        );
    }
}

async fn other_schemes_count_as_no_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    for header in [
        "Bearer xyz".to_owned(),
        format!("Bearer {key}"),
        "Basic YWRhOnB3".to_owned(),
    ] {
        let reply = get_with_header(&app, &header).await;
        assert_unauthorized(&reply, NOT_PROVIDED);
    }
}

async fn unknown_token_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let mut wrong = key.clone();
    wrong.replace_range(..1, if key.starts_with('0') { "1" } else { "0" });
    for token in [
        wrong.as_str(),
        "not-a-token",
        "0123456789abcdef0123456789abcdef01234567",
    ] {
        let reply = app.get("user/", Some(token)).await;
        assert_unauthorized(&reply, "Invalid token.");
    }
}

async fn put_with_own_username_in_any_case_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app
        .register_with_username("linus@example.com", "Linus")
        .await;
    let pk = app.stored_user("linus@example.com").await.id.0;

    let same = put(&app, &key, json!({"username": "Linus"})).await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.body["username"], "Linus");

    let other_case = put(
        &app,
        &key,
        json!({"username": "LINUS", "first_name": "Linus", "last_name": "Torvalds"}),
    )
    .await;
    assert_eq!(other_case.status, 200, "{}", other_case.text);
    assert_eq!(
        other_case.body,
        json!({"pk": pk, "username": "LINUS", "email": "linus@example.com", "first_name": "Linus", "last_name": "Torvalds"})
    );
    // What PUT answered is what is stored.
    let me = app.get("user/", Some(&key)).await;
    assert_eq!(me.body, other_case.body);
}

async fn put_requires_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register_with_username("ada@example.com", "ada").await;
    let reply = put(&app, &key, json!({"first_name": "Ada"})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, json!({"username": ["This field is required."]}));
    let blank = put(&app, &key, json!({"username": "", "first_name": "Ada"})).await;
    assert_eq!(blank.status, 400, "{}", blank.text);
    assert_eq!(
        blank.body,
        json!({"username": ["This field may not be blank."]})
    );
    // Nothing was applied.
    let me = app.get("user/", Some(&key)).await;
    assert_eq!(me.body["first_name"], "");
    assert_eq!(me.body["username"], "ada");
}

async fn put_and_patch_cannot_change_email_or_pk(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register_with_username("ada@example.com", "ada").await;
    let pk = app.stored_user("ada@example.com").await.id.0;

    let put_reply = put(
        &app,
        &key,
        json!({"username": "ada", "first_name": "Ada", "email": "evil@example.com", "pk": pk + 1000}),
    )
    .await;
    assert_eq!(put_reply.status, 200, "{}", put_reply.text);
    assert_eq!(put_reply.body["pk"], pk);
    assert_eq!(put_reply.body["email"], "ada@example.com");
    assert_eq!(put_reply.body["first_name"], "Ada");

    let patch_reply = patch(
        &app,
        &key,
        json!({"last_name": "Lovelace", "email": "other@example.com", "pk": 0}),
    )
    .await;
    assert_eq!(patch_reply.status, 200, "{}", patch_reply.text);
    assert_eq!(
        patch_reply.body,
        json!({"pk": pk, "username": "ada", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"})
    );

    let stored = app.stored_user("ada@example.com").await;
    assert_eq!(stored.id.0, pk);
    assert_eq!(stored.last_name, "Lovelace");
    // The address still logs in; the ones sent never became an account's.
    app.login_key("ada@example.com", PASSWORD).await;
    for email in ["evil@example.com", "other@example.com"] {
        assert_eq!(app.login(email, PASSWORD).await.status, 400, "{email}");
    }
}

async fn patch_changes_only_what_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register_with_username("ada@example.com", "ada").await;

    let first = patch(&app, &key, json!({"first_name": "Ada"})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["first_name"], "Ada");
    assert_eq!(first.body["last_name"], "");
    assert_eq!(first.body["username"], "ada");

    let last = patch(&app, &key, json!({"last_name": "  Lovelace  "})).await;
    assert_eq!(last.status, 200, "{}", last.text);
    assert_eq!(last.body["first_name"], "Ada", "left as it was");
    assert_eq!(last.body["last_name"], "Lovelace", "trimmed as DRF does");
    assert_eq!(last.body["username"], "ada");

    let empty = patch(&app, &key, json!({})).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body, last.body, "an empty PATCH changes nothing");

    // Blank names are allowed (Django's `blank=True`).
    let cleared = patch(&app, &key, json!({"first_name": ""})).await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.body["first_name"], "");
    assert_eq!(cleared.body["last_name"], "Lovelace");

    let renamed = patch(&app, &key, json!({"username": "countess"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["username"], "countess");
    assert_eq!(
        app.stored_user("ada@example.com").await.username,
        "countess"
    );
}

async fn username_taken_by_another_user_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_with_username("linus@example.com", "Linus")
        .await;
    let key = app.register_with_username("ada@example.com", "ada").await;

    for taken in ["Linus", "linus", "LINUS"] {
        let reply = patch(&app, &key, json!({"username": taken, "first_name": "X"})).await;
        assert_eq!(reply.status, 400, "{taken}: {}", reply.text);
        assert_eq!(reply.body, json!({"username": [TAKEN]}), "{taken}");
        let reply = put(&app, &key, json!({"username": taken})).await;
        assert_eq!(reply.status, 400, "{taken}: {}", reply.text);
        assert_eq!(reply.body, json!({"username": [TAKEN]}), "{taken}");
    }
    let stored = app.stored_user("ada@example.com").await;
    assert_eq!(stored.username, "ada");
    assert_eq!(
        stored.first_name, "",
        "nothing applied from a refused update"
    );
}

async fn invalid_username_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register_with_username("ada@example.com", "ada").await;
    for invalid in ["no spaces", "semi;colon", "slash/ed", "ada!"] {
        let reply = patch(&app, &key, json!({"username": invalid})).await;
        assert_eq!(reply.status, 400, "{invalid}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({"username": [INVALID_USERNAME]}),
            "{invalid}"
        );
    }
    // Django's validator allows these characters, Unicode letters included.
    let fine = patch(&app, &key, json!({"username": "ada.l+1@x-y_z"})).await;
    assert_eq!(fine.status, 200, "{}", fine.text);
    let unicode = patch(&app, &key, json!({"username": "Zoë"})).await;
    assert_eq!(unicode.status, 200, "{}", unicode.text);
    assert_eq!(unicode.body["username"], "Zoë");
}

async fn names_over_150_characters_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register_with_username("ada@example.com", "ada").await;
    let too_long = "é".repeat(151);
    let longest = "é".repeat(150);

    let reply = patch(
        &app,
        &key,
        json!({"first_name": too_long, "last_name": too_long}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "first_name": ["Ensure this field has no more than 150 characters."],
            "last_name": ["Ensure this field has no more than 150 characters."],
        })
    );
    let long_username = put(&app, &key, json!({"username": "u".repeat(151)})).await;
    assert_eq!(long_username.status, 400, "{}", long_username.text);
    assert_eq!(
        long_username.body,
        json!({"username": ["Ensure this field has no more than 150 characters."]})
    );
    assert_eq!(app.stored_user("ada@example.com").await.first_name, "");

    // Exactly 150 characters (300 bytes) is fine: the limit counts characters.
    let ok = patch(&app, &key, json!({"first_name": longest})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["first_name"], longest.as_str());
}

async fn inactive_users_token_is_refused(backend: Backend) {
    // The row is changed behind the server's back, so the cache is off: this is the database's
    // rule. Deactivation as it happens (with a revocation) is in credential_cache.rs.
    let app = TestApp::spawn_with(backend, |c| c.credential_cache.capacity = 0).await;
    let key = app.register("ada@example.com").await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);

    let mut active: user::ActiveModel = app.stored_user("ada@example.com").await.into();
    active.is_active = Set(false);
    active.update(&app.db).await.unwrap();

    // DRF's TokenAuthentication answer for a deactivated account.
    let reply = app.get("user/", Some(&key)).await;
    assert_unauthorized(&reply, "User inactive or deleted.");
    let update = patch(&app, &key, json!({"first_name": "Ada"})).await;
    assert_eq!(update.status, 401, "{}", update.text);
    assert_eq!(app.stored_user("ada@example.com").await.first_name, "");
}

async fn update_without_credentials_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    for request in [
        app.client
            .put(app.api("user/"))
            .json(&json!({"username": "x"})),
        app.client
            .patch(app.api("user/"))
            .json(&json!({"first_name": "x"})),
    ] {
        let reply = app.send(request).await;
        assert_unauthorized(&reply, NOT_PROVIDED);
    }
    assert_eq!(app.stored_user("ada@example.com").await.first_name, "");
}
