//! The token endpoint's rules (RFC 6749, RFC 7636, RFC 9700, OpenID Connect Core) and
//! userinfo. Errors are protocol errors ([`OAuthError`]), rendered in the RFC 6749 §5.2 shape.
//!
//! Every token issued from one redeemed code shares a grant id (`gid`): the `grants` row that
//! held the code. Access tokens are checked against that row on use, so deleting the
//! connection, replaying the code or reusing a rotated-out refresh token ends them at once.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::auth::SigningAlgorithm;
use crate::auth::jwt::{AccessClaims, IdClaims, TokenKind};
use crate::db::entities::{connections, grants, users};
use crate::domain::capabilities::{ClientAuthMethod, GrantType};
use crate::domain::ids::ClientId;
use crate::domain::oauth::{OidcScope, OidcScopes};
use crate::domain::secs;
use crate::error::AppError;
use crate::service::AppState;
use crate::service::apps::AppRecord;
use crate::service::refresh::{self, Families, Rotation};

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
    /// The app may not use this grant type (its `grant_types`).
    UnauthorizedClient,
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

impl From<DbErr> for OAuthError {
    fn from(err: DbErr) -> Self {
        OAuthError::Server(err.into())
    }
}

/// A successful token response.
#[derive(Clone, serde::Serialize)]
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

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
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

/// Credentials as one method of the capability table reads them.
struct Presented {
    method: ClientAuthMethod,
    client_id: String,
    secret: Option<String>,
}

impl ClientCredentials<'_> {
    /// Which method these credentials use: HTTP Basic, the form's `client_secret`, or (a public
    /// client) the form's `client_id` alone. Two at once, or a form `client_id` naming another
    /// client than Basic did, is `invalid_request`; none at all is `invalid_client`.
    fn presented(self) -> Result<Presented, OAuthError> {
        match (self.basic, self.form_secret) {
            (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(
                "use one client authentication method, not both".into(),
            )),
            (Some((id, secret)), None) => {
                if self.form_id.is_some_and(|form_id| form_id != id) {
                    return Err(OAuthError::InvalidRequest(
                        "client_id differs from the authenticated client".into(),
                    ));
                }
                Ok(Presented {
                    method: ClientAuthMethod::ClientSecretBasic,
                    client_id: id,
                    secret: Some(secret),
                })
            }
            (None, Some(secret)) => Ok(Presented {
                method: ClientAuthMethod::ClientSecretPost,
                client_id: self.form_id.ok_or(OAuthError::InvalidClient)?.into(),
                secret: Some(secret.into()),
            }),
            (None, None) => Ok(Presented {
                method: ClientAuthMethod::None,
                client_id: self.form_id.ok_or(OAuthError::InvalidClient)?.into(),
                secret: None,
            }),
        }
    }
}

/// An authenticated client: the app, with its policy, as the token endpoint needs it.
pub struct Client(Arc<AppRecord>);

impl Client {
    /// The client id.
    pub fn id(&self) -> &str {
        &self.0.row.client_id
    }

    /// Whether `uri` is a redirect URI registered for the client.
    fn registered(&self, uri: &str) -> bool {
        self.0.policy.redirect_for(uri).is_some()
    }

    /// The grant, when the app may use it; `unauthorized_client` otherwise.
    pub fn may_use(&self, grant: GrantType) -> Result<(), OAuthError> {
        if self.0.policy.allows_grant(grant) {
            Ok(())
        } else {
            Err(OAuthError::UnauthorizedClient)
        }
    }
}

/// Authenticates the client by the one method it registered. An unknown client, another
/// method, and a wrong secret are all `invalid_client`; so is a public client that sends a
/// secret.
pub async fn authenticate_client(
    state: &AppState,
    credentials: ClientCredentials<'_>,
) -> Result<Client, OAuthError> {
    let presented = credentials.presented()?;
    let client_id = ClientId::parse(&presented.client_id).ok_or(OAuthError::InvalidClient)?;
    crate::service::apps::authenticate_client(
        state,
        &client_id,
        presented.method,
        presented.secret.as_deref(),
    )
    .await?
    .map(Client)
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

/// The tokens a grant issues now.
struct Issue<'a> {
    client: &'a Client,
    grant: &'a grants::Model,
    scope: &'a str,
    nonce: Option<String>,
    refresh_token: Option<String>,
}

/// Signs the access token (with the server's default algorithm: resource servers read it
/// through the JWKS) and the ID token (with the algorithm the app registered).
async fn issue(state: &AppState, what: Issue<'_>) -> Result<TokenResponse, OAuthError> {
    let now = state.clock.now();
    let ttl = secs(state.config.access_token_ttl);
    let issuer = &state.config.issuer;
    let grant = what.grant;
    let access = AccessClaims::app(
        issuer,
        &grant.user_id,
        &grant.client_id,
        &grant.id,
        what.scope,
        now,
        ttl,
    );
    let id_alg = what.client.0.policy.id_token_alg;
    let ring = state.keys.ring_signing(id_alg).await?;
    let access_token = ring.sign(&access).map_err(AppError::internal)?;
    let id = IdClaims {
        iss: issuer.clone(),
        sub: grant.user_id.clone(),
        aud: grant.client_id.clone(),
        exp: now + ttl,
        iat: now,
        auth_time: grant.auth_time,
        nonce: what.nonce,
        at_hash: at_hash(id_alg, &access_token),
    };
    let id_token = ring.sign_with(id_alg, &id).map_err(AppError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        id_token,
        refresh_token: what.refresh_token,
        scope: what.scope.to_string(),
    })
}

/// Ends a grant's token family (replay or reuse detected, or revoked).
async fn revoke_grant(db: &DatabaseConnection, grant_id: &str) -> Result<(), DbErr> {
    grants::Entity::delete_by_id(grant_id).exec(db).await?;
    Ok(())
}

/// Marks the connection used now, to the minute: the write is skipped when the stored time is
/// less than a minute old, so a burst of refreshes does not rewrite the row each time.
async fn touch_connection(state: &AppState, grant: &grants::Model, now: i64) -> Result<(), DbErr> {
    connections::Entity::update_many()
        .col_expr(connections::Column::AccessTime, Expr::value(now))
        .filter(connections::Column::UserId.eq(&grant.user_id))
        .filter(connections::Column::ClientId.eq(&grant.client_id))
        .filter(connections::Column::AccessTime.lt(now - 60))
        .exec(&state.db)
        .await?;
    Ok(())
}

const BAD_REFRESH: &str = "the refresh token is invalid, expired or was already used";

/// The `grants` table as refresh-token families of one client.
struct GrantFamilies<'a> {
    client_id: &'a str,
    ttl: i64,
}

impl Families for GrantFamilies<'_> {
    type Row = grants::Model;

    async fn find(&self, db: &DatabaseConnection, id: &str) -> Result<Option<Self::Row>, DbErr> {
        grants::Entity::find_by_id(id).one(db).await
    }

    /// Only the client it was issued to may refresh a grant, and only a grant that was
    /// redeemed with `offline_access` ever handed out a refresh token.
    fn admits(&self, row: &Self::Row) -> bool {
        row.client_id == self.client_id
            && row.code_used_at.is_some()
            && OidcScopes::filter(&row.scope).contains(OidcScope::OfflineAccess)
    }

    fn stored_digest<'r>(&self, row: &'r Self::Row) -> Option<&'r str> {
        row.refresh_hash.as_deref()
    }

    fn expired(&self, row: &Self::Row, now: i64) -> bool {
        row.refresh_expires_at.is_none_or(|at| at <= now)
    }

    async fn swap(
        &self,
        db: &DatabaseConnection,
        row: &Self::Row,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<bool, DbErr> {
        let rotated = grants::Entity::update_many()
            .col_expr(grants::Column::RefreshHash, Expr::value(to))
            .col_expr(
                grants::Column::RefreshExpiresAt,
                Expr::value(now + self.ttl),
            )
            .filter(grants::Column::Id.eq(&row.id))
            .filter(grants::Column::RefreshHash.eq(from))
            .exec(db)
            .await?;
        Ok(rotated.rows_affected == 1)
    }

    async fn revoke(
        &self,
        db: &DatabaseConnection,
        row: &Self::Row,
        _now: i64,
    ) -> Result<(), DbErr> {
        revoke_grant(db, &row.id).await
    }
}

/// The scope of a refreshed token: the granted scope, or a narrower one asked for. A word that
/// is not a known scope, or a scope beyond the grant, is `invalid_scope`.
fn narrowed(granted: &OidcScopes, asked: Option<&str>) -> Result<OidcScopes, OAuthError> {
    let Some(asked) = asked.filter(|s| !s.trim().is_empty()) else {
        return Ok(granted.clone());
    };
    let narrowed = OidcScopes::filter(asked);
    let every_word_known = asked
        .split_ascii_whitespace()
        .all(|w| w.parse::<OidcScope>().is_ok());
    if !every_word_known || !narrowed.is_subset_of(granted) {
        return Err(OAuthError::InvalidScope(format!(
            "scope may only narrow the granted scope ({granted})"
        )));
    }
    Ok(narrowed)
}

/// `grant_type=refresh_token` for an authenticated `client`; rotates the refresh token.
pub async fn refresh(
    state: &AppState,
    client: &Client,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let families = GrantFamilies {
        client_id: client.id(),
        ttl: secs(state.config.refresh_token_ttl),
    };
    let now = state.clock.now();
    let rotation = refresh::rotate(&state.db, &families, refresh_token, now, |grant| {
        narrowed(&OidcScopes::filter(&grant.scope), scope)
    })
    .await??;
    let (grant, token, scope) = match rotation {
        Rotation::Rotated {
            row,
            token,
            checked,
        } => (row, token, checked),
        Rotation::Refused => return Err(OAuthError::InvalidGrant(BAD_REFRESH.into())),
        Rotation::Reused => {
            tracing::warn!(client.id = %client.id(), "refresh token reused; grant revoked");
            return Err(OAuthError::InvalidGrant(BAD_REFRESH.into()));
        }
    };
    touch_connection(state, &grant, now).await?;
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
    // One query: the grant must still be live for this user and app, and brings its user.
    let Some((_, Some(user))) = grants::Entity::find_by_id(gid.as_str())
        .filter(grants::Column::UserId.eq(claims.sub.as_str()))
        .filter(grants::Column::ClientId.eq(client_id.as_str()))
        .filter(grants::Column::CodeUsedAt.is_not_null())
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
    Ok(UserInfo {
        client_id: ClientId::from_trusted(client_id.clone()),
        claims: Value::Object(out),
    })
}
