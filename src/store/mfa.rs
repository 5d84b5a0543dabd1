//! Two-factor authentication: authenticators (sealed secrets), login challenges (by digest)
//! and the TOTP steps already accepted.

use chrono::{DateTime, Utc};
use entity::{mfa_accepted_step, mfa_authenticator, mfa_challenge};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};

use super::users::UserId;

/// The kinds of `mfa_authenticators.kind`.
pub const TOTP: &str = "totp";
pub const RECOVERY_CODES: &str = "recovery_codes";

fn authenticator(user_id: UserId, kind: &str) -> sea_orm::Select<mfa_authenticator::Entity> {
    mfa_authenticator::Entity::find()
        .filter(mfa_authenticator::Column::UserId.eq(user_id))
        .filter(mfa_authenticator::Column::Kind.eq(kind))
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    kind: &str,
) -> Result<Option<mfa_authenticator::Model>, DbErr> {
    authenticator(user_id, kind).one(db).await
}

/// The authenticator, locked until the transaction ends (a recovery code is used once).
pub async fn lock<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    kind: &str,
) -> Result<Option<mfa_authenticator::Model>, DbErr> {
    authenticator(user_id, kind).lock_exclusive().one(db).await
}

/// Stores (or replaces) the user's authenticator of `kind`, unused.
pub async fn put<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    kind: &str,
    sealed_secret: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    remove(db, user_id, kind).await?;
    mfa_authenticator::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        secret: Set(sealed_secret.to_owned()),
        used_mask: Set(0),
        created_at: Set(now),
        last_used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn remove<C: ConnectionTrait>(db: &C, user_id: UserId, kind: &str) -> Result<(), DbErr> {
    mfa_authenticator::Entity::delete_many()
        .filter(mfa_authenticator::Column::UserId.eq(user_id))
        .filter(mfa_authenticator::Column::Kind.eq(kind))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the user's second factor: the authenticators, and the TOTP steps accepted with the
/// old secret (they say nothing about a new one, whose first code may fall in the same step).
pub async fn remove_all<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<(), DbErr> {
    remove(db, user_id, TOTP).await?;
    remove(db, user_id, RECOVERY_CODES).await?;
    mfa_accepted_step::Entity::delete_many()
        .filter(mfa_accepted_step::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a use of the authenticator (and, for recovery codes, the new mask).
pub async fn mark_used<C: ConnectionTrait>(
    db: &C,
    id: i64,
    used_mask: i64,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    mfa_authenticator::Entity::update_many()
        .col_expr(mfa_authenticator::Column::UsedMask, Expr::value(used_mask))
        .col_expr(mfa_authenticator::Column::LastUsedAt, Expr::value(now))
        .filter(mfa_authenticator::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Claims TOTP `step` for the user: `false` when it was accepted before (a replay), on this
/// instance or any other. Steps older than `forget_before` are forgotten first.
pub async fn claim_step<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    step: i64,
    now: DateTime<Utc>,
    forget_before: i64,
) -> Result<bool, DbErr> {
    mfa_accepted_step::Entity::delete_many()
        .filter(mfa_accepted_step::Column::UserId.eq(user_id))
        .filter(mfa_accepted_step::Column::Step.lt(forget_before))
        .exec(db)
        .await?;
    let inserted = mfa_accepted_step::Entity::insert(mfa_accepted_step::ActiveModel {
        user_id: Set(user_id),
        step: Set(step),
        accepted_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            mfa_accepted_step::Column::UserId,
            mfa_accepted_step::Column::Step,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

pub async fn insert_challenge<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    user_id: UserId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    mfa_challenge::ActiveModel {
        digest: Set(digest.to_owned()),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        failures: Set(0),
    }
    .insert(db)
    .await?;
    Ok(())
}

fn live_challenge(digest: &str, now: DateTime<Utc>) -> sea_orm::Select<mfa_challenge::Entity> {
    mfa_challenge::Entity::find()
        .filter(mfa_challenge::Column::Digest.eq(digest))
        .filter(mfa_challenge::Column::ExpiresAt.gt(now))
}

/// The live challenge with this digest, as it is now (no lock).
pub async fn find_challenge<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<mfa_challenge::Model>, DbErr> {
    live_challenge(digest, now).one(db).await
}

/// The live challenge with this digest, locked until the transaction ends.
pub async fn lock_challenge<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<mfa_challenge::Model>, DbErr> {
    live_challenge(digest, now).lock_exclusive().one(db).await
}

pub async fn count_failure<C: ConnectionTrait>(db: &C, digest: &str) -> Result<(), DbErr> {
    mfa_challenge::Entity::update_many()
        .col_expr(
            mfa_challenge::Column::Failures,
            Expr::col(mfa_challenge::Column::Failures).add(1),
        )
        .filter(mfa_challenge::Column::Digest.eq(digest))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn end_challenge<C: ConnectionTrait>(db: &C, digest: &str) -> Result<(), DbErr> {
    mfa_challenge::Entity::delete_by_id(digest.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes challenges that expired before `now`.
pub async fn prune_challenges<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<(), DbErr> {
    mfa_challenge::Entity::delete_many()
        .filter(mfa_challenge::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(())
}

/// Stores an authenticator brought from another system, with its used-code mask and dates.
pub async fn insert_imported<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    kind: &str,
    sealed_secret: &str,
    used_mask: i64,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    mfa_authenticator::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        secret: Set(sealed_secret.to_owned()),
        used_mask: Set(used_mask),
        created_at: Set(created_at),
        last_used_at: Set(last_used_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
