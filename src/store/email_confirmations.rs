//! Email confirmation keys, stored as digests, each usable once before it expires.

use chrono::{DateTime, Utc};
use entity::EmailAddressId;
use entity::email_confirmation;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
};

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    email_address_id: EmailAddressId,
    key_digest: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    email_confirmation::ActiveModel {
        email_address_id: Set(email_address_id),
        key_digest: Set(key_digest.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// Marks the key used, if it is unused and unexpired, and returns its address. The conditional
/// update makes this atomic: of two concurrent confirmations only one succeeds.
pub async fn consume<C: ConnectionTrait>(
    db: &C,
    key_digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<EmailAddressId>, DbErr> {
    let updated = email_confirmation::Entity::update_many()
        .col_expr(email_confirmation::Column::UsedAt, Expr::value(now))
        .filter(email_confirmation::Column::KeyDigest.eq(key_digest))
        .filter(email_confirmation::Column::UsedAt.is_null())
        .filter(email_confirmation::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    email_confirmation::Entity::find()
        .filter(email_confirmation::Column::KeyDigest.eq(key_digest))
        .select_only()
        .column(email_confirmation::Column::EmailAddressId)
        .into_tuple()
        .one(db)
        .await
}

/// The address of an unused, unexpired key, leaving it unused (a read, for showing it).
pub async fn find_live<C: ConnectionTrait>(
    db: &C,
    key_digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<EmailAddressId>, DbErr> {
    email_confirmation::Entity::find()
        .filter(email_confirmation::Column::KeyDigest.eq(key_digest))
        .filter(email_confirmation::Column::UsedAt.is_null())
        .filter(email_confirmation::Column::ExpiresAt.gt(now))
        .select_only()
        .column(email_confirmation::Column::EmailAddressId)
        .into_tuple()
        .one(db)
        .await
}

/// How many keys were made for this address since `since` (for the resend limit).
pub async fn count_since<C: ConnectionTrait>(
    db: &C,
    email_address_id: EmailAddressId,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    email_confirmation::Entity::find()
        .filter(email_confirmation::Column::EmailAddressId.eq(email_address_id))
        .filter(email_confirmation::Column::CreatedAt.gt(since))
        .count(db)
        .await
}
