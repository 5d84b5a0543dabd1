//! A user's email addresses (allauth's `EmailAddress`): unique per user and among verified
//! addresses, one primary per user (the migrations' indexes settle races).

use chrono::{DateTime, Utc};
use entity::email_address;
use entity::{EmailAddressId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

pub use email_address::Model as EmailAddress;

/// The user's addresses: the primary one first, then in the order they were added.
pub async fn of_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
) -> Result<Vec<EmailAddress>, DbErr> {
    email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(user_id))
        .order_by_desc(email_address::Column::IsPrimary)
        .order_by_asc(email_address::Column::Id)
        .all(db)
        .await
}

/// The user's address `email` (normalised), if it is one of theirs.
pub async fn find_of_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    email: &str,
) -> Result<Option<EmailAddress>, DbErr> {
    email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(user_id))
        .filter(email_address::Column::Email.eq(email))
        .one(db)
        .await
}

pub async fn find_by_id<C: ConnectionTrait>(
    db: &C,
    id: EmailAddressId,
) -> Result<Option<EmailAddress>, DbErr> {
    email_address::Entity::find_by_id(id).one(db).await
}

/// Every account's row for `email`, locked until the transaction ends (PostgreSQL:
/// `FOR UPDATE`; SQLite's write transactions exclude each other): a primary one first, then
/// the oldest.
pub async fn lock_all_with_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Vec<EmailAddress>, DbErr> {
    email_address::Entity::find()
        .filter(email_address::Column::Email.eq(email))
        .order_by_desc(email_address::Column::IsPrimary)
        .order_by_asc(email_address::Column::Id)
        .lock_exclusive()
        .all(db)
        .await
}

/// Adds an unconfirmed, non-primary address. A unique violation means the user has it already.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    email: &str,
    now: DateTime<Utc>,
) -> Result<EmailAddress, DbErr> {
    email_address::ActiveModel {
        user_id: Set(user_id),
        email: Set(email.to_owned()),
        verified: Set(false),
        is_primary: Set(false),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Marks the address confirmed. A unique violation means another account confirmed the same
/// address first.
pub async fn mark_verified<C: ConnectionTrait>(db: &C, id: EmailAddressId) -> Result<(), DbErr> {
    email_address::Entity::update_many()
        .col_expr(email_address::Column::Verified, Expr::value(true))
        .filter(email_address::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Makes `id` the user's one primary address (the old one first stops being primary, so the
/// one-primary index never sees two).
pub async fn set_primary<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    id: EmailAddressId,
) -> Result<(), DbErr> {
    email_address::Entity::update_many()
        .col_expr(email_address::Column::IsPrimary, Expr::value(false))
        .filter(email_address::Column::UserId.eq(user_id))
        .filter(email_address::Column::IsPrimary.eq(true))
        .exec(db)
        .await?;
    email_address::Entity::update_many()
        .col_expr(email_address::Column::IsPrimary, Expr::value(true))
        .filter(email_address::Column::Id.eq(id))
        .filter(email_address::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Deletes the address (its confirmation keys go with it).
pub async fn delete<C: ConnectionTrait>(db: &C, id: EmailAddressId) -> Result<(), DbErr> {
    email_address::Entity::delete_by_id(id)
        .exec(db)
        .await
        .map(|_| ())
}

/// Deletes the user's unconfirmed addresses other than the primary one; returns how many.
pub async fn delete_pending<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<u64, DbErr> {
    email_address::Entity::delete_many()
        .filter(email_address::Column::UserId.eq(user_id))
        .filter(email_address::Column::IsPrimary.eq(false))
        .filter(email_address::Column::Verified.eq(false))
        .exec(db)
        .await
        .map(|deleted| deleted.rows_affected)
}

/// Deletes every address of the user but `keep`; returns how many.
pub async fn delete_all_but<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    keep: EmailAddressId,
) -> Result<u64, DbErr> {
    email_address::Entity::delete_many()
        .filter(email_address::Column::UserId.eq(user_id))
        .filter(email_address::Column::Id.ne(keep))
        .exec(db)
        .await
        .map(|deleted| deleted.rows_affected)
}

/// Removes every address of the user (a deactivated account's: they may sign up again).
pub async fn delete_all_of_user<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<(), DbErr> {
    email_address::Entity::delete_many()
        .filter(email_address::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}
