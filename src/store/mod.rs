//! Storage: sea-orm queries over any `ConnectionTrait`, so each works inside or outside a
//! transaction. Nothing here knows about HTTP or about use-case rules.

pub mod audit_events;
pub mod credentials;
pub mod email_confirmations;
pub mod outbox;
pub mod password_resets;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod revocations;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbErr, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Opens the pool. SQLite gets WAL (readers never wait for the writer), a busy timeout instead
/// of immediate `SQLITE_BUSY`, and enforced foreign keys.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue instead of one failing at its first write.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        isolation_level: None,
        access_mode: Some(AccessMode::ReadWrite).filter(|_| !is_sqlite(db)),
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate).filter(|_| is_sqlite(db)),
    })
    .await
}

fn is_sqlite(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite
}

/// True when `err` is a unique-constraint violation: the race-free way to detect "taken".
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A cheap round trip, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
