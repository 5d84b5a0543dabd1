//! A DRF-style API token (`Authorization: Token <key>`). Only its SHA-256
//! digest is stored, so a database leak does not yield usable tokens.

use sea_orm::entity::prelude::*;

use crate::ids::{TokenId, UserId};

/// `Debug` redacts `digest`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "auth_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: TokenId,
    pub user_id: UserId,
    /// Hex SHA-256 of the token.
    #[sea_orm(unique, column_type = "String(StringLen::N(64))")]
    #[debug("\"[redacted]\"")]
    pub digest: String,
    pub created_at: DateTimeUtc,
    /// `None` means the token does not expire.
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    /// When the owner last proved the password again (`None`: only at creation).
    pub reauthenticated_at: Option<DateTimeUtc>,
    /// The client address of the login that created it.
    pub ip: Option<String>,
    /// The user agent of that login (at most 255 characters).
    pub user_agent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
