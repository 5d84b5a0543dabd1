//! A redirect flow in progress, by the SHA-256 digest of its `state`; `Debug` redacts what
//! would let someone finish it.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "social_login_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    #[debug("\"[redacted]\"")]
    pub digest: String,
    pub provider: String,
    #[debug("\"[redacted]\"")]
    pub nonce: String,
    /// PKCE's verifier, sent with the code exchange.
    #[debug("\"[redacted]\"")]
    pub code_verifier: String,
    /// Where the browser goes when the flow ends (an allowed origin's URL).
    pub next_url: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
