//! Storage: sea-orm queries over any `ConnectionTrait`, so each works inside or outside a
//! transaction. Nothing here knows about HTTP or about use-case rules.

pub mod audit_events;
pub mod credentials;
pub mod email_addresses;
pub mod email_confirmations;
pub mod issue;
pub mod mfa;
pub mod outbox;
pub mod password_resets;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod revocations;
pub mod sessions;
pub mod social;
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
///
/// `acquire_timeout` bounds how long a query waits for a connection, connecting included:
/// while the database cannot be reached, requests fail (503) after that long instead of
/// hanging, and the pool reconnects by itself once it is back.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("postgres") {
        probe_postgres(url).await?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        // sea-orm hands both to sqlx's one acquire timeout; set both so neither overrides.
        .connect_timeout(acquire_timeout)
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true)
                .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
        })
        // A COMMIT the disk refused (full, read-only, failing) leaves sqlx counting a
        // transaction SQLite has already rolled back; handed out again, that connection would
        // turn the next `BEGIN IMMEDIATE` into a savepoint in a deferred transaction, whose
        // writes fail with SQLITE_BUSY_SNAPSHOT. Such a connection is replaced instead.
        .map_sqlx_sqlite_before_acquire(|connection, _| {
            use sea_orm::sqlx::Connection as _;
            let clean = !connection.is_in_transaction();
            Box::pin(async move { Ok(clean) })
        });
    if !url.contains("mode=ro") {
        options.map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|connection, _| Box::pin(refuse_read_only(connection)))
        });
    }
    Database::connect(options).await
}

/// How long an SQLite writer waits for the write lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite opens a file it may not write (read-only, immutable, on a read-only mount) silently
/// read-only, and such a connection stays read-only after the file is writable again: in the
/// pool, it would refuse writes long after the fault has been mended. So a new connection
/// that cannot take the write lock is not pooled; acquiring fails (503) until one can.
/// A database configured read-only (`mode=ro`) is not checked.
async fn refuse_read_only(
    connection: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Executor as _;
    // Without waiting: a lock held by another writer proves the file writable too.
    connection.execute("PRAGMA busy_timeout = 0").await?;
    let attempt = connection.execute("BEGIN IMMEDIATE").await;
    let busy_ms = BUSY_TIMEOUT.as_millis();
    connection
        .execute(sea_orm::sqlx::AssertSqlSafe(format!(
            "PRAGMA busy_timeout = {busy_ms}"
        )))
        .await?;
    match attempt {
        Ok(_) => connection.execute("ROLLBACK").await.map(|_| ()),
        Err(err) if err.as_database_error().and_then(|e| e.code()).as_deref() == Some("5") => {
            Ok(())
        }
        Err(err) => Err(err),
    }
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

/// Whether the database took a write. A database that answers reads but refuses writes
/// (read-only file or mount, full disk, a standby) is not ready.
///
/// PostgreSQL: an insert in a transaction that is rolled back (the insert itself meets a
/// read-only or full database). SQLite: an insert and its delete, committed; SQLite touches
/// the disk only at commit (in WAL mode, by appending to the WAL), so a rolled-back probe
/// would pass over a file that has become unwritable.
pub async fn probe_write(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let id = revocations::probe(&txn).await?;
    if is_sqlite(db) {
        revocations::remove_probe(&txn, id).await?;
        txn.commit().await
    } else {
        txn.rollback().await
    }
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
