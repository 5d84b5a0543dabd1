//! Social login: users' accounts at identity providers, redirect flows in progress (by the
//! digest of their `state`) and login codes waiting to be traded (by digest).

use chrono::{DateTime, Utc};
use entity::{SocialAccountId, social_account, social_login_code, social_login_state};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PrimaryKeyTrait,
    QueryFilter, QueryOrder, Set,
};

use super::users::UserId;

/// The account at `provider` with subject `uid`, whoever it belongs to.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    uid: &str,
) -> Result<Option<social_account::Model>, DbErr> {
    social_account::Entity::find()
        .filter(social_account::Column::Provider.eq(provider))
        .filter(social_account::Column::Uid.eq(uid))
        .one(db)
        .await
}

/// The user's accounts at providers, oldest first.
pub async fn list_for_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
) -> Result<Vec<social_account::Model>, DbErr> {
    social_account::Entity::find()
        .filter(social_account::Column::UserId.eq(user_id))
        .order_by_asc(social_account::Column::Id)
        .all(db)
        .await
}

/// Links the provider's account to the user; a second link of the same (provider, uid)
/// fails on the unique index.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    provider: &str,
    uid: &str,
    extra_data: &str,
    now: DateTime<Utc>,
) -> Result<social_account::Model, DbErr> {
    social_account::ActiveModel {
        user_id: Set(user_id),
        provider: Set(provider.to_owned()),
        uid: Set(uid.to_owned()),
        extra_data: Set(extra_data.to_owned()),
        date_joined: Set(now),
        last_login: Set(Some(now)),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// A sign-in through the account: when, and what the provider says of the user now.
pub async fn record_login<C: ConnectionTrait>(
    db: &C,
    id: SocialAccountId,
    extra_data: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    social_account::ActiveModel {
        id: Set(id),
        extra_data: Set(extra_data.to_owned()),
        last_login: Set(Some(now)),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Removes the user's account `id`; false when the user has none by that id.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    id: SocialAccountId,
) -> Result<bool, DbErr> {
    let deleted = social_account::Entity::delete_many()
        .filter(social_account::Column::Id.eq(id))
        .filter(social_account::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Removes every link of the user (an account deleted by deactivation keeps its row).
pub async fn delete_all_for_user<C: ConnectionTrait>(db: &C, user_id: UserId) -> Result<(), DbErr> {
    social_account::Entity::delete_many()
        .filter(social_account::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

pub struct NewState<'a> {
    pub digest: &'a str,
    pub provider: &'a str,
    pub nonce: &'a str,
    pub code_verifier: &'a str,
    pub next_url: &'a str,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_state<C: ConnectionTrait>(db: &C, state: NewState<'_>) -> Result<(), DbErr> {
    // Flows never finished would pile up: each start clears the expired ones.
    social_login_state::Entity::delete_many()
        .filter(social_login_state::Column::ExpiresAt.lte(state.now))
        .exec(db)
        .await?;
    social_login_state::ActiveModel {
        digest: Set(state.digest.to_owned()),
        provider: Set(state.provider.to_owned()),
        nonce: Set(state.nonce.to_owned()),
        code_verifier: Set(state.code_verifier.to_owned()),
        next_url: Set(state.next_url.to_owned()),
        created_at: Set(state.now),
        expires_at: Set(state.expires_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The live flow with this digest, spent by this call.
pub async fn take_state<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<social_login_state::Model>, DbErr> {
    take::<social_login_state::Entity, _>(db, digest, now, |flow| flow.expires_at).await
}

pub async fn insert_login_code<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    user_id: UserId,
    provider: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    social_login_code::Entity::delete_many()
        .filter(social_login_code::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    social_login_code::ActiveModel {
        digest: Set(digest.to_owned()),
        user_id: Set(user_id),
        provider: Set(provider.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The live login code with this digest, spent by this call.
pub async fn take_login_code<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<social_login_code::Model>, DbErr> {
    take::<social_login_code::Entity, _>(db, digest, now, |code| code.expires_at).await
}

/// Single use: the row keyed by `digest` is deleted, and of concurrent callers only the one
/// whose delete removed it gets it (when it has not expired).
async fn take<E, C>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
    expires_at: impl Fn(&E::Model) -> DateTime<Utc>,
) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::PrimaryKey: PrimaryKeyTrait<ValueType = String>,
    C: ConnectionTrait,
{
    let Some(found) = E::find_by_id(digest.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let deleted = E::delete_by_id(digest.to_owned()).exec(db).await?;
    Ok((deleted.rows_affected == 1 && expires_at(&found) > now).then_some(found))
}
