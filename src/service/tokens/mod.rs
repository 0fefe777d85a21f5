//! The token endpoint's rules (RFC 6749, RFC 7636, RFC 9700, OpenID Connect Core) and
//! userinfo. Errors are protocol errors ([`OAuthError`]), rendered in the RFC 6749 §5.2 shape.
//!
//! Every token issued from one redeemed code shares a grant id (`gid`): the `grants` row that
//! held the code. Access tokens are checked against that row on use, so deleting the
//! connection, replaying the code or reusing a rotated-out refresh token ends them at once.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::DbErr;
use sha2::{Digest, Sha256, Sha512};

use crate::auth::SigningAlgorithm;
use crate::auth::jwt::{AccessClaims, IdClaims};
use crate::db::entities::grants;
use crate::domain::capabilities::{ClientAuthMethod, GrantType};
use crate::domain::ids::ClientId;
use crate::domain::secs;
use crate::error::AppError;
use crate::service::AppState;
use crate::service::apps::AppRecord;
use crate::service::keys;

mod code;
mod grant_refresh;
mod introspect;
mod live;
mod revoke;
mod service;
mod userinfo;

pub use code::exchange_code;
pub use grant_refresh::refresh;
pub use introspect::{Introspection, introspect};
pub use live::LiveTokens;
pub use revoke::revoke;
pub use service::client_credentials;
pub use userinfo::{UserInfo, userinfo};

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
    /// A `resource` the app may not name (RFC 8707 §2).
    InvalidTarget(String),
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
#[derive(Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// JWT, kind `oauth`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The ID token (for a user's sign-in; none for an app's token for itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
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

/// How a client presented itself at the token endpoint. Printing it shows the ids, never a
/// secret.
#[derive(Default)]
pub struct ClientCredentials<'a> {
    /// Id and secret from HTTP Basic, already form-decoded (RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    /// `client_id` of the form.
    pub form_id: Option<&'a str>,
    /// `client_secret` of the form.
    pub form_secret: Option<&'a str>,
}

impl std::fmt::Debug for ClientCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("basic_id", &self.basic.as_ref().map(|(id, _)| id))
            .field("form_id", &self.form_id)
            .field("form_secret_sent", &self.form_secret.is_some())
            .finish_non_exhaustive()
    }
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
        self.0.app().client_id.as_str()
    }

    /// What the app is allowed.
    fn policy(&self) -> &crate::domain::clients::ClientPolicy {
        self.0.policy()
    }

    /// Whether `uri` is a redirect URI registered for the client.
    fn registered(&self, uri: &str) -> bool {
        self.0.policy().redirect_for(uri).is_some()
    }

    /// The grant, when the app may use it; `unauthorized_client` otherwise.
    pub fn may_use(&self, grant: GrantType) -> Result<(), OAuthError> {
        if self.0.policy().allows_grant(grant) {
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
/// through the JWKS), for the grant's resource or else the issuer, and the ID token (with the
/// algorithm the app registered).
async fn issue(state: &AppState, what: Issue<'_>) -> Result<TokenResponse, OAuthError> {
    let now = state.clock.now();
    let ttl = secs(state.config.access_token_ttl);
    let issuer = &state.config.issuer;
    let grant = what.grant;
    let mut access = AccessClaims::app(
        issuer,
        &grant.user_id,
        &grant.client_id,
        &grant.id,
        what.scope,
        now,
        ttl,
    );
    // Both grants held the resource to the app's policy before spending the code or the
    // refresh token (`code::sql_rules`, `grant_refresh::rotate_in_one_statement` and their
    // checked paths), by the `client` given here.
    if let Some(resource) = &grant.resource {
        access.aud.clone_from(resource);
    }
    let id_alg = what.client.0.policy().id_token_alg;
    let ring = state.keys.ring_signing(id_alg).await?;
    let id = IdClaims {
        iss: issuer.clone(),
        sub: grant.user_id.clone(),
        aud: grant.client_id.clone(),
        exp: now + ttl,
        iat: now,
        auth_time: grant.auth_time,
        nonce: what.nonce,
        at_hash: String::new(),
        sid: grant.sid.clone(),
    };
    // Off the async workers when either signature is RSA (`keys::signing`).
    let rsa = [ring.default, id_alg].contains(&SigningAlgorithm::Rs256);
    let slowest = if rsa { SigningAlgorithm::Rs256 } else { id_alg };
    let (access_token, id_token) = keys::signing(slowest, move || {
        let access_token = ring.sign_access(&access)?;
        let id = IdClaims {
            at_hash: at_hash(id_alg, &access_token),
            ..id
        };
        let id_token = ring.sign_with(id_alg, &id)?;
        Ok((access_token, id_token))
    })
    .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        id_token: Some(id_token),
        refresh_token: what.refresh_token,
        scope: what.scope.to_string(),
    })
}

/// Ends a grant's token family (replay detected, or revoked) and announces it when it was
/// still there; whether it was.
async fn revoke_grant(state: &AppState, grant_id: &str) -> Result<bool, DbErr> {
    crate::service::changes::end_grant_announced(state, grant_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_client_credentials_never_shows_a_secret() {
        let credentials = ClientCredentials {
            basic: Some(("client-a".into(), "basic-secret".into())),
            form_id: Some("client-a"),
            form_secret: Some("form-secret"),
        };
        let printed = format!("{credentials:?}");
        assert!(!printed.contains("basic-secret") && !printed.contains("form-secret"));
        assert!(printed.contains("client-a"), "{printed}");
    }
}
