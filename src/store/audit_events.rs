//! The audit trail's rows: appended by the service layer, read by `tessera audit`.

use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::users::UserId;

/// An event as it is written.
pub struct NewAuditEvent<'a> {
    pub at: DateTime<Utc>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub user_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

pub async fn insert<C: ConnectionTrait>(db: &C, event: NewAuditEvent<'_>) -> Result<(), DbErr> {
    audit_event::ActiveModel {
        created_at: Set(event.at),
        event: Set(event.event.to_owned()),
        outcome: Set(event.outcome.to_owned()),
        reason: Set(event.reason.map(str::to_owned)),
        user_id: Set(event.user_id),
        ip: Set(event.ip),
        user_agent: Set(event.user_agent.map(str::to_owned)),
        request_id: Set(event.request_id.map(str::to_owned)),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// The newest `limit` events, of one user when `user_id` is given, oldest first.
pub async fn latest<C: ConnectionTrait>(
    db: &C,
    user_id: Option<UserId>,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    let mut query = audit_event::Entity::find();
    if let Some(user_id) = user_id {
        query = query.filter(audit_event::Column::UserId.eq(user_id));
    }
    let mut rows = query
        .order_by_desc(audit_event::Column::CreatedAt)
        .order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.reverse();
    Ok(rows)
}

/// Deletes events recorded before `cutoff`; returns how many.
pub async fn delete_before<C: ConnectionTrait>(
    db: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let deleted = audit_event::Entity::delete_many()
        .filter(audit_event::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Every event of the user, oldest first (the export).
pub async fn of_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
) -> Result<Vec<audit_event::Model>, DbErr> {
    audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user_id))
        .order_by_asc(audit_event::Column::CreatedAt)
        .order_by_asc(audit_event::Column::Id)
        .all(db)
        .await
}

/// Strips the client address and user agent from the user's events (a deleted account's
/// trail keeps what happened, not from where).
pub async fn forget_client<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<(), DbErr> {
    audit_event::Entity::update_many()
        .col_expr(audit_event::Column::Ip, Expr::value(None::<String>))
        .col_expr(audit_event::Column::UserAgent, Expr::value(None::<String>))
        .filter(audit_event::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}
