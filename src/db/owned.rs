//! Owner-scoped query helpers: the only way to read a user's connections, so that another
//! user's row can never be found (it is a 404, never a 403).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

use crate::db::entities::connections;
use crate::domain::ids::{ClientId, UserId};

/// Every connection of `user`.
pub fn connections_of(user: &UserId) -> Select<connections::Entity> {
    connections::Entity::find().filter(connections::Column::UserId.eq(user.as_str()))
}

/// `user`'s connection to `client_id`, if any.
pub fn connection_of(user: &UserId, client_id: &ClientId) -> Select<connections::Entity> {
    connections_of(user).filter(connections::Column::ClientId.eq(client_id.as_str()))
}
