//! Social login (issue 13).
//!
//! - `social_accounts`: a user's account at an identity provider, keyed by the provider's
//!   stable subject (`uid`: OpenID Connect's `sub`, GitHub's numeric id), never by a name or
//!   address that can change. `extra_data` is what the provider said of the user (JSON), no
//!   tokens.
//! - `social_login_states`: a redirect flow in progress, by the digest of its `state`: the
//!   nonce and PKCE verifier sent with it and where the browser goes back to. Single use,
//!   ten minutes.
//! - `social_login_codes`: a finished redirect flow waiting for its frontend to trade the
//!   `login_code` for the mode's credential, by digest. Single use, a minute.

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
                    .table(SocialAccounts::Table)
                    .col(big_pk_auto(SocialAccounts::Id))
                    .col(big_integer(SocialAccounts::UserId))
                    .col(string_len(SocialAccounts::Provider, 64))
                    .col(string_len(SocialAccounts::Uid, 255))
                    .col(text(SocialAccounts::ExtraData))
                    .col(timestamp_with_time_zone(SocialAccounts::DateJoined))
                    .col(timestamp_with_time_zone_null(SocialAccounts::LastLogin))
                    .foreign_key(&mut user_fk(
                        "fk_social_accounts_user_id",
                        SocialAccounts::Table,
                        SocialAccounts::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_accounts_provider_uid")
                    .table(SocialAccounts::Table)
                    .col(SocialAccounts::Provider)
                    .col(SocialAccounts::Uid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_accounts_user_id")
                    .table(SocialAccounts::Table)
                    .col(SocialAccounts::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SocialLoginStates::Table)
                    .col(string_len(SocialLoginStates::Digest, 64).primary_key())
                    .col(string_len(SocialLoginStates::Provider, 64))
                    .col(string_len(SocialLoginStates::Nonce, 64))
                    .col(string_len(SocialLoginStates::CodeVerifier, 128))
                    .col(text(SocialLoginStates::NextUrl))
                    .col(timestamp_with_time_zone(SocialLoginStates::CreatedAt))
                    .col(timestamp_with_time_zone(SocialLoginStates::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_login_states_expires_at")
                    .table(SocialLoginStates::Table)
                    .col(SocialLoginStates::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SocialLoginCodes::Table)
                    .col(string_len(SocialLoginCodes::Digest, 64).primary_key())
                    .col(big_integer(SocialLoginCodes::UserId))
                    .col(string_len(SocialLoginCodes::Provider, 64))
                    .col(timestamp_with_time_zone(SocialLoginCodes::CreatedAt))
                    .col(timestamp_with_time_zone(SocialLoginCodes::ExpiresAt))
                    .foreign_key(&mut user_fk(
                        "fk_social_login_codes_user_id",
                        SocialLoginCodes::Table,
                        SocialLoginCodes::UserId,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SocialLoginCodes::Table.into_iden(),
            SocialLoginStates::Table.into_iden(),
            SocialAccounts::Table.into_iden(),
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
enum SocialAccounts {
    Table,
    Id,
    UserId,
    Provider,
    Uid,
    ExtraData,
    DateJoined,
    LastLogin,
}

#[derive(DeriveIden)]
enum SocialLoginStates {
    Table,
    Digest,
    Provider,
    Nonce,
    CodeVerifier,
    NextUrl,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SocialLoginCodes {
    Table,
    Digest,
    UserId,
    Provider,
    CreatedAt,
    ExpiresAt,
}
