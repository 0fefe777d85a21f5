//! Axum extractors: the caller's [`Principal`] from `Authorization: Bearer`, and guard
//! extractors that reject early through the same checks the services use.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::service::AppState;
use crate::service::sessions;

use crate::auth::Principal;

/// Reads the bearer token of a request, if one was sent. A malformed `Authorization` header
/// counts as an invalid token.
pub fn bearer_token(parts: &Parts) -> Option<Result<&str, ()>> {
    let value = parts.headers.get(AUTHORIZATION)?;
    let text = match value.to_str() {
        Ok(text) => text,
        Err(_) => return Some(Err(())),
    };
    let Some((scheme, token)) = text.split_once(' ') else {
        return Some(Err(()));
    };
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Some(Err(()));
    }
    Some(Ok(token.trim()))
}

/// Builds the principal of a request.
pub async fn principal_of(parts: &Parts, state: &AppState) -> Result<Principal, AppError> {
    match bearer_token(parts) {
        None => Ok(Principal::Anonymous),
        Some(Err(())) => Ok(Principal::InvalidToken),
        Some(Ok(token)) => sessions::principal_from_bearer(state, token).await,
    }
}

/// The value of idgraph's browser-session cookie (by its name under `config`), when the request
/// carries one of the shape we issue (the first, when several are sent).
pub fn session_cookie(
    headers: &axum::http::HeaderMap,
    config: &crate::config::Config,
) -> Option<String> {
    use crate::service::browser::{cookie_name, is_cookie_value};
    let name = cookie_name(config);
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| is_cookie_value(value))
}

/// The caller of `/graphql`: the bearer token's, or without one the person signed in on this
/// browser when the console is theirs (role `admin` or `oauth`: GraphiQL opened from the
/// console; see [`crate::service::console`]); anyone else's session counts for nothing here.
/// Only `/graphql` accepts the cookie: its POSTs must be JSON or carry a preflight header,
/// which no other site can send with this origin's cookie, and mutations never run over GET.
pub struct GraphqlCaller(pub Principal);

impl FromRequestParts<AppState> for GraphqlCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if !matches!(principal, Principal::Anonymous) {
            return Ok(Self(principal));
        }
        let cookie = session_cookie(&parts.headers, &state.config);
        match crate::service::console::signed_in(state, cookie.as_deref()).await? {
            Some(user) if user.may_use_console() => Ok(Self(user.principal)),
            _ => Ok(Self(principal)),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let principal = principal_of(parts, state).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// A compile-time name for one [`crate::domain::Scope`], so a handler's signature can state its guard.
pub trait RequiredScope {
    /// The scope the guard requires.
    const SCOPE: crate::domain::Scope;
}

macro_rules! scope_markers {
    ($($(#[$doc:meta])* $name:ident => $scope:ident),* $(,)?) => {
        $( $(#[$doc])* pub struct $name; impl RequiredScope for $name { const SCOPE: crate::domain::Scope = crate::domain::Scope::$scope; } )*
    };
}

scope_markers! {
    /// `gov.user.oauth.app:read`
    AppRead => AppRead,
    /// `gov.user.oauth.app:write`
    AppWrite => AppWrite,
    /// `gov.user.oauth.authorize`
    Authorize => Authorize,
    /// `gov.user.oauth.connection:read`
    ConnectionRead => ConnectionRead,
    /// `gov.user.oauth.connection:write`
    ConnectionWrite => ConnectionWrite,
}

/// Extracts the principal after `require_user(S::SCOPE)` passed; rejects with 401/403 otherwise.
pub struct UserGuard<S>(pub Principal, pub std::marker::PhantomData<S>);

/// Extracts the principal after `require_oauth_admin(S::SCOPE)` passed.
pub struct OauthAdminGuard<S>(pub Principal, pub std::marker::PhantomData<S>);

impl<S: RequiredScope + Send> FromRequestParts<AppState> for UserGuard<S> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        principal.require_user(S::SCOPE)?;
        Ok(Self(principal, std::marker::PhantomData))
    }
}

impl<S: RequiredScope + Send> FromRequestParts<AppState> for OauthAdminGuard<S> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        principal.require_oauth_admin(S::SCOPE)?;
        Ok(Self(principal, std::marker::PhantomData))
    }
}
