//! Refresh-token reuse told from forgery:
//!
//! - `sessions.retired_refresh` and `grants.retired_refresh`: the first 16 hex characters of the
//!   digests of the family's last 32 rotated-out secrets, newest first, concatenated (at most
//!   512 characters; NULL before the first rotation). A refresh token whose secret is neither
//!   the current one nor among these was never handed out: it is refused and the family lives
//!   on, where before any wrong secret ended the family (and family ids are not secret).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    RetiredRefresh,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    RetiredRefresh,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(
                        ColumnDef::new(Sessions::RetiredRefresh)
                            .string_len(512)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .add_column(
                        ColumnDef::new(Grants::RetiredRefresh)
                            .string_len(512)
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .drop_column(Grants::RetiredRefresh)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::RetiredRefresh)
                    .to_owned(),
            )
            .await
    }
}
