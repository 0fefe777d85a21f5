//! GraphQL types and resolvers for consent and a user's connections.

use async_graphql::connection::{Connection as Relay, Edge, EmptyFields};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::apps::App;
use super::guards::Require;
use super::loaders::{AppLoader, CachedLoader};
use super::types::timestamp;
use crate::domain::Scope;
use crate::domain::connections::{Connection as DomainConnection, ConnectionCursor};
use crate::domain::ids::ClientId;
use crate::domain::oauth::ConsentRequest;
use crate::domain::page::{Page, decode_cursor, encode_cursor};
use crate::error::AppError;
use crate::service::{connections, consent};

/// An app the signed-in user has granted access to.
pub struct ConnectedApp(pub DomainConnection);

#[Object]
impl ConnectedApp {
    /// The app's client id.
    async fn client_id(&self) -> ID {
        ID(self.0.client_id.to_string())
    }
    /// The granted scopes, space-separated.
    async fn scope(&self) -> &str {
        &self.0.scope
    }
    /// When the user last signed in to consent.
    async fn auth_time(&self) -> DateTime<Utc> {
        timestamp(self.0.auth_time)
    }
    /// When a token was last issued to the app for this user.
    async fn access_time(&self) -> DateTime<Utc> {
        timestamp(self.0.access_time)
    }
    /// When access was first granted.
    async fn created_at(&self) -> DateTime<Utc> {
        timestamp(self.0.creation_time)
    }
    /// The app (null if it was deleted meanwhile); loaded in one query per page.
    async fn app(&self, ctx: &Context<'_>) -> Result<Option<App>> {
        let loader = ctx.data::<CachedLoader<AppLoader>>()?;
        Ok(loader
            .load_one(self.0.client_id.clone())
            .await?
            .map(App::from))
    }
}

/// The signed-in user's connections (fields of `viewer`).
#[derive(Default)]
pub struct ViewerConnections;

impl ViewerConnections {
    /// Most recently used first, `first` (1..1024, default 50) at a time.
    pub async fn connections(
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Relay<String, ConnectedApp, EmptyFields, EmptyFields>> {
        let cursor = after
            .as_deref()
            .map(decode_cursor::<ConnectionCursor>)
            .transpose()?;
        let has_previous = cursor.is_some();
        let (found, more) = connections::list(
            super::state(ctx)?,
            super::principal(ctx)?,
            Page::after(first, cursor)?,
        )
        .await?;
        let wants_apps = ctx
            .look_ahead()
            .field("edges")
            .field("node")
            .field("app")
            .exists();
        if wants_apps {
            // One batch for the whole page; each `app` field then reads the loader's cache.
            let ids: Vec<ClientId> = found.iter().map(|c| c.client_id.clone()).collect();
            ctx.data::<CachedLoader<AppLoader>>()?
                .load_many(ids)
                .await?;
        }
        let mut page = Relay::new(has_previous, more);
        page.edges.extend(
            found
                .into_iter()
                .map(|c| Edge::new(encode_cursor(&ConnectionCursor::of(&c)), ConnectedApp(c))),
        );
        Ok(page)
    }

    /// The connection to one app; null when there is none.
    pub async fn connection(ctx: &Context<'_>, client_id: ID) -> Result<Option<ConnectedApp>> {
        let Some(client_id) = ClientId::parse(&client_id) else {
            return Ok(None);
        };
        match connections::get(super::state(ctx)?, super::principal(ctx)?, &client_id).await {
            Ok(found) => Ok(Some(ConnectedApp(found))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

/// A consent: the app and the OpenID request parameters it sent.
#[derive(InputObject)]
pub struct AuthorizeInput {
    /// The app.
    pub client_id: ID,
    /// Space-separated scopes; must contain `openid`. Unknown scopes are dropped.
    pub scope: String,
    /// The relying party's nonce (printable, at most 255).
    pub nonce: Option<String>,
    /// PKCE challenge (43..128 characters).
    pub code_challenge: Option<String>,
    /// `S256` (or `plain` when enabled).
    pub code_challenge_method: Option<String>,
    /// The resource server (RFC 8707) the access tokens are for: one of the app's
    /// `resources`. Without it they are for this issuer (userinfo).
    pub resource: Option<String>,
}

/// An authorization code for the relying party: valid one minute, once.
#[derive(SimpleObject)]
pub struct AuthorizationCode {
    /// The code.
    pub code: String,
}

/// Consent and connection mutations.
#[derive(Default)]
pub struct ConnectionMutation;

#[Object]
impl ConnectionMutation {
    /// Grants an app the requested scopes and returns an authorization code
    /// (`gov.user.oauth.authorize`).
    #[graphql(guard = "Require::User(Scope::Authorize)")]
    async fn authorize(
        &self,
        ctx: &Context<'_>,
        input: AuthorizeInput,
    ) -> Result<AuthorizationCode> {
        let state = super::state(ctx)?;
        let client_id = ClientId::parse(&input.client_id).ok_or(AppError::NotFound("app"))?;
        let mut request = ConsentRequest::validate(
            client_id,
            &input.scope,
            input.nonce,
            input.code_challenge,
            input.code_challenge_method,
            consent::pkce_policy(state),
        )?;
        request.resource = input.resource;
        let code = consent::record(state, super::principal(ctx)?, &request, None).await?;
        Ok(AuthorizationCode { code })
    }

    /// Revokes the signed-in user's connection to an app; its tokens stop working at once
    /// (`gov.user.oauth.connection:write`). Answers the client id.
    #[graphql(guard = "Require::User(Scope::ConnectionWrite)")]
    async fn delete_connection(&self, ctx: &Context<'_>, client_id: ID) -> Result<ID> {
        let id = ClientId::parse(&client_id).ok_or(AppError::NotFound("connection"))?;
        connections::delete(super::state(ctx)?, super::principal(ctx)?, &id).await?;
        Ok(client_id)
    }
}

/// The signed-in user, with their connected apps.
pub struct Viewer(pub crate::domain::users::User);

#[Object]
impl Viewer {
    /// Random, URL-safe id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Unique login name.
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// Contact address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Display name; may be empty.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Roles held.
    async fn roles(&self) -> Vec<super::types::Role> {
        self.0.roles.iter().copied().map(Into::into).collect()
    }
    /// When the user was created.
    async fn created_at(&self) -> DateTime<Utc> {
        timestamp(self.0.created_at)
    }
    /// When the user last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        timestamp(self.0.updated_at)
    }
    /// The apps this user granted, most recently used first
    /// (`gov.user.oauth.connection:read`).
    #[graphql(guard = "Require::User(Scope::ConnectionRead)")]
    async fn connections(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Relay<String, ConnectedApp, EmptyFields, EmptyFields>> {
        ViewerConnections::connections(ctx, first, after).await
    }
    /// This user's live sessions (first-party and browser), newest first; `current` marks the
    /// one this request comes through.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<super::types::UserSession>> {
        let found =
            crate::service::users::own_sessions(super::state(ctx)?, super::principal(ctx)?).await?;
        Ok(found.into_iter().map(Into::into).collect())
    }
    /// This user's connection to one app; null when there is none
    /// (`gov.user.oauth.connection:read`).
    #[graphql(guard = "Require::User(Scope::ConnectionRead)")]
    async fn connection(&self, ctx: &Context<'_>, client_id: ID) -> Result<Option<ConnectedApp>> {
        ViewerConnections::connection(ctx, client_id).await
    }
}
