//! Server-side sessions, stored under the SHA-256 digest of their cookie value.

use chrono::{DateTime, Duration, Utc};
use entity::{session, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::issue::{Origin, TOUCH_EVERY};
use super::users::UserId;

pub use entity::SessionId;

pub async fn create<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    digest: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    origin: &Origin,
) -> Result<SessionId, DbErr> {
    let row = session::ActiveModel {
        user_id: Set(user_id),
        digest: Set(digest.to_owned()),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires_at),
        ip: Set(origin.ip.clone()),
        user_agent: Set(origin.user_agent.clone()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

/// The session with this digest and its user, if it has neither expired nor idled out; its
/// `last_seen_at` is brought forward (at most once a minute).
pub async fn find_live<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
    idle_timeout: Duration,
) -> Result<Option<(session::Model, user::Model)>, DbErr> {
    let found = session::Entity::find()
        .filter(session::Column::Digest.eq(digest))
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(now - idle_timeout))
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    let Some((mut found, Some(user))) = found else {
        return Ok(None);
    };
    if now - found.last_seen_at > TOUCH_EVERY {
        touch(db, found.id, now).await?;
        found.last_seen_at = now;
    }
    Ok(Some((found, user)))
}

/// Records activity on the session (for its idle timeout).
pub async fn touch<C: ConnectionTrait>(
    db: &C,
    id: SessionId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(now))
        .filter(session::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: SessionId) -> Result<(), DbErr> {
    session::Entity::delete_by_id(id).exec(db).await.map(|_| ())
}

/// Deletes the session with this digest; returns whose it was.
pub async fn delete_by_digest<C: ConnectionTrait>(
    db: &C,
    digest: &str,
) -> Result<Option<UserId>, DbErr> {
    let Some(found) = session::Entity::find()
        .filter(session::Column::Digest.eq(digest))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // Of two concurrent logouts with one cookie, only the one that deleted the row says so.
    let deleted = session::Entity::delete_by_id(found.id).exec(db).await?;
    Ok((deleted.rows_affected > 0).then_some(found.user_id))
}
