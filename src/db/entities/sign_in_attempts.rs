//! `sign_in_attempts`: the sign-in back-off's count per key (`user:<name>` or `addr:<ip>`).

use sea_orm::entity::prelude::*;

/// Attempts counted under one key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub count: i32,
    /// Unix milliseconds of the last attempt.
    pub last_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
