//! `users`: people who sign in.

use sea_orm::entity::prelude::*;

/// A user row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub username: String,
    pub email: String,
    pub name: String,
    /// The argon2id PHC string; empty when the user has no password (cannot sign in).
    pub password_hash: String,
    /// Space-separated role names.
    pub roles: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When an administrator disabled the account; `None` while it is enabled.
    pub disabled_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
