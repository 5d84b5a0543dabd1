//! A chain of rotated JWT refresh tokens descending from one login.
//! Presenting an already-used token revokes the whole family.

use sea_orm::entity::prelude::*;

use crate::ids::{FamilyId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_token_families")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: FamilyId,
    pub user_id: UserId,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// Why the family was revoked (logout, reuse detected, ...).
    pub revoked_reason: Option<String>,
    /// When the owner last proved the password again (`None`: only at creation).
    pub reauthenticated_at: Option<DateTimeUtc>,
    /// The client address of the login that created it.
    pub ip: Option<String>,
    /// The user agent of that login (at most 255 characters).
    pub user_agent: Option<String>,
    /// Last use of one of its access or refresh tokens (written at most once a minute).
    pub last_used_at: Option<DateTimeUtc>,
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
    #[sea_orm(has_many = "super::refresh_token::Entity")]
    RefreshToken,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::refresh_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
