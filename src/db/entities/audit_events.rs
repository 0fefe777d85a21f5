//! `audit_events`: the stored audit trail, written in the transaction of the change recorded.

use sea_orm::entity::prelude::*;

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// Grows with every insert; the trail's order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When the change was made, Unix seconds.
    pub at: i64,
    /// `user`, `cli`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The acting user's id (for `user`).
    pub actor_id: Option<String>,
    /// What was done, e.g. `user.disable`.
    pub action: String,
    /// What it was done to: `app`, `user`, `connection`, `signing_key`.
    pub target_type: String,
    /// Its id.
    pub target_id: Option<String>,
    /// The request's `x-request-id`, when the change came from a request.
    pub request_id: Option<String>,
    /// The client's address, when the change came from a request.
    pub address: Option<String>,
    /// A small JSON object; never a secret.
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
