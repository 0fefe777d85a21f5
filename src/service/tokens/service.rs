//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential app's access token for
//! itself. No user, so no ID token and no refresh token; the token carries API scopes only, and
//! its audience is a resource the app may name (RFC 8707).

use super::{Client, OAuthError, TokenResponse};
use crate::auth::jwt::AccessClaims;
use crate::domain::scopes::Scopes;
use crate::domain::secs;
use crate::service::AppState;

/// The token a service gets for itself: the API scopes it asked for within its ceiling (all of
/// them when it asked for none); `resource` its audience, one of the app's `resources` (the
/// first when it names none; the issuer when it has none).
pub async fn client_credentials(
    state: &AppState,
    client: &Client,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let policy = client.policy();
    let ceiling = &policy.scope.api;
    let asked = match scope.filter(|s| !s.trim().is_empty()) {
        None => Scopes {
            oidc: Default::default(),
            api: ceiling.clone(),
        },
        Some(text) => Scopes::parse(text)
            .map_err(|word| OAuthError::InvalidScope(format!("'{word}' is not a scope")))?,
    };
    if !asked.oidc.is_empty() {
        return Err(OAuthError::InvalidScope(
            "OpenID scopes need a user: a client_credentials token carries API scopes only".into(),
        ));
    }
    if !asked.api.is_subset(ceiling) {
        return Err(OAuthError::InvalidScope(
            "a scope asked for is beyond the app's scope".into(),
        ));
    }
    let issuer = &state.config.issuer;
    let audience = policy
        .app_token_audience(resource, issuer)
        .ok_or_else(|| OAuthError::InvalidTarget("the app may not name this resource".into()))?;
    let now = state.clock.now();
    let ttl = secs(state.config.access_token_ttl);
    let scope = asked.to_string();
    let claims = AccessClaims::service(issuer, client.id(), audience, &scope, now, ttl);
    let ring = state.keys.ring().await?;
    let access_token =
        crate::service::keys::signing(ring.default, move || ring.sign_access(&claims)).await?;
    tracing::info!(client.id = %client.id(), "client_credentials token issued");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        id_token: None,
        refresh_token: None,
        scope,
    })
}
