//! Users and their email addresses.

use chrono::{DateTime, Utc};
use entity::{email_address, user};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

pub use entity::UserId;

/// What registration or `createsuperuser` stores.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    pub now: DateTime<Utc>,
}

pub async fn find_by_id<C: ConnectionTrait>(
    db: &C,
    id: UserId,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// Looks up by an already-normalised (trimmed, lowercased) email.
pub async fn find_by_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await
}

fn username_matches(username: &str) -> Expr {
    // lower() on both sides, so the comparison agrees with the unique index on lower(username).
    Expr::expr(Func::lower(Expr::col(user::Column::Username)))
        .eq(Func::lower(Expr::val(username.to_owned())))
}

pub async fn find_by_username<C: ConnectionTrait>(
    db: &C,
    username: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(username_matches(username))
        .one(db)
        .await
}

/// The user a login key names: the one with that email address, else the one with that
/// username. One query whatever the answer, so its cost says nothing about which it was.
pub async fn find_by_email_or_username<C: ConnectionTrait>(
    db: &C,
    key: &str,
) -> Result<Option<user::Model>, DbErr> {
    let found = user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::Email.eq(key))
                .add(username_matches(key)),
        )
        .limit(2)
        .all(db)
        .await?;
    let by_email = found.iter().position(|u| u.email == key);
    Ok(match by_email {
        Some(index) => found.into_iter().nth(index),
        None => found.into_iter().next(),
    })
}

/// True when another user (not `except`) holds `username`, compared case-insensitively.
pub async fn username_taken<C: ConnectionTrait>(
    db: &C,
    username: &str,
    except: Option<UserId>,
) -> Result<bool, DbErr> {
    let mut query = user::Entity::find().filter(username_matches(username));
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    Ok(query
        .select_only()
        .column(user::Column::Id)
        .into_tuple::<UserId>()
        .one(db)
        .await?
        .is_some())
}

/// Usernames that start with `prefix` (case-insensitively), for picking a free one.
pub async fn usernames_starting_with<C: ConnectionTrait>(
    db: &C,
    prefix: &str,
) -> Result<Vec<String>, DbErr> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    user::Entity::find()
        .filter(
            Expr::expr(Func::lower(Expr::col(user::Column::Username)))
                .like(LikeExpr::new(pattern.to_lowercase()).escape('\\')),
        )
        .select_only()
        .column(user::Column::Username)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// Inserts the user and their primary email address. Fails with a unique violation when the
/// email or username is taken; callers decide what that means.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewUser<'_>,
) -> Result<(user::Model, email_address::Model), DbErr> {
    let user = user::ActiveModel {
        email: Set(new.email.to_owned()),
        username: Set(new.username.to_owned()),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        password_hash: Set(new.password_hash.to_owned()),
        is_active: Set(true),
        is_staff: Set(new.is_staff),
        is_superuser: Set(new.is_superuser),
        date_joined: Set(new.now),
        last_login: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let address = email_address::ActiveModel {
        user_id: Set(user.id),
        email: Set(new.email.to_owned()),
        verified: Set(new.email_verified),
        is_primary: Set(true),
        created_at: Set(new.now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((user, address))
}

/// Finds the user by email and locks the row until the transaction ends, so concurrent
/// requests about one account take turns. (PostgreSQL: `FOR UPDATE`; SQLite needs no row lock,
/// its write transactions already exclude each other.)
pub async fn lock_by_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .lock_exclusive()
        .one(db)
        .await
}

/// Finds the user by id and locks the row until the transaction ends (see `lock_by_email`).
pub async fn lock_by_id<C: ConnectionTrait>(
    db: &C,
    id: UserId,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).lock_exclusive().one(db).await
}

/// The account that holds the (normalised) address: the one whose primary address it is, or
/// the one that confirmed it. An address some accounts only wait to confirm belongs to none of
/// them. `except` leaves one account out (the one asking).
pub async fn find_owner_of_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
    except: Option<UserId>,
) -> Result<Option<user::Model>, DbErr> {
    let confirmed_by = Query::select()
        .column(email_address::Column::UserId)
        .from(email_address::Entity)
        .and_where(email_address::Column::Email.eq(email))
        .and_where(email_address::Column::Verified.eq(true))
        .to_owned();
    let mut query = user::Entity::find().filter(
        Condition::any()
            .add(user::Column::Email.eq(email))
            .add(user::Column::Id.in_subquery(confirmed_by)),
    );
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    query.one(db).await
}

/// Sets the primary address (`users.email`). A unique violation means another account has it.
pub async fn set_email<C: ConnectionTrait>(db: &C, id: UserId, email: &str) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(email.to_owned()))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Whether `email` of `user_id` has been confirmed.
pub async fn email_verified<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    email: &str,
) -> Result<bool, DbErr> {
    Ok(email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(user_id))
        .filter(email_address::Column::Email.eq(email))
        .filter(email_address::Column::Verified.eq(true))
        .one(db)
        .await?
        .is_some())
}

/// Updates the editable profile fields (`None` leaves a field as it is).
pub async fn update_profile<C: ConnectionTrait>(
    db: &C,
    user: user::Model,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
) -> Result<user::Model, DbErr> {
    let mut active: user::ActiveModel = user.into();
    if let Some(value) = username {
        active.username = Set(value);
    }
    if let Some(value) = first_name {
        active.first_name = Set(value);
    }
    if let Some(value) = last_name {
        active.last_name = Set(value);
    }
    active.update(db).await
}

pub async fn set_password_hash<C: ConnectionTrait>(
    db: &C,
    id: UserId,
    password_hash: &str,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::PasswordHash,
            Expr::value(password_hash.to_owned()),
        )
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn record_login<C: ConnectionTrait>(
    db: &C,
    id: UserId,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::LastLogin, Expr::value(at))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Sets `is_active`; returns whether the user exists.
pub async fn set_active<C: ConnectionTrait>(
    db: &C,
    id: UserId,
    active: bool,
) -> Result<bool, DbErr> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(active))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Deletes the user; every row tied to it (credentials, addresses, MFA data, reset tokens)
/// goes with it (the foreign keys cascade).
pub async fn delete<C: ConnectionTrait>(db: &C, id: UserId) -> Result<(), DbErr> {
    user::Entity::delete_by_id(id).exec(db).await.map(|_| ())
}

/// How many active superusers there are.
pub async fn active_superusers<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    user::Entity::find()
        .filter(user::Column::IsSuperuser.eq(true))
        .filter(user::Column::IsActive.eq(true))
        .count(db)
        .await
}

/// Every user, oldest first, with whether their primary address is confirmed; with `search`,
/// only those whose email, username, first or last name contains it (case-insensitively).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    search: Option<&str>,
) -> Result<Vec<(user::Model, bool)>, DbErr> {
    let mut matching = Condition::all();
    if let Some(text) = search {
        let pattern = format!(
            "%{}%",
            text.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut any = Condition::any();
        for column in [
            user::Column::Email,
            user::Column::Username,
            user::Column::FirstName,
            user::Column::LastName,
        ] {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\')),
            );
        }
        matching = matching.add(any);
    }
    let users = user::Entity::find()
        .filter(matching.clone())
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?;
    // One more query, not one per user: the confirmed addresses of the users listed.
    let listed = Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .cond_where(matching)
        .to_owned();
    let confirmed: std::collections::HashSet<(UserId, String)> = email_address::Entity::find()
        .filter(email_address::Column::Verified.eq(true))
        .filter(email_address::Column::UserId.in_subquery(listed))
        .select_only()
        .column(email_address::Column::UserId)
        .column(email_address::Column::Email)
        .into_tuple::<(UserId, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(users
        .into_iter()
        .map(|user| {
            let verified = confirmed.contains(&(user.id, user.email.clone()));
            (user, verified)
        })
        .collect())
}

/// Keeps the row of a deleted account but nothing personal in it: username and address
/// become `deleted-<id>` names (both columns are unique), the names empty, the password
/// unusable, and the account inactive.
pub async fn blank<C: ConnectionTrait>(db: &C, id: UserId) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::Username, Expr::value(format!("deleted-{id}")))
        .col_expr(
            user::Column::Email,
            Expr::value(format!("deleted-{id}@deleted.invalid")),
        )
        .col_expr(user::Column::FirstName, Expr::value(""))
        .col_expr(user::Column::LastName, Expr::value(""))
        .col_expr(user::Column::PasswordHash, Expr::value("!"))
        .col_expr(user::Column::IsActive, Expr::value(false))
        .col_expr(user::Column::LastLogin, Expr::value(None::<DateTime<Utc>>))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// A user brought from another system (`tessera import-django`), as it was there.
pub struct ImportedUser<'a> {
    /// Kept as the primary key when free; `None` takes the next one.
    pub id: Option<UserId>,
    pub email: &'a str,
    pub username: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub password_hash: &'a str,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

/// Inserts an imported user without any address (the import adds them as they were). A kept
/// id needs [`move_id_sequence_past_ids`] before the transaction ends.
pub async fn insert_imported<C: ConnectionTrait>(
    db: &C,
    new: ImportedUser<'_>,
) -> Result<user::Model, DbErr> {
    let mut row = user::ActiveModel {
        email: Set(new.email.to_owned()),
        username: Set(new.username.to_owned()),
        first_name: Set(new.first_name.to_owned()),
        last_name: Set(new.last_name.to_owned()),
        password_hash: Set(new.password_hash.to_owned()),
        is_active: Set(new.is_active),
        is_staff: Set(new.is_staff),
        is_superuser: Set(new.is_superuser),
        date_joined: Set(new.date_joined),
        last_login: Set(new.last_login),
        ..Default::default()
    };
    if let Some(id) = new.id {
        row.id = Set(id);
    }
    row.insert(db).await
}

/// Moves PostgreSQL's id sequence past the highest id, after inserts that chose their ids
/// (SQLite's AUTOINCREMENT follows by itself), so later sign-ups do not collide.
pub async fn move_id_sequence_past_ids<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_unprepared(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), \
             GREATEST((SELECT MAX(id) FROM users), 1))",
        )
        .await?;
    }
    Ok(())
}

/// Adds an imported address as it was (verified, primary) to an imported user.
pub async fn insert_imported_address<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    email: &str,
    verified: bool,
    is_primary: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    email_address::ActiveModel {
        user_id: Set(user_id),
        email: Set(email.to_owned()),
        verified: Set(verified),
        is_primary: Set(is_primary),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// How many users have no `event` entry in the audit trail (the import asks about users it
/// did not bring itself).
pub async fn count_without_audit_event<C: ConnectionTrait>(
    db: &C,
    event: &str,
) -> Result<u64, DbErr> {
    use entity::audit_event;
    use sea_orm::PaginatorTrait;
    let imported = Query::select()
        .column(audit_event::Column::UserId)
        .from(audit_event::Entity)
        .and_where(audit_event::Column::Event.eq(event))
        .and_where(audit_event::Column::UserId.is_not_null())
        .to_owned();
    user::Entity::find()
        .filter(user::Column::Id.not_in_subquery(imported))
        .count(db)
        .await
}
