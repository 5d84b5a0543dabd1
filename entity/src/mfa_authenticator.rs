//! A user's second factor: their TOTP authenticator, or their recovery codes. `secret` is
//! sealed (the TOTP secret, or the seed the codes derive from) and `Debug` redacts it.

use sea_orm::entity::prelude::*;

use crate::ids::UserId;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "mfa_authenticators")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: UserId,
    /// `totp` or `recovery_codes`.
    pub kind: String,
    #[debug("\"[redacted]\"")]
    pub secret: String,
    /// Recovery codes: bit `i` set once code `i` was used.
    pub used_mask: i64,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
