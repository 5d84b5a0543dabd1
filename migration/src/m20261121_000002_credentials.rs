//! Credentials: API tokens, password reset tokens, browser sessions and JWT
//! refresh-token rotation families.
//!
//! Secrets are never stored: tables keep a hex SHA-256 `digest` of the token
//! (or, for JWT refresh tokens, only the `jti`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Cascading foreign key from `table.column` to `users.id`.
fn user_fk(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, column: impl IntoIden) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .col(column)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Run inside a transaction on every backend (SQLite has transactional DDL
    /// too), so a failed migration never leaves a half-built schema behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // DRF-style API tokens (`Authorization: Token ...`).
        manager
            .create_table(
                Table::create()
                    .table(AuthTokens::Table)
                    .col(big_pk_auto(AuthTokens::Id))
                    .col(big_integer(AuthTokens::UserId))
                    .col(string_len_uniq(AuthTokens::Digest, 64))
                    .col(timestamp_with_time_zone(AuthTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(AuthTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AuthTokens::LastUsedAt))
                    .foreign_key(&mut user_fk(
                        "fk_auth_tokens_user_id",
                        AuthTokens::Table,
                        AuthTokens::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_auth_tokens_user_id",
                AuthTokens::Table,
                AuthTokens::UserId,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordResetTokens::Table)
                    .col(big_pk_auto(PasswordResetTokens::Id))
                    .col(big_integer(PasswordResetTokens::UserId))
                    .col(string_len_uniq(PasswordResetTokens::Digest, 64))
                    .col(timestamp_with_time_zone(PasswordResetTokens::CreatedAt))
                    .col(timestamp_with_time_zone(PasswordResetTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PasswordResetTokens::UsedAt))
                    .foreign_key(&mut user_fk(
                        "fk_password_reset_tokens_user_id",
                        PasswordResetTokens::Table,
                        PasswordResetTokens::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_password_reset_tokens_user_id",
                PasswordResetTokens::Table,
                PasswordResetTokens::UserId,
            ))
            .await?;

        // Cookie sessions; `expires_at` is an absolute cap independent of
        // activity (`last_seen_at` drives idle expiry).
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(big_pk_auto(Sessions::Id))
                    .col(big_integer(Sessions::UserId))
                    .col(string_len_uniq(Sessions::Digest, 64))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .foreign_key(&mut user_fk(
                        "fk_sessions_user_id",
                        Sessions::Table,
                        Sessions::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_sessions_user_id",
                Sessions::Table,
                Sessions::UserId,
            ))
            .await?;

        // A family groups every refresh token descended from one login, so
        // reuse of a rotated token can revoke the whole chain at once.
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokenFamilies::Table)
                    .col(big_pk_auto(RefreshTokenFamilies::Id))
                    .col(big_integer(RefreshTokenFamilies::UserId))
                    .col(timestamp_with_time_zone(RefreshTokenFamilies::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        RefreshTokenFamilies::RevokedAt,
                    ))
                    .col(string_null(RefreshTokenFamilies::RevokedReason))
                    .foreign_key(&mut user_fk(
                        "fk_refresh_token_families_user_id",
                        RefreshTokenFamilies::Table,
                        RefreshTokenFamilies::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_refresh_token_families_user_id",
                RefreshTokenFamilies::Table,
                RefreshTokenFamilies::UserId,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(big_pk_auto(RefreshTokens::Id))
                    .col(big_integer(RefreshTokens::FamilyId))
                    .col(string_uniq(RefreshTokens::Jti))
                    .col(timestamp_with_time_zone(RefreshTokens::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_family_id")
                            .from(RefreshTokens::Table, RefreshTokens::FamilyId)
                            .to(RefreshTokenFamilies::Table, RefreshTokenFamilies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_refresh_tokens_family_id",
                RefreshTokens::Table,
                RefreshTokens::FamilyId,
            ))
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Reverse dependency order; indexes go with their tables.
        for table in [
            RefreshTokens::Table.into_iden(),
            RefreshTokenFamilies::Table.into_iden(),
            Sessions::Table.into_iden(),
            PasswordResetTokens::Table.into_iden(),
            AuthTokens::Table.into_iden(),
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
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    Id,
    UserId,
    Digest,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PasswordResetTokens {
    Table,
    Id,
    UserId,
    Digest,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    Digest,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshTokenFamilies {
    Table,
    Id,
    UserId,
    CreatedAt,
    RevokedAt,
    RevokedReason,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    FamilyId,
    Jti,
    IssuedAt,
    ExpiresAt,
    UsedAt,
}
