//! GraphQL resolvers for the signing keys (administrators): their states, and rotation.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
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
    /// Taken out of service before its time (it leaked): unpublished, and nothing it signed
    /// verifies.
    Revoked,
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
    /// Whether it is in the JWKS now (next, active or retiring): only such a key can be revoked.
    pub published: bool,
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
            published: key.state.is_published(),
            state: key.state.into(),
            created_at: timestamp(key.created_at),
            activates_at: key.activates_at.map(timestamp),
            retires_at: key.retires_at.map(timestamp),
        }
    }
}

/// What revoking a key changed.
#[derive(SimpleObject)]
pub struct SigningKeyRevocation {
    /// The revoked key.
    pub key: SigningKey,
    /// The key that took its place: signing at once when the revoked key was signing, on its
    /// schedule when it was the next to sign; null when it was retiring.
    pub successor: Option<SigningKey>,
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

    /// Revokes a key that leaked: it leaves the JWKS at once and no token it signed verifies
    /// again (every node hears of it; relying parties drop it when their cached JWKS expires).
    /// Its algorithm gets another signer at once. A key no longer published is a conflict
    /// (administrators, `gov.user.admin.key:write`).
    #[graphql(guard = "Require::Admin(Scope::KeyWrite)")]
    async fn revoke_signing_key(&self, ctx: &Context<'_>, kid: ID) -> Result<SigningKeyRevocation> {
        let revocation = keys::revoke_by(super::state(ctx)?, super::principal(ctx)?, &kid).await?;
        Ok(SigningKeyRevocation {
            key: revocation.key.into(),
            successor: revocation.successor.map(SigningKey::from),
        })
    }
}
