//! GraphQL types and resolvers for apps: thin conversions around `service::apps`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, Object, Result, Upload};

pub use super::app_types::{App, AppInput, AppWithSecret};
use super::guards::Require;
use super::loaders::{CachedLoader, CreatorLoader};
use crate::domain::Scope;
use crate::domain::apps::AppCursor;
use crate::domain::ids::{ClientId, UserId};
use crate::domain::page::{Page, decode_cursor, encode_cursor};
use crate::error::AppError;
use crate::service::apps;

/// A client id argument; one that cannot be a client id names no app.
fn client_id(id: &ID) -> Result<ClientId, AppError> {
    ClientId::parse(id).ok_or(AppError::NotFound("app"))
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
    /// after the cursor `after` (oauth admins, `gov.user.oauth.app:read`). `creatorId` keeps
    /// one creator's apps; `search` (at most 128 characters) keeps the apps whose name, client
    /// id or URL contains it in any case.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppRead)")]
    async fn apps(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        creator_id: Option<ID>,
        search: Option<String>,
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
            search,
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
                .map(|app| Edge::new(encode_cursor(&AppCursor::of(&app)), App::from(app))),
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
        Ok(app.into())
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
        Ok(app.into())
    }

    /// Adds a new secret, shown once. The app's other live secrets keep working for
    /// `graceSeconds` (default 86400; 0 ends them now; at most 2592000). An app holds at most
    /// 3 live secrets.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn rotate_app_secret(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        grace_seconds: Option<i32>,
    ) -> Result<AppWithSecret> {
        let rotated = apps::rotate_secret(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self::client_id(&client_id)?,
            grace_seconds.map(i64::from),
        )
        .await?;
        Ok(rotated.into())
    }

    /// Ends one of an app's secrets now. Answers the secret's id.
    #[graphql(guard = "Require::OauthAdmin(Scope::AppWrite)")]
    async fn revoke_app_secret(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        secret_id: ID,
    ) -> Result<ID> {
        apps::revoke_secret(
            super::state(ctx)?,
            super::principal(ctx)?,
            &self::client_id(&client_id)?,
            &secret_id,
        )
        .await?;
        Ok(secret_id)
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
