//! Whether an access token is still live, without a query on the hot path.
//!
//! An app's access token is a signed JWT; what can end it early is its grant (for a user's
//! token) or a revocation of the token itself (for an app's token for itself). Userinfo and
//! introspection ask here. The answers are cached per node ([`LiveTokens`]): only "live" is
//! cached (an ended grant never comes back), and every change that ends tokens clears the cache
//! through [`changes::announce`](crate::service::changes::announce), on this node at once and
//! on the others when the announcement arrives. The TTL bounds how long a lost announcement
//! can keep a revoked token alive on another node.
//!
//! Every write that ends grants or tokens must announce it ([`ended`]) after it commits:
//! revocation, a replayed code, a reused refresh token, a deleted connection, a deleted app.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::clock::Clock;
use crate::db::entities::{grants, revoked_tokens, users};
use crate::service::AppState;
use crate::service::cache::Cache;
use crate::service::changes::Change;

/// Who a redeemed grant is between.
#[derive(Debug)]
pub struct GrantParties {
    /// The user the grant is for.
    pub user_id: String,
    /// The app it was given to.
    pub client_id: String,
}

/// The claims userinfo may read about a user.
#[derive(Debug)]
pub struct UserClaims {
    /// `name`.
    pub name: String,
    /// `preferred_username`.
    pub username: String,
    /// `email`.
    pub email: String,
    /// `updated_at`, Unix seconds.
    pub updated_at: i64,
}

/// A redeemed, live grant and its user's claims.
#[derive(Debug, Clone)]
pub struct LiveGrant {
    /// Who the grant is between.
    pub grant: Arc<GrantParties>,
    /// The user's claims.
    pub user: Arc<UserClaims>,
}

/// The per-node cache of live grants, of their users' claims and of app tokens known not to be
/// revoked. Grants and users are cached apart, so that a change to a user forgets one entry
/// (their claims) whatever number of grants they hold: a grant is live only while its user's
/// claims are found too, so the next call for any of that user's grants reads both again.
pub struct LiveTokens {
    grants: Cache<String, Arc<GrantParties>>,
    users: Cache<String, Arc<UserClaims>>,
    unrevoked: Cache<String, ()>,
}

impl LiveTokens {
    /// How long a "live" answer is trusted when no announcement says otherwise.
    pub const TTL: Duration = Duration::from_secs(5);

    /// Empty caches on `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            grants: Cache::new(clock.clone(), Self::TTL),
            users: Cache::new(clock.clone(), Self::TTL),
            unrevoked: Cache::new(clock, Self::TTL),
        }
    }

    /// Forgets every answer (a change ended grants or tokens not named one by one).
    pub fn clear(&self) {
        self.grants.clear();
        self.users.clear();
        self.unrevoked.clear();
    }

    /// Forgets the grant `gid` (it was ended).
    pub fn forget_grant(&self, gid: &str) {
        self.grants.invalidate(gid);
    }

    /// Forgets the grant `gid` that another node already deleted (a revocation here found
    /// nothing to delete): see [`Cache::invalidate_if_held`].
    pub fn forget_gone_grant(&self, gid: &str) {
        self.grants.invalidate_if_held(gid);
    }

    /// Forgets the claims of user `user_id` (the user changed, was disabled or deleted): the
    /// next call for any of their grants reads grant and user again.
    pub fn forget_user(&self, user_id: &str) {
        self.users.invalidate(user_id);
    }

    /// Forgets the app token `jti` (it was revoked).
    pub fn forget_token(&self, jti: &str) {
        self.unrevoked.invalidate(jti);
    }
}

/// The grant `gid` if it is redeemed and not ended, with its user's claims.
pub async fn grant(state: &AppState, gid: &str) -> Result<Option<LiveGrant>, sea_orm::DbErr> {
    let live = &state.live;
    if let Some(grant) = live.grants.get(gid)
        && let Some(user) = live.users.get(&grant.user_id)
    {
        return Ok(Some(LiveGrant { grant, user }));
    }
    let tickets = (live.grants.ticket(), live.users.ticket());
    let found = grants::Entity::find_by_id(gid)
        .filter(grants::Column::CodeUsedAt.is_not_null())
        .find_also_related(users::Entity)
        .one(&state.db)
        .await?;
    let Some((grant, Some(user))) = found else {
        return Ok(None);
    };
    // Disabling deletes the user's grants; a grant that slipped past is no grant either.
    if user.disabled_at.is_some() {
        return Ok(None);
    }
    let found = LiveGrant {
        grant: Arc::new(GrantParties {
            user_id: grant.user_id,
            client_id: grant.client_id,
        }),
        user: Arc::new(UserClaims {
            name: user.name,
            username: user.username,
            email: user.email,
            updated_at: user.updated_at,
        }),
    };
    live.grants
        .put(tickets.0, gid.to_string(), found.grant.clone());
    live.users
        .put(tickets.1, found.grant.user_id.clone(), found.user.clone());
    Ok(Some(found))
}

/// Whether the app token `jti` (one without a grant) has not been revoked.
pub async fn unrevoked(state: &AppState, jti: &str) -> Result<bool, sea_orm::DbErr> {
    let cache = &state.live.unrevoked;
    if cache.get(jti).is_some() {
        return Ok(true);
    }
    let ticket = cache.ticket();
    let revoked = revoked_tokens::Entity::find_by_id(jti)
        .one(&state.db)
        .await?
        .is_some();
    if !revoked {
        cache.put(ticket, jti.to_string(), ());
    }
    Ok(!revoked)
}

/// Announces that grants or tokens were ended (after the write committed).
pub async fn ended(state: &AppState, change: Change<'_>) {
    crate::service::changes::announce(state, change).await;
}
