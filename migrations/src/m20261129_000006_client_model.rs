//! Apps for every kind of client: each app's client metadata (RFC 7591 names), its secrets in a
//! table of their own (several live at once, so that rotation can overlap), and the web origins
//! of its redirect URIs (the origins whose browsers may call the token endpoint and userinfo).
//!
//! - `apps` gains `redirect_uris` and `post_logout_redirect_uris` (JSON arrays; `[]` on older
//!   rows means `[redirect_uri]`, which stays the first URI), `token_endpoint_auth_method`,
//!   `grant_types` (space-separated), `scope` (the ceiling, space-separated; empty means every
//!   scope) and `id_token_signed_response_alg`, each defaulting to what every app was before.
//! - `app_secrets` receives every app's secret, which keeps working; `apps.secret_hash` goes.
//! - `app_origins` is filled from the redirect URIs.
//!
//! `down` moves each app's newest secret back into `apps.secret_hash` (public apps get a
//! digest nobody can answer) and drops the rest.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Apps {
    Table,
    ClientId,
    SecretHash,
    RedirectUris,
    PostLogoutRedirectUris,
    TokenEndpointAuthMethod,
    GrantTypes,
    Scope,
    IdTokenSignedResponseAlg,
}

#[derive(DeriveIden)]
enum AppSecrets {
    Table,
    Id,
    ClientId,
    SecretHash,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum AppOrigins {
    Table,
    Origin,
    ClientId,
}

/// The columns `apps` gains, with the defaults that keep every existing app as it was.
fn new_columns() -> Vec<ColumnDef> {
    vec![
        ColumnDef::new(Apps::RedirectUris)
            .text()
            .not_null()
            .default("[]")
            .to_owned(),
        ColumnDef::new(Apps::PostLogoutRedirectUris)
            .text()
            .not_null()
            .default("[]")
            .to_owned(),
        ColumnDef::new(Apps::TokenEndpointAuthMethod)
            .string_len(32)
            .not_null()
            .default("client_secret_basic")
            .to_owned(),
        ColumnDef::new(Apps::GrantTypes)
            .string_len(128)
            .not_null()
            .default("authorization_code refresh_token")
            .to_owned(),
        ColumnDef::new(Apps::Scope)
            .text()
            .not_null()
            .default("")
            .to_owned(),
        ColumnDef::new(Apps::IdTokenSignedResponseAlg)
            .string_len(8)
            .not_null()
            .default("RS256")
            .to_owned(),
    ]
}

/// The web origin of a redirect URI (`scheme://host[:port]`), if it has one: private-use
/// schemes have none. Written here rather than imported, so that the migration keeps meaning
/// what it meant.
fn origin_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in new_columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Apps::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AppSecrets::Table)
                    .col(
                        ColumnDef::new(AppSecrets::Id)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AppSecrets::ClientId)
                            .string_len(31)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppSecrets::SecretHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppSecrets::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AppSecrets::ExpiresAt).big_integer().null())
                    .col(ColumnDef::new(AppSecrets::LastUsedAt).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_app_secrets_app")
                            .from(AppSecrets::Table, AppSecrets::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_app_secrets_app")
                    .table(AppSecrets::Table)
                    .col(AppSecrets::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AppOrigins::Table)
                    .col(
                        ColumnDef::new(AppOrigins::Origin)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppOrigins::ClientId)
                            .string_len(31)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AppOrigins::Origin)
                            .col(AppOrigins::ClientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_app_origins_app")
                            .from(AppOrigins::Table, AppOrigins::ClientId)
                            .to(Apps::Table, Apps::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Every app's secret keeps working: it becomes the app's first row of secrets.
        db.execute_unprepared(
            "INSERT INTO app_secrets (id, client_id, secret_hash, created_at) \
             SELECT 's' || client_id, client_id, secret_hash, created_at FROM apps",
        )
        .await?;
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT client_id, redirect_uri FROM apps",
            ))
            .await?;
        for row in rows {
            let client_id: String = row.try_get("", "client_id")?;
            let redirect_uri: String = row.try_get("", "redirect_uri")?;
            if let Some(origin) = origin_of(&redirect_uri) {
                manager
                    .exec_stmt(
                        Query::insert()
                            .into_table(AppOrigins::Table)
                            .columns([AppOrigins::Origin, AppOrigins::ClientId])
                            .values_panic([origin.into(), client_id.into()])
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Apps::Table)
                    .drop_column(Apps::SecretHash)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Apps::Table)
                    .add_column(
                        ColumnDef::new(Apps::SecretHash)
                            .string_len(64)
                            .not_null()
                            .default(
                                "0000000000000000000000000000000000000000000000000000000000000000",
                            ),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE apps SET secret_hash = (SELECT s.secret_hash FROM app_secrets s \
                 WHERE s.client_id = apps.client_id ORDER BY s.created_at DESC LIMIT 1) \
                 WHERE EXISTS (SELECT 1 FROM app_secrets s WHERE s.client_id = apps.client_id)",
            )
            .await?;
        manager
            .drop_table(Table::drop().table(AppOrigins::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AppSecrets::Table).to_owned())
            .await?;
        for column in new_columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Apps::Table)
                        .drop_column(Alias::new(column.get_column_name()))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
