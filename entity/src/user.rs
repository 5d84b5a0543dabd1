//! An account (`users`), shaped like Django's `auth.User`.

use sea_orm::entity::prelude::*;

use crate::ids::UserId;

/// `Debug` redacts `password_hash`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: UserId,
    /// Trimmed and lowercased before storage; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// Unique case-insensitively (index on `lower(username)`), stored as entered.
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// PHC-format hash; the empty string means "unusable password"
    /// (e.g. an account that can only sign in another way).
    #[debug("\"[redacted]\"")]
    pub password_hash: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: DateTimeUtc,
    pub last_login: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::email_address::Entity")]
    EmailAddress,
    #[sea_orm(has_many = "super::auth_token::Entity")]
    AuthToken,
    #[sea_orm(has_many = "super::password_reset_token::Entity")]
    PasswordResetToken,
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
    #[sea_orm(has_many = "super::refresh_token_family::Entity")]
    RefreshTokenFamily,
}

impl Related<super::email_address::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::EmailAddress.def()
    }
}

impl Related<super::auth_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AuthToken.def()
    }
}

impl Related<super::password_reset_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PasswordResetToken.def()
    }
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::refresh_token_family::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshTokenFamily.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
