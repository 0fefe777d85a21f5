//! The app registry: every rule and authorization decision for apps, shared by REST and
//! GraphQL. Look-ups by client id go through the [`AppCache`](super::app_cache::AppCache).
//!
//! A request that loses a race with another change gets the answer it would get a moment later:
//! updating, rotating or giving a logo to an app that is being deleted is a 404, never a 500.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    TransactionTrait,
};
use secrecy::SecretString;

use crate::auth::Principal;
use crate::db::entities::{app_logos, apps, connections};
use crate::domain::Scope;
use crate::domain::apps::{App, AppCursor, AppInput, MAX_BULK_IDS};
use crate::domain::ids::{ClientId, UserId};
use crate::domain::page::{Page, split_page};
use crate::domain::secret::{digest, digest_matches, random_token};
use crate::error::{AppError, AppResult};
use crate::service::{AppState, logos};

/// An app together with its secret, returned once by create and rotate.
pub struct AppWithSecret {
    /// The app.
    pub app: App,
    /// The client secret in clear: shown this once, stored only as a digest. Never printed.
    pub client_secret: SecretString,
}

impl From<&apps::Model> for App {
    fn from(row: &apps::Model) -> Self {
        App {
            client_id: ClientId::from_trusted(row.client_id.clone()),
            name: row.name.clone(),
            url: row.url.clone(),
            redirect_uri: row.redirect_uri.clone(),
            logo: row.logo.clone(),
            creator_id: row.creator_id.clone().map(UserId::from_trusted),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Maps the failure of a write that referenced an app: when the app was deleted meanwhile
/// (a foreign key no longer holds), the answer is the 404 a moment later would give.
pub(crate) fn app_gone(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => AppError::NotFound("app"),
        _ => err.into(),
    }
}

/// Reads one app row through the cache.
pub(crate) async fn record(
    state: &AppState,
    client_id: &ClientId,
) -> AppResult<Option<Arc<apps::Model>>> {
    if let Some(cached) = state.apps.get(client_id) {
        return Ok(cached);
    }
    let row = apps::Entity::find_by_id(client_id.as_str())
        .one(&state.db)
        .await?
        .map(Arc::new);
    state.apps.put(client_id, row.clone());
    Ok(row)
}

/// Public: one app by client id.
pub async fn get_app(state: &AppState, client_id: &ClientId) -> AppResult<App> {
    record(state, client_id)
        .await?
        .map(|row| App::from(row.as_ref()))
        .ok_or(AppError::NotFound("app"))
}

/// Public: apps by client id, in the order asked, unknown (or malformed) ids left out, each id
/// at most once.
pub async fn apps_by_ids(state: &AppState, client_ids: &[String]) -> AppResult<Vec<App>> {
    if client_ids.len() > MAX_BULK_IDS {
        return Err(AppError::invalid(format!(
            "ids: at most {MAX_BULK_IDS} client ids per request"
        )));
    }
    let mut asked = Vec::new();
    let mut seen = HashSet::new();
    for id in client_ids.iter().filter_map(|text| ClientId::parse(text)) {
        if seen.insert(id.clone()) {
            asked.push(id);
        }
    }
    let mut found: HashMap<ClientId, Option<Arc<apps::Model>>> = HashMap::new();
    let mut missing = Vec::new();
    for id in &asked {
        match state.apps.get(id) {
            Some(cached) => {
                found.insert(id.clone(), cached);
            }
            None => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        let rows = apps::Entity::find()
            .filter(apps::Column::ClientId.is_in(missing.iter().map(ClientId::as_str)))
            .all(&state.db)
            .await?;
        let mut rows: HashMap<String, Arc<apps::Model>> = rows
            .into_iter()
            .map(|row| (row.client_id.clone(), Arc::new(row)))
            .collect();
        for id in missing {
            let row = rows.remove(id.as_str());
            state.apps.put(&id, row.clone());
            found.insert(id, row);
        }
    }
    Ok(asked
        .iter()
        .filter_map(|id| found.get(id).cloned().flatten())
        .map(|row| App::from(row.as_ref()))
        .collect())
}

/// Oauth admins: a page of apps ordered by name, then creation time (then client id), with
/// whether more follow.
pub async fn list_apps(
    state: &AppState,
    principal: &Principal,
    creator_id: Option<&UserId>,
    page: Page<AppCursor>,
) -> AppResult<(Vec<App>, bool)> {
    principal.require_oauth_admin(Scope::AppRead)?;
    let mut query = apps::Entity::find()
        .order_by_asc(apps::Column::Name)
        .order_by_asc(apps::Column::CreatedAt)
        .order_by_asc(apps::Column::ClientId);
    if let Some(creator) = creator_id {
        query = query.filter(apps::Column::CreatorId.eq(creator.as_str()));
    }
    let size = page.size();
    query = match page {
        Page::Offset { offset, .. } => query.offset(offset),
        Page::After { after, .. } => match after {
            Some(cursor) => query.filter(after_cursor(&cursor)),
            None => query,
        },
    };
    let rows = query.limit(size + 1).all(&state.db).await?;
    let (rows, more) = split_page(rows, size);
    Ok((rows.iter().map(App::from).collect(), more))
}

/// Rows strictly after `cursor` in (name, created_at, client_id) order.
fn after_cursor(AppCursor(name, created_at, client_id): &AppCursor) -> Condition {
    use apps::Column::{ClientId, CreatedAt, Name};
    Condition::any().add(Name.gt(name.as_str())).add(
        Condition::all().add(Name.eq(name.as_str())).add(
            Condition::any().add(CreatedAt.gt(*created_at)).add(
                Condition::all()
                    .add(CreatedAt.eq(*created_at))
                    .add(ClientId.gt(client_id.as_str())),
            ),
        ),
    )
}

fn audit(action: &str, actor: &UserId, client_id: &ClientId) {
    tracing::info!(target: "audit", action, actor.id = %actor, client.id = %client_id, "app changed");
}

/// Oauth admins: registers an app and returns its secret once.
pub async fn create_app(
    state: &AppState,
    principal: &Principal,
    input: AppInput,
) -> AppResult<AppWithSecret> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let input = input.validate()?;
    let client_secret = random_token(32);
    let now = state.clock.now();
    let client_id = ClientId::generate();
    let row = apps::ActiveModel {
        client_id: Set(client_id.to_string()),
        name: Set(input.name),
        url: Set(input.url),
        redirect_uri: Set(input.redirect_uri),
        logo: Set(String::new()),
        secret_hash: Set(digest(&client_secret)),
        creator_id: Set(Some(actor.user_id.to_string())),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let row = apps::Entity::insert(row)
        .exec_with_returning(&state.db)
        .await?;
    state.apps.invalidate(&client_id);
    audit("app.create", &actor.user_id, &client_id);
    Ok(AppWithSecret {
        app: App::from(&row),
        client_secret: SecretString::from(client_secret),
    })
}

/// Oauth admins: changes an app's name, homepage and redirect URI.
pub async fn update_app(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
    input: AppInput,
) -> AppResult<App> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let input = input.validate()?;
    let updated = apps::Entity::update_many()
        .col_expr(apps::Column::Name, Expr::value(input.name))
        .col_expr(apps::Column::Url, Expr::value(input.url))
        .col_expr(apps::Column::RedirectUri, Expr::value(input.redirect_uri))
        .col_expr(apps::Column::UpdatedAt, Expr::value(state.clock.now()))
        .filter(apps::Column::ClientId.eq(client_id.as_str()))
        .exec_with_returning(&state.db)
        .await?;
    let row = updated
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("app"))?;
    state.apps.invalidate(client_id);
    audit("app.update", &actor.user_id, client_id);
    Ok(App::from(&row))
}

/// Oauth admins: replaces the secret; the old one stops working at once. The swap is a
/// compare-and-set, so of two rotations racing, the one that lost is told so (409) instead of
/// being handed a secret that the other one already replaced.
pub async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
) -> AppResult<AppWithSecret> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let current = apps::Entity::find_by_id(client_id.as_str())
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("app"))?;
    let client_secret = random_token(32);
    let rotated = apps::Entity::update_many()
        .col_expr(
            apps::Column::SecretHash,
            Expr::value(digest(&client_secret)),
        )
        .col_expr(apps::Column::UpdatedAt, Expr::value(state.clock.now()))
        .filter(apps::Column::ClientId.eq(client_id.as_str()))
        .filter(apps::Column::SecretHash.eq(current.secret_hash.as_str()))
        .exec_with_returning(&state.db)
        .await?;
    state.apps.invalidate(client_id);
    let Some(row) = rotated.into_iter().next() else {
        let exists = apps::Entity::find_by_id(client_id.as_str())
            .one(&state.db)
            .await?
            .is_some();
        return Err(if exists {
            AppError::Conflict(
                "the secret was rotated by another request at the same time; rotate again".into(),
            )
        } else {
            AppError::NotFound("app")
        });
    };
    audit("app.rotate_secret", &actor.user_id, client_id);
    Ok(AppWithSecret {
        app: App::from(&row),
        client_secret: SecretString::from(client_secret),
    })
}

/// Oauth admins: deletes an app with its logo and every user's connection to it (and so every
/// grant and token issued to it), in one transaction.
pub async fn delete_app(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
) -> AppResult<()> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let txn = state.db.begin().await?;
    connections::Entity::delete_many()
        .filter(connections::Column::ClientId.eq(client_id.as_str()))
        .exec(&txn)
        .await?;
    app_logos::Entity::delete_by_id(client_id.as_str())
        .exec(&txn)
        .await?;
    let deleted = apps::Entity::delete_by_id(client_id.as_str())
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::NotFound("app"));
    }
    txn.commit().await?;
    state.apps.invalidate(client_id);
    audit("app.delete", &actor.user_id, client_id);
    Ok(())
}

/// Oauth admins: stores a new logo (PNG, JPEG or GIF bytes) and the app's preview.
pub async fn upload_logo(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
    bytes: Vec<u8>,
) -> AppResult<App> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    if record(state, client_id).await?.is_none() {
        return Err(AppError::NotFound("app"));
    }
    let logo = logos::process(&state.images, bytes).await?;
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    app_logos::Entity::delete_by_id(client_id.as_str())
        .exec(&txn)
        .await?;
    app_logos::Entity::insert(app_logos::ActiveModel {
        client_id: Set(client_id.to_string()),
        png: Set(logo.png),
        etag: Set(logo.etag),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(app_gone)?;
    let updated = apps::Entity::update_many()
        .col_expr(apps::Column::Logo, Expr::value(logo.preview))
        .col_expr(apps::Column::UpdatedAt, Expr::value(now))
        .filter(apps::Column::ClientId.eq(client_id.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let row = updated
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("app"))?;
    txn.commit().await?;
    state.apps.invalidate(client_id);
    audit("app.upload_logo", &actor.user_id, client_id);
    Ok(App::from(&row))
}

/// A logo as served: PNG bytes and their ETag.
pub struct Logo {
    /// The 256 × 256 PNG.
    pub png: Vec<u8>,
    /// Quoted strong ETag.
    pub etag: String,
}

/// Public: an app's logo.
pub async fn logo(state: &AppState, client_id: &ClientId) -> AppResult<Logo> {
    let row = app_logos::Entity::find_by_id(client_id.as_str())
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("logo"))?;
    Ok(Logo {
        png: row.png,
        etag: row.etag,
    })
}

/// Whether `secret` is the current secret of `client_id` (constant-time comparison). Unknown
/// clients and wrong secrets are indistinguishable to the caller.
pub(crate) async fn authenticate_client(
    state: &AppState,
    client_id: &ClientId,
    secret: &str,
) -> AppResult<Option<Arc<apps::Model>>> {
    let row = record(state, client_id).await?;
    Ok(row.filter(|row| digest_matches(secret, &row.secret_hash)))
}

/// Public: apps by client id straight from the database in one query (for batch loaders,
/// whose statement count must not depend on what a cache happens to hold).
pub async fn apps_by_ids_uncached(
    state: &AppState,
    client_ids: &[ClientId],
) -> AppResult<HashMap<ClientId, App>> {
    let rows = apps::Entity::find()
        .filter(apps::Column::ClientId.is_in(client_ids.iter().map(ClientId::as_str)))
        .all(&state.db)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let app = App::from(row);
            (app.client_id.clone(), app)
        })
        .collect())
}
