//! GraphQL types of apps, written by hand: secrets and their digests never reach the schema.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::guards::Require;
use super::loaders::{CachedLoader, CreatorLoader};
use super::types::{User, timestamp};
use crate::domain::Scope;
use crate::domain::apps::{App as DomainApp, AppInput as DomainInput};
use crate::service::apps::{self, AppWithSecret as DomainWithSecret, SecretInfo};

/// A registered OAuth app (client); shared with the app cache when it came from a look-up.
pub struct App(pub Arc<DomainApp>);

impl From<DomainApp> for App {
    fn from(app: DomainApp) -> Self {
        Self(Arc::new(app))
    }
}

#[Object]
impl App {
    /// The public client id.
    async fn client_id(&self) -> ID {
        ID(self.0.client_id.to_string())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Homepage; may be empty.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The first registered redirect URI (the first of `redirectUris`).
    async fn redirect_uri(&self) -> &str {
        self.0.redirect_uri()
    }
    /// Every registered redirect URI, each matched exactly (a public client's loopback IP URIs
    /// match any port).
    async fn redirect_uris(&self) -> &[String] {
        &self.0.policy.redirect_uris
    }
    /// Where RP-initiated logout may send the browser back to.
    async fn post_logout_redirect_uris(&self) -> &[String] {
        &self.0.policy.post_logout_redirect_uris
    }
    /// How the app authenticates at the token endpoint; `NONE` is a public client.
    async fn token_endpoint_auth_method(&self) -> TokenEndpointAuthMethod {
        self.0.policy.auth_method.into()
    }
    /// The grants the app may use.
    async fn grant_types(&self) -> Vec<GrantType> {
        self.0
            .policy
            .grant_types
            .iter()
            .map(|&g| g.into())
            .collect()
    }
    /// Resource indicators (RFC 8707) its tokens may name as their audience: its
    /// `CLIENT_CREDENTIALS` tokens, and its users' when their authorization names one.
    async fn resources(&self) -> &[String] {
        &self.0.policy.resources
    }
    /// Where idgraph POSTs back-channel logout tokens when a session the app took part in ends;
    /// null when none is registered.
    async fn backchannel_logout_uri(&self) -> Option<&str> {
        self.0.policy.backchannel_logout_uri.as_deref()
    }
    /// Whether every logout token the app receives carries `sid`.
    async fn backchannel_logout_session_required(&self) -> bool {
        self.0.policy.backchannel_logout_session_required
    }
    /// The scopes the app may ever receive, space-separated: OpenID scopes (none listed means
    /// every one) and API scopes (`resource:action`, only those listed).
    async fn scope(&self) -> String {
        self.0.policy.scope.to_string()
    }
    /// The algorithm of the app's ID tokens.
    async fn id_token_signed_response_alg(&self) -> SigningAlgorithm {
        self.0.policy.id_token_alg.into()
    }
    /// The app's live secrets, newest first: ids and times, never a secret (oauth admins,
    /// `gov.user.oauth.app:read`).
    #[graphql(guard = "Require::OauthAdmin(Scope::AppRead)")]
    async fn secrets(&self, ctx: &Context<'_>) -> Result<Vec<AppSecret>> {
        let found = apps::list_secrets(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self.0.client_id,
        )
        .await?;
        Ok(found.into_iter().map(AppSecret).collect())
    }
    /// A tiny preview of the logo as a `data:` URL; empty when there is none.
    async fn logo(&self) -> &str {
        &self.0.logo
    }
    /// Where the 256 × 256 PNG logo is served; null when there is none.
    async fn logo_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if self.0.logo.is_empty() {
            return Ok(None);
        }
        let issuer = &super::state(ctx)?.config.issuer;
        Ok(Some(format!(
            "{issuer}/api/oauth/app/id/{}/image",
            self.0.client_id
        )))
    }
    /// Who registered the app (oauth admins only); null when that user no longer exists.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        super::principal(ctx)?.require_oauth_admin(Scope::AppRead)?;
        let Some(creator_id) = &self.0.creator_id else {
            return Ok(None);
        };
        let loader = ctx.data::<CachedLoader<CreatorLoader>>()?;
        Ok(loader.load_one(creator_id.clone()).await?.map(User::from))
    }
    /// When the app last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        timestamp(self.0.updated_at)
    }
    /// When the app was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        timestamp(self.0.created_at)
    }
}

/// One of an app's secrets, as administrators see it: never the secret itself.
pub struct AppSecret(pub SecretInfo);

#[Object]
impl AppSecret {
    /// The secret's id (revoke it by this).
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// When it was made.
    async fn created_at(&self) -> DateTime<Utc> {
        timestamp(self.0.created_at)
    }
    /// When it stops working; null while it is the newest.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at.map(timestamp)
    }
    /// When the token endpoint last accepted it, to the minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at.map(timestamp)
    }
}

/// An app and its client secret, which is shown this once.
#[derive(SimpleObject)]
pub struct AppWithSecret {
    /// The app.
    pub app: App,
    /// The client secret. Store it now: it cannot be read again, only rotated. Null for a
    /// public client, which has none.
    pub client_secret: Option<String>,
}

impl From<DomainWithSecret> for AppWithSecret {
    fn from(value: DomainWithSecret) -> Self {
        Self {
            app: value.app.into(),
            client_secret: value
                .client_secret
                .map(|secret| secret.expose_secret().to_string()),
        }
    }
}

/// How an app authenticates at the token endpoint.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::capabilities::ClientAuthMethod")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic (the default).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form.
    ClientSecretPost,
    /// A public client: no secret; PKCE with S256 required.
    None,
}

/// A grant an app may use.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::capabilities::GrantType")]
pub enum GrantType {
    /// The code flow.
    AuthorizationCode,
    /// Refresh tokens (with `offline_access`).
    RefreshToken,
    /// An app's token for itself (confidential apps only).
    ClientCredentials,
}

/// A JWS algorithm.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::capabilities::SigningAlgorithm")]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the default; every OpenID Connect library knows it).
    #[graphql(name = "RS256")]
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    #[graphql(name = "ES256")]
    Es256,
    /// Ed25519.
    #[graphql(name = "EdDSA")]
    EdDsa,
}

/// An app's fields. On update, a field left out keeps its value; `redirectUri` reads and
/// writes the first of `redirectUris`.
#[derive(InputObject)]
pub struct AppInput {
    /// 1 to 127 characters.
    pub name: String,
    /// Empty, or an absolute http(s) URL of at most 512 bytes.
    #[graphql(default)]
    pub url: String,
    /// The first redirect URI: absolute, at most 512 bytes, written exactly as the URL it stands
    /// for, no fragment, wildcard, space or control character; https, http on a loopback host,
    /// or a private-use scheme such as `com.example.app:/cb`.
    pub redirect_uri: Option<String>,
    /// Every redirect URI, 1 to 10, same rules.
    pub redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may return to, 0 to 10, same rules.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// How the app authenticates at the token endpoint (default `CLIENT_SECRET_BASIC`).
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// The grants the app may use (default `AUTHORIZATION_CODE` and `REFRESH_TOKEN`).
    pub grant_types: Option<Vec<GrantType>>,
    /// The scopes the app may ever receive, space-separated; empty means every scope.
    pub scope: Option<String>,
    /// The algorithm of the app's ID tokens (default `RS256`).
    pub id_token_signed_response_alg: Option<SigningAlgorithm>,
    /// Resource indicators (absolute URIs, RFC 8707) the app's tokens may name as their
    /// audience (its own `CLIENT_CREDENTIALS` tokens, and its users'), at most 10.
    pub resources: Option<Vec<String>>,
    /// Where back-channel logout tokens go: https, or http on a loopback host; an empty string
    /// removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Whether every logout token the app receives must carry `sid` (default false).
    pub backchannel_logout_session_required: Option<bool>,
}

impl From<AppInput> for DomainInput {
    fn from(input: AppInput) -> Self {
        use crate::domain::capabilities as table;
        Self {
            name: input.name,
            url: input.url,
            redirect_uri: input.redirect_uri,
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            token_endpoint_auth_method: input
                .token_endpoint_auth_method
                .map(|m| table::ClientAuthMethod::from(m).as_str().to_string()),
            grant_types: input.grant_types.map(|grants| {
                grants
                    .into_iter()
                    .map(|g| table::GrantType::from(g).as_str().to_string())
                    .collect()
            }),
            scope: input.scope,
            id_token_signed_response_alg: input
                .id_token_signed_response_alg
                .map(|a| table::SigningAlgorithm::from(a).as_str().to_string()),
            resources: input.resources,
            backchannel_logout_uri: input.backchannel_logout_uri,
            backchannel_logout_session_required: input.backchannel_logout_session_required,
        }
    }
}
