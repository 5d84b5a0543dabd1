//! The audit trail: one row per authentication event (logins, logouts, registrations,
//! verifications, password changes and resets, refresh-token reuse, rate limits hit).
//!
//! `user_id` has no foreign key on purpose: the history of an account must outlive the row
//! it describes. Nothing secret is ever stored here.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    // `login`, `logout`, `registration`, `email_verification`, ...
                    .col(string_len(AuditEvents::Event, 32))
                    // `success`, `failure` or `blocked`.
                    .col(string_len(AuditEvents::Outcome, 16))
                    // Why, in a word or two: `wrong_password`, `login_failed` (the limit), ...
                    .col(string_len_null(AuditEvents::Reason, 64))
                    .col(big_integer_null(AuditEvents::UserId))
                    .col(string_len_null(AuditEvents::Ip, 45))
                    .col(string_len_null(AuditEvents::UserAgent, 256))
                    .to_owned(),
            )
            .await?;
        // `tessera audit --user`: one account's events, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_user_id_created_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::UserId)
                    .col(AuditEvents::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // The retention sweep and the unfiltered listing.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_created_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    CreatedAt,
    Event,
    Outcome,
    Reason,
    UserId,
    Ip,
    UserAgent,
}
