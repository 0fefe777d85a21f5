//! `session_apps`: an app owed a back-channel logout by a browser session although the grant
//! through which it received an ID token naming that session has ended early (see
//! `service::backchannel`).

use sea_orm::entity::prelude::*;

/// An app that saw the browser session `sid` of the user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_apps")]
pub struct Model {
    /// The browser session's public id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sid: String,
    /// The app.
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// The user signed in.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
