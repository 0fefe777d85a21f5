//! The shared application state handed to every request.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::Config;
use crate::db::writer::Writer;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::service::apps::AppCache;
use crate::service::audit::SignInBudget;
use crate::service::backchannel::Wake;
use crate::service::changes::{Caches, Listener};
use crate::service::keys::{self, KeyStore};
use crate::service::passwords::PasswordHasher;
use crate::service::seal::Sealer;
use crate::service::tokens::LiveTokens;
use crate::service::touches::Touches;

/// Everything a request may need, shared: a clone is one reference count, which matters since
/// every request clones it (each extractor and middleware given the state takes its own). A
/// state of a dozen `Arc`s cloned and dropped a few times per request, their counts bouncing
/// between the cores, once took about a third of the CPU time of a trivial route.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Where the token path's hot writes run: SQLite's writer thread, or the pool.
    pub writer: Writer,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The source of "now" for every rule that depends on the time.
    pub clock: Clock,
    /// The signing keys, cached with a bounded lifetime.
    pub keys: Arc<KeyStore>,
    /// Bounded password hashing.
    pub passwords: PasswordHasher,
    /// App look-ups by client id, with a bounded lifetime.
    pub(crate) apps: Arc<AppCache>,
    /// Live grants and unrevoked app tokens, with a bounded lifetime.
    pub live: Arc<LiveTokens>,
    /// Hears the changes other nodes announce (PostgreSQL).
    pub listener: Arc<Listener>,
    /// When this node last marked each connection used.
    pub touches: Arc<Touches>,
    /// Seals the hosted pages' forms (a MAC bound to the browser's cookie).
    pub sealer: Arc<Sealer>,
    /// Permits for image decoding (bounded concurrency off the async workers).
    pub images: Arc<Semaphore>,
    /// Prometheus metrics (recording only when `metrics_bind` is set).
    pub metrics: Metrics,
    /// Wakes this node's back-channel logout worker.
    pub logouts: Arc<Wake>,
    /// This node's budget of audited sign-in refusals.
    pub audit: Arc<SignInBudget>,
}

impl AppState {
    /// Closes the database pool, which every clone of the state shares: once the work is done.
    pub async fn close(&self) -> Result<(), sea_orm::DbErr> {
        self.db.clone().close().await
    }

    /// The caches that announced changes concern.
    pub(crate) fn caches(&self) -> Caches {
        Caches {
            apps: self.apps.clone(),
            live: self.live.clone(),
            keys: self.keys.clone(),
        }
    }

    /// Builds the state over a migrated database on the system clock, creating a signing key
    /// when there is none.
    pub async fn new(db: DatabaseConnection, config: Config) -> AppResult<Self> {
        Self::with_clock(db, config, Clock::system()).await
    }

    /// [`AppState::new`] with the given clock (tests pass a manual one).
    pub async fn with_clock(
        db: DatabaseConnection,
        config: Config,
        clock: Clock,
    ) -> AppResult<Self> {
        keys::ensure_needed_keys(&db, config.signing_algorithm, clock.now()).await?;
        let keys =
            Arc::new(KeyStore::load(db.clone(), clock.clone(), config.signing_algorithm).await?);
        let sealer = Sealer::load(&db, clock.now()).await?;
        let caches = Caches {
            apps: Arc::new(AppCache::new(
                clock.clone(),
                crate::service::apps::CACHE_TTL,
            )),
            live: Arc::new(LiveTokens::new(clock.clone())),
            keys: keys.clone(),
        };
        let listener = if db.get_database_backend() == DbBackend::Postgres {
            Listener::start(&config.database_url, caches.clone())
                .await
                .map_err(AppError::internal)?
        } else {
            Listener::none()
        };
        let writer = Writer::start(&config.database_url)?;
        let metrics = match config.metrics_bind {
            Some(_) => Metrics::enabled(),
            None => Metrics::disabled(),
        };
        Ok(Self(Arc::new(Shared {
            metrics,
            passwords: PasswordHasher::new(config.password_hash_concurrency),
            db,
            writer,
            config: Arc::new(config),
            keys,
            apps: caches.apps,
            live: caches.live,
            listener: Arc::new(listener),
            touches: Arc::new(Touches::default()),
            sealer: Arc::new(sealer),
            images: Arc::new(Semaphore::new(2)),
            logouts: Arc::new(Wake::default()),
            audit: Arc::new(SignInBudget::default()),
            clock,
        })))
    }
}
