//! Ending credentials in bulk: every kind a user can hold (tokens, sessions, refresh-token
//! families), so a password event cannot miss one.

use chrono::{DateTime, Utc};
use entity::{refresh_token_family, session};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::tokens::{self, TokenId};
use super::users::UserId;

/// Ends all of the user's credentials except the opaque token `keep`.
pub async fn revoke_all<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    keep: Option<TokenId>,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    tokens::delete_for_user(db, user_id, keep).await?;
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    refresh_token_family::Entity::update_many()
        .col_expr(refresh_token_family::Column::RevokedAt, Expr::value(now))
        .col_expr(
            refresh_token_family::Column::RevokedReason,
            Expr::value(reason.to_owned()),
        )
        .filter(refresh_token_family::Column::UserId.eq(user_id))
        .filter(refresh_token_family::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
