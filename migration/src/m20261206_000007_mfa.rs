//! Two-factor authentication and reauthentication.
//!
//! - `mfa_authenticators`: a user's TOTP authenticator and recovery codes, one row per kind.
//!   `secret` is sealed (AES-256-GCM under a key derived from `secret_key`): the TOTP secret,
//!   or the seed the recovery codes are derived from; `used_mask` marks used recovery codes.
//! - `mfa_challenges`: the second step of a login (dj-rest-auth's ephemeral token), by the
//!   digest of its token: single use, and dead after too many wrong codes.
//! - `mfa_accepted_steps`: the TOTP time steps already accepted per user, so a code is never
//!   accepted twice, on any instance (the primary key is the guard).
//! - `reauthenticated_at` on each kind of credential: when its owner last proved the password
//!   again (its creation, a login, counts as the first proof).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn user_fk(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaAuthenticators::Table)
                    .col(big_pk_auto(MfaAuthenticators::Id))
                    .col(big_integer(MfaAuthenticators::UserId))
                    // `totp` or `recovery_codes`.
                    .col(string_len(MfaAuthenticators::Kind, 16))
                    .col(text(MfaAuthenticators::Secret))
                    .col(big_integer(MfaAuthenticators::UsedMask).default(0))
                    .col(timestamp_with_time_zone(MfaAuthenticators::CreatedAt))
                    .col(timestamp_with_time_zone_null(MfaAuthenticators::LastUsedAt))
                    .foreign_key(&mut user_fk(
                        "fk_mfa_authenticators_user_id",
                        MfaAuthenticators::Table,
                        MfaAuthenticators::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_authenticators_user_kind")
                    .table(MfaAuthenticators::Table)
                    .col(MfaAuthenticators::UserId)
                    .col(MfaAuthenticators::Kind)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    .col(string_len(MfaChallenges::Digest, 64).primary_key())
                    .col(big_integer(MfaChallenges::UserId))
                    .col(timestamp_with_time_zone(MfaChallenges::CreatedAt))
                    .col(timestamp_with_time_zone(MfaChallenges::ExpiresAt))
                    .col(integer(MfaChallenges::Failures).default(0))
                    .foreign_key(&mut user_fk(
                        "fk_mfa_challenges_user_id",
                        MfaChallenges::Table,
                        MfaChallenges::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_challenges_expires_at")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MfaAcceptedSteps::Table)
                    .col(big_integer(MfaAcceptedSteps::UserId))
                    .col(big_integer(MfaAcceptedSteps::Step))
                    .col(timestamp_with_time_zone(MfaAcceptedSteps::AcceptedAt))
                    .primary_key(
                        Index::create()
                            .col(MfaAcceptedSteps::UserId)
                            .col(MfaAcceptedSteps::Step),
                    )
                    .foreign_key(&mut user_fk(
                        "fk_mfa_accepted_steps_user_id",
                        MfaAcceptedSteps::Table,
                        MfaAcceptedSteps::UserId,
                    ))
                    .to_owned(),
            )
            .await?;

        // SQLite adds one column per statement.
        for table in [
            AuthTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            RefreshTokenFamilies::Table.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(timestamp_with_time_zone_null(
                            Reauthenticated::ReauthenticatedAt,
                        ))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuthTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            RefreshTokenFamilies::Table.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .drop_column(Reauthenticated::ReauthenticatedAt)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            MfaAcceptedSteps::Table.into_iden(),
            MfaChallenges::Table.into_iden(),
            MfaAuthenticators::Table.into_iden(),
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
enum MfaAuthenticators {
    Table,
    Id,
    UserId,
    Kind,
    Secret,
    UsedMask,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Digest,
    UserId,
    CreatedAt,
    ExpiresAt,
    Failures,
}

#[derive(DeriveIden)]
enum MfaAcceptedSteps {
    Table,
    UserId,
    Step,
    AcceptedAt,
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
}

#[derive(DeriveIden)]
enum RefreshTokenFamilies {
    Table,
}

#[derive(DeriveIden)]
enum Reauthenticated {
    ReauthenticatedAt,
}
