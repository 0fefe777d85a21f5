//! `browser_sessions`: sign-ins made on idgraph's own sign-in page, one per browser.

use sea_orm::entity::prelude::*;

/// A browser session row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_sessions")]
pub struct Model {
    /// SHA-256 hex digest of the session cookie's value.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// When the person typed their password, Unix seconds.
    pub auth_time: i64,
    pub expires_at: i64,
    /// The session's public id: the `sid` of ID tokens and logout tokens (random; never the
    /// cookie or its digest). `None` only for a session a node of the previous release opened.
    pub sid: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
