//! Database migrations for idgraph, shared by SQLite and PostgreSQL.
//!
//! Migrations are history: once one has landed it is never edited; a change is a new migration.
//! Each one has a `down`. No application entity is imported here: tables are described with
//! their own identifiers so that a migration keeps meaning what it meant when it was written.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_platform;
mod m20261126_000002_apps;
mod m20261126_000003_connections;
mod m20261127_000004_hosted_sign_in;
mod m20261129_000005_grants;
mod m20261129_000006_client_model;
mod m20261129_000007_token_lifecycle;
mod m20261129_000008_revoked_tokens_expiry;
mod m20261129_000009_sign_in_attempts;
mod m20261129_000010_key_activation;
mod m20261129_000011_logout;
mod m20261129_000012_users_audit;
mod m20261130_000013_retired_refresh;
mod m20261201_000014_unbounded_scopes;
mod m20261201_000015_grant_resource;
mod m20261201_000016_session_apps;

/// Runs idgraph's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_platform::Migration),
            Box::new(m20261126_000002_apps::Migration),
            Box::new(m20261126_000003_connections::Migration),
            Box::new(m20261127_000004_hosted_sign_in::Migration),
            Box::new(m20261129_000005_grants::Migration),
            Box::new(m20261129_000006_client_model::Migration),
            Box::new(m20261129_000007_token_lifecycle::Migration),
            Box::new(m20261129_000008_revoked_tokens_expiry::Migration),
            Box::new(m20261129_000009_sign_in_attempts::Migration),
            Box::new(m20261129_000010_key_activation::Migration),
            Box::new(m20261129_000011_logout::Migration),
            Box::new(m20261129_000012_users_audit::Migration),
            Box::new(m20261130_000013_retired_refresh::Migration),
            Box::new(m20261201_000014_unbounded_scopes::Migration),
            Box::new(m20261201_000015_grant_resource::Migration),
            Box::new(m20261201_000016_session_apps::Migration),
        ]
    }
}
