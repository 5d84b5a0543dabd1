//! Storage: sea-orm queries over any `ConnectionTrait`, so each works inside or outside a
//! transaction. Nothing here knows about HTTP or about use-case rules.

pub mod audit_events;
pub mod credentials;
pub mod email_confirmations;
pub mod mfa;
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
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Opens the pool. SQLite gets WAL (readers never wait for the writer), a busy timeout instead
/// of immediate `SQLITE_BUSY`, enforced foreign keys, and a WAL file that is cut back to
/// [`WAL_SIZE_LIMIT`] whenever a checkpoint empties it.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("postgres") {
        probe_postgres(url).await?;
    }
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
                .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
        });
    Database::connect(options).await
}

/// Bytes of WAL kept after a checkpoint (SQLite's `journal_size_limit`).
pub const WAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// SQLite only: every `period` until `stop`, a checkpoint that copies the whole WAL into the
/// database and truncates it. SQLite's own checkpoints (every 1000 pages) never wait for
/// readers, so under steady traffic some reader always holds an old snapshot, the WAL is
/// never restarted, and it grows without end; this one waits (the busy timeout) and finishes.
pub async fn checkpoint_every(
    db: DatabaseConnection,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if !is_sqlite(&db) {
        return;
    }
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                if let Err(err) = db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await {
                    tracing::warn!(error = %err, "SQLite checkpoint failed");
                }
            }
        }
    }
}

/// One connection before the pool: a pool that cannot connect says only that it timed out
/// (after its acquire timeout); one connection says why ("Connection refused", "database
/// \"x\" does not exist", "password authentication failed") at once.
async fn probe_postgres(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::Connection;
    let attempt = tokio::time::timeout(
        Duration::from_secs(10),
        sea_orm::sqlx::PgConnection::connect(url),
    )
    .await;
    match attempt {
        Ok(Ok(connection)) => {
            connection.close().await.ok();
            Ok(())
        }
        Ok(Err(err)) => Err(DbErr::Conn(sea_orm::RuntimeErr::SqlxError(
            std::sync::Arc::new(err),
        ))),
        Err(_) => Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(
            "no answer within 10 seconds".into(),
        ))),
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue instead of one failing at its first write. The
/// access mode is left to the server: a database made read-only must refuse (503), not be
/// overridden.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        isolation_level: None,
        access_mode: None,
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

/// A cheap round trip (`tessera check`).
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Whether the database took a write: an insert in a transaction that is rolled back. A
/// database that answers reads but refuses writes (read-only file or mount, full disk, a
/// standby) is not ready.
pub async fn probe_write(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    revocations::probe(&txn).await?;
    txn.rollback().await
}

/// Whether `err` says the database cannot serve now (unreachable, read-only, full, shutting
/// down), as opposed to a fault in a query: the answer is 503, not 500.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    use sea_orm::sqlx::Error as SqlxError;
    if matches!(
        sqlx.as_ref(),
        SqlxError::Io(_) | SqlxError::PoolTimedOut | SqlxError::PoolClosed
    ) {
        return true;
    }
    let Some(database) = sqlx.as_database_error() else {
        return false;
    };
    let code = database.code().unwrap_or_default();
    if database
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // Extended codes keep the primary one in the low byte: BUSY (after the busy timeout),
        // READONLY, IOERR, FULL, CANTOPEN.
        let code = code.parse::<u32>().unwrap_or(0);
        return matches!(code & 0xff, 5 | 8 | 10 | 13 | 14);
    }
    // PostgreSQL's SQLSTATE: connection exceptions, read-only transaction, insufficient
    // resources (disk full, too many connections), operator intervention (shutting down).
    code.starts_with("08") || code == "25006" || code.starts_with("53") || code.starts_with("57P")
}
