//! A user's connected apps: list, read, revoke. Every query is owner-scoped.

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::auth::{Principal, Scope};
use crate::db::entities::connections;
use crate::db::owned::{connection_of, connections_of};
use crate::domain::check_page_size;
use crate::domain::connections::Connection;
pub use crate::domain::connections::ConnectionCursor;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Which slice of the caller's connections to return.
pub enum ConnectionPage {
    /// REST: `amount` (1..1024) after skipping `offset`.
    Offset(u64, u64),
    /// GraphQL: `first` (1..1024) after the cursor.
    After(u64, Option<ConnectionCursor>),
}

/// The caller's connections, most recently used first, and whether more follow.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    page: ConnectionPage,
) -> AppResult<(Vec<Connection>, bool)> {
    let me = principal.require_user(Scope::ConnectionRead)?;
    let mut query = connections_of(&me.user_id)
        .order_by_desc(connections::Column::AccessTime)
        .order_by_asc(connections::Column::ClientId);
    let size = match page {
        ConnectionPage::Offset(amount, offset) => {
            query = query.offset(offset);
            check_page_size("amount", amount)?
        }
        ConnectionPage::After(first, after) => {
            if let Some(cursor) = after {
                use connections::Column::{AccessTime, ClientId};
                query = query.filter(
                    Condition::any().add(AccessTime.lt(cursor.access_time)).add(
                        Condition::all()
                            .add(AccessTime.eq(cursor.access_time))
                            .add(ClientId.gt(cursor.client_id)),
                    ),
                );
            }
            check_page_size("first", first)?
        }
    };
    let mut rows = query.limit(size + 1).all(&state.db).await?;
    let more = rows.len() as u64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    Ok((rows.iter().map(Connection::from).collect(), more))
}

/// The caller's connection to one app; another user's is simply not found.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
) -> AppResult<Connection> {
    let me = principal.require_user(Scope::ConnectionRead)?;
    connection_of(&me.user_id, client_id)
        .one(&state.db)
        .await?
        .map(|row| Connection::from(&row))
        .ok_or(AppError::NotFound("connection"))
}

/// Revokes the caller's connection to an app: its refresh and access tokens stop working.
pub async fn delete(state: &AppState, principal: &Principal, client_id: &str) -> AppResult<()> {
    let me = principal.require_user(Scope::ConnectionWrite)?;
    let deleted = connections::Entity::delete_many()
        .filter(connections::Column::UserId.eq(me.user_id.as_str()))
        .filter(connections::Column::ClientId.eq(client_id))
        .exec(&state.db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::NotFound("connection"));
    }
    tracing::info!(user.id = %me.user_id, client.id = client_id, "connection revoked");
    Ok(())
}
