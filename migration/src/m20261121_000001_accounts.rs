//! Accounts: users, their email addresses and email confirmation keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Run inside a transaction on every backend (SQLite has transactional DDL
    /// too), so a failed migration never leaves a half-built schema behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    // Stored trimmed and lowercased by the application, so a
                    // plain UNIQUE constraint is enough.
                    .col(string_uniq(Users::Email))
                    .col(string(Users::Username))
                    .col(string(Users::FirstName).default(""))
                    .col(string(Users::LastName).default(""))
                    // PHC string; the empty string marks an unusable password.
                    .col(string(Users::PasswordHash))
                    .col(boolean(Users::IsActive).default(true))
                    .col(boolean(Users::IsStaff).default(false))
                    .col(boolean(Users::IsSuperuser).default(false))
                    .col(timestamp_with_time_zone(Users::DateJoined))
                    .col(timestamp_with_time_zone_null(Users::LastLogin))
                    .to_owned(),
            )
            .await?;

        // Usernames are unique regardless of case (Django's behaviour). An
        // expression index is not expressible through the index builder, and
        // this exact statement is valid on both SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username))",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailAddresses::Table)
                    .col(big_pk_auto(EmailAddresses::Id))
                    .col(big_integer(EmailAddresses::UserId))
                    .col(string_uniq(EmailAddresses::Email))
                    .col(boolean(EmailAddresses::Verified).default(false))
                    .col(boolean(EmailAddresses::IsPrimary).default(false))
                    .col(timestamp_with_time_zone(EmailAddresses::CreatedAt))
                    // Declared inline: SQLite cannot add a foreign key later.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_email_addresses_user_id")
                            .from(EmailAddresses::Table, EmailAddresses::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_email_addresses_user_id")
                    .table(EmailAddresses::Table)
                    .col(EmailAddresses::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailConfirmations::Table)
                    .col(big_pk_auto(EmailConfirmations::Id))
                    .col(big_integer(EmailConfirmations::EmailAddressId))
                    // Hex SHA-256 of the emailed key; the key itself is never stored.
                    .col(string_len_uniq(EmailConfirmations::KeyDigest, 64))
                    .col(timestamp_with_time_zone(EmailConfirmations::CreatedAt))
                    .col(timestamp_with_time_zone(EmailConfirmations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(EmailConfirmations::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_email_confirmations_email_address_id")
                            .from(
                                EmailConfirmations::Table,
                                EmailConfirmations::EmailAddressId,
                            )
                            .to(EmailAddresses::Table, EmailAddresses::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_email_confirmations_email_address_id")
                    .table(EmailConfirmations::Table)
                    .col(EmailConfirmations::EmailAddressId)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Reverse dependency order; indexes go with their tables.
        for table in [
            EmailConfirmations::Table.into_iden(),
            EmailAddresses::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Username,
    FirstName,
    LastName,
    PasswordHash,
    IsActive,
    IsStaff,
    IsSuperuser,
    DateJoined,
    LastLogin,
}

#[derive(DeriveIden)]
enum EmailAddresses {
    Table,
    Id,
    UserId,
    Email,
    Verified,
    IsPrimary,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EmailConfirmations {
    Table,
    Id,
    EmailAddressId,
    KeyDigest,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
