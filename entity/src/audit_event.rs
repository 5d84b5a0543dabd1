//! One entry of the audit trail. Holds no secrets, so `Debug` is derived.

use sea_orm::entity::prelude::*;

use crate::ids::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub event: String,
    pub outcome: String,
    pub reason: Option<String>,
    /// No foreign key: the trail outlives the account.
    pub user_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The HTTP request that made the event (`X-Request-Id`).
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
