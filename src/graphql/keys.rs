//! GraphQL resolvers for the signing keys (administrators): their states, and rotation.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::app_types::SigningAlgorithm;
use super::guards::Require;
use super::types::timestamp;
use crate::domain::Scope;
use crate::service::keys::{self, KeyInfo};

/// Where a signing key is in its life.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::service::keys::KeyState")]
pub enum SigningKeyState {
    /// Published in the JWKS ahead of time; not signing yet.
    Next,
    /// The key its algorithm signs with.
    Active,
    /// Superseded: still published, so that tokens it signed keep verifying; not signing.
    Retiring,
    /// No longer published.
    Retired,
}

/// A signing key; never its private part.
#[derive(SimpleObject)]
pub struct SigningKey {
    /// The key id (`kid` in token headers and the JWKS).
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// Its state now.
    pub state: SigningKeyState,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it starts (or started) signing; null: from creation.
    pub activates_at: Option<DateTime<Utc>>,
    /// When it stops being published; null: not superseded.
    pub retires_at: Option<DateTime<Utc>>,
}

impl From<KeyInfo> for SigningKey {
    fn from(key: KeyInfo) -> Self {
        Self {
            kid: key.kid,
            algorithm: key.algorithm.into(),
            state: key.state.into(),
            created_at: timestamp(key.created_at),
            activates_at: key.activates_at.map(timestamp),
            retires_at: key.retires_at.map(timestamp),
        }
    }
}

/// Signing-key queries.
#[derive(Default)]
pub struct KeyQuery;

#[Object]
impl KeyQuery {
    /// The newest 100 signing keys, newest first (administrators, `gov.user.admin.key:read`).
    #[graphql(guard = "Require::Admin(Scope::KeyRead)")]
    async fn signing_keys(&self, ctx: &Context<'_>) -> Result<Vec<SigningKey>> {
        let found = keys::list_keys(super::state(ctx)?, super::principal(ctx)?).await?;
        Ok(found.into_iter().map(SigningKey::from).collect())
    }
}

/// Signing-key mutations.
#[derive(Default)]
pub struct KeyMutation;

#[Object]
impl KeyMutation {
    /// Rotates `algorithm`'s key now: the new key is published at once and signs after the
    /// JWKS cache lifetime; the previous one keeps verifying until its tokens have expired
    /// (administrators, `gov.user.admin.key:write`). Returns the new key.
    #[graphql(guard = "Require::Admin(Scope::KeyWrite)")]
    async fn rotate_signing_key(
        &self,
        ctx: &Context<'_>,
        algorithm: SigningAlgorithm,
    ) -> Result<SigningKey> {
        let key =
            keys::rotate_by(super::state(ctx)?, super::principal(ctx)?, algorithm.into()).await?;
        Ok(key.into())
    }
}
