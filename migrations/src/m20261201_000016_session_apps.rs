//! Apps owed a back-channel logout by a browser session whose grant has ended since:
//!
//! - `session_apps`: an app that received an ID token naming the browser session `sid` for the
//!   user, written when that grant ends early (the app revoked its token, a replayed code or a
//!   reused refresh token ended it) while the session lasts. Ending the session finds the apps
//!   to tell through its grants and through these rows, and deletes the rows; so does
//!   withdrawing the user's connection to the app, which tells the app itself. A row whose
//!   session has gone is removed by the housekeeping sweep. Indexed by user and app (the
//!   withdrawal, the cascade from `users`) and by app (the cascade from `apps`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Apps {
    Table,
    ClientId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SessionApps {
    Table,
    Sid,
    ClientId,
    UserId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SessionApps::Table)
                    .col(ColumnDef::new(SessionApps::Sid).string_len(43).not_null())
                    .col(
                        ColumnDef::new(SessionApps::ClientId)
                            .string_len(31)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SessionApps::UserId)
                            .string_len(32)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(SessionApps::Sid)
                            .col(SessionApps::ClientId)
                            .col(SessionApps::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_session_apps_app")
                            .from(SessionApps::Table, SessionApps::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_session_apps_user")
                            .from(SessionApps::Table, SessionApps::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Withdrawing a connection takes the pair's rows, and deleting a user cascades: both
        // by user first. Deleting an app cascades by app.
        manager
            .create_index(
                Index::create()
                    .name("idx_session_apps_user_client")
                    .table(SessionApps::Table)
                    .col(SessionApps::UserId)
                    .col(SessionApps::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_session_apps_client")
                    .table(SessionApps::Table)
                    .col(SessionApps::ClientId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionApps::Table).to_owned())
            .await
    }
}
