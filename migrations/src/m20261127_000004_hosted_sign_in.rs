//! idgraph's own sign-in page: browser sessions (a person signed in, identified by a cookie
//! whose random value is stored only as a digest), and each connection's consented scope, the
//! union of every scope the user ever approved for the app, so that a narrower request does not
//! make idgraph forget a wider consent.
//!
//! It also drops `idx_connections_recent` (user, access time): every token issued moves the
//! access time, so the index cost a page write on each code exchange and refresh (a quarter of
//! their throughput on SQLite, measured with `bench/run.sh`), while listing one user's
//! connections needs only the primary key's user prefix and a sort of that user's few rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    UserId,
    AccessTime,
    ConsentedScope,
}

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    Id,
    UserId,
    AuthTime,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BrowserSessions::Table)
                    .col(
                        ColumnDef::new(BrowserSessions::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::UserId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::AuthTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BrowserSessions::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_browser_sessions_user")
                            .from(BrowserSessions::Table, BrowserSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_browser_sessions_user")
                    .table(BrowserSessions::Table)
                    .col(BrowserSessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .add_column(
                        ColumnDef::new(Connections::ConsentedScope)
                            .string_len(255)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_connections_recent")
                    .table(Connections::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_recent")
                    .table(Connections::Table)
                    .col(Connections::UserId)
                    .col(Connections::AccessTime)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .drop_column(Connections::ConsentedScope)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(BrowserSessions::Table).to_owned())
            .await
    }
}
