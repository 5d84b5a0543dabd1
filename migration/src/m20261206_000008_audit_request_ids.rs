//! The audit trail records the id of the HTTP request that made each event (`X-Request-Id`),
//! so an entry can be matched with the request's log lines.

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
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(string_len_null(AuditEvents::RequestId, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .drop_column(AuditEvents::RequestId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    RequestId,
}
