//! A pending email-verification key. Only its SHA-256 digest is stored.

use sea_orm::entity::prelude::*;
use std::fmt;

/// `Debug` is implemented by hand so `key_digest` is never printed.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_confirmations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email_address_id: i64,
    /// Hex SHA-256 of the key that was emailed.
    #[sea_orm(unique, column_type = "String(StringLen::N(64))")]
    pub key_digest: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set when the key is consumed; keys are single-use.
    pub used_at: Option<DateTimeUtc>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("email_address_id", &self.email_address_id)
            .field("key_digest", &crate::REDACTED)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish()
    }
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
