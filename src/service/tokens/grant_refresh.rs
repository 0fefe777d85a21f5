//! `grant_type=refresh_token`: an app's refresh token rotates (see
//! [`crate::service::refresh`]); a scope may only narrow what was granted.
//!
//! As with codes (`code.rs`), a good token that keeps the granted scope rotates in one
//! statement: an `UPDATE … RETURNING` whose conditions are the rules [`refresh::rotate`] checks
//! on the row (the family, its client, a redeemed code, the current digest, not expired, a
//! resource the app may still name). When it matches nothing, or a narrower scope or a
//! `resource` is asked for, the checked path reads the row and says what was wrong, revoking
//! the family when a rotated-out token comes back. The integration test
//! `every_refresh_rule_*` breaks each rule alone and shows the statement refused it.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter};

use super::{Client, Issue, OAuthError, TokenResponse, issue, revoke_grant};
use crate::db::entities::grants;
use crate::domain::oauth::OidcScope;
use crate::domain::scopes::Scopes;
use crate::domain::secret::digest;
use crate::domain::secs;
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::refresh::{self, Families, Rotation};

const BAD_REFRESH: &str = "the refresh token is invalid, expired or was already used";

/// The `grants` table as refresh-token families of one client.
struct GrantFamilies<'a> {
    state: &'a AppState,
    client_id: &'a str,
    /// The resource servers the client may name now.
    resources: &'a [String],
    ttl: i64,
}

impl Families for GrantFamilies<'_> {
    type Row = grants::Model;

    async fn find(&self, id: &str) -> Result<Option<Self::Row>, DbErr> {
        grants::Entity::find_by_id(id).one(&self.state.db).await
    }

    /// Only the client it was issued to may refresh a grant, and only a grant that was
    /// redeemed with `offline_access` ever handed out a refresh token.
    fn admits(&self, row: &Self::Row) -> bool {
        row.client_id == self.client_id
            && row.code_used_at.is_some()
            && Scopes::filter(&row.scope)
                .oidc
                .contains(OidcScope::OfflineAccess)
    }

    fn stored_digest<'r>(&self, row: &'r Self::Row) -> Option<&'r str> {
        row.refresh_hash.as_deref()
    }

    fn retired<'r>(&self, row: &'r Self::Row) -> Option<&'r str> {
        row.retired_refresh.as_deref()
    }

    fn expired(&self, row: &Self::Row, now: i64) -> bool {
        row.refresh_expires_at.is_none_or(|at| at <= now)
    }

    async fn swap(&self, row: &Self::Row, from: &str, to: &str, now: i64) -> Result<bool, DbErr> {
        let update = grants::Entity::update_many()
            .col_expr(grants::Column::RefreshHash, Expr::value(to))
            .col_expr(
                grants::Column::RetiredRefresh,
                refresh::retire(grants::Column::RetiredRefresh, from),
            )
            .col_expr(
                grants::Column::RefreshExpiresAt,
                Expr::value(now + self.ttl),
            )
            .filter(grants::Column::Id.eq(&row.id))
            .filter(grants::Column::RefreshHash.eq(from));
        let rotated = self.state.writer.update_returning(&self.state.db, update);
        Ok(rotated.await?.len() == 1)
    }

    /// Deletes the grant and announces it, in one statement on PostgreSQL.
    async fn revoke(&self, row: &Self::Row, _now: i64) -> Result<(), DbErr> {
        revoke_grant(self.state, &row.id).await.map(drop)
    }
}

/// The fast path: rotates a good token in one `UPDATE … RETURNING`, or matches nothing (and
/// changes nothing) when any rule fails. A grant redeemed without `offline_access` also holds a
/// digest, of a secret the redemption never handed out (`code.rs`), so no token can match it;
/// should one ever (the secret leaked from inside), the row's scope is checked after all and,
/// unlike the checked path's plain refusal, the family ends and the event is logged and counted
/// as a reuse.
async fn rotate_in_one_statement(
    state: &AppState,
    families: &GrantFamilies<'_>,
    family: &str,
    secret: &str,
    now: i64,
) -> Result<Option<(grants::Model, String)>, OAuthError> {
    use grants::Column as G;
    let (token, next) = refresh::mint(family);
    let current = digest(secret);
    let update = grants::Entity::update_many()
        .col_expr(G::RefreshHash, Expr::value(next))
        .col_expr(
            G::RetiredRefresh,
            refresh::retire(G::RetiredRefresh, &current),
        )
        .col_expr(G::RefreshExpiresAt, Expr::value(now + families.ttl))
        .filter(G::Id.eq(family))
        .filter(G::ClientId.eq(families.client_id))
        .filter(G::CodeUsedAt.is_not_null())
        .filter(G::RefreshHash.eq(current))
        .filter(G::RefreshExpiresAt.gt(now))
        // The grant's resource, if any, one the app may still name.
        .filter(
            Condition::any()
                .add(G::Resource.is_null())
                .add(G::Resource.is_in(families.resources.iter().map(String::as_str))),
        );
    let rotated = state.writer.update_returning(&state.db, update).await?;
    let Some(row) = rotated.into_iter().next() else {
        return Ok(None);
    };
    if !families.admits(&row) {
        revoke_grant(state, &row.id).await?;
        tracing::warn!(client.id = %families.client_id, "a refresh secret that was never handed out matched; grant revoked");
        state.metrics.security(SecurityEvent::RefreshReuse);
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    }
    Ok(Some((row, token)))
}

/// The checked path: reads the row, says what was wrong, and ends the family when the token
/// was used before. A scope beyond the grant or a resource it does not allow is refused before
/// the token rotates.
async fn rotate_checked(
    state: &AppState,
    client: &Client,
    families: &GrantFamilies<'_>,
    asked: Asked<'_>,
    now: i64,
) -> Result<(grants::Model, String, Scopes), OAuthError> {
    let rotation = refresh::rotate(families, asked.refresh_token, now, |grant| {
        client
            .policy()
            .user_token_audience(grant.resource.as_deref(), asked.resource)
            .map_err(|why| OAuthError::InvalidTarget(why.into()))?;
        narrowed(&Scopes::filter(&grant.scope), asked.scope)
    })
    .await??;
    match rotation {
        Rotation::Rotated {
            row,
            token,
            checked,
        } => Ok((row, token, checked)),
        Rotation::Refused => Err(OAuthError::InvalidGrant(BAD_REFRESH.into())),
        Rotation::Reused => {
            // The family has ended, and announced it (`GrantFamilies::revoke`).
            tracing::warn!(client.id = %client.id(), "refresh token reused; grant revoked");
            state.metrics.security(SecurityEvent::RefreshReuse);
            Err(OAuthError::InvalidGrant(BAD_REFRESH.into()))
        }
    }
}

/// The scope of a refreshed token: the granted scope, or a narrower one asked for. A word that
/// is not a known scope, or a scope beyond the grant, is `invalid_scope`.
fn narrowed(granted: &Scopes, asked: Option<&str>) -> Result<Scopes, OAuthError> {
    let Some(asked) = asked.filter(|s| !s.trim().is_empty()) else {
        return Ok(granted.clone());
    };
    match Scopes::parse(asked) {
        Ok(narrowed) if narrowed.is_subset_of(granted) => Ok(narrowed),
        _ => Err(OAuthError::InvalidScope(format!(
            "scope may only narrow the granted scope ({granted})"
        ))),
    }
}

/// What a refresh request asks for.
#[derive(Clone, Copy)]
struct Asked<'a> {
    refresh_token: &'a str,
    /// A narrower scope.
    scope: Option<&'a str>,
    /// `resource` (RFC 8707): only the grant's own.
    resource: Option<&'a str>,
}

/// `grant_type=refresh_token` for an authenticated `client`; rotates the refresh token.
/// `resource`, when sent, must be the one the authorization request named.
pub async fn refresh(
    state: &AppState,
    client: &Client,
    refresh_token: &str,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let families = GrantFamilies {
        state,
        client_id: client.id(),
        resources: &client.policy().resources,
        ttl: secs(state.config.refresh_token_ttl),
    };
    let now = state.clock.now();
    let asked = Asked {
        refresh_token,
        scope,
        resource,
    };
    // Only a request that keeps the grant as it is takes the one statement.
    let keeps_grant = scope.is_none_or(|s| s.trim().is_empty()) && resource.is_none();
    let fast = match refresh::split(refresh_token) {
        Some((family, secret)) if keeps_grant => {
            rotate_in_one_statement(state, &families, family, secret, now).await?
        }
        _ => None,
    };
    let (grant, token, scope) = match fast {
        Some((row, token)) => {
            let scope = Scopes::filter(&row.scope);
            (row, token, scope)
        }
        None => rotate_checked(state, client, &families, asked, now).await?,
    };
    // The app's ceiling as it is now, not as it was at consent: narrowed since, it narrows what
    // the refresh gives; without `offline_access` any more (every refreshable grant holds it,
    // `GrantFamilies::admits`), the grant ends.
    let policy = client.policy();
    if !policy.allows_oidc_scope(OidcScope::OfflineAccess) {
        revoke_grant(state, &grant.id).await?;
        return Err(OAuthError::InvalidGrant(
            "the app may no longer hold refresh tokens".into(),
        ));
    }
    let scope = policy.narrow(&scope);
    // The connection's last-used mark is queued, written behind the request.
    state.touches.touch(&grant.user_id, &grant.client_id, now);
    issue(
        state,
        Issue {
            client,
            grant: &grant,
            scope: &scope.to_string(),
            nonce: None,
            refresh_token: Some(token),
        },
    )
    .await
}
