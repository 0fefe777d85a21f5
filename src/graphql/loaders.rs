//! DataLoaders, created per request and loading only what the caller may see.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::auth::Principal;
use crate::domain::ids::{ClientId, UserId};
use crate::domain::users::User;
use crate::error::AppError;
use crate::service::AppState;
use crate::service::users;

/// A per-request loader with a per-request cache (see `graphql::http::execute`).
pub type CachedLoader<T> = DataLoader<T, HashMapCache>;

/// Loads app creators (users) in one query per batch, for oauth admins only.
pub struct CreatorLoader {
    /// The request's state.
    pub state: AppState,
    /// The request's caller; the service checks what it may see.
    pub principal: Principal,
}

impl Loader<UserId> for CreatorLoader {
    type Value = User;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, User>, Self::Error> {
        users::creators_by_ids(&self.state, &self.principal, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Loads users by id in one query per batch, for administrators only (the actors and targets
/// of a page of the audit trail).
pub struct UserLoader {
    /// The request's state.
    pub state: AppState,
    /// The request's caller; the service checks what it may see.
    pub principal: Principal,
}

/// A user who no longer exists is loaded as `None`, so that the per-request cache remembers
/// that too (the library caches only the keys a load answers).
impl Loader<UserId> for UserLoader {
    type Value = Option<User>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, Option<User>>, Self::Error> {
        let mut found = users::users_by_ids(&self.state, &self.principal, keys)
            .await
            .map_err(Arc::new)?;
        Ok(keys
            .iter()
            .map(|key| (key.clone(), found.remove(key)))
            .collect())
    }
}

/// Loads the apps of a page of connections in one query. Apps are public, so any caller may
/// see them.
pub struct AppLoader {
    /// The request's state.
    pub state: AppState,
}

impl Loader<ClientId> for AppLoader {
    type Value = crate::domain::apps::App;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ClientId]) -> Result<HashMap<ClientId, Self::Value>, Self::Error> {
        crate::service::apps::apps_by_ids_uncached(&self.state, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Loads users' connection counts in one query per batch, for administrators only.
pub struct ConnectionCountLoader {
    /// The request's state.
    pub state: AppState,
    /// The request's caller; the service checks what it may see.
    pub principal: Principal,
}

impl Loader<UserId> for ConnectionCountLoader {
    type Value = i64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, i64>, Self::Error> {
        users::connection_counts(&self.state, &self.principal, keys)
            .await
            .map_err(Arc::new)
    }
}
