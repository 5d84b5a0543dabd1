//! Ending credentials in bulk: every kind a user can hold (tokens, sessions, refresh-token
//! families), so a password event cannot miss one.

use chrono::{DateTime, Utc};
use entity::SessionId;
use entity::{refresh_token_family, session};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::refresh_tokens::FamilyId;
use super::tokens::{self, TokenId};
use super::users::UserId;

/// A credential to spare when ending the others (the one the request came with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Nothing,
    Token(TokenId),
    RefreshFamily(FamilyId),
    Session(SessionId),
}

/// Ends all of the user's credentials except `keep`.
pub async fn revoke_all<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    keep: Keep,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    let keep_token = match keep {
        Keep::Token(id) => Some(id),
        _ => None,
    };
    tokens::delete_for_user(db, user_id, keep_token).await?;

    let mut sessions = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Keep::Session(id) = keep {
        sessions = sessions.filter(session::Column::Id.ne(id));
    }
    sessions.exec(db).await?;

    let mut families = refresh_token_family::Entity::update_many()
        .col_expr(refresh_token_family::Column::RevokedAt, Expr::value(now))
        .col_expr(
            refresh_token_family::Column::RevokedReason,
            Expr::value(reason.to_owned()),
        )
        .filter(refresh_token_family::Column::UserId.eq(user_id))
        .filter(refresh_token_family::Column::RevokedAt.is_null());
    if let Keep::RefreshFamily(id) = keep {
        families = families.filter(refresh_token_family::Column::Id.ne(id));
    }
    families.exec(db).await?;
    Ok(())
}
