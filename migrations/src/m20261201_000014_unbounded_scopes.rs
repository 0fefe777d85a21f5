//! Scope strings without a length cap on PostgreSQL.
//!
//! `sessions.scope`, `connections.scope` and `connections.consented_scope` were `varchar(255)`.
//! A session that names every management scope is longer than that, and a connection's
//! consented scopes grow with each API scope a user allows (each up to 128 characters). SQLite
//! never enforced the length; PostgreSQL refused the row. Both stores now take any length, as
//! `grants.scope` and `apps.scope` already did. SQLite has nothing to change.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Scope,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Scope,
    ConsentedScope,
}

/// The statements that give the three columns the type `kind` sets, each keeping its
/// nullability (`consented_scope` is NULL until the first consent through the hosted pages).
fn columns(kind: fn(&mut ColumnDef) -> &mut ColumnDef) -> Vec<TableAlterStatement> {
    let sessions = Table::alter()
        .table(Sessions::Table)
        .modify_column(kind(ColumnDef::new(Sessions::Scope).not_null()))
        .to_owned();
    let connections = Table::alter()
        .table(Connections::Table)
        .modify_column(kind(ColumnDef::new(Connections::Scope).not_null()))
        .modify_column(kind(ColumnDef::new(Connections::ConsentedScope).null()))
        .to_owned();
    vec![sessions, connections]
}

async fn alter(
    manager: &SchemaManager<'_>,
    kind: fn(&mut ColumnDef) -> &mut ColumnDef,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    for statement in columns(kind) {
        manager.alter_table(statement).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        alter(manager, |column| column.text()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        alter(manager, |column| column.string_len(255)).await
    }
}
