//! Devices and sessions (issue 12): each credential remembers the address and user agent of
//! the login that created it, and a refresh family when it was last used, so a user can see
//! where they are logged in. (Tokens have `last_used_at` and sessions `last_seen_at` already.)

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables of the three kinds of credential.
fn credential_tables() -> [Alias; 3] {
    [
        Alias::new("auth_tokens"),
        Alias::new("sessions"),
        Alias::new("refresh_token_families"),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for table in credential_tables() {
            for column in [
                string_len_null(Device::Ip, 45),
                string_len_null(Device::UserAgent, 255),
            ] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .add_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("refresh_token_families"))
                    .add_column(timestamp_with_time_zone_null(Device::LastUsedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("refresh_token_families"))
                    .drop_column(Device::LastUsedAt)
                    .to_owned(),
            )
            .await?;
        for table in credential_tables() {
            for column in [Device::Ip, Device::UserAgent] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .drop_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Device {
    Ip,
    UserAgent,
    LastUsedAt,
}
