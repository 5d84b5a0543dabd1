//! A finished redirect flow waiting to be traded for a credential (`social/exchange/`), by
//! the SHA-256 digest of its `login_code`, which `Debug` redacts.

use sea_orm::entity::prelude::*;

use crate::ids::UserId;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "social_login_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    #[debug("\"[redacted]\"")]
    pub digest: String,
    pub user_id: UserId,
    pub provider: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
