//! Email addresses are unique per user, and among verified addresses, as allauth's
//! `EmailAddress` constraints have them (`unique_together (user, email)`,
//! `unique_verified_email`, `unique_primary_email`), instead of unique outright.
//!
//! Several accounts may now wait to confirm the same address (each was mailed its own key);
//! the first to confirm it keeps it, and the others' keys stop working. A plain `UNIQUE`
//! meant that whoever added an address first held it, confirmed or not, so anyone could keep
//! a stranger's address from signing up by adding it to their own account.
//!
//! `users.email`, the primary address, stays unique outright.
//!
//! SQLite cannot drop a column's `UNIQUE`, so there the table is rebuilt, and
//! `email_confirmations` with it (its foreign key names the table). Going down puts the old
//! constraint back, after dropping any unconfirmed, non-primary address that would break it.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The indexes this migration adds, on both backends.
const INDEXES: [&str; 4] = [
    "CREATE UNIQUE INDEX email_addresses_user_id_email_key \
     ON email_addresses (user_id, email)",
    "CREATE UNIQUE INDEX email_addresses_verified_email_key \
     ON email_addresses (email) WHERE verified",
    "CREATE UNIQUE INDEX email_addresses_primary_key \
     ON email_addresses (user_id) WHERE is_primary",
    // Lookups by address alone (the unique indexes above lead with the user, or hold only
    // verified addresses).
    "CREATE INDEX idx_email_addresses_email ON email_addresses (email)",
];

const INDEX_NAMES: [&str; 4] = [
    "email_addresses_user_id_email_key",
    "email_addresses_verified_email_key",
    "email_addresses_primary_key",
    "idx_email_addresses_email",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => rebuild_on_sqlite(manager, false).await?,
            _ => {
                // PostgreSQL's name for the constraint of `email varchar NOT NULL UNIQUE`.
                db.execute_unprepared(
                    "ALTER TABLE email_addresses DROP CONSTRAINT email_addresses_email_key",
                )
                .await?;
            }
        }
        for sql in INDEXES {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for name in INDEX_NAMES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        db.execute_unprepared(
            "DELETE FROM email_addresses WHERE NOT verified AND NOT is_primary AND email IN \
             (SELECT email FROM email_addresses GROUP BY email HAVING COUNT(*) > 1)",
        )
        .await?;
        match manager.get_database_backend() {
            DbBackend::Sqlite => rebuild_on_sqlite(manager, true).await,
            _ => db
                .execute_unprepared(
                    "ALTER TABLE email_addresses \
                     ADD CONSTRAINT email_addresses_email_key UNIQUE (email)",
                )
                .await
                .map(|_| ()),
        }
    }
}

/// Rebuilds `email_addresses` (with `email` unique outright or not) and `email_confirmations`,
/// keeping every row and id. The copies are made first and the originals dropped child first,
/// so no cascade ever fires; renaming the new address table rewrites the confirmations'
/// foreign key to the final name (SQLite ≥ 3.26).
async fn rebuild_on_sqlite(manager: &SchemaManager<'_>, email_unique: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let email = match email_unique {
        true => string_uniq(EmailAddresses::Email),
        false => string(EmailAddresses::Email),
    };
    manager
        .create_table(
            Table::create()
                .table(NewEmailAddresses::Table)
                .col(big_pk_auto(EmailAddresses::Id))
                .col(big_integer(EmailAddresses::UserId))
                .col(email)
                .col(boolean(EmailAddresses::Verified).default(false))
                .col(boolean(EmailAddresses::IsPrimary).default(false))
                .col(timestamp_with_time_zone(EmailAddresses::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_email_addresses_user_id")
                        .from(NewEmailAddresses::Table, EmailAddresses::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    db.execute_unprepared(
        "INSERT INTO email_addresses_new (id, user_id, email, verified, is_primary, created_at) \
         SELECT id, user_id, email, verified, is_primary, created_at FROM email_addresses",
    )
    .await?;
    manager
        .create_table(
            Table::create()
                .table(NewEmailConfirmations::Table)
                .col(big_pk_auto(EmailConfirmations::Id))
                .col(big_integer(EmailConfirmations::EmailAddressId))
                .col(string_len_uniq(EmailConfirmations::KeyDigest, 64))
                .col(timestamp_with_time_zone(EmailConfirmations::CreatedAt))
                .col(timestamp_with_time_zone(EmailConfirmations::ExpiresAt))
                .col(timestamp_with_time_zone_null(EmailConfirmations::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_email_confirmations_email_address_id")
                        .from(
                            NewEmailConfirmations::Table,
                            EmailConfirmations::EmailAddressId,
                        )
                        .to(NewEmailAddresses::Table, EmailAddresses::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    db.execute_unprepared(
        "INSERT INTO email_confirmations_new \
         (id, email_address_id, key_digest, created_at, expires_at, used_at) \
         SELECT id, email_address_id, key_digest, created_at, expires_at, used_at \
         FROM email_confirmations",
    )
    .await?;
    for sql in [
        "DROP TABLE email_confirmations",
        "DROP TABLE email_addresses",
        "ALTER TABLE email_addresses_new RENAME TO email_addresses",
        "ALTER TABLE email_confirmations_new RENAME TO email_confirmations",
        "CREATE INDEX idx_email_addresses_user_id ON email_addresses (user_id)",
        "CREATE INDEX idx_email_confirmations_email_address_id \
         ON email_confirmations (email_address_id)",
    ] {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EmailAddresses {
    Id,
    UserId,
    Email,
    Verified,
    IsPrimary,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NewEmailAddresses {
    #[sea_orm(iden = "email_addresses_new")]
    Table,
}

#[derive(DeriveIden)]
enum EmailConfirmations {
    Id,
    EmailAddressId,
    KeyDigest,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum NewEmailConfirmations {
    #[sea_orm(iden = "email_confirmations_new")]
    Table,
}
