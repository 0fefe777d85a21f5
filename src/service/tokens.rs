//! The token endpoint's rules (RFC 6749, RFC 7636, RFC 9700, OpenID Connect Core) and
//! userinfo. Errors are protocol errors ([`OAuthError`]), rendered in the RFC 6749 §5.2 shape.
//!
//! Every token issued from one redeemed code shares a grant id (`gid`). The connection row
//! holds the live grant id; access tokens are checked against it on use, so deleting the
//! connection, replaying its code or reusing a rotated-out refresh token ends them at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::auth::SigningAlgorithm;
use crate::auth::jwt::{AccessClaims, IdClaims, TokenKind};
use crate::db::entities::{apps, connections, users};
use crate::domain::oauth::{OidcScope, OidcScopes, PkceMethod};
use crate::domain::secret::{digest, digest_matches, random_token};
use crate::domain::{now_unix, secs};
use crate::error::AppError;
use crate::service::consent::CODE_TTL_SECS;
use crate::state::AppState;

/// RFC 6749 §5.2 errors.
#[derive(Debug)]
pub enum OAuthError {
    /// Malformed request.
    InvalidRequest(String),
    /// Client authentication failed; `basic` says whether HTTP Basic was used.
    InvalidClient { basic: bool },
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

const BAD_CODE: &str = "the authorization code is invalid, expired or was already used";

/// `grant_type=authorization_code` for an authenticated `client`.
///
/// A good request is redeemed by one statement: an `UPDATE … RETURNING` whose conditions are
/// every rule (the code's digest, its client, unused, unexpired, the PKCE verifier answering the
/// stored challenge). When it matches nothing, [`redeem_checked`] reads the row to say exactly
/// what was wrong, and to revoke the grant when a used code is replayed.
pub async fn exchange_code(
    state: &AppState,
    client: &apps::Model,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if code.is_empty() || code.len() > 128 {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    let code_hash = digest(code);
    let well_formed = redirect_uri == Some(client.redirect_uri.as_str())
        && code_verifier.is_none_or(crate::domain::oauth::is_pkce_string);
    if well_formed {
        let now = now_unix();
        use connections::Column as C;
        let pkce = match code_verifier {
            None => Condition::all().add(C::CodeChallenge.is_null()),
            Some(verifier) => Condition::any()
                .add(
                    Condition::all()
                        .add(C::CodeChallengeMethod.eq(PkceMethod::S256.as_str()))
                        .add(C::CodeChallenge.eq(PkceMethod::S256.challenge_of(verifier))),
                )
                .add(
                    Condition::all()
                        .add(C::CodeChallengeMethod.eq(PkceMethod::Plain.as_str()))
                        .add(C::CodeChallenge.eq(verifier)),
                ),
        };
        let redemption = Redemption::new(state, now);
        let redeemed = redemption
            .update()
            .filter(C::CodeHash.eq(&code_hash))
            .filter(C::ClientId.eq(&client.client_id))
            .filter(C::CodeUsedAt.is_null())
            .filter(C::CodeTime.gte(now - CODE_TTL_SECS))
            .filter(pkce)
            .exec_with_returning(&state.db)
            .await?;
        if let Some(row) = redeemed.into_iter().next() {
            return redemption.issue(state, row).await;
        }
    }
    redeem_checked(state, client, &code_hash, redirect_uri, code_verifier).await
}

/// The new token family a redemption starts.
struct Redemption {
    now: i64,
    grant_id: String,
    /// The refresh token's secret, when `offline_access` was granted (known after the update).
    refresh_secret: String,
    refresh_expires_at: i64,
}

impl Redemption {
    fn new(state: &AppState, now: i64) -> Self {
        Self {
            now,
            grant_id: random_token(16),
            refresh_secret: random_token(32),
            refresh_expires_at: now + secs(state.config.refresh_token_ttl),
        }
    }

    /// Marks the code used and stores the new family. The refresh digest is stored for every
    /// redemption, so the statement does not depend on the row; the secret itself is handed
    /// out only when the granted scope holds `offline_access`, and the refresh grant refuses
    /// every other grant before looking at the digest.
    fn update(&self) -> sea_orm::UpdateMany<connections::Entity> {
        use connections::Column as C;
        connections::Entity::update_many()
            .col_expr(C::CodeUsedAt, Expr::value(self.now))
            .col_expr(C::GrantId, Expr::value(self.grant_id.clone()))
            .col_expr(C::RefreshHash, Expr::value(digest(&self.refresh_secret)))
            .col_expr(C::RefreshExpiresAt, Expr::value(self.refresh_expires_at))
            .col_expr(C::AccessTime, Expr::value(self.now))
    }

    async fn issue(
        self,
        state: &AppState,
        row: connections::Model,
    ) -> Result<TokenResponse, OAuthError> {
        let offline = OidcScopes::filter(&row.scope).contains(OidcScope::OfflineAccess);
        issue(
            state,
            Issue {
                user_id: &row.user_id,
                client_id: &row.client_id,
                grant_id: &self.grant_id,
                scope: &row.scope,
                auth_time: row.auth_time,
                nonce: row.nonce.clone(),
                refresh_token: offline
                    .then(|| format!("{}.{}", self.grant_id, self.refresh_secret)),
            },
        )
        .await
    }
}

/// The redemption path that reads the row first: precise errors, and replay detection.
async fn redeem_checked(
    state: &AppState,
    client: &apps::Model,
    code_hash: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let Some(row) = connections::Entity::find()
        .filter(connections::Column::CodeHash.eq(code_hash))
        .one(&state.db)
        .await?
    else {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    };
    if row.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    if row.code_used_at.is_some() {
        revoke_grant(state, &row.user_id, &row.client_id).await?;
        tracing::warn!(user.id = %row.user_id, client.id = %row.client_id, "authorization code replayed; tokens revoked");
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    let now = now_unix();
    if row.code_time.is_none_or(|at| at + CODE_TTL_SECS < now) {
        return Err(OAuthError::InvalidGrant(BAD_CODE.into()));
    }
    if redirect_uri != Some(client.redirect_uri.as_str()) {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri must equal the registered redirect URI".into(),
        ));
    }
    match (
        &row.code_challenge,
        row.code_challenge_method
            .as_deref()
            .and_then(PkceMethod::parse),
        code_verifier,
    ) {
        (Some(challenge), Some(method), Some(verifier)) => {
            if !crate::domain::oauth::is_pkce_string(verifier)
                || !method.verify(challenge, verifier)
            {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge".into(),
                ));
            }
        }
        (Some(_), _, None) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier is required: a code_challenge was given".into(),
            ));
        }
        (None, _, Some(_)) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier given, but no code_challenge was sent with the authorization request".into(),
            ));
        }
        (Some(_), None, Some(_)) => {
            return Err(OAuthError::Server(AppError::internal(anyhow::anyhow!(
                "stored PKCE method unreadable"
            ))));
        }
        (None, _, None) => {}
    }
    // Every rule holds, yet the one-statement redemption matched nothing: another request
    // redeemed the code in between, and if this update finds it used too, this is a replay.
    let redemption = Redemption::new(state, now);
    let redeemed = redemption
        .update()
        .filter(connections::Column::UserId.eq(&row.user_id))
        .filter(connections::Column::ClientId.eq(&row.client_id))
        .filter(connections::Column::CodeHash.eq(code_hash))
        .filter(connections::Column::CodeUsedAt.is_null())
        .exec_with_returning(&state.db)
        .await?;
    match redeemed.into_iter().next() {
        Some(row) => redemption.issue(state, row).await,
        None => {
            revoke_grant(state, &row.user_id, &row.client_id).await?;
            Err(OAuthError::InvalidGrant(BAD_CODE.into()))
        }
    }
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
    let live = connections::Entity::find_by_id((claims.sub.clone(), client_id.clone()))
        .one(&state.db)
        .await?
        .is_some_and(|row| row.grant_id.as_deref() == Some(gid.as_str()));
    if !live {
        return Err(AppError::InvalidToken);
    }
    let user = users::Entity::find_by_id(claims.sub.as_str())
        .one(&state.db)
        .await?
        .ok_or(AppError::InvalidToken)?;
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
