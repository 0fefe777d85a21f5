//! `app_logos`: each app's logo, a 256 × 256 PNG, with its ETag.

use sea_orm::entity::prelude::*;

/// A logo row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_logos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub png: Vec<u8>,
    /// Quoted strong ETag.
    pub etag: String,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
