//! Password-reset tokens: digests, single use, one live token per user.

use chrono::{DateTime, Utc};
use entity::password_reset_token;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::users::UserId;

/// Issues a new token for the user; any earlier one dies (a newer reset supersedes it).
pub async fn replace<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    digest: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    delete_for_user(db, user_id).await?;
    password_reset_token::ActiveModel {
        user_id: Set(user_id),
        digest: Set(digest.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// Whether the user has this unused, unexpired token (a read, for validation).
pub async fn is_live<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(password_reset_token::Entity::find()
        .filter(password_reset_token::Column::UserId.eq(user_id))
        .filter(password_reset_token::Column::Digest.eq(digest))
        .filter(password_reset_token::Column::UsedAt.is_null())
        .filter(password_reset_token::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .is_some())
}

/// Uses the token up; `false` when it was not live (e.g. a concurrent request used it first).
pub async fn consume<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = password_reset_token::Entity::update_many()
        .col_expr(password_reset_token::Column::UsedAt, Expr::value(now))
        .filter(password_reset_token::Column::UserId.eq(user_id))
        .filter(password_reset_token::Column::Digest.eq(digest))
        .filter(password_reset_token::Column::UsedAt.is_null())
        .filter(password_reset_token::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Kills every outstanding token of the user (their password just changed).
pub async fn delete_for_user<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<u64, DbErr> {
    Ok(password_reset_token::Entity::delete_many()
        .filter(password_reset_token::Column::UserId.eq(user_id))
        .filter(password_reset_token::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}
