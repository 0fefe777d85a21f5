//! User management and the audit trail:
//!
//! - `users.disabled_at`: when an administrator disabled the account (NULL: enabled). A user
//!   without a password keeps an empty `password_hash`, which no password verifies.
//! - `audit_events`: every security-relevant change, written in the transaction of the change
//!   itself. `id` grows with every insert and orders the trail (newest first by `id`); `at` is
//!   the time the change was made, for ranges and the retention sweep. `detail` is a small JSON
//!   object that never holds a secret.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    DisabledAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    ActorKind,
    ActorId,
    Action,
    TargetType,
    TargetId,
    RequestId,
    Address,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::DisabledAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditEvents::At).big_integer().not_null())
                    .col(
                        ColumnDef::new(AuditEvents::ActorKind)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::ActorId).string_len(64).null())
                    .col(
                        ColumnDef::new(AuditEvents::Action)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::TargetType)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::TargetId).string_len(128).null())
                    .col(ColumnDef::new(AuditEvents::RequestId).string_len(64).null())
                    .col(ColumnDef::new(AuditEvents::Address).string_len(64).null())
                    .col(
                        ColumnDef::new(AuditEvents::Detail)
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_audit_events_at", vec![AuditEvents::At]),
            (
                "idx_audit_events_actor",
                vec![AuditEvents::ActorId, AuditEvents::Id],
            ),
            (
                "idx_audit_events_target",
                vec![
                    AuditEvents::TargetType,
                    AuditEvents::TargetId,
                    AuditEvents::Id,
                ],
            ),
            (
                "idx_audit_events_action",
                vec![AuditEvents::Action, AuditEvents::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::DisabledAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
