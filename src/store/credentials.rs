//! Ending credentials in bulk: every kind a user can hold (tokens, sessions, refresh-token
//! families), so a password event cannot miss one.

use chrono::{DateTime, Utc};
use entity::SessionId;
use entity::{auth_token, refresh_token_family, session};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::refresh_tokens::FamilyId;
use super::tokens::{self, TokenId};
use super::users::UserId;

/// The row of one credential (`Nothing` for one without a row: a JWT without a family). It
/// names the credential to spare when ending the others, and the one a reauthentication
/// renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRow {
    Nothing,
    Token(TokenId),
    RefreshFamily(FamilyId),
    Session(SessionId),
}

/// Ends all of the user's credentials except `keep`.
pub async fn revoke_all<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    keep: CredentialRow,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    let keep_token = match keep {
        CredentialRow::Token(id) => Some(id),
        _ => None,
    };
    tokens::delete_for_user(db, user_id, keep_token).await?;

    let mut sessions = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let CredentialRow::Session(id) = keep {
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
    if let CredentialRow::RefreshFamily(id) = keep {
        families = families.filter(refresh_token_family::Column::Id.ne(id));
    }
    families.exec(db).await?;
    Ok(())
}

/// When the owner of `credential` last proved the password: its last reauthentication, else
/// its creation (a login or a registration). `None` for a credential without a row, or gone.
pub async fn password_proved_at<C: ConnectionTrait>(
    db: &C,
    credential: CredentialRow,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let times = match credential {
        CredentialRow::Nothing => None,
        CredentialRow::Token(id) => auth_token::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|row| (row.created_at, row.reauthenticated_at)),
        CredentialRow::Session(id) => session::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|row| (row.created_at, row.reauthenticated_at)),
        CredentialRow::RefreshFamily(id) => refresh_token_family::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|row| (row.created_at, row.reauthenticated_at)),
    };
    Ok(times.map(|(created, renewed)| renewed.unwrap_or(created)))
}

/// Records that the owner of `credential` proved the password again at `now`.
pub async fn mark_reauthenticated<C: ConnectionTrait>(
    db: &C,
    credential: CredentialRow,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    match credential {
        CredentialRow::Nothing => {}
        CredentialRow::Token(id) => {
            auth_token::Entity::update_many()
                .col_expr(auth_token::Column::ReauthenticatedAt, Expr::value(now))
                .filter(auth_token::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
        CredentialRow::Session(id) => {
            session::Entity::update_many()
                .col_expr(session::Column::ReauthenticatedAt, Expr::value(now))
                .filter(session::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
        CredentialRow::RefreshFamily(id) => {
            refresh_token_family::Entity::update_many()
                .col_expr(
                    refresh_token_family::Column::ReauthenticatedAt,
                    Expr::value(now),
                )
                .filter(refresh_token_family::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}
