//! `logout_deliveries`: back-channel logout tokens still to be POSTed to an app. A row is
//! written in the transaction that ends the session and deleted once the app has answered 2xx
//! or the delivery was given up.

use sea_orm::entity::prelude::*;

/// A pending delivery. The token is signed when it is sent, so its `iat` is fresh on every try.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "logout_deliveries")]
pub struct Model {
    /// The logout token's `jti` (the same on every try, so the app can drop repeats).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The app to tell (its `backchannel_logout_uri` is read when sending).
    pub client_id: String,
    /// The token's `sub`.
    pub user_id: String,
    /// The token's `sid`; `None` ends every session of the user at the app.
    pub sid: Option<String>,
    /// Tries made so far.
    pub attempts: i32,
    /// When the next try is due, Unix seconds (a worker that claims a row pushes it on by a
    /// lease, so that no other node sends it meanwhile).
    pub next_attempt_at: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
