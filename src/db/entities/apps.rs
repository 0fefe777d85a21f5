//! `apps`: registered OAuth clients.

use sea_orm::entity::prelude::*;

/// An app row. `secret_hash` never leaves the service layer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "apps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub name: String,
    pub url: String,
    pub redirect_uri: String,
    /// A `data:` URL of a tiny thumbnail, or empty.
    pub logo: String,
    /// SHA-256 hex digest of the client secret.
    pub secret_hash: String,
    pub creator_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
