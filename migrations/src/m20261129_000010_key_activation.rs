//! `signing_keys.activates_at`: a rotated key is published first and signs only from this time
//! (Unix seconds), so that relying parties which cache the JWKS have it before they meet it.
//! NULL: the key signed from its creation, as every key before this migration did.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    ActivatesAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .add_column(
                        ColumnDef::new(SigningKeys::ActivatesAt)
                            .big_integer()
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
                    .table(SigningKeys::Table)
                    .drop_column(SigningKeys::ActivatesAt)
                    .to_owned(),
            )
            .await
    }
}
