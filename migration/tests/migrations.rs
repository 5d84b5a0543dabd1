//! Runs the migrations up, down and up again against SQLite (always) and
//! PostgreSQL (when `TESSERA_TEST_DATABASE_URL` is set, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`; a throwaway database is created
//! from it and dropped afterwards; without it the PostgreSQL test is reported
//! as ignored).

use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm_migration::sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

const TABLES: &[&str] = &[
    "users",
    "email_addresses",
    "email_confirmations",
    "auth_tokens",
    "password_reset_tokens",
    "sessions",
    "refresh_token_families",
    "refresh_tokens",
    "outbox",
];

const TS: &str = "'2026-01-01 00:00:00+00:00'";

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row");
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn assert_tables(db: &DatabaseConnection, present: bool) {
    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert_eq!(
            manager.has_table(table).await.unwrap(),
            present,
            "table {table} present?"
        );
    }
}

async fn insert_user(db: &DatabaseConnection, email: &str, username: &str) -> i64 {
    exec(
        db,
        &format!(
            "INSERT INTO users (email, username, password_hash, date_joined) \
             VALUES ('{email}', '{username}', '', {TS})"
        ),
    )
    .await;
    scalar_i64(db, &format!("SELECT id FROM users WHERE email = '{email}'")).await
}

async fn exercise(db: &DatabaseConnection) {
    if db.get_database_backend() == DbBackend::Sqlite {
        // sqlx's SqliteConnectOptions turns `PRAGMA foreign_keys = ON` on by
        // default for every connection; the cascade checks below rely on it.
        assert_eq!(scalar_i64(db, "PRAGMA foreign_keys").await, 1);
    }

    Migrator::up(db, None).await.unwrap();
    assert_tables(db, true).await;
    assert_eq!(Migrator::get_pending_migrations(db).await.unwrap().len(), 0);

    // Column defaults.
    let alice = insert_user(db, "alice@example.com", "alice").await;
    assert_eq!(
        scalar_i64(
            db,
            &format!(
                "SELECT COUNT(*) FROM users WHERE id = {alice} AND is_active AND NOT is_staff \
                 AND NOT is_superuser AND first_name = '' AND last_name = '' \
                 AND last_login IS NULL"
            ),
        )
        .await,
        1
    );

    // Usernames are unique case-insensitively; emails are unique outright.
    let dup = db
        .execute_unprepared(&format!(
            "INSERT INTO users (email, username, password_hash, date_joined) \
             VALUES ('alice2@example.com', 'Alice', '', {TS})"
        ))
        .await;
    assert!(dup.is_err(), "'Alice' accepted next to 'alice'");
    let dup = db
        .execute_unprepared(&format!(
            "INSERT INTO users (email, username, password_hash, date_joined) \
             VALUES ('alice@example.com', 'alice3', '', {TS})"
        ))
        .await;
    assert!(dup.is_err(), "duplicate email accepted");

    // A foreign key to a missing user is rejected.
    let orphan = db
        .execute_unprepared(&format!(
            "INSERT INTO auth_tokens (user_id, digest, created_at) \
             VALUES ({}, 'orphan', {TS})",
            alice + 1000
        ))
        .await;
    assert!(orphan.is_err(), "auth token for a missing user accepted");

    // Something in every dependent table, including two-level chains.
    exec(
        db,
        &format!(
            "INSERT INTO email_addresses (user_id, email, verified, is_primary, created_at) \
             VALUES ({alice}, 'alice@example.com', TRUE, TRUE, {TS})"
        ),
    )
    .await;
    let address = scalar_i64(db, "SELECT id FROM email_addresses").await;
    for sql in [
        format!(
            "INSERT INTO email_confirmations (email_address_id, key_digest, created_at, expires_at) \
             VALUES ({address}, 'k1', {TS}, {TS})"
        ),
        format!(
            "INSERT INTO auth_tokens (user_id, digest, created_at) VALUES ({alice}, 'd1', {TS})"
        ),
        format!(
            "INSERT INTO password_reset_tokens (user_id, digest, created_at, expires_at) \
             VALUES ({alice}, 'd2', {TS}, {TS})"
        ),
        format!(
            "INSERT INTO sessions (user_id, digest, created_at, last_seen_at, expires_at) \
             VALUES ({alice}, 'd3', {TS}, {TS}, {TS})"
        ),
        format!("INSERT INTO refresh_token_families (user_id, created_at) VALUES ({alice}, {TS})"),
    ] {
        exec(db, &sql).await;
    }
    let family = scalar_i64(db, "SELECT id FROM refresh_token_families").await;
    exec(
        db,
        &format!(
            "INSERT INTO refresh_tokens (family_id, jti, issued_at, expires_at) \
             VALUES ({family}, 'jti-1', {TS}, {TS})"
        ),
    )
    .await;
    exec(
        db,
        &format!(
            "INSERT INTO outbox (kind, recipient, subject, text_body, html_body, created_at, \
             next_attempt_at) VALUES ('k', 'alice@example.com', 's', 't', 'h', {TS}, {TS})"
        ),
    )
    .await;
    assert_eq!(
        scalar_i64(db, "SELECT CAST(attempts AS BIGINT) FROM outbox").await,
        0
    );

    // A second user whose rows must survive the first one's deletion.
    let bob = insert_user(db, "bob@example.com", "bob").await;
    exec(
        db,
        &format!(
            "INSERT INTO auth_tokens (user_id, digest, created_at) VALUES ({bob}, 'd4', {TS})"
        ),
    )
    .await;

    exec(db, &format!("DELETE FROM users WHERE id = {alice}")).await;
    for table in &TABLES[1..8] {
        let remaining = scalar_i64(db, &format!("SELECT COUNT(*) FROM {table}")).await;
        let expected = i64::from(*table == "auth_tokens"); // bob's token
        assert_eq!(remaining, expected, "rows left in {table} after cascade");
    }
    assert_eq!(
        scalar_i64(
            db,
            &format!("SELECT COUNT(*) FROM auth_tokens WHERE user_id = {bob}")
        )
        .await,
        1
    );

    // The freed lowercase username can be taken again, in any case.
    insert_user(db, "alice-again@example.com", "ALICE").await;

    Migrator::down(db, None).await.unwrap();
    assert_tables(db, false).await;
    assert_eq!(Migrator::get_applied_migrations(db).await.unwrap().len(), 0);

    Migrator::up(db, None).await.unwrap();
    assert_tables(db, true).await;
    assert_eq!(scalar_i64(db, "SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn sqlite_up_down_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Database::connect(&url).await.unwrap();
    exercise(&db).await;
    db.close().await.unwrap();
}

test_support::postgres_test! {
    #[tokio::test]
    async fn postgres_up_down_up() {
        // Dropped at the end, or while a failure unwinds: the database goes with it.
        let database = test_support::PostgresDatabase::create().await;
        let db = Database::connect(database.url()).await.unwrap();
        exercise(&db).await;
        db.close().await.unwrap();
    }
}

/// Email addresses are unique per user and among verified addresses (one primary per user),
/// not outright; the migration that made them so keeps every address and confirmation, and
/// the cascade from users through addresses to confirmations; going down restores the old
/// constraint.
async fn email_address_uniqueness(db: &DatabaseConnection) {
    const NAME: &str = "m20261206_000010_email_address_uniqueness";
    let position = Migrator::migrations()
        .iter()
        .position(|m| m.name() == NAME)
        .expect("the migration is listed");
    Migrator::up(db, Some(position as u32)).await.unwrap();
    let alice = insert_user(db, "alice@example.com", "alice").await;
    exec(
        db,
        &format!(
            "INSERT INTO email_addresses (user_id, email, verified, is_primary, created_at) \
             VALUES ({alice}, 'alice@example.com', TRUE, TRUE, {TS})"
        ),
    )
    .await;
    let address = scalar_i64(db, "SELECT id FROM email_addresses").await;
    exec(
        db,
        &format!(
            "INSERT INTO email_confirmations (email_address_id, key_digest, created_at, expires_at) \
             VALUES ({address}, 'k1', {TS}, {TS})"
        ),
    )
    .await;

    Migrator::up(db, Some(1)).await.unwrap();
    assert_eq!(
        scalar_i64(
            db,
            &format!(
                "SELECT COUNT(*) FROM email_addresses WHERE id = {address} AND user_id = {alice} \
                 AND email = 'alice@example.com' AND verified AND is_primary"
            )
        )
        .await,
        1
    );
    assert_eq!(
        scalar_i64(
            db,
            &format!(
                "SELECT COUNT(*) FROM email_confirmations \
                 WHERE email_address_id = {address} AND key_digest = 'k1'"
            )
        )
        .await,
        1
    );

    let bob = insert_user(db, "bob@example.com", "bob").await;
    let add = |user: i64, email: &str, verified: bool, primary: bool| {
        format!(
            "INSERT INTO email_addresses (user_id, email, verified, is_primary, created_at) \
             VALUES ({user}, '{email}', {verified}, {primary}, {TS})"
        )
    };
    // Bob may wait to confirm Alice's address; once only, and never confirm it.
    exec(db, &add(bob, "alice@example.com", false, false)).await;
    for (sql, what) in [
        (
            add(bob, "alice@example.com", false, false),
            "the same address twice for one user",
        ),
        (
            format!("UPDATE email_addresses SET verified = TRUE WHERE user_id = {bob}"),
            "one address verified by two users",
        ),
        (
            add(alice, "alice2@example.com", false, true),
            "two primaries",
        ),
    ] {
        assert!(
            db.execute_unprepared(&sql).await.is_err(),
            "{what} accepted"
        );
    }
    exec(db, &add(bob, "bob@example.com", false, true)).await;

    // The cascade still runs users → addresses → confirmations.
    exec(db, &format!("DELETE FROM users WHERE id = {alice}")).await;
    assert_eq!(
        scalar_i64(db, "SELECT COUNT(*) FROM email_confirmations").await,
        0
    );
    assert_eq!(
        scalar_i64(
            db,
            &format!("SELECT COUNT(*) FROM email_addresses WHERE user_id = {alice}")
        )
        .await,
        0
    );

    // Down: the unconfirmed duplicate goes, and addresses are unique outright again.
    exec(db, &add(bob, "carol@example.com", false, false)).await;
    let carol = insert_user(db, "carol@example.com", "carol").await;
    exec(db, &add(carol, "carol@example.com", true, true)).await;
    Migrator::down(db, Some(1)).await.unwrap();
    assert_eq!(
        scalar_i64(
            db,
            "SELECT COUNT(*) FROM email_addresses WHERE email = 'carol@example.com'"
        )
        .await,
        1
    );
    let duplicate = db
        .execute_unprepared(&add(carol, "bob@example.com", false, false))
        .await;
    assert!(
        duplicate.is_err(),
        "a duplicate address accepted after down"
    );
}

#[tokio::test]
async fn sqlite_email_address_uniqueness() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Database::connect(&url).await.unwrap();
    email_address_uniqueness(&db).await;
    db.close().await.unwrap();
}

test_support::postgres_test! {
    #[tokio::test]
    async fn postgres_email_address_uniqueness() {
        let database = test_support::PostgresDatabase::create().await;
        let db = Database::connect(database.url()).await.unwrap();
        email_address_uniqueness(&db).await;
        db.close().await.unwrap();
    }
}
