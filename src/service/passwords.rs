//! Password hashing with argon2id, run off the async workers and bounded by a semaphore so
//! that a burst of sign-ins cannot starve other requests.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Hashes and verifies passwords on the blocking pool, at most `concurrency` at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

/// A hash of a password nobody has, verified against when the user is unknown, so that an
/// unknown username costs the same time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"idgraph-decoy-password", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

impl PasswordHasher {
    /// A hasher that runs at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Hashes `password` with argon2id (default parameters: 19 MiB, 2 passes) and a random salt.
    pub async fn hash(&self, password: SecretString) -> AppResult<String> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| AppError::internal(anyhow::anyhow!("argon2: {e}")))
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Whether `password` matches `stored`; with no stored hash, spends the same effort and
    /// answers `false`.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> AppResult<bool> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let stored = stored.unwrap_or_else(|| decoy_hash().to_string());
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return false;
            };
            let matches = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            known && matches
        })
        .await
        .map_err(AppError::internal)
    }
}
