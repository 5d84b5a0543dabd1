//! A queued outgoing email (`outbox`). Rows are written in the same
//! transaction as the change that triggers them and delivered by a worker.

use sea_orm::entity::prelude::*;

/// `Debug` redacts the bodies: they carry
/// live confirmation and password-reset links.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel, derive_more::Debug)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Template kind, e.g. "email_confirmation" or "password_reset".
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    #[sea_orm(column_type = "Text")]
    #[debug("\"[redacted]\"")]
    pub text_body: String,
    #[sea_orm(column_type = "Text")]
    #[debug("\"[redacted]\"")]
    pub html_body: String,
    pub created_at: DateTimeUtc,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// Lease held by the worker currently sending this message.
    pub claimed_until: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    /// Set once retries are exhausted.
    pub failed_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
