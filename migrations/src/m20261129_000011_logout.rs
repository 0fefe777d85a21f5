//! Logout that relying parties can drive (OpenID Connect RP-Initiated and Back-Channel Logout):
//!
//! - `browser_sessions.sid`: the session's public id, the `sid` of the ID tokens issued in it
//!   (random, distinct from the cookie, whose digest is the row's key). Rows older than the
//!   column get a random one here; it stays nullable (unique among non-NULL values), so that a
//!   node still running the previous release during a rolling upgrade can open sessions: they
//!   have no `sid` until they end.
//! - `grants.sid`: the browser session a hosted consent was given in; NULL for the consent API.
//! - `apps.backchannel_logout_uri` (empty: none) and `apps.backchannel_logout_session_required`.
//! - `logout_deliveries`: logout tokens still to be POSTed to an app, written in the transaction
//!   that ends the session, so that a crash loses none; `id` is the token's `jti`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Apps {
    Table,
    ClientId,
    BackchannelLogoutUri,
    BackchannelLogoutSessionRequired,
}

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    Sid,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Sid,
}

#[derive(DeriveIden)]
enum LogoutDeliveries {
    Table,
    Id,
    ClientId,
    UserId,
    Sid,
    Attempts,
    NextAttemptAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Apps::Table)
                    .add_column(
                        ColumnDef::new(Apps::BackchannelLogoutUri)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Apps::Table)
                    .add_column(
                        ColumnDef::new(Apps::BackchannelLogoutSessionRequired)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(BrowserSessions::Table)
                    .add_column(ColumnDef::new(BrowserSessions::Sid).string_len(43).null())
                    .to_owned(),
            )
            .await?;
        // Sessions opened before this migration get a random public id of their own.
        let backfill = match manager.get_database_backend() {
            DbBackend::Sqlite => {
                "UPDATE browser_sessions SET sid = lower(hex(randomblob(16))) WHERE sid IS NULL"
            }
            _ => "UPDATE browser_sessions SET sid = md5(random()::text || id) WHERE sid IS NULL",
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_browser_sessions_sid")
                    .table(BrowserSessions::Table)
                    .col(BrowserSessions::Sid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .add_column(ColumnDef::new(Grants::Sid).string_len(43).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_grants_sid")
                    .table(Grants::Table)
                    .col(Grants::Sid)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LogoutDeliveries::Table)
                    .col(
                        ColumnDef::new(LogoutDeliveries::Id)
                            .string_len(43)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LogoutDeliveries::ClientId)
                            .string_len(31)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LogoutDeliveries::UserId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(LogoutDeliveries::Sid).string_len(43).null())
                    .col(
                        ColumnDef::new(LogoutDeliveries::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(LogoutDeliveries::NextAttemptAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LogoutDeliveries::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_logout_deliveries_app")
                            .from(LogoutDeliveries::Table, LogoutDeliveries::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_logout_deliveries_due")
                    .table(LogoutDeliveries::Table)
                    .col(LogoutDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LogoutDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_grants_sid")
                    .table(Grants::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .drop_column(Grants::Sid)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_browser_sessions_sid")
                    .table(BrowserSessions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(BrowserSessions::Table)
                    .drop_column(BrowserSessions::Sid)
                    .to_owned(),
            )
            .await?;
        for column in [
            Apps::BackchannelLogoutSessionRequired,
            Apps::BackchannelLogoutUri,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Apps::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
