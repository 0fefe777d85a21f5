//! `app_secrets`: an app's client secrets, stored only as digests. Several may be live at once,
//! so that a rotation overlaps the old secret with the new one.

use sea_orm::entity::prelude::*;

/// A secret row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub client_id: String,
    /// SHA-256 hex digest of the secret.
    pub secret_hash: String,
    pub created_at: i64,
    /// When the secret stops working; `None` while it is the newest.
    pub expires_at: Option<i64>,
    /// When the token endpoint last accepted it, to the minute.
    pub last_used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::apps::Entity",
        from = "Column::ClientId",
        to = "super::apps::Column::ClientId"
    )]
    App,
}

impl Related<super::apps::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::App.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
