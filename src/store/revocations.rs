//! The revocation log (`credential_revocations`) and, on PostgreSQL, the notification that
//! carries each row to the other instances the moment its transaction commits.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use entity::credential_revocation;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, Statement,
};

use super::users::UserId;

pub use credential_revocation::Model as Revocation;

/// The `LISTEN/NOTIFY` channel.
pub const CHANNEL: &str = "tessera_revocations";
/// What the listening connection calls itself in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "tessera-listener";

/// Appends a row; on PostgreSQL also queues its notification, which PostgreSQL delivers when
/// (and only if) the surrounding transaction commits. The payload is the row:
/// `id user_id kind created_at` (microseconds since 1970).
pub async fn record<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = credential_revocation::ActiveModel {
        created_at: Set(now),
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if db.get_database_backend() == DbBackend::Postgres {
        let payload = format!(
            "{} {} {} {}",
            row.id,
            row.user_id,
            row.kind,
            row.created_at.timestamp_micros()
        );
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Inserts a row meant to be rolled back or removed in the same transaction (the readiness
/// probe's write); returns its id.
pub async fn probe<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    credential_revocation::ActiveModel {
        created_at: Set(Utc::now()),
        user_id: Set(UserId(0)),
        kind: Set("probe".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|row| row.id)
}

/// Removes the readiness probe's row before its transaction commits.
pub async fn remove_probe<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    credential_revocation::Entity::delete_by_id(id)
        .exec(db)
        .await
        .map(|_| ())
}

/// Reads a notification's payload back into the row it announces.
pub fn parse_payload(payload: &str) -> Option<Revocation> {
    let mut parts = payload.split(' ');
    let id = parts.next()?.parse().ok()?;
    let user_id = parts.next()?.parse().ok()?;
    let kind = parts.next()?.to_owned();
    let created_at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    parts.next().is_none().then_some(Revocation {
        id,
        created_at,
        user_id,
        kind,
    })
}

/// Rows written at or after `since`, oldest first.
pub async fn since<C: ConnectionTrait>(
    db: &C,
    since: DateTime<Utc>,
) -> Result<Vec<Revocation>, DbErr> {
    credential_revocation::Entity::find()
        .filter(credential_revocation::Column::CreatedAt.gte(since))
        .order_by_asc(credential_revocation::Column::Id)
        .all(db)
        .await
}

/// Deletes rows written before `before`; returns how many.
pub async fn prune<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(credential_revocation::Entity::delete_many()
        .filter(credential_revocation::Column::CreatedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// A listener on [`CHANNEL`] over a connection of its own, named [`LISTENER_NAME`]. It
/// reconnects by itself when the connection drops; notifications sent meanwhile are lost
/// (the poll of the log finds their rows).
pub async fn listen(url: &str) -> Result<PgListener, DbErr> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err.into())))?
        .application_name(LISTENER_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool)
        .await
        .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err.into())))?;
    listener
        .listen(CHANNEL)
        .await
        .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err.into())))?;
    Ok(listener)
}
