//! One issued JWT refresh token, tracked by its `jti` claim (the signed token
//! itself is not stored).

use sea_orm::entity::prelude::*;

use crate::ids::FamilyId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub family_id: FamilyId,
    #[sea_orm(unique)]
    pub jti: String,
    pub issued_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set when the token is rotated; a second use signals theft.
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::refresh_token_family::Entity",
        from = "Column::FamilyId",
        to = "super::refresh_token_family::Column::Id",
        on_delete = "Cascade"
    )]
    RefreshTokenFamily,
}

impl Related<super::refresh_token_family::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshTokenFamily.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
