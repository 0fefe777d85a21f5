//! GraphQL types and resolvers for apps: thin conversions around `service::apps`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::guards::Require;
use super::loaders::{CachedLoader, CreatorLoader};
use super::types::{User, timestamp};
use crate::domain::Scope;
use crate::domain::apps::{App as DomainApp, AppCursor, AppInput as DomainInput};
use crate::domain::ids::{ClientId, UserId};
use crate::domain::page::{Page, decode_cursor, encode_cursor};
use crate::error::AppError;
use crate::service::apps::{self, AppWithSecret as DomainWithSecret};

/// A client id argument; one that cannot be a client id names no app.
fn client_id(id: &ID) -> Result<ClientId, AppError> {
    ClientId::parse(id).ok_or(AppError::NotFound("app"))
}

/// A registered OAuth app (client).
pub struct App(pub DomainApp);

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
    /// The registered redirect URI (matched exactly).
    async fn redirect_uri(&self) -> &str {
        &self.0.redirect_uri
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

/// An app and its client secret, which is shown this once.
#[derive(SimpleObject)]
pub struct AppWithSecret {
    /// The app.
    pub app: App,
    /// The client secret. Store it now: it cannot be read again, only rotated.
    pub client_secret: String,
}

impl From<DomainWithSecret> for AppWithSecret {
    fn from(value: DomainWithSecret) -> Self {
        Self {
            app: App(value.app),
            client_secret: value.client_secret.expose_secret().to_string(),
        }
    }
}

/// Name, homepage and redirect URI of an app.
#[derive(InputObject)]
pub struct AppInput {
    /// 1 to 127 characters.
    pub name: String,
    /// Empty, or an absolute http(s) URL of at most 512 bytes.
    #[graphql(default)]
    pub url: String,
    /// Absolute, at most 512 bytes, no fragment or wildcard; https, http on a loopback host, or
    /// a private-use scheme such as `com.example.app:/cb`.
    pub redirect_uri: String,
}

impl From<AppInput> for DomainInput {
    fn from(input: AppInput) -> Self {
        Self {
            name: input.name,
            url: input.url,
            redirect_uri: input.redirect_uri,
        }
    }
}

/// App queries.
#[derive(Default)]
pub struct AppQuery;

#[Object]
impl AppQuery {
    /// One app by client id (public); null when unknown.
    async fn app(&self, ctx: &Context<'_>, client_id: ID) -> Result<Option<App>> {
        let Some(client_id) = ClientId::parse(&client_id) else {
            return Ok(None);
        };
        match apps::get_app(super::state(ctx)?, &client_id).await {
            Ok(app) => Ok(Some(App(app))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Apps by client id (public), in the order asked; unknown ids are left out. At most 256.
    async fn apps_by_ids(&self, ctx: &Context<'_>, client_ids: Vec<ID>) -> Result<Vec<App>> {
        let ids: Vec<String> = client_ids.into_iter().map(|id| id.0).collect();
        let found = apps::apps_by_ids(super::state(ctx)?, &ids).await?;
        Ok(found.into_iter().map(App).collect())
    }

    /// Every app, ordered by name then creation time, `first` (1..1024, default 50) at a time
    /// after the cursor `after` (oauth admins, `gov.user.oauth.app:read`).
    #[graphql(guard = "Require::OauthAdmin(Scope::AppRead)")]
    async fn apps(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        creator_id: Option<ID>,
    ) -> Result<Connection<String, App, EmptyFields, EmptyFields>> {
        let after = after
            .as_deref()
            .map(decode_cursor::<AppCursor>)
            .transpose()?;
        let has_previous = after.is_some();
        let page = Page::after(first, after)?;
        // A creator id that cannot be one matches no app.
        let creator = match creator_id {
            None => None,
            Some(id) => match UserId::parse(&id) {
                Some(id) => Some(id),
                None => return Ok(Connection::new(has_previous, false)),
            },
        };
        let (found, more) = apps::list_apps(
            super::state(ctx)?,
            super::principal(ctx)?,
            creator.as_ref(),
            page,
        )
        .await?;
        let wants_creators = ctx
            .look_ahead()
            .field("edges")
            .field("node")
            .field("creator")
            .exists();
        if wants_creators {
            // One batch for the whole page; each `creator` field then reads the loader's cache.
            let ids: Vec<UserId> = found.iter().filter_map(|a| a.creator_id.clone()).collect();
            ctx.data::<CachedLoader<CreatorLoader>>()?
                .load_many(ids)
                .await?;
        }
        let mut connection = Connection::new(has_previous, more);
        connection.edges.extend(
            found
                .into_iter()
                .map(|app| Edge::new(encode_cursor(&AppCursor::of(&app)), App(app))),
        );
        Ok(connection)
    }
}

/// App mutations.
#[derive(Default)]
pub struct AppMutation;

#[Object]
impl AppMutation {
    /// Registers an app; the answer holds its secret, shown this once.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn create_app(&self, ctx: &Context<'_>, input: AppInput) -> Result<AppWithSecret> {
        let created =
            apps::create_app(super::state(ctx)?, super::principal(ctx)?, input.into()).await?;
        Ok(created.into())
    }

    /// Changes an app's name, homepage and redirect URI.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn update_app(&self, ctx: &Context<'_>, client_id: ID, input: AppInput) -> Result<App> {
        let app = apps::update_app(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self::client_id(&client_id)?,
            input.into(),
        )
        .await?;
        Ok(App(app))
    }

    /// Uploads a logo (PNG, JPEG or GIF, at most 2 MiB) with the GraphQL multipart request.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn upload_app_logo(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        image: Upload,
    ) -> Result<App> {
        // Uploads are held in memory (the body was capped before it was read), so reading one
        // never blocks a worker on a file.
        let upload = image
            .value(ctx)
            .map_err(|_| AppError::invalid("image: the upload is missing"))?;
        let bytes = upload.content.to_vec();
        let app = apps::upload_logo(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self::client_id(&client_id)?,
            bytes,
        )
        .await?;
        Ok(App(app))
    }

    /// Replaces an app's secret; the old one stops working at once. The new one is shown once.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn rotate_app_secret(&self, ctx: &Context<'_>, client_id: ID) -> Result<AppWithSecret> {
        let rotated = apps::rotate_secret(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self::client_id(&client_id)?,
        )
        .await?;
        Ok(rotated.into())
    }

    /// Deletes an app, its logo and every user's connection to it. Answers the client id.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn delete_app(&self, ctx: &Context<'_>, client_id: ID) -> Result<ID> {
        apps::delete_app(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self::client_id(&client_id)?,
        )
        .await?;
        Ok(client_id)
    }
}
