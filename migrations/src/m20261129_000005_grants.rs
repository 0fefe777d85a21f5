//! Grants in rows of their own, and a place for server secrets.
//!
//! Until now a connection (user, app) held one pending code and one token family, so a second
//! consent for the same pair replaced the first one's code, and a second redemption replaced
//! the first family: a person signing in to one app from two tabs or two devices at once lost
//! one of the sign-ins. From here each consent is a `grants` row: the code it issued (digest,
//! PKCE, nonce, redirect URI, one minute, once) and, once redeemed, the token family it started
//! (grant id, refresh digest). A pair may hold several. The connection keeps what the user
//! consented to and when; deleting it deletes its grants (foreign key, cascade).
//!
//! Live token families are copied over, so no signed-in app loses its refresh token. Codes
//! issued but not yet redeemed when this runs (they live one minute) are not carried over.
//!
//! `server_secrets` holds random keys every node shares, such as the one that seals the hosted
//! pages' forms.
//!
//! `down` puts the old columns back empty: rolling back ends every live grant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    UserId,
    ClientId,
    Nonce,
    CodeChallenge,
    CodeChallengeMethod,
    CodeHash,
    CodeTime,
    CodeUsedAt,
    GrantId,
    RefreshHash,
    RefreshExpiresAt,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    UserId,
    ClientId,
    Scope,
    Nonce,
    RedirectUri,
    CodeHash,
    CodeChallenge,
    CodeChallengeMethod,
    CodeExpiresAt,
    CodeUsedAt,
    RefreshHash,
    RefreshExpiresAt,
    AuthTime,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ServerSecrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

/// The connection columns that move to `grants`, with their old definitions (for `down`).
fn moved_columns() -> Vec<ColumnDef> {
    vec![
        ColumnDef::new(Connections::Nonce)
            .string_len(255)
            .null()
            .to_owned(),
        ColumnDef::new(Connections::CodeChallenge)
            .string_len(128)
            .null()
            .to_owned(),
        ColumnDef::new(Connections::CodeChallengeMethod)
            .string_len(8)
            .null()
            .to_owned(),
        ColumnDef::new(Connections::CodeHash)
            .string_len(64)
            .null()
            .to_owned(),
        ColumnDef::new(Connections::CodeTime)
            .big_integer()
            .null()
            .to_owned(),
        ColumnDef::new(Connections::CodeUsedAt)
            .big_integer()
            .null()
            .to_owned(),
        ColumnDef::new(Connections::GrantId)
            .string_len(32)
            .null()
            .to_owned(),
        ColumnDef::new(Connections::RefreshHash)
            .string_len(64)
            .null()
            .to_owned(),
        ColumnDef::new(Connections::RefreshExpiresAt)
            .big_integer()
            .null()
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Grants::Table)
                    .col(
                        ColumnDef::new(Grants::Id)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Grants::UserId).string_len(32).not_null())
                    .col(ColumnDef::new(Grants::ClientId).string_len(31).not_null())
                    .col(ColumnDef::new(Grants::Scope).text().not_null())
                    .col(ColumnDef::new(Grants::Nonce).string_len(255).null())
                    .col(ColumnDef::new(Grants::RedirectUri).string_len(512).null())
                    .col(ColumnDef::new(Grants::CodeHash).string_len(64).null())
                    .col(ColumnDef::new(Grants::CodeChallenge).string_len(128).null())
                    .col(
                        ColumnDef::new(Grants::CodeChallengeMethod)
                            .string_len(8)
                            .null(),
                    )
                    .col(ColumnDef::new(Grants::CodeExpiresAt).big_integer().null())
                    .col(ColumnDef::new(Grants::CodeUsedAt).big_integer().null())
                    .col(ColumnDef::new(Grants::RefreshHash).string_len(64).null())
                    .col(
                        ColumnDef::new(Grants::RefreshExpiresAt)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(Grants::AuthTime).big_integer().not_null())
                    .col(ColumnDef::new(Grants::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_grants_connection")
                            .from(Grants::Table, (Grants::UserId, Grants::ClientId))
                            .to(
                                Connections::Table,
                                (Connections::UserId, Connections::ClientId),
                            )
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_grants_code")
                    .table(Grants::Table)
                    .col(Grants::CodeHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_grants_connection")
                    .table(Grants::Table)
                    .col(Grants::UserId)
                    .col(Grants::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServerSecrets::Table)
                    .col(
                        ColumnDef::new(ServerSecrets::Name)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ServerSecrets::Value).binary().not_null())
                    .col(
                        ColumnDef::new(ServerSecrets::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Live token families move over; their codes were used when they were redeemed.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO grants (id, user_id, client_id, scope, nonce, code_used_at, \
                 refresh_hash, refresh_expires_at, auth_time, created_at) \
                 SELECT grant_id, user_id, client_id, scope, nonce, access_time, refresh_hash, \
                 refresh_expires_at, auth_time, access_time \
                 FROM connections WHERE grant_id IS NOT NULL",
            )
            .await?;
        for name in ["idx_connections_code", "idx_connections_grant"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Connections::Table)
                        .to_owned(),
                )
                .await?;
        }
        // One column per statement: SQLite alters one thing at a time.
        for column in moved_columns() {
            let name = column.get_column_name();
            manager
                .alter_table(
                    Table::alter()
                        .table(Connections::Table)
                        .drop_column(Alias::new(name))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in moved_columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Connections::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for (name, column) in [
            ("idx_connections_code", Connections::CodeHash),
            ("idx_connections_grant", Connections::GrantId),
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
            .drop_table(Table::drop().table(ServerSecrets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Grants::Table).to_owned())
            .await
    }
}
