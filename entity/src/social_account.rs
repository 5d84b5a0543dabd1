//! A user's account at an identity provider (allauth's `SocialAccount`), keyed by the
//! provider's stable subject.

use sea_orm::entity::prelude::*;

use crate::ids::{SocialAccountId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: SocialAccountId,
    pub user_id: UserId,
    /// The configured provider's `id` (`social.providers`).
    pub provider: String,
    /// The provider's subject: `sub`, or GitHub's numeric id.
    pub uid: String,
    /// What the provider last said of the user (JSON: address, names); never a token.
    pub extra_data: String,
    pub date_joined: DateTimeUtc,
    pub last_login: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
