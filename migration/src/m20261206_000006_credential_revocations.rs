//! The revocation log: one row per change that makes cached credentials of a user stale (a
//! logout, a password change or reset, a deactivation, a profile edit). Every instance applies
//! each row to its credential cache: at once through `LISTEN/NOTIFY` on PostgreSQL, and by
//! polling this table every second for whatever a dropped listening connection missed.
//!
//! Rows are short-lived (pruned after minutes) and name only a user id and a kind: nothing
//! secret. `user_id` has no foreign key: a deleted account's revocation must still travel.

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
                    .table(CredentialRevocations::Table)
                    .col(big_pk_auto(CredentialRevocations::Id))
                    .col(timestamp_with_time_zone(CredentialRevocations::CreatedAt))
                    .col(big_integer(CredentialRevocations::UserId))
                    // `profile` (the user's details changed) or `credentials` (some of the
                    // user's credentials ended).
                    .col(string_len(CredentialRevocations::Kind, 16))
                    .to_owned(),
            )
            .await?;
        // The poll reads the last seconds; the prune deletes what is older than minutes.
        manager
            .create_index(
                Index::create()
                    .name("idx_credential_revocations_created_at")
                    .table(CredentialRevocations::Table)
                    .col(CredentialRevocations::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CredentialRevocations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CredentialRevocations {
    Table,
    Id,
    CreatedAt,
    UserId,
    Kind,
}
