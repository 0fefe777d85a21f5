//! Userinfo (OpenID Connect Core §5.3): the claims an app's access token may read.

use serde_json::{Map, Value, json};

use super::live;
use crate::domain::ids::ClientId;
use crate::domain::oauth::OidcScope;
use crate::domain::scopes::Scopes;
use crate::error::AppError;
use crate::service::AppState;

/// What userinfo answers, and the app the token was issued to.
#[derive(Debug, Clone)]
pub struct UserInfo {
    /// The app (its browser origins may read the answer).
    pub client_id: ClientId,
    /// The claims.
    pub claims: Value,
}

/// Userinfo claims for an app's access token: `sub` always, `profile` and `email` claims by
/// scope. A token whose grant was revoked (connection deleted, code replayed, refresh reused)
/// is invalid.
pub async fn userinfo(state: &AppState, token: &str) -> Result<UserInfo, AppError> {
    let claims = state
        .keys
        .verify_app_token(token, &state.config.issuer)
        .await?
        .filter(|c| c.aud == state.config.issuer)
        .ok_or(AppError::InvalidToken)?;
    let (Some(client_id), Some(gid)) = (&claims.client_id, &claims.gid) else {
        return Err(AppError::InvalidToken);
    };
    // The grant must still be live for this user and app (no query while cached).
    let Some(live) = live::grant(state, gid)
        .await?
        .filter(|live| live.grant.user_id == claims.sub && live.grant.client_id == *client_id)
    else {
        return Err(AppError::InvalidToken);
    };
    let (grant, user) = (&live.grant, &live.user);
    let scopes = Scopes::filter(&claims.scope).oidc;
    let mut out = Map::new();
    out.insert("sub".into(), json!(grant.user_id));
    if scopes.contains(OidcScope::Profile) {
        out.insert("name".into(), json!(user.name));
        out.insert("preferred_username".into(), json!(user.username));
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scopes.contains(OidcScope::Email) {
        out.insert("email".into(), json!(user.email));
        // Addresses are typed in (by administrators or the user), never proven.
        out.insert("email_verified".into(), json!(false));
    }
    Ok(UserInfo {
        client_id: ClientId::from_trusted(client_id.clone()),
        claims: Value::Object(out),
    })
}
