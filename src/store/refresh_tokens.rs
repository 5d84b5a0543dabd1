//! JWT refresh-token families. A login starts a family; each rotation adds a token to it and
//! retires the one presented. Tokens are tracked by `jti` (the signed token is not stored).
//! Presenting a retired token again means it was copied: the whole family is revoked.

use chrono::{DateTime, Utc};
use entity::{refresh_token, refresh_token_family};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::issue::Origin;
use super::users::UserId;

pub use entity::FamilyId;

/// A tracked refresh token and the family it belongs to.
pub struct Found {
    pub token: refresh_token::Model,
    pub family: refresh_token_family::Model,
}

/// Starts an empty family for `user_id` (its id goes into the tokens' `sid` claim).
pub async fn start_family<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    now: DateTime<Utc>,
    origin: &Origin,
) -> Result<FamilyId, DbErr> {
    let family = refresh_token_family::ActiveModel {
        user_id: Set(user_id),
        created_at: Set(now),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        ip: Set(origin.ip.clone()),
        user_agent: Set(origin.user_agent.clone()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(family.id)
}

/// A family that has not been revoked, with its user (what an access token of the family
/// stands for).
pub async fn find_live_family<C: ConnectionTrait>(
    db: &C,
    id: FamilyId,
) -> Result<Option<(refresh_token_family::Model, entity::user::Model)>, DbErr> {
    let found = refresh_token_family::Entity::find_by_id(id)
        .filter(refresh_token_family::Column::RevokedAt.is_null())
        .find_also_related(entity::user::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(family, user)| user.map(|user| (family, user))))
}

/// Adds token `jti` to a family (at login, and after each rotation).
pub async fn add<C: ConnectionTrait>(
    db: &C,
    family_id: FamilyId,
    jti: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_token::ActiveModel {
        family_id: Set(family_id),
        jti: Set(jti.to_owned()),
        issued_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn find<C: ConnectionTrait>(db: &C, jti: &str) -> Result<Option<Found>, DbErr> {
    let found = refresh_token::Entity::find()
        .filter(refresh_token::Column::Jti.eq(jti))
        .find_also_related(refresh_token_family::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(token, family)| family.map(|family| Found { token, family })))
}

/// Retires token `jti` if it is still current; `false` when it was already retired (reuse,
/// or a concurrent refresh that won). The conditional update makes one winner.
pub async fn retire<C: ConnectionTrait>(
    db: &C,
    jti: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Jti.eq(jti))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

pub async fn revoke_family<C: ConnectionTrait>(
    db: &C,
    family_id: FamilyId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    refresh_token_family::Entity::update_many()
        .col_expr(refresh_token_family::Column::RevokedAt, Expr::value(now))
        .col_expr(
            refresh_token_family::Column::RevokedReason,
            Expr::value(reason.to_owned()),
        )
        .filter(refresh_token_family::Column::Id.eq(family_id))
        .filter(refresh_token_family::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Deletes every family of the user, with its tokens (a deactivated account keeps no trace of
/// its devices: a family holds the address and user agent of its login).
pub async fn delete_families_of_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
) -> Result<(), DbErr> {
    refresh_token_family::Entity::delete_many()
        .filter(refresh_token_family::Column::UserId.eq(user_id))
        .exec(db)
        .await
        .map(|_| ())
}
