//! A cookie session. Only the SHA-256 digest of the session key is stored.

use sea_orm::entity::prelude::*;

use crate::ids::{SessionId, UserId};

/// `Debug` redacts `digest`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: SessionId,
    pub user_id: UserId,
    /// Hex SHA-256 of the session key.
    #[sea_orm(unique, column_type = "String(StringLen::N(64))")]
    #[debug("\"[redacted]\"")]
    pub digest: String,
    pub created_at: DateTimeUtc,
    /// Drives idle expiry.
    pub last_seen_at: DateTimeUtc,
    /// Absolute expiry, regardless of activity.
    pub expires_at: DateTimeUtc,
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
