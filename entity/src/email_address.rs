//! An email address belonging to a user (allauth's `EmailAddress`).
//!
//! Unique per user, and among verified addresses: several accounts may wait to confirm one
//! address, and the first to confirm it keeps it. Each user has one primary address, the one
//! in `users.email`.

use sea_orm::entity::prelude::*;

use crate::ids::{EmailAddressId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_addresses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: EmailAddressId,
    pub user_id: UserId,
    /// Normalised (`service::email_address::normalize_email`).
    pub email: String,
    pub verified: bool,
    /// At most one per user (a partial unique index); `users.email` holds the same address.
    pub is_primary: bool,
    pub created_at: DateTimeUtc,
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
    #[sea_orm(has_many = "super::email_confirmation::Entity")]
    EmailConfirmation,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::email_confirmation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::EmailConfirmation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
