//! An index on `revoked_tokens.expires_at`: revoking an app token drops the entries whose
//! tokens have expired, and that look-up must not scan the table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    ExpiresAt,
}

const INDEX: &str = "idx_revoked_tokens_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(RevokedTokens::Table)
                    .col(RevokedTokens::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(RevokedTokens::Table)
                    .to_owned(),
            )
            .await
    }
}
