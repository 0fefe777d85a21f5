//! `connections`: a user's consent to an app. The codes and token families issued under it are
//! `grants` rows.

use sea_orm::entity::prelude::*;

/// A connection row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// The scopes granted by the latest consent, space-separated and sorted.
    pub scope: String,
    pub auth_time: i64,
    pub access_time: i64,
    pub creation_time: i64,
    /// Every scope the user ever approved for the app, sorted; `None` on rows older than the
    /// column, whose `scope` is then the consent.
    pub consented_scope: Option<String>,
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
