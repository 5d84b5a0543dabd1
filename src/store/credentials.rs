//! Every kind of credential a user can hold (tokens, sessions, refresh-token families) at
//! once: ending them in bulk, so a password event cannot miss one; listing the live ones, so
//! the user sees every device; and what each one remembers of its use.

use chrono::{DateTime, Duration, Utc};
use entity::SessionId;
use entity::{auth_token, refresh_token, refresh_token_family, session};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

pub use super::issue::{Origin, TOUCH_EVERY};
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

/// One live credential, as its owner may see it: never its digest.
#[derive(Debug, Clone)]
pub struct LiveCredential {
    pub row: CredentialRow,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub origin: Origin,
}

/// Every credential of the user that still works at `now`: unexpired tokens, sessions that
/// have neither expired nor idled out (`session_idle`), and unrevoked refresh families with
/// an unexpired, unused refresh token.
pub async fn live_for_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    now: DateTime<Utc>,
    session_idle: Duration,
) -> Result<Vec<LiveCredential>, DbErr> {
    let origin = |ip, user_agent| Origin { ip, user_agent };
    let tokens = auth_token::Entity::find()
        .filter(auth_token::Column::UserId.eq(user_id))
        .filter(
            Condition::any()
                .add(auth_token::Column::ExpiresAt.is_null())
                .add(auth_token::Column::ExpiresAt.gt(now)),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|row| LiveCredential {
            row: CredentialRow::Token(row.id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            origin: origin(row.ip, row.user_agent),
        });
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(now - session_idle))
        .all(db)
        .await?
        .into_iter()
        .map(|row| LiveCredential {
            row: CredentialRow::Session(row.id),
            created_at: row.created_at,
            last_used_at: Some(row.last_seen_at),
            origin: origin(row.ip, row.user_agent),
        });
    let refreshable = Query::select()
        .column(refresh_token::Column::FamilyId)
        .from(refresh_token::Entity)
        .and_where(refresh_token::Column::UsedAt.is_null())
        .and_where(refresh_token::Column::ExpiresAt.gt(now))
        .to_owned();
    let families = refresh_token_family::Entity::find()
        .filter(refresh_token_family::Column::UserId.eq(user_id))
        .filter(refresh_token_family::Column::RevokedAt.is_null())
        .filter(refresh_token_family::Column::Id.in_subquery(refreshable))
        .all(db)
        .await?
        .into_iter()
        .map(|row| LiveCredential {
            row: CredentialRow::RefreshFamily(row.id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            origin: origin(row.ip, row.user_agent),
        });
    let mut live: Vec<LiveCredential> = tokens.chain(sessions).chain(families).collect();
    live.sort_by_key(|credential| std::cmp::Reverse(credential.created_at));
    Ok(live)
}

/// Records a use of `credential` at `now` (callers write this at most once a minute).
pub async fn touch<C: ConnectionTrait>(
    db: &C,
    credential: CredentialRow,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    match credential {
        CredentialRow::Nothing => {}
        CredentialRow::Token(id) => {
            auth_token::Entity::update_many()
                .col_expr(auth_token::Column::LastUsedAt, Expr::value(now))
                .filter(auth_token::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
        CredentialRow::Session(id) => super::sessions::touch(db, id, now).await?,
        CredentialRow::RefreshFamily(id) => {
            refresh_token_family::Entity::update_many()
                .col_expr(refresh_token_family::Column::LastUsedAt, Expr::value(now))
                .filter(refresh_token_family::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// Ends one credential: a token or session is deleted, a refresh family revoked (`reason`).
pub async fn end<C: ConnectionTrait>(
    db: &C,
    credential: CredentialRow,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    match credential {
        CredentialRow::Nothing => Ok(()),
        CredentialRow::Token(id) => tokens::delete(db, id).await.map(|_| ()),
        CredentialRow::Session(id) => super::sessions::delete(db, id).await,
        CredentialRow::RefreshFamily(id) => {
            super::refresh_tokens::revoke_family(db, id, now, reason).await
        }
    }
}
