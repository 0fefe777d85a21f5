//! Access tokens of a user's grant for an API (RFC 8707 resource indicators on the code and
//! refresh grants):
//!
//! - `grants.resource`: the resource server the authorization request named, one of the app's
//!   `resources`; every access token of the family has it as audience. NULL when the request
//!   named none: the tokens are for the issuer (userinfo), as before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Grants {
    Table,
    Resource,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .add_column(ColumnDef::new(Grants::Resource).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Grants::Table)
                    .drop_column(Grants::Resource)
                    .to_owned(),
            )
            .await
    }
}
