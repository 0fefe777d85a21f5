//! The token endpoint's rules (RFC 6749, RFC 7636, RFC 9700, OpenID Connect Core) and
//! userinfo. Errors are protocol errors ([`OAuthError`]), rendered in the RFC 6749 §5.2 shape.
//!
//! Every token issued from one redeemed code shares a grant id (`gid`). The connection row
//! holds the live grant id; access tokens are checked against it on use, so deleting the
//! connection, replaying its code or reusing a rotated-out refresh token ends them at once.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::auth::SigningAlgorithm;
use crate::auth::jwt::{AccessClaims, IdClaims, TokenKind};
use crate::db::entities::{apps, connections, users};
use crate::domain::oauth::{OidcScope, OidcScopes};
use crate::domain::secret::{digest, digest_matches, random_token};
use crate::domain::{now_unix, secs};
use crate::error::AppError;
use crate::state::AppState;

mod code;
pub use code::exchange_code;

/// RFC 6749 §5.2 errors.
#[derive(Debug)]
pub enum OAuthError {
    /// Malformed request.
    InvalidRequest(String),
    /// Client authentication failed (unknown client and wrong secret alike).
    InvalidClient,
    /// Bad, expired, used or foreign code or refresh token.
    InvalidGrant(String),
    /// Grant type not supported.
    UnsupportedGrantType,
    /// Scope wider than granted, or unknown.
    InvalidScope(String),
    /// Something broke on our side.
    Server(AppError),
}

impl From<AppError> for OAuthError {
    fn from(err: AppError) -> Self {
        OAuthError::Server(err)
    }
}

impl From<sea_orm::DbErr> for OAuthError {
    fn from(err: sea_orm::DbErr) -> Self {
        OAuthError::Server(err.into())
    }
}

/// A successful token response.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    /// JWT, kind `oauth`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The ID token.
    pub id_token: String,
    /// When `offline_access` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scope, space-separated.
    pub scope: String,
}

/// How a client presented itself at the token endpoint.
#[derive(Debug, Default)]
pub struct ClientCredentials<'a> {
    /// Id and secret from HTTP Basic, already form-decoded (RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    /// `client_id` of the form.
    pub form_id: Option<&'a str>,
    /// `client_secret` of the form.
    pub form_secret: Option<&'a str>,
}

/// Authenticates the client by exactly one method: `client_secret_basic` or
/// `client_secret_post`. Both at once, or a form `client_id` naming another client than Basic
/// did, is `invalid_request`; an unknown client and a wrong secret are both `invalid_client`.
pub async fn authenticate_client(
    state: &AppState,
    credentials: ClientCredentials<'_>,
) -> Result<Arc<apps::Model>, OAuthError> {
    let (client_id, secret) = match (credentials.basic, credentials.form_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not both".into(),
            ));
        }
        (Some((id, secret)), None) => {
            if credentials.form_id.is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id differs from the authenticated client".into(),
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => {
            let id = credentials.form_id.ok_or(OAuthError::InvalidClient)?;
            (id.to_string(), secret.to_string())
        }
        (None, None) => return Err(OAuthError::InvalidClient),
    };
    crate::service::apps::authenticate_client(state, &client_id, &secret)
        .await?
        .ok_or(OAuthError::InvalidClient)
}

/// `at_hash`: the left half of the access token's hash, with the hash of the signing
/// algorithm (SHA-256 for RS256 and ES256, SHA-512 for Ed25519).
fn at_hash(algorithm: SigningAlgorithm, access_token: &str) -> String {
    let full = match algorithm {
        SigningAlgorithm::Rs256 | SigningAlgorithm::Es256 => Sha256::digest(access_token).to_vec(),
        SigningAlgorithm::EdDsa => Sha512::digest(access_token).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&full[..full.len() / 2])
}

struct Issue<'a> {
    user_id: &'a str,
    client_id: &'a str,
    grant_id: &'a str,
    scope: &'a str,
    auth_time: i64,
    nonce: Option<String>,
    refresh_token: Option<String>,
}

async fn issue(state: &AppState, what: Issue<'_>) -> Result<TokenResponse, OAuthError> {
    let now = now_unix();
    let ttl = secs(state.config.access_token_ttl);
    let issuer = &state.config.issuer;
    let access = AccessClaims {
        iss: issuer.clone(),
        sub: what.user_id.to_string(),
        aud: issuer.clone(),
        exp: now + ttl,
        iat: now,
        jti: random_token(16),
        scope: what.scope.to_string(),
        kind: TokenKind::Oauth,
        sid: None,
        client_id: Some(what.client_id.to_string()),
        gid: Some(what.grant_id.to_string()),
    };
    let ring = state.keys.ring().await?;
    let access_token = crate::auth::jwt::sign(&ring.active, &access).map_err(AppError::internal)?;
    let id = IdClaims {
        iss: issuer.clone(),
        sub: what.user_id.to_string(),
        aud: what.client_id.to_string(),
        exp: now + ttl,
        iat: now,
        auth_time: what.auth_time,
        nonce: what.nonce,
        at_hash: at_hash(ring.active.algorithm(), &access_token),
    };
    let id_token = crate::auth::jwt::sign(&ring.active, &id).map_err(AppError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        id_token,
        refresh_token: what.refresh_token,
        scope: what.scope.to_string(),
    })
}

/// Ends the token family of a connection (replay or reuse detected).
async fn revoke_grant(state: &AppState, user_id: &str, client_id: &str) -> Result<(), OAuthError> {
    connections::Entity::update_many()
        .col_expr(
            connections::Column::GrantId,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            connections::Column::RefreshHash,
            Expr::value(Option::<String>::None),
        )
        .filter(connections::Column::UserId.eq(user_id))
        .filter(connections::Column::ClientId.eq(client_id))
        .exec(&state.db)
        .await?;
    Ok(())
}

const BAD_REFRESH: &str = "the refresh token is invalid, expired or was already used";

/// `grant_type=refresh_token` for an authenticated `client`; rotates the refresh token.
pub async fn refresh(
    state: &AppState,
    client: &apps::Model,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let Some((grant_id, secret)) = refresh_token
        .split_once('.')
        .filter(|(g, s)| g.len() <= 32 && s.len() <= 64)
    else {
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    };
    let Some(row) = connections::Entity::find()
        .filter(connections::Column::GrantId.eq(grant_id))
        .one(&state.db)
        .await?
    else {
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    };
    if row.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    }
    let now = now_unix();
    let Some(stored) = row.refresh_hash.clone() else {
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    };
    if !OidcScopes::filter(&row.scope).contains(OidcScope::OfflineAccess) {
        // No refresh token was ever handed out for this grant.
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    }
    if !digest_matches(secret, &stored) {
        revoke_grant(state, &row.user_id, &row.client_id).await?;
        tracing::warn!(user.id = %row.user_id, client.id = %row.client_id, "refresh token reused; tokens revoked");
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    }
    if row.refresh_expires_at.is_none_or(|at| at <= now) {
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    }
    let granted = OidcScopes::filter(&row.scope);
    let scope = match scope.filter(|s| !s.trim().is_empty()) {
        None => granted.clone(),
        Some(asked) => {
            let narrowed = OidcScopes::filter(asked);
            let every_word_known = asked
                .split_ascii_whitespace()
                .all(|w| w.parse::<OidcScope>().is_ok());
            if !every_word_known || !narrowed.is_subset_of(&granted) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope may only narrow the granted scope ({granted})"
                )));
            }
            narrowed
        }
    };
    let new_secret = random_token(32);
    let rotated = connections::Entity::update_many()
        .col_expr(
            connections::Column::RefreshHash,
            Expr::value(digest(&new_secret)),
        )
        .col_expr(
            connections::Column::RefreshExpiresAt,
            Expr::value(now + secs(state.config.refresh_token_ttl)),
        )
        .col_expr(connections::Column::AccessTime, Expr::value(now))
        .filter(connections::Column::GrantId.eq(grant_id))
        .filter(connections::Column::RefreshHash.eq(&stored))
        .exec(&state.db)
        .await?;
    if rotated.rows_affected != 1 {
        revoke_grant(state, &row.user_id, &row.client_id).await?;
        return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
    }
    issue(
        state,
        Issue {
            user_id: &row.user_id,
            client_id: &row.client_id,
            grant_id,
            scope: &scope.to_string(),
            auth_time: row.auth_time,
            nonce: None,
            refresh_token: Some(format!("{grant_id}.{new_secret}")),
        },
    )
    .await
}

/// Userinfo claims for an app's access token: `sub` always, `profile` and `email` claims by
/// scope. A token whose grant was revoked (connection deleted, code replayed, refresh reused)
/// is invalid.
pub async fn userinfo(state: &AppState, token: &str) -> Result<Value, AppError> {
    let issuer = &state.config.issuer;
    let claims = state
        .keys
        .verify::<AccessClaims>(token, issuer, issuer)
        .await?
        .filter(|c| c.kind == TokenKind::Oauth)
        .ok_or(AppError::InvalidToken)?;
    let (Some(client_id), Some(gid)) = (&claims.client_id, &claims.gid) else {
        return Err(AppError::InvalidToken);
    };
    // One query: the connection must still hold this token's grant, and brings its user.
    let Some((_, Some(user))) =
        connections::Entity::find_by_id((claims.sub.clone(), client_id.clone()))
            .filter(connections::Column::GrantId.eq(gid.as_str()))
            .find_also_related(users::Entity)
            .one(&state.db)
            .await?
    else {
        return Err(AppError::InvalidToken);
    };
    let scopes = OidcScopes::filter(&claims.scope);
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    if scopes.contains(OidcScope::Profile) {
        out.insert("name".into(), json!(user.name));
        out.insert("preferred_username".into(), json!(user.username));
        out.insert("updated_at".into(), json!(user.updated_at));
    }
    if scopes.contains(OidcScope::Email) {
        out.insert("email".into(), json!(user.email));
        // Addresses are set by administrators, not proven by the user.
        out.insert("email_verified".into(), json!(false));
    }
    Ok(Value::Object(out))
}
