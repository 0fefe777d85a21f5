//! First-party sessions: `login`, `refreshSession`, `logout`, and turning a bearer token into a
//! [`Principal`].
//!
//! A session is one refresh-token family. A refresh token reads `<session id>.<secret>`; only
//! the secret's SHA-256 digest is stored. Every refresh swaps the digest atomically (a
//! compare-and-set `UPDATE`), so a token works once; presenting a rotated-out token revokes the
//! whole session, and with it every access token that names it in `sid`. Each refresh token
//! lives `refresh_token_ttl` from its issue (a sliding session).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::auth::jwt::{AccessClaims, TokenKind};
use crate::auth::{Principal, Role, ScopeSet, UserPrincipal};
use crate::db::entities::sessions;
use crate::domain::ids::{SessionId, UserId};
use crate::domain::secret::{digest, digest_matches, random_token};
use crate::domain::{now_unix, secs};
use crate::error::{AppError, AppResult};
use crate::service::users;
use crate::state::AppState;

/// What `login` and `refreshSession` return.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    /// A first-party access JWT (kind `session`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The new refresh token; the previous one no longer works.
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

async fn issue_access_token(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    scope: &str,
) -> AppResult<(String, i64)> {
    let now = now_unix();
    let ttl = secs(state.config.access_token_ttl);
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: user_id.to_string(),
        aud: state.config.issuer.clone(),
        exp: now + ttl,
        iat: now,
        jti: random_token(16),
        scope: scope.to_string(),
        kind: TokenKind::Session,
        sid: Some(session_id.to_string()),
        client_id: None,
        gid: None,
    };
    Ok((state.keys.sign(&claims).await?, ttl))
}

/// Checks the password and opens a session with `scope` (a space-separated subset of the
/// management scopes, or `all`; `None` means `all`).
pub async fn login(
    state: &AppState,
    username: &str,
    password: String,
    scope: Option<&str>,
) -> AppResult<SessionTokens> {
    let scopes = match scope {
        None => ScopeSet::all(),
        Some(text) => ScopeSet::parse(text)?,
    };
    let user = users::authenticate(state, username, password, None).await?;
    let now = now_unix();
    let session_id = SessionId::generate();
    let secret = random_token(32);
    let scope = scopes.to_string();
    sessions::ActiveModel {
        id: Set(session_id.as_str().to_string()),
        user_id: Set(user.id.clone()),
        scope: Set(scope.clone()),
        refresh_hash: Set(digest(&secret)),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now + secs(state.config.refresh_token_ttl)),
        revoked_at: Set(None),
    }
    .insert(&state.db)
    .await?;
    let (access_token, expires_in) =
        issue_access_token(state, &user.id, session_id.as_str(), &scope).await?;
    tracing::info!(user.id = %user.id, session.id = %session_id.as_str(), "signed in");
    Ok(SessionTokens {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: format!("{}.{secret}", session_id.as_str()),
        scope,
    })
}

async fn revoke(state: &AppState, session_id: &str) -> AppResult<()> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, now_unix().into())
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Exchanges a refresh token for a new access token and a new refresh token.
pub async fn refresh(state: &AppState, refresh_token: &str) -> AppResult<SessionTokens> {
    let (session_id, secret) = refresh_token
        .split_once('.')
        .filter(|(id, secret)| id.len() <= 32 && secret.len() <= 64)
        .ok_or(AppError::InvalidRefreshToken)?;
    let session = sessions::Entity::find_by_id(session_id)
        .one(&state.db)
        .await?
        .ok_or(AppError::InvalidRefreshToken)?;
    let now = now_unix();
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(AppError::InvalidRefreshToken);
    }
    if !digest_matches(secret, &session.refresh_hash) {
        revoke(state, &session.id).await?;
        tracing::warn!(session.id = %session.id, "refresh token reused; session revoked");
        return Err(AppError::InvalidRefreshToken);
    }
    let new_secret = random_token(32);
    let swapped = sessions::Entity::update_many()
        .col_expr(sessions::Column::RefreshHash, digest(&new_secret).into())
        .col_expr(sessions::Column::LastUsedAt, now.into())
        .col_expr(
            sessions::Column::ExpiresAt,
            (now + secs(state.config.refresh_token_ttl)).into(),
        )
        .filter(sessions::Column::Id.eq(&session.id))
        .filter(sessions::Column::RefreshHash.eq(&session.refresh_hash))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(&state.db)
        .await?;
    if swapped.rows_affected != 1 {
        // Another request rotated this token first: the same token was used twice.
        revoke(state, &session.id).await?;
        tracing::warn!(session.id = %session.id, "refresh token raced; session revoked");
        return Err(AppError::InvalidRefreshToken);
    }
    let (access_token, expires_in) =
        issue_access_token(state, &session.user_id, &session.id, &session.scope).await?;
    Ok(SessionTokens {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: format!("{}.{new_secret}", session.id),
        scope: session.scope,
    })
}

/// Ends the caller's session: its refresh token and its access tokens stop working.
pub async fn logout(state: &AppState, principal: &Principal) -> AppResult<()> {
    let me = principal.require_signed_in()?;
    revoke(state, me.session_id.as_str()).await?;
    tracing::info!(user.id = %me.user_id, session.id = %me.session_id.as_str(), "signed out");
    Ok(())
}

/// Turns an `Authorization: Bearer` token into a [`Principal`]. A first-party token is only
/// good while its session is live; the user's roles are read fresh from the database.
pub async fn principal_from_bearer(state: &AppState, token: &str) -> AppResult<Principal> {
    let issuer = &state.config.issuer;
    let Some(claims) = state
        .keys
        .verify::<AccessClaims>(token, issuer, issuer)
        .await?
    else {
        return Ok(Principal::InvalidToken);
    };
    match claims.kind {
        TokenKind::Oauth => Ok(Principal::ThirdParty),
        TokenKind::Session => {
            let Some(sid) = claims.sid else {
                return Ok(Principal::InvalidToken);
            };
            let Ok(scopes) = ScopeSet::parse(&claims.scope) else {
                return Ok(Principal::InvalidToken);
            };
            let live = sessions::Entity::find_by_id(sid.as_str())
                .one(&state.db)
                .await?
                .filter(|s| s.revoked_at.is_none() && s.user_id == claims.sub);
            let Some(session) = live else {
                return Ok(Principal::InvalidToken);
            };
            let user_id = UserId::from_trusted(claims.sub);
            let Some(user) = users::find_user(&state.db, &user_id).await? else {
                return Ok(Principal::InvalidToken);
            };
            Ok(Principal::User(UserPrincipal {
                user_id,
                roles: Role::parse_list(&user.roles)?,
                scopes,
                session_id: SessionId::from_trusted(sid),
                auth_time: session.created_at,
            }))
        }
    }
}
