//! OAuth apps and their logos.

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
    Name,
    Url,
    RedirectUri,
    Logo,
    SecretHash,
    CreatorId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AppLogos {
    Table,
    ClientId,
    Png,
    Etag,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Apps::Table)
                    .col(
                        ColumnDef::new(Apps::ClientId)
                            .string_len(31)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Apps::Name).string_len(127).not_null())
                    .col(ColumnDef::new(Apps::Url).string_len(512).not_null())
                    .col(ColumnDef::new(Apps::RedirectUri).string_len(512).not_null())
                    .col(ColumnDef::new(Apps::Logo).text().not_null())
                    .col(ColumnDef::new(Apps::SecretHash).string_len(64).not_null())
                    .col(ColumnDef::new(Apps::CreatorId).string_len(32).null())
                    .col(ColumnDef::new(Apps::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Apps::UpdatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_apps_creator")
                            .from(Apps::Table, Apps::CreatorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // The listing order (name, creation time, client id) doubles as the keyset.
        manager
            .create_index(
                Index::create()
                    .name("idx_apps_order")
                    .table(Apps::Table)
                    .col(Apps::Name)
                    .col(Apps::CreatedAt)
                    .col(Apps::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_apps_creator")
                    .table(Apps::Table)
                    .col(Apps::CreatorId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AppLogos::Table)
                    .col(
                        ColumnDef::new(AppLogos::ClientId)
                            .string_len(31)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AppLogos::Png).blob().not_null())
                    .col(ColumnDef::new(AppLogos::Etag).string_len(64).not_null())
                    .col(ColumnDef::new(AppLogos::UpdatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_app_logos_app")
                            .from(AppLogos::Table, AppLogos::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AppLogos::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Apps::Table).to_owned())
            .await
    }
}
