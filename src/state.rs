//! The shared application state handed to every request.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::AppResult;
use crate::service::app_cache::AppCache;
use crate::service::keys::{self, KeyStore};
use crate::service::passwords::PasswordHasher;
use crate::service::throttle::SignInThrottle;

/// Everything a request may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The signing keys, cached with a bounded lifetime.
    pub keys: Arc<KeyStore>,
    /// Bounded password hashing.
    pub passwords: PasswordHasher,
    /// App look-ups by client id, with a bounded lifetime.
    pub apps: Arc<AppCache>,
    /// Failed sign-in counts, for the back-off.
    pub sign_ins: Arc<SignInThrottle>,
    /// Permits for image decoding (bounded concurrency off the async workers).
    pub images: Arc<Semaphore>,
}

impl AppState {
    /// Builds the state over a migrated database, creating a signing key when there is none.
    pub async fn new(db: DatabaseConnection, config: Config) -> AppResult<Self> {
        keys::ensure_active_key(&db, config.signing_algorithm).await?;
        let keys = KeyStore::load(db.clone()).await?;
        Ok(Self {
            passwords: PasswordHasher::new(config.password_hash_concurrency),
            db,
            config: Arc::new(config),
            keys: Arc::new(keys),
            apps: Arc::new(AppCache::default()),
            sign_ins: Arc::new(SignInThrottle::default()),
            images: Arc::new(Semaphore::new(2)),
        })
    }
}
