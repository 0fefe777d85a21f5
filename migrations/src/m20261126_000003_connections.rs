//! Connections: a user's consent to an app, its pending authorization code, and the token
//! family issued from the last redeemed code.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Apps {
    Table,
    ClientId,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    UserId,
    ClientId,
    Scope,
    Nonce,
    CodeChallenge,
    CodeChallengeMethod,
    CodeHash,
    CodeTime,
    CodeUsedAt,
    GrantId,
    RefreshHash,
    RefreshExpiresAt,
    AuthTime,
    AccessTime,
    CreationTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .col(
                        ColumnDef::new(Connections::UserId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::ClientId)
                            .string_len(31)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::Scope)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Connections::Nonce).string_len(255).null())
                    .col(
                        ColumnDef::new(Connections::CodeChallenge)
                            .string_len(128)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Connections::CodeChallengeMethod)
                            .string_len(8)
                            .null(),
                    )
                    .col(ColumnDef::new(Connections::CodeHash).string_len(64).null())
                    .col(ColumnDef::new(Connections::CodeTime).big_integer().null())
                    .col(ColumnDef::new(Connections::CodeUsedAt).big_integer().null())
                    .col(ColumnDef::new(Connections::GrantId).string_len(32).null())
                    .col(
                        ColumnDef::new(Connections::RefreshHash)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Connections::RefreshExpiresAt)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Connections::AuthTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::AccessTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::CreationTime)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Connections::UserId)
                            .col(Connections::ClientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_connections_user")
                            .from(Connections::Table, Connections::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_connections_app")
                            .from(Connections::Table, Connections::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_connections_code", Connections::CodeHash),
            ("idx_connections_grant", Connections::GrantId),
            ("idx_connections_client", Connections::ClientId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Connections::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_recent")
                    .table(Connections::Table)
                    .col(Connections::UserId)
                    .col(Connections::AccessTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Connections::Table).to_owned())
            .await
    }
}
