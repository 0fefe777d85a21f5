//! Signing keys: created on first start, stored in the database so every node shares them,
//! rotated by `idgraph keys rotate`, and cached in each node for a bounded time.
//!
//! Key states: `active` keys are published in the JWKS; the newest active key without a
//! `retires_at` signs. Rotation inserts a new active key and gives the previous ones a
//! `retires_at` one access-token lifetime (plus a minute) ahead, so every token they signed can
//! still be verified; once that time has passed they are marked `retired` and unpublished.
//! Each node reloads its key ring at most [`KeyStore::REFRESH`] after a change elsewhere, and at
//! once (at most once a second) when it meets a token signed by a key it does not know yet.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::jwt::{self, KeyRing, VerifyError};
use crate::auth::keys::{self, SigningAlgorithm, SigningKey, VerifyingKey};
use crate::clock::Clock;
use crate::db::entities::signing_keys;
use crate::domain::{secret::random_token, secs};
use crate::error::{AppError, AppResult};

const ACTIVE: &str = "active";
const RETIRED: &str = "retired";

/// Creates and stores an active key of `algorithm` when the database has none.
pub async fn ensure_active_key(
    db: &DatabaseConnection,
    algorithm: SigningAlgorithm,
    now: i64,
) -> AppResult<()> {
    let existing = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.is_null())
        .one(db)
        .await?;
    if existing.is_none() {
        insert_new_key(db, algorithm, now).await?;
        tracing::info!(algorithm = %algorithm, "signing key created");
    }
    Ok(())
}

/// Adds a new active key and schedules the current ones to stop being published after
/// `overlap`, once every token they signed has expired. Returns the new key's id.
pub async fn rotate(
    db: &DatabaseConnection,
    algorithm: SigningAlgorithm,
    overlap: Duration,
    now: i64,
) -> AppResult<String> {
    let retires_at = now + secs(overlap);
    let txn = db.begin().await?;
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::RetiresAt, retires_at.into())
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.is_null())
        .exec(&txn)
        .await?;
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::State, RETIRED.into())
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .filter(signing_keys::Column::RetiresAt.lte(now))
        .exec(&txn)
        .await?;
    let kid = insert_new_key(&txn, algorithm, now).await?;
    txn.commit().await?;
    tracing::info!(kid = %kid, algorithm = %algorithm, "signing key rotated");
    Ok(kid)
}

async fn insert_new_key(
    db: &impl ConnectionTrait,
    algorithm: SigningAlgorithm,
    now: i64,
) -> AppResult<String> {
    let kid = random_token(12);
    let generated = tokio::task::spawn_blocking({
        let kid = kid.clone();
        move || keys::generate(algorithm, &kid)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    signing_keys::ActiveModel {
        kid: Set(kid.clone()),
        algorithm: Set(algorithm.as_str().to_string()),
        private_key: Set(generated.pkcs8),
        public_jwk: Set(generated.public_jwk.to_string()),
        state: Set(ACTIVE.to_string()),
        created_at: Set(now),
        retires_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(kid)
}

/// Builds the key ring from the database as of `now`: every published key, the newest
/// unsuperseded one signing.
pub async fn load_ring(db: &DatabaseConnection, now: i64) -> AppResult<KeyRing> {
    let rows = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .order_by_desc(signing_keys::Column::CreatedAt)
        .all(db)
        .await?;
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    let mut signer: Option<&signing_keys::Model> = None;
    for row in &rows {
        if row.retires_at.is_some_and(|at| at <= now) {
            continue;
        }
        let algorithm: SigningAlgorithm = row
            .algorithm
            .parse()
            .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?;
        let jwk: Value = serde_json::from_str(&row.public_jwk).map_err(AppError::internal)?;
        verifying.insert(
            row.kid.clone(),
            VerifyingKey::from_jwk(algorithm, &jwk).map_err(AppError::internal)?,
        );
        published.push(jwk);
        if row.retires_at.is_none() && signer.is_none() {
            signer = Some(row);
        }
    }
    let signer = signer
        .or_else(|| rows.first())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no signing key in the database")))?;
    let algorithm: SigningAlgorithm = signer
        .algorithm
        .parse()
        .map_err(|e: String| AppError::internal(anyhow::anyhow!(e)))?;
    let active = SigningKey::from_pkcs8(signer.kid.clone(), algorithm, &signer.private_key)
        .map_err(AppError::internal)?;
    Ok(KeyRing {
        active: Arc::new(active),
        verifying,
        jwks: json!({ "keys": published }),
    })
}

struct Cached {
    ring: Arc<KeyRing>,
    /// Unix milliseconds.
    loaded: i64,
}

/// A node's cached view of the signing keys.
pub struct KeyStore {
    db: DatabaseConnection,
    clock: Clock,
    cached: RwLock<Cached>,
    reloading: tokio::sync::Mutex<()>,
}

impl KeyStore {
    /// How long a node trusts its cached key ring before reading the database again.
    pub const REFRESH: Duration = Duration::from_secs(60);
    const MISS_RELOAD: Duration = Duration::from_secs(1);

    /// Loads the key ring once; fails when the database holds no key.
    pub async fn load(db: DatabaseConnection, clock: Clock) -> AppResult<Self> {
        let ring = load_ring(&db, clock.now()).await?;
        Ok(Self {
            db,
            cached: RwLock::new(Cached {
                ring: Arc::new(ring),
                loaded: clock.now_millis(),
            }),
            clock,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> (Arc<KeyRing>, i64) {
        match self.cached.read() {
            Ok(cached) => (cached.ring.clone(), cached.loaded),
            Err(poisoned) => {
                let cached = poisoned.into_inner();
                (cached.ring.clone(), cached.loaded)
            }
        }
    }

    /// Reloads from the database when the cache is older than `max_age`. Only one reload runs
    /// at a time; concurrent callers keep using the ring they have.
    async fn refresh_if_older(&self, max_age: Duration) -> AppResult<Arc<KeyRing>> {
        let (ring, loaded) = self.snapshot();
        let max_age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        if self.clock.now_millis() - loaded < max_age {
            return Ok(ring);
        }
        let Ok(_guard) = self.reloading.try_lock() else {
            return Ok(ring);
        };
        let fresh = Arc::new(load_ring(&self.db, self.clock.now()).await?);
        if let Ok(mut cached) = self.cached.write() {
            *cached = Cached {
                ring: fresh.clone(),
                loaded: self.clock.now_millis(),
            };
        }
        Ok(fresh)
    }

    /// The current key ring, reloaded when older than [`KeyStore::REFRESH`].
    pub async fn ring(&self) -> AppResult<Arc<KeyRing>> {
        self.refresh_if_older(Self::REFRESH).await
    }

    /// Reads the keys from the database now (after `rotate` in this process, for instance).
    pub async fn reload(&self) -> AppResult<()> {
        self.refresh_if_older(Duration::ZERO).await.map(drop)
    }

    /// Signs `claims` with the active key.
    pub async fn sign<T: Serialize>(&self, claims: &T) -> AppResult<String> {
        self.ring().await?.sign(claims).map_err(AppError::internal)
    }

    /// Verifies a token; a `kid` not yet known triggers one reload (at most once a second).
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> AppResult<Option<T>> {
        let ring = self.ring().await?;
        let now = self.clock.now();
        match jwt::verify(&ring, token, issuer, audience, now) {
            Ok(claims) => Ok(Some(claims)),
            Err(VerifyError::Invalid) => Ok(None),
            Err(VerifyError::UnknownKey) => {
                let ring = self.refresh_if_older(Self::MISS_RELOAD).await?;
                Ok(jwt::verify(&ring, token, issuer, audience, now).ok())
            }
        }
    }

    /// The public JSON Web Key Set.
    pub async fn jwks(&self) -> AppResult<Value> {
        Ok(self.ring().await?.jwks.clone())
    }
}
