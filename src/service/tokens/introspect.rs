//! Introspection (RFC 7662): a resource server (an authenticated confidential app) asks whether
//! a token is active. Anything invalid, expired, revoked or not meant for the caller is
//! `{"active": false}`, never an error.
//!
//! What an app may introspect: its own tokens (access and refresh), and access tokens whose
//! audience names it (its client id, or one of its `resources`): the resource server's view.
//! An app's `resources` thus make a group: the apps that may get tokens for an API and the API's
//! own app see each other's tokens for it, their users' tokens for it included (a user's grant
//! may name the API, RFC 8707). That reveals little: introspection needs the token itself,
//! whose claims its holder can read anyway; what it adds is whether the token is still active.
//! The issuer cannot be a resource, so no app sees other apps' users' tokens for the issuer.

use sea_orm::EntityTrait;
use serde::Serialize;

use super::{Client, OAuthError, live};
use crate::auth::jwt::{AccessClaims, JwtType};
use crate::db::entities::grants;
use crate::domain::ids::ClientId;
use crate::domain::oauth::OidcScope;
use crate::domain::scopes::Scopes;
use crate::domain::secret::digest_matches;
use crate::service::refresh;
use crate::service::{AppState, apps};

/// The answer (RFC 7662 §2.2): `active`, and for an active token what it is.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Introspection {
    /// Whether the token is good now.
    pub active: bool,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The app the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user (or, for an app's token for itself, the app).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The token's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `Bearer` for an access token (RFC 6749 §7.1); absent for a refresh token, which has no
    /// such type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token_type: Option<&'static str>,
}

impl Introspection {
    fn inactive() -> Self {
        Self::default()
    }
}

/// Introspects `token` for `caller`, which must be a confidential app (`invalid_client`
/// otherwise).
pub async fn introspect(
    state: &AppState,
    caller: &Client,
    token: &str,
    hint: Option<&str>,
) -> Result<Introspection, OAuthError> {
    if caller.policy().is_public() {
        return Err(OAuthError::InvalidClient);
    }
    let refresh_first = hint == Some("refresh_token");
    if refresh_first && let Some(found) = refresh_token(state, caller, token).await? {
        return Ok(found);
    }
    if let Some(found) = access_token(state, caller, token).await? {
        return Ok(found);
    }
    if !refresh_first && let Some(found) = refresh_token(state, caller, token).await? {
        return Ok(found);
    }
    Ok(Introspection::inactive())
}

/// An active access token the caller may see, if `token` is one.
async fn access_token(
    state: &AppState,
    caller: &Client,
    token: &str,
) -> Result<Option<Introspection>, OAuthError> {
    if JwtType::of(token) != Some(JwtType::AccessToken) {
        return Ok(None);
    }
    let issuer = &state.config.issuer;
    let Some(claims) = state.keys.verify_app_token(token, issuer).await? else {
        return Ok(None);
    };
    let policy = caller.policy();
    // The issuer is never a resource (apps may not list it), but an app stored before that rule,
    // or an issuer changed since, must not make every user's token visible.
    let visible = claims.client_id.as_deref() == Some(caller.id())
        || claims.aud == caller.id()
        || (claims.aud != *issuer && policy.may_name(&claims.aud));
    if !visible || !live(state, &claims).await? {
        return Ok(None);
    }
    Ok(Some(Introspection {
        active: true,
        scope: Some(claims.scope),
        client_id: claims.client_id,
        sub: Some(claims.sub),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        aud: Some(claims.aud),
        iss: Some(claims.iss),
        jti: Some(claims.jti),
        token_type: Some("Bearer"),
    }))
}

/// Whether an access token has not been ended: its grant is live (and its user's) and, when the
/// grant is for a resource server, its app may still name it (as a refresh would require); or,
/// for an app's token for itself, the app still exists and could get such a token now
/// ([`ClientPolicy::may_hold_app_token`](crate::domain::clients::ClientPolicy::may_hold_app_token))
/// and the token was not revoked.
async fn live(state: &AppState, claims: &AccessClaims) -> Result<bool, OAuthError> {
    let Some(gid) = &claims.gid else {
        let allowed = owner(state, claims).await?.is_some_and(|app| {
            app.policy()
                .may_hold_app_token(&claims.aud, &state.config.issuer)
        });
        return Ok(allowed && live::unrevoked(state, &claims.jti).await?);
    };
    let grant_live = live::grant(state, gid).await?.is_some_and(|live| {
        live.grant.user_id == claims.sub
            && claims.client_id.as_deref() == Some(live.grant.client_id.as_str())
    });
    if !grant_live || claims.aud == state.config.issuer {
        return Ok(grant_live);
    }
    let owner = owner(state, claims).await?;
    Ok(owner.is_some_and(|app| app.policy().may_name(&claims.aud)))
}

/// The app a token was issued to, while it is registered.
async fn owner(
    state: &AppState,
    claims: &AccessClaims,
) -> Result<Option<std::sync::Arc<apps::AppRecord>>, OAuthError> {
    match claims.client_id.as_deref().and_then(ClientId::parse) {
        Some(client_id) => Ok(apps::record(state, &client_id).await?),
        None => Ok(None),
    }
}

/// The caller's own current refresh token, if `token` is one.
async fn refresh_token(
    state: &AppState,
    caller: &Client,
    token: &str,
) -> Result<Option<Introspection>, OAuthError> {
    let Some((family, secret)) = refresh::split(token) else {
        return Ok(None);
    };
    let Some(grant) = grants::Entity::find_by_id(family).one(&state.db).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let scopes = Scopes::filter(&grant.scope);
    let current = grant.client_id == caller.id()
        && grant
            .refresh_hash
            .as_deref()
            .is_some_and(|stored| digest_matches(secret, stored))
        && grant.refresh_expires_at.is_some_and(|at| at > now)
        && scopes.oidc.contains(OidcScope::OfflineAccess)
        // The app's policy as it is now, by the token endpoint's own rule (`offline_access`
        // allowed, which takes the `refresh_token` grant): one that may no longer refresh would
        // see this token refused (and its grant ended) there, so it is not active.
        && caller.policy().allows_oidc_scope(OidcScope::OfflineAccess);
    if !current {
        return Ok(None);
    }
    Ok(Some(Introspection {
        active: true,
        scope: Some(scopes.to_string()),
        client_id: Some(grant.client_id),
        sub: Some(grant.user_id),
        exp: grant.refresh_expires_at,
        // When the current refresh token was issued is not kept (rotation rewrites the row).
        iat: None,
        aud: None,
        iss: Some(state.config.issuer.clone()),
        jti: None,
        token_type: None,
    }))
}
