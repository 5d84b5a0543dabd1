//! `login/` and `logout/` in token mode: per-device keys, identical failures, DRF's messages,
//! expiry, hashed storage and rehashing of outdated password hashes.

use chrono::{Duration, Utc};
use entity::{auth_token, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use tessera::Config;
use tessera::config::LoginMethod;

use crate::support::{Backend, PASSWORD, Reply, TestApp, assert_invalid_token, sha256_hex};

on_each_backend!(
    login_returns_a_new_key_per_device,
    failed_logins_are_indistinguishable,
    login_without_email_asks_for_email_and_password,
    login_without_password_is_a_field_error,
    login_with_malformed_email_is_a_field_error,
    login_email_is_trimmed_and_case_insensitive,
    username_field_does_not_replace_email_by_default,
    username_login_method,
    email_or_username_login_methods,
    stale_authorization_header_does_not_block_login,
    form_encoded_login_works,
    login_path_without_trailing_slash_works,
    logout_ends_only_the_presented_token,
    logout_without_token_is_a_bad_request,
    logout_with_invalid_token_is_unauthorized,
    logged_out_token_is_refused,
    expired_token_is_refused,
    tokens_are_stored_as_sha256_digests,
    outdated_password_hash_is_rehashed_on_login,
    current_password_hash_is_left_alone_on_login,
    default_hashing_parameters_are_owasp_argon2id,
);

const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";

fn assert_is_token_key(key: &str) {
    assert_eq!(key.len(), 40, "{key}");
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "40 lowercase hex: {key}"
    );
}

async fn deactivate(app: &TestApp, email: &str) {
    let mut active: user::ActiveModel = app.stored_user(email).await.into();
    active.is_active = Set(false);
    active.update(&app.db).await.unwrap();
}

async fn stored_token(app: &TestApp, key: &str) -> Option<auth_token::Model> {
    auth_token::Entity::find()
        .filter(auth_token::Column::Digest.eq(sha256_hex(key)))
        .one(&app.db)
        .await
        .unwrap()
}

/// The headers of a reply without `Date` (which legitimately differs), comparable.
/// The headers, but the date and the request id (every request has its own).
fn headers_but_date(reply: &Reply) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    headers.sort();
    headers
}

async fn login_methods_app(backend: Backend, methods: Vec<LoginMethod>) -> TestApp {
    TestApp::spawn_with(backend, |c| c.account.login_methods = methods).await
}

async fn login_returns_a_new_key_per_device(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let registration_key = app.register("ada@example.com").await;

    let laptop = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(laptop.status, 200, "{}", laptop.text);
    let laptop_key = laptop.body["key"].as_str().unwrap().to_owned();
    assert_eq!(laptop.body, json!({"key": laptop_key}), "only the key");
    assert_is_token_key(&laptop_key);
    assert!(
        laptop
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );

    let phone_key = app.login_key("ada@example.com", PASSWORD).await;
    assert_is_token_key(&phone_key);
    assert_ne!(laptop_key, phone_key, "every login gets its own key");
    assert_ne!(laptop_key, registration_key);
    assert_ne!(phone_key, registration_key);

    // All of them work at the same time.
    for key in [&registration_key, &laptop_key, &phone_key] {
        let me = app.get("user/", Some(key)).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["email"], "ada@example.com");
    }
}

async fn failed_logins_are_indistinguishable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("known@example.com").await;
    app.register("inactive@example.com").await;
    deactivate(&app, "inactive@example.com").await;

    let wrong_password = app.login("known@example.com", "not the password").await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;
    let inactive = app.login("inactive@example.com", PASSWORD).await;

    assert_eq!(wrong_password.status, 400, "{}", wrong_password.text);
    assert_eq!(
        wrong_password.body,
        json!({"non_field_errors": [BAD_CREDENTIALS]})
    );
    for other in [&unknown_email, &inactive] {
        assert_eq!(other.status, wrong_password.status);
        assert_eq!(other.text, wrong_password.text, "byte-identical bodies");
        assert_eq!(
            headers_but_date(other),
            headers_but_date(&wrong_password),
            "identical headers"
        );
    }
    // The inactive account really has that password: only its state refuses it.
    let mut active: user::ActiveModel = app.stored_user("inactive@example.com").await.into();
    active.is_active = Set(true);
    active.update(&app.db).await.unwrap();
    app.login_key("inactive@example.com", PASSWORD).await;
}

async fn login_without_email_asks_for_email_and_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let expected = json!({"non_field_errors": ["Must include \"email\" and \"password\"."]});
    for body in [
        json!({"password": PASSWORD}),
        json!({"email": "", "password": PASSWORD}),
    ] {
        let reply = app.post("login/", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.body, expected, "{body}");
    }
}

async fn login_without_password_is_a_field_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    for body in [json!({"email": "ada@example.com"}), json!({})] {
        let reply = app.post("login/", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({"password": ["This field is required."]}),
            "{body}"
        );
    }
}

async fn login_with_malformed_email_is_a_field_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post(
            "login/",
            json!({"email": "not-an-email", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"email": ["Enter a valid email address."]})
    );
}

async fn login_email_is_trimmed_and_case_insensitive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    for email in [
        "ADA@Example.COM",
        "  ada@example.com  ",
        " Ada@EXAMPLE.com\t",
    ] {
        let key = app.login_key(email, PASSWORD).await;
        let me = app.get("user/", Some(&key)).await;
        assert_eq!(me.body["email"], "ada@example.com", "{email:?}");
    }
}

async fn username_field_does_not_replace_email_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register_with_username("ada@example.com", "ada").await;
    let reply = app
        .post("login/", json!({"username": "ada", "password": PASSWORD}))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"non_field_errors": ["Must include \"email\" and \"password\"."]})
    );
}

async fn username_login_method(backend: Backend) {
    let app = login_methods_app(backend, vec![LoginMethod::Username]).await;
    app.register_with_username("linus@example.com", "Linus")
        .await;

    for username in ["Linus", "linus", "LINUS"] {
        let reply = app
            .post(
                "login/",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 200, "{username}: {}", reply.text);
        assert_is_token_key(reply.body["key"].as_str().unwrap());
    }

    let wrong = app
        .post(
            "login/",
            json!({"username": "linus", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));

    // The email does not stand in for the username.
    let by_email = app
        .post(
            "login/",
            json!({"email": "linus@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(by_email.status, 400, "{}", by_email.text);
    assert_eq!(
        by_email.body,
        json!({"non_field_errors": ["Must include \"username\" and \"password\"."]})
    );
}

async fn email_or_username_login_methods(backend: Backend) {
    let app = login_methods_app(backend, vec![LoginMethod::Email, LoginMethod::Username]).await;
    app.register_with_username("grace@example.com", "grace")
        .await;
    app.login_key("grace@example.com", PASSWORD).await;
    let by_username = app
        .post("login/", json!({"username": "GRACE", "password": PASSWORD}))
        .await;
    assert_eq!(by_username.status, 200, "{}", by_username.text);
    let neither = app.post("login/", json!({"password": PASSWORD})).await;
    assert_eq!(neither.status, 400);
    assert_eq!(
        neither.body,
        json!({"non_field_errors": ["Must include either \"username\" or \"email\" and \"password\"."]})
    );
}

async fn stale_authorization_header_does_not_block_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let old_key = app.register("ada@example.com").await;
    let logout = app.post_with_token("logout/", &old_key, json!({})).await;
    assert_eq!(logout.status, 200, "{}", logout.text);

    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    for header in [
        format!("Token {old_key}"),
        "Token 0000000000000000000000000000000000000000".to_owned(),
        "Token garbage".to_owned(),
        "Token".to_owned(),
        "Token a b".to_owned(),
        "Bearer whatever".to_owned(),
    ] {
        let request = app
            .client
            .post(app.api("login/"))
            .header("Authorization", &header)
            .json(&body);
        let reply = app.send(request).await;
        assert_eq!(reply.status, 200, "{header:?}: {}", reply.text);
        let key = reply.body["key"].as_str().unwrap();
        assert_eq!(app.get("user/", Some(key)).await.status, 200);
    }
}

async fn form_encoded_login_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let reply = app
        .post_form(
            "login/",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let key = reply.body["key"].as_str().unwrap();
    assert_is_token_key(key);
    assert_eq!(app.get("user/", Some(key)).await.status, 200);

    let missing = app
        .post_form("login/", &[("email", "ada@example.com")])
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        json!({"password": ["This field is required."]})
    );
}

async fn login_path_without_trailing_slash_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let reply = app
        .post(
            "login",
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let key = reply.body["key"].as_str().unwrap().to_owned();
    let logout = app.post_with_token("logout", &key, json!({})).await;
    assert_eq!(logout.status, 200, "{}", logout.text);
    assert_invalid_token(&app.get("user", Some(&key)).await);
}

async fn logout_ends_only_the_presented_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let laptop = app.login_key("ada@example.com", PASSWORD).await;
    let phone = app.login_key("ada@example.com", PASSWORD).await;

    let reply = app.post_with_token("logout/", &laptop, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"detail": "Successfully logged out."}));

    assert_invalid_token(&app.get("user/", Some(&laptop)).await);
    let me = app.get("user/", Some(&phone)).await;
    assert_eq!(
        me.status, 200,
        "the other device stays logged in: {}",
        me.text
    );
    assert!(stored_token(&app, &laptop).await.is_none(), "deleted");
    assert!(stored_token(&app, &phone).await.is_some());
}

async fn logout_without_token_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let expected =
        json!({"detail": "You should be logged in to logout. Check whether the token is passed."});
    let reply = app.post("logout/", json!({})).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body, expected);
    // A bodiless POST, as browsers' fetch() often sends, and another scheme: same answer.
    let bare = app.send(app.client.post(app.api("logout/"))).await;
    assert_eq!((bare.status, &bare.body), (400, &expected), "{}", bare.text);
    let bearer = app
        .send(
            app.client
                .post(app.api("logout/"))
                .header("Authorization", "Bearer abc"),
        )
        .await;
    assert_eq!(
        (bearer.status, &bearer.body),
        (400, &expected),
        "{}",
        bearer.text
    );
}

async fn logout_with_invalid_token_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    for bogus in ["0123456789abcdef0123456789abcdef01234567", "not-a-token"] {
        let reply = app.post_with_token("logout/", bogus, json!({})).await;
        assert_invalid_token(&reply);
    }
    // Nothing was ended by the failed attempts.
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
}

async fn logged_out_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.register("ada@example.com").await;
    let reply = app.post_with_token("logout/", &key, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_invalid_token(&app.get("user/", Some(&key)).await);
    assert_invalid_token(&app.post_with_token("logout/", &key, json!({})).await);
    assert_invalid_token(
        &app.post_with_token(
            "password/change/",
            &key,
            json!({"new_password1": "another long passphrase", "new_password2": "another long passphrase"}),
        )
        .await,
    );
    // The password was not changed through the dead token.
    app.login_key("ada@example.com", PASSWORD).await;
}

async fn expired_token_is_refused(backend: Backend) {
    // The expiry is moved behind the server's back, so the cache is off: this is the
    // database's rule. The cache's own honouring of expiry is in credential_cache.rs.
    let app = TestApp::spawn_with(backend, |c| {
        c.auth.token_ttl_seconds = 3600;
        c.credential_cache.capacity = 0;
    })
    .await;
    app.register("ada@example.com").await;
    let before = Utc::now();
    let expiring = app.login_key("ada@example.com", PASSWORD).await;
    let other = app.login_key("ada@example.com", PASSWORD).await;

    let stored = stored_token(&app, &expiring).await.unwrap();
    let expires_at = stored.expires_at.expect("an expiry is stored");
    assert!(
        expires_at >= before + Duration::seconds(3600 - 5)
            && expires_at <= Utc::now() + Duration::seconds(3600 + 5),
        "about an hour from now: {expires_at}"
    );
    assert_eq!(app.get("user/", Some(&expiring)).await.status, 200);

    let mut active: auth_token::ActiveModel = stored.into();
    active.expires_at = Set(Some(Utc::now() - Duration::seconds(1)));
    active.update(&app.db).await.unwrap();

    assert_invalid_token(&app.get("user/", Some(&expiring)).await);
    assert_invalid_token(&app.post_with_token("logout/", &expiring, json!({})).await);
    assert_eq!(
        app.get("user/", Some(&other)).await.status,
        200,
        "only the expired token is refused"
    );
    // An expired token does not get in the way of logging in again.
    let request = app
        .client
        .post(app.api("login/"))
        .header("Authorization", format!("Token {expiring}"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}));
    assert_eq!(app.send(request).await.status, 200);
}

async fn tokens_are_stored_as_sha256_digests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let registration_key = app.register("ada@example.com").await;
    let login_key = app.login_key("ada@example.com", PASSWORD).await;
    let user = app.stored_user("ada@example.com").await;

    let rows: Vec<Value> = auth_token::Entity::find()
        .filter(auth_token::Column::UserId.eq(user.id))
        .into_json()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "one row per issued token");
    let mut digests: Vec<&str> = rows.iter().map(|r| r["digest"].as_str().unwrap()).collect();
    digests.sort();
    let mut expected = vec![sha256_hex(&registration_key), sha256_hex(&login_key)];
    expected.sort();
    assert_eq!(digests, expected);

    // No column of any token row, nor of the user row, holds a key in clear.
    let user_row = user::Entity::find_by_id(user.id)
        .into_json()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    for row in rows.iter().chain([&user_row]) {
        let text = row.to_string().to_lowercase();
        for key in [&registration_key, &login_key] {
            assert!(!text.contains(key.as_str()), "a key is stored in clear");
        }
    }
}

async fn outdated_password_hash_is_rehashed_on_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let original = app.stored_user("ada@example.com").await.password_hash;
    assert!(
        original.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "the harness's cheap parameters: {original}"
    );

    let (database, mut config) = app.stop().await;
    config.password_hashing.memory_kib = 2048;
    let app = TestApp::start(database, config).await;

    // A failed login does not rewrite the hash.
    let wrong = app.login("ada@example.com", "not the password").await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        app.stored_user("ada@example.com").await.password_hash,
        original
    );

    app.login_key("ada@example.com", PASSWORD).await;
    let rehashed = app.stored_user("ada@example.com").await.password_hash;
    assert!(
        rehashed.starts_with("$argon2id$v=19$m=2048,t=1,p=1$"),
        "rehashed with the new parameters: {rehashed}"
    );
    assert_ne!(rehashed, original);

    // The new hash still holds the same password, and only it.
    let key = app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(app.get("user/", Some(&key)).await.status, 200);
    let wrong = app.login("ada@example.com", "not the password").await;
    assert_eq!(wrong.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
}

async fn current_password_hash_is_left_alone_on_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada@example.com").await;
    let original = app.stored_user("ada@example.com").await.password_hash;
    app.login_key("ada@example.com", PASSWORD).await;
    assert_eq!(
        app.stored_user("ada@example.com").await.password_hash,
        original,
        "a hash made with the configured parameters is not rewritten on login"
    );
}

async fn default_hashing_parameters_are_owasp_argon2id(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.password_hashing = Config::default().password_hashing
    })
    .await;
    app.register("ada@example.com").await;
    let hash = app.stored_user("ada@example.com").await.password_hash;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "default argon2id parameters: {hash}"
    );
    app.login_key("ada@example.com", PASSWORD).await;
    let wrong = app.login("ada@example.com", "not the password").await;
    assert_eq!(wrong.status, 400);
}
