//! Reading users (administrators, `gov.user.admin.user:read`): the listing with its search,
//! one user, their connection counts (for a whole page in one query), their connections and
//! their live sessions.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::auth::{Principal, SessionRef};
use crate::db::entities::{browser_sessions, connections, sessions, users};
use crate::domain::Scope;
use crate::domain::connections::Connection;
use crate::domain::ids::UserId;
use crate::domain::page::{MAX_PAGE, Page, split_page};
use crate::domain::users::{SessionKind, User, UserCursor, UserSession, check_search};
use crate::error::{AppError, AppResult};
use crate::service::AppState;

/// Administrators: users whose username, email or name contains `search` (any case), by
/// username, and whether more follow.
pub async fn list_users(
    state: &AppState,
    principal: &Principal,
    search: Option<String>,
    page: Page<UserCursor>,
) -> AppResult<(Vec<User>, bool)> {
    principal.require_admin(Scope::UserRead)?;
    let mut query = users::Entity::find().order_by_asc(users::Column::Username);
    if let Some(search) = check_search(search)? {
        query = query.filter(crate::db::contains_any(
            [
                users::Column::Username,
                users::Column::Email,
                users::Column::Name,
            ],
            &search,
        ));
    }
    let size = page.size();
    query = match page {
        Page::Offset { offset, .. } => query.offset(offset),
        Page::After { after, .. } => match after {
            Some(UserCursor(username)) => query.filter(users::Column::Username.gt(username)),
            None => query,
        },
    };
    let rows = query.limit(size + 1).all(&state.db).await?;
    let (rows, more) = split_page(rows, size);
    Ok((
        rows.into_iter()
            .map(User::try_from)
            .collect::<AppResult<_>>()?,
        more,
    ))
}

/// Administrators: one user.
pub async fn get_user(state: &AppState, principal: &Principal, id: &UserId) -> AppResult<User> {
    principal.require_admin(Scope::UserRead)?;
    row(&state.db, id).await?.try_into()
}

/// The operator: a user by username (the command line names users so).
pub async fn find_by_username(
    state: &AppState,
    principal: &Principal,
    username: &str,
) -> AppResult<User> {
    principal.require_admin(Scope::UserRead)?;
    users::Entity::find()
        .filter(users::Column::Username.eq(username))
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("user"))?
        .try_into()
}

/// Administrators: how many apps each user has connected, in one query.
pub async fn connection_counts(
    state: &AppState,
    principal: &Principal,
    ids: &[UserId],
) -> AppResult<HashMap<UserId, i64>> {
    principal.require_admin(Scope::UserRead)?;
    let counts: Vec<(String, i64)> = connections::Entity::find()
        .select_only()
        .column(connections::Column::UserId)
        .column_as(connections::Column::ClientId.count(), "connections")
        .filter(connections::Column::UserId.is_in(ids.iter().map(UserId::as_str)))
        .group_by(connections::Column::UserId)
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut found: HashMap<UserId, i64> = ids.iter().map(|id| (id.clone(), 0)).collect();
    for (user_id, count) in counts {
        found.insert(UserId::from_trusted(user_id), count);
    }
    Ok(found)
}

/// Administrators: a user's connected apps, most recently used first (at most
/// [`MAX_PAGE`]).
pub async fn connections_of(
    state: &AppState,
    principal: &Principal,
    id: &UserId,
) -> AppResult<Vec<Connection>> {
    principal.require_admin(Scope::UserRead)?;
    let rows = connections::Entity::find()
        .filter(connections::Column::UserId.eq(id.as_str()))
        .order_by_desc(connections::Column::AccessTime)
        .order_by_asc(connections::Column::ClientId)
        .limit(MAX_PAGE)
        .all(&state.db)
        .await?;
    Ok(rows.iter().map(Connection::from).collect())
}

/// Administrators: a user's live sessions, newest first.
pub async fn sessions_of(
    state: &AppState,
    principal: &Principal,
    id: &UserId,
) -> AppResult<Vec<UserSession>> {
    principal.require_admin(Scope::UserRead)?;
    live_sessions(state, id, None).await
}

/// A user's live first-party and browser sessions, newest first; `current` marks the one the
/// caller acts through.
pub(super) async fn live_sessions(
    state: &AppState,
    id: &UserId,
    current: Option<&SessionRef>,
) -> AppResult<Vec<UserSession>> {
    let now = state.clock.now();
    let api = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(id.as_str()))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .limit(MAX_PAGE)
        .all(&state.db)
        .await?;
    let browser = browser_sessions::Entity::find()
        .filter(browser_sessions::Column::UserId.eq(id.as_str()))
        .filter(browser_sessions::Column::ExpiresAt.gt(now))
        .limit(MAX_PAGE)
        .all(&state.db)
        .await?;
    let mut found: Vec<UserSession> = api
        .into_iter()
        .map(|row| UserSession {
            current: matches!(current, Some(SessionRef::Api(sid)) if sid.as_str() == row.id),
            kind: SessionKind::Api,
            id: Some(row.id),
            signed_in_at: row.created_at,
            expires_at: row.expires_at,
        })
        .chain(browser.into_iter().map(|row| UserSession {
            current: matches!(
                current,
                Some(SessionRef::Browser(Some(sid))) if Some(sid.as_str()) == row.sid.as_deref()
            ),
            kind: SessionKind::Browser,
            id: row.sid,
            signed_in_at: row.auth_time,
            expires_at: row.expires_at,
        }))
        .collect();
    found.sort_by_key(|s| std::cmp::Reverse(s.signed_in_at));
    Ok(found)
}

/// The user row, or `NOT_FOUND`.
pub(super) async fn row(db: &impl ConnectionTrait, id: &UserId) -> AppResult<users::Model> {
    users::Entity::find_by_id(id.as_str())
        .one(db)
        .await?
        .ok_or(AppError::NotFound("user"))
}
