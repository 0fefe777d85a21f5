//! `app_origins`: the web origins of each app's redirect URIs, whose browsers may call the
//! token endpoint and userinfo (CORS).

use sea_orm::entity::prelude::*;

/// An (origin, app) pair.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_origins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub origin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
