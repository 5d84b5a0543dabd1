//! Opaque API tokens, stored only as SHA-256 digests.

use chrono::{DateTime, Utc};
use entity::{auth_token, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::issue::Origin;
use super::users::UserId;

pub use entity::TokenId;

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    digest: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    origin: &Origin,
) -> Result<TokenId, DbErr> {
    let token = auth_token::ActiveModel {
        user_id: Set(user_id),
        digest: Set(digest.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        ip: Set(origin.ip.clone()),
        user_agent: Set(origin.user_agent.clone()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(token.id)
}

/// The unexpired token with this digest and its user.
pub async fn find_live<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<(auth_token::Model, user::Model)>, DbErr> {
    let found = auth_token::Entity::find()
        .filter(auth_token::Column::Digest.eq(digest))
        .filter(
            Condition::any()
                .add(auth_token::Column::ExpiresAt.is_null())
                .add(auth_token::Column::ExpiresAt.gt(now)),
        )
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(token, user)| user.map(|user| (token, user))))
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: TokenId) -> Result<u64, DbErr> {
    Ok(auth_token::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes every token of `user_id` except `keep`.
pub async fn delete_for_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    keep: Option<TokenId>,
) -> Result<u64, DbErr> {
    let mut query =
        auth_token::Entity::delete_many().filter(auth_token::Column::UserId.eq(user_id));
    if let Some(id) = keep {
        query = query.filter(auth_token::Column::Id.ne(id));
    }
    Ok(query.exec(db).await?.rows_affected)
}
