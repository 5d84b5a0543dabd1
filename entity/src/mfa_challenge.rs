//! The second step of a login with MFA (dj-rest-auth's ephemeral token), by the SHA-256
//! digest of its token, which `Debug` redacts.

use sea_orm::entity::prelude::*;

use crate::ids::UserId;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "mfa_challenges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    #[debug("\"[redacted]\"")]
    pub digest: String,
    pub user_id: UserId,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Wrong codes so far.
    pub failures: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
