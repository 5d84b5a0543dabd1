//! Tessera's schema migrations.
//!
//! Versioned and append-only: once a migration has shipped it is never edited;
//! schema changes go into a new `mYYYYMMDD_NNNNNN_*.rs` file appended to
//! [`Migrator::migrations`]. This crate deliberately does not depend on
//! `entity`, so a later model change can never silently rewrite history.
//!
//! Every migration must run (up and down) on both SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_accounts;
mod m20261121_000002_credentials;
mod m20261121_000003_mail_outbox;
mod m20261122_000004_rate_limits;
mod m20261122_000005_audit_events;
mod m20261206_000006_credential_revocations;
mod m20261206_000007_mfa;
mod m20261206_000008_audit_request_ids;
mod m20261206_000009_devices;
mod m20261206_000010_email_address_uniqueness;
mod m20261207_000011_social_accounts;

/// Applies Tessera's migrations in order; history is kept in `seaql_migrations`.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_accounts::Migration),
            Box::new(m20261121_000002_credentials::Migration),
            Box::new(m20261121_000003_mail_outbox::Migration),
            Box::new(m20261122_000004_rate_limits::Migration),
            Box::new(m20261122_000005_audit_events::Migration),
            Box::new(m20261206_000006_credential_revocations::Migration),
            Box::new(m20261206_000007_mfa::Migration),
            Box::new(m20261206_000008_audit_request_ids::Migration),
            Box::new(m20261206_000009_devices::Migration),
            Box::new(m20261206_000010_email_address_uniqueness::Migration),
            Box::new(m20261207_000011_social_accounts::Migration),
        ]
    }
}
