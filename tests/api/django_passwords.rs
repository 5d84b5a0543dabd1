//! Django's password hashes, checked natively at login over HTTP: a match logs in and replaces
//! the hash with Tessera's argon2id; a wrong password, an unusable password (`!...`) and a hash
//! above `password_hashing.max_imported_cost` never match. The hashes are Django's own test
//! vectors (tests/auth_tests/test_hashers.py), put where `tessera import-django` puts them;
//! tests/api/django_import.rs brings hashes made by a real Django through the import itself.

use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
use serde_json::json;
use tessera::messages::BAD_CREDENTIALS;

use crate::support::{Backend, TestApp};

on_each_backend!(
    every_django_format_logs_in_and_is_upgraded_to_argon2id,
    a_wrong_password_leaves_the_django_hash_alone,
    an_unusable_django_password_never_matches,
    a_format_tessera_does_not_check_never_matches,
    a_hash_above_the_import_caps_is_not_checked,
);

/// (stored hash, its password, Django's name for the hasher): Django 5.2's own test vectors
/// (tests/auth_tests/test_hashers.py) and, for bcrypt and argon2id with Django's default cost,
/// hashes made by Django 5.2 with a fixed salt.
const VECTORS: &[(&str, &str, &str)] = &[
    (
        "pbkdf2_sha256$1000000$seasalt$r1uLUxoxpP2Ued/qxvmje7UH9PUJBkRrvf9gGPL7Cps=",
        "lètmein",
        "pbkdf2_sha256",
    ),
    (
        "pbkdf2_sha1$1000000$seasalt2$3R9hvSAiAy5ARspAFy5GJ/2rjXo=",
        "lètmein",
        "pbkdf2_sha1",
    ),
    (
        "scrypt$16384$seasalt$8$5$ECMIUp+LMxMSK8xB/IVyba+KYGTI7FTnet025q/1f/vBAVnnP3hdYqJuRi+mJn6ji6ze3Fbb7JEFPKGpuEf5vw==",
        "lètmein",
        "scrypt",
    ),
    (
        "bcrypt$$2b$12$seasaltseasaltseasalteQm3Vs.h8t/nvG3FIu1zl47mo0M.GunK",
        "lètmein",
        "bcrypt",
    ),
    (
        "bcrypt_sha256$$2b$12$seasaltseasaltseasalteyiqcBmu8dcbMW7Pn7/cFmWfYOPkPZ5S",
        "lètmein",
        "bcrypt_sha256",
    ),
    (
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2Vhc2FsdHNlYXNhbHQ$5X8M3A6KY2o98xsl1DnfJpaxc9OdBrgUbl3HjifV1qo",
        "lètmein",
        "argon2 (argon2id)",
    ),
    (
        "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
        "secret",
        "argon2 (argon2i)",
    ),
    (
        // Django's oldest argon2 format: no version field, which means argon2 1.0.
        "argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf0nOEXXMocVrsJAtNSsKyfg",
        "secret",
        "argon2 (no version)",
    ),
];

/// Registers `email`, then puts `stored` in place of its password hash, as an import does.
async fn user_with_hash(app: &TestApp, email: &str, stored: &str) {
    app.register(email).await;
    let mut user = app.stored_user(email).await.into_active_model();
    user.password_hash = Set(stored.to_owned());
    user.update(&app.db).await.unwrap();
}

async fn every_django_format_logs_in_and_is_upgraded_to_argon2id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (i, (stored, password, hasher)) in VECTORS.iter().enumerate() {
        let email = format!("user{i}@example.com");
        user_with_hash(&app, &email, stored).await;

        let key = app.login_key(&email, password).await;
        assert_eq!(app.get("user/", Some(&key)).await.status, 200, "{hasher}");
        let upgraded = app.stored_user(&email).await.password_hash;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{hasher}: the first login stores Tessera's hash: {upgraded}"
        );
        // The new hash holds the same password, and only it.
        app.login_key(&email, password).await;
        let wrong = app.login(&email, &format!("{password}!")).await;
        assert_eq!(wrong.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
    }
}

async fn a_wrong_password_leaves_the_django_hash_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (i, (stored, password, hasher)) in VECTORS.iter().enumerate() {
        let email = format!("user{i}@example.com");
        user_with_hash(&app, &email, stored).await;
        // A near miss (one character short); the comparison is the same for any other.
        let short = &password[..password.len() - 1];
        let reply = app.login(&email, short).await;
        assert_eq!(
            reply.body,
            json!({"non_field_errors": [BAD_CREDENTIALS]}),
            "{hasher}"
        );
        assert_eq!(app.stored_user(&email).await.password_hash, *stored);
    }
}

async fn an_unusable_django_password_never_matches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Django's set_unusable_password(): "!" and 40 random characters. Not even those match.
    let unusable = "!Q7xWnVh8kzY3cPqLrT2mA9sDfGjK5uE1bN6oI4w";
    user_with_hash(&app, "ada@example.com", unusable).await;
    for attempt in [unusable, &unusable[1..], ""] {
        let reply = app.login("ada@example.com", attempt).await;
        assert_eq!(reply.status, 400, "{attempt:?}");
    }
}

async fn a_format_tessera_does_not_check_never_matches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Django's legacy salted MD5 (its test vector): its users reset their password.
    user_with_hash(
        &app,
        "ada@example.com",
        "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3",
    )
    .await;
    let reply = app.login("ada@example.com", "lètmein").await;
    assert_eq!(reply.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
}

async fn a_hash_above_the_import_caps_is_not_checked(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.password_hashing.max_imported_cost.pbkdf2_iterations = 999_999;
    })
    .await;
    let (stored, password, _) = VECTORS[0];
    user_with_hash(&app, "ada@example.com", stored).await;
    // The right password, but the hash asks for one round more than allowed.
    let reply = app.login("ada@example.com", password).await;
    assert_eq!(reply.body, json!({"non_field_errors": [BAD_CREDENTIALS]}));
    assert_eq!(
        app.stored_user("ada@example.com").await.password_hash,
        stored
    );
}
