//! Rate-limit counters for `rate_limits.store = "database"`: one row per bucket and fixed
//! window, so every instance on one database counts against the same limits.

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
                    .table(RateLimitCounters::Table)
                    // What is counted: action, rule and subject (IP, digest of a key, user id).
                    .col(string_len(RateLimitCounters::Bucket, 255))
                    // Start of the fixed window, in Unix seconds.
                    .col(big_integer(RateLimitCounters::WindowStart))
                    .col(integer(RateLimitCounters::Count).default(0))
                    // Lets a single upsert increment the counter atomically.
                    .primary_key(
                        Index::create()
                            .col(RateLimitCounters::Bucket)
                            .col(RateLimitCounters::WindowStart),
                    )
                    .to_owned(),
            )
            .await?;
        // Serves the sweep of windows that have ended.
        manager
            .create_index(
                Index::create()
                    .name("rate_limit_counters_window_start_idx")
                    .table(RateLimitCounters::Table)
                    .col(RateLimitCounters::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimitCounters::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimitCounters {
    Table,
    Bucket,
    WindowStart,
    Count,
}
