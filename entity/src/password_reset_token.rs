//! A single-use password reset token. Only its SHA-256 digest is stored.

use sea_orm::entity::prelude::*;

use crate::ids::UserId;

/// `Debug` redacts `digest`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "password_reset_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: UserId,
    /// Hex SHA-256 of the token.
    #[sea_orm(unique, column_type = "String(StringLen::N(64))")]
    #[debug("\"[redacted]\"")]
    pub digest: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set when the token is consumed.
    pub used_at: Option<DateTimeUtc>,
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
