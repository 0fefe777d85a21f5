//! The rest of the token lifecycle: each app's `resources` (the RFC 8707 resource indicators its
//! `client_credentials` tokens may name as their audience; a JSON array, empty by default), and
//! `revoked_tokens`, the ids (`jti`) of revoked access tokens that belong to no grant (tokens an
//! app got for itself), kept until they would have expired anyway.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Apps {
    Table,
    ClientId,
    Resources,
}

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    Jti,
    ClientId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Apps::Table)
                    .add_column(
                        ColumnDef::new(Apps::Resources)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedTokens::Table)
                    .col(
                        ColumnDef::new(RevokedTokens::Jti)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RevokedTokens::ClientId)
                            .string_len(31)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RevokedTokens::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_revoked_tokens_app")
                            .from(RevokedTokens::Table, RevokedTokens::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevokedTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Apps::Table)
                    .drop_column(Apps::Resources)
                    .to_owned(),
            )
            .await
    }
}
