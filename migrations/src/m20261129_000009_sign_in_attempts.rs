//! `sign_in_attempts`: the sign-in back-off's counts (by username and by client address), in
//! the database so that every node sees the same counts and a restart keeps them. `last_at` is
//! in Unix milliseconds; rows idle past the back-off's memory are deleted as sign-ins go.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SignInAttempts {
    Table,
    Key,
    Count,
    LastAt,
}

const INDEX: &str = "idx_sign_in_attempts_last_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignInAttempts::Table)
                    .col(
                        ColumnDef::new(SignInAttempts::Key)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SignInAttempts::Count).integer().not_null())
                    .col(
                        ColumnDef::new(SignInAttempts::LastAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(SignInAttempts::Table)
                    .col(SignInAttempts::LastAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SignInAttempts::Table).to_owned())
            .await
    }
}
