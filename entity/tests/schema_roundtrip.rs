//! Checks that the models match the schema the `migration` crate builds:
//! every entity is inserted and read back through sea-orm on SQLite (always)
//! and PostgreSQL (when `TESSERA_TEST_DATABASE_URL` is set; a throwaway
//! database is created from it and dropped afterwards; without it the
//! PostgreSQL test is reported as ignored).

use chrono::{DateTime, Duration, TimeZone, Utc};
use entity::prelude::*;
use entity::{
    auth_token, email_address, email_confirmation, outbox_message, password_reset_token,
    refresh_token, refresh_token_family, session, user,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, Database, DatabaseConnection, EntityTrait, ModelTrait, PaginatorTrait, Set,
};

/// Microsecond precision: PostgreSQL does not keep nanoseconds.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::microseconds(123_456)
}

async fn exercise(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    let t0 = t0();
    let t1 = t0 + Duration::days(1);

    let alice = user::ActiveModel {
        email: Set("alice@example.com".into()),
        username: Set("Alice".into()),
        first_name: Set("Alice".into()),
        last_name: Set(String::new()),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(true),
        date_joined: Set(t0),
        last_login: Set(Some(t1)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(alice.id.0 > 0);
    assert_eq!(
        User::find_by_id(alice.id).one(db).await.unwrap(),
        Some(alice.clone())
    );
    let debug = format!("{alice:?}");
    assert!(debug.contains(r#"password_hash: "[redacted]""#), "{debug}");
    assert!(!debug.contains("argon2"), "{debug}");

    let address = email_address::ActiveModel {
        user_id: Set(alice.id),
        email: Set("alice@example.com".into()),
        verified: Set(false),
        is_primary: Set(true),
        created_at: Set(t0),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let confirmation = email_confirmation::ActiveModel {
        email_address_id: Set(address.id),
        key_digest: Set("a".repeat(64)),
        created_at: Set(t0),
        expires_at: Set(t1),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(!format!("{confirmation:?}").contains(&"a".repeat(64)));
    let token = auth_token::ActiveModel {
        user_id: Set(alice.id),
        digest: Set("b".repeat(64)),
        created_at: Set(t0),
        expires_at: Set(None),
        last_used_at: Set(Some(t1)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(!format!("{token:?}").contains(&"b".repeat(64)));
    let reset = password_reset_token::ActiveModel {
        user_id: Set(alice.id),
        digest: Set("c".repeat(64)),
        created_at: Set(t0),
        expires_at: Set(t1),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(!format!("{reset:?}").contains(&"c".repeat(64)));
    let sess = session::ActiveModel {
        user_id: Set(alice.id),
        digest: Set("d".repeat(64)),
        created_at: Set(t0),
        last_seen_at: Set(t0),
        expires_at: Set(t1),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(!format!("{sess:?}").contains(&"d".repeat(64)));
    let family = refresh_token_family::ActiveModel {
        user_id: Set(alice.id),
        created_at: Set(t0),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let refresh = refresh_token::ActiveModel {
        family_id: Set(family.id),
        jti: Set("jti-1".into()),
        issued_at: Set(t0),
        expires_at: Set(t1),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let mail = outbox_message::ActiveModel {
        kind: Set("password_reset".into()),
        recipient: Set("alice@example.com".into()),
        subject: Set("Reset".into()),
        text_body: Set("https://example.com/reset/SECRET".into()),
        html_body: Set("<a href=\"https://example.com/reset/SECRET\">reset</a>".into()),
        created_at: Set(t0),
        attempts: Set(0),
        next_attempt_at: Set(t0),
        claimed_until: Set(None),
        sent_at: Set(None),
        failed_at: Set(None),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(!format!("{mail:?}").contains("SECRET"));
    assert_eq!(
        OutboxMessage::find_by_id(mail.id).one(db).await.unwrap(),
        Some(mail)
    );

    // Relations resolve in both directions.
    assert_eq!(
        alice.find_related(EmailAddress).all(db).await.unwrap(),
        vec![address.clone()]
    );
    assert_eq!(
        address
            .find_related(EmailConfirmation)
            .all(db)
            .await
            .unwrap(),
        vec![confirmation]
    );
    assert_eq!(
        alice.find_related(AuthToken).all(db).await.unwrap(),
        vec![token.clone()]
    );
    assert_eq!(
        alice
            .find_related(PasswordResetToken)
            .all(db)
            .await
            .unwrap(),
        vec![reset]
    );
    assert_eq!(
        alice.find_related(Session).all(db).await.unwrap(),
        vec![sess]
    );
    assert_eq!(
        alice
            .find_related(RefreshTokenFamily)
            .all(db)
            .await
            .unwrap(),
        vec![family.clone()]
    );
    assert_eq!(
        family.find_related(RefreshToken).all(db).await.unwrap(),
        vec![refresh]
    );
    assert_eq!(
        token.find_related(User).one(db).await.unwrap(),
        Some(alice.clone())
    );

    // Deleting the user cascades through every dependent table.
    User::delete_by_id(alice.id).exec(db).await.unwrap();
    assert_eq!(EmailAddress::find().count(db).await.unwrap(), 0);
    assert_eq!(EmailConfirmation::find().count(db).await.unwrap(), 0);
    assert_eq!(AuthToken::find().count(db).await.unwrap(), 0);
    assert_eq!(PasswordResetToken::find().count(db).await.unwrap(), 0);
    assert_eq!(Session::find().count(db).await.unwrap(), 0);
    assert_eq!(RefreshTokenFamily::find().count(db).await.unwrap(), 0);
    assert_eq!(RefreshToken::find().count(db).await.unwrap(), 0);
    assert_eq!(OutboxMessage::find().count(db).await.unwrap(), 1);
}

#[tokio::test]
async fn sqlite_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Database::connect(&url).await.unwrap();
    exercise(&db).await;
    db.close().await.unwrap();
}

test_support::postgres_test! {
    #[tokio::test]
    async fn postgres_roundtrip() {
        // Dropped at the end, or while a failure unwinds: the database goes with it.
        let database = test_support::PostgresDatabase::create().await;
        let db = Database::connect(database.url()).await.unwrap();
        exercise(&db).await;
        db.close().await.unwrap();
    }
}
