//! A pending email-verification key. Only its SHA-256 digest is stored.

use sea_orm::entity::prelude::*;

use crate::ids::EmailAddressId;

/// `Debug` redacts `key_digest`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "email_confirmations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email_address_id: EmailAddressId,
    /// Hex SHA-256 of the key that was emailed.
    #[sea_orm(unique, column_type = "String(StringLen::N(64))")]
    #[debug("\"[redacted]\"")]
    pub key_digest: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set when the key is consumed; keys are single-use.
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::email_address::Entity",
        from = "Column::EmailAddressId",
        to = "super::email_address::Column::Id",
        on_delete = "Cascade"
    )]
    EmailAddress,
}

impl Related<super::email_address::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::EmailAddress.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
