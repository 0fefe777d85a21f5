//! A user's connected apps: list, read, revoke. Every query is owner-scoped.

use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::auth::Principal;
use crate::db::entities::{connections, grants};
use crate::db::owned::{connection_of, connections_of};
use crate::domain::Scope;
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::connections::{Connection, ConnectionCursor};
use crate::domain::ids::{ClientId, UserId};
use crate::domain::page::{Page, split_page};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::audit::{self, Actor, Entry};
use crate::service::{backchannel, changes};

impl From<&connections::Model> for Connection {
    fn from(row: &connections::Model) -> Self {
        Self {
            client_id: ClientId::from_trusted(row.client_id.clone()),
            scope: row.scope.clone(),
            auth_time: row.auth_time,
            access_time: row.access_time,
            creation_time: row.creation_time,
        }
    }
}

/// The caller's connections, most recently used first, and whether more follow.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    page: Page<ConnectionCursor>,
) -> AppResult<(Vec<Connection>, bool)> {
    let me = principal.require_user(Scope::ConnectionRead)?;
    let mut query = connections_of(&me.user_id)
        .order_by_desc(connections::Column::AccessTime)
        .order_by_asc(connections::Column::ClientId);
    let size = page.size();
    query = match page {
        Page::Offset { offset, .. } => query.offset(offset),
        Page::After { after: None, .. } => query,
        Page::After {
            after: Some(ConnectionCursor(access_time, client_id)),
            ..
        } => {
            use connections::Column::{AccessTime, ClientId as ClientIdColumn};
            query.filter(
                Condition::any().add(AccessTime.lt(access_time)).add(
                    Condition::all()
                        .add(AccessTime.eq(access_time))
                        .add(ClientIdColumn.gt(client_id.as_str())),
                ),
            )
        }
    };
    let rows = query.limit(size + 1).all(&state.db).await?;
    let (rows, more) = split_page(rows, size);
    Ok((rows.iter().map(Connection::from).collect(), more))
}

/// The caller's connection to one app; another user's is simply not found.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
) -> AppResult<Connection> {
    let me = principal.require_user(Scope::ConnectionRead)?;
    connection_of(&me.user_id, client_id)
        .one(&state.db)
        .await?
        .map(|row| Connection::from(&row))
        .ok_or(AppError::NotFound("connection"))
}

/// Revokes the caller's connection to an app with every grant under it, in one transaction, so
/// its refresh and access tokens stop working at once; the app is owed a back-channel logout
/// (see [`backchannel`]), queued in the same transaction. The grants ended are announced by id
/// (each node drops just those), so that consenting and disconnecting in a loop cannot keep
/// emptying every node's caches.
pub async fn delete(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
) -> AppResult<()> {
    let me = principal.require_user(Scope::ConnectionWrite)?;
    withdraw(state, principal, &me.user_id, client_id).await
}

/// Administrators (`gov.user.admin.user:write`): revokes `user_id`'s connection to
/// `client_id`, exactly as the user revoking it would ([`delete`]); recorded as theirs.
pub async fn delete_for_user(
    state: &AppState,
    principal: &Principal,
    user_id: &UserId,
    client_id: &ClientId,
) -> AppResult<()> {
    principal.require_admin(Scope::UserWrite)?;
    withdraw(state, principal, user_id, client_id).await
}

/// Ends `user_id`'s grants to `client_id` and deletes the connection, in one transaction.
async fn withdraw(
    state: &AppState,
    principal: &Principal,
    user_id: &UserId,
    client_id: &ClientId,
) -> AppResult<()> {
    let txn = state.db.begin().await?;
    // On PostgreSQL the connection's row is locked before its grants, in the order deleting the
    // app takes them (connections, then their grants by cascade); the other order could wait
    // on each other. SQLite's transaction must write first, and its one writer needs no order.
    if state.db.get_database_backend() == DbBackend::Postgres {
        connections::Entity::find()
            .filter(connections::Column::UserId.eq(user_id.as_str()))
            .filter(connections::Column::ClientId.eq(client_id.as_str()))
            .lock_exclusive()
            .all(&txn)
            .await?;
    }
    let ended = grants::Entity::delete_many()
        .filter(grants::Column::UserId.eq(user_id.as_str()))
        .filter(grants::Column::ClientId.eq(client_id.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let deleted = connections::Entity::delete_many()
        .filter(connections::Column::UserId.eq(user_id.as_str()))
        .filter(connections::Column::ClientId.eq(client_id.as_str()))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::NotFound("connection"));
    }
    backchannel::connection_withdrawn(state, &txn, user_id.as_str(), client_id.as_str(), &ended)
        .await?;
    let recorded = audit::record(
        &txn,
        state.clock.now(),
        &Actor::of(principal),
        Entry::new(
            AuditAction::ConnectionDelete,
            AuditTarget::Connection,
            format!("{}/{client_id}", user_id),
        ),
    )
    .await?;
    txn.commit().await?;
    recorded.log();
    state.logouts.queued();
    let ended: Vec<String> = ended.into_iter().map(|grant| grant.id).collect();
    changes::grants_ended(state, &ended).await;
    tracing::info!(user.id = %user_id, client.id = %client_id, "connection revoked");
    Ok(())
}
