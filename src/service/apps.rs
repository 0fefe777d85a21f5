//! The app registry: every rule and authorization decision for apps, shared by REST and
//! GraphQL. Look-ups by client id go through the [`AppCache`](super::app_cache::AppCache).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};

use crate::auth::{Principal, Scope};
use crate::db::entities::{app_logos, apps, connections};
use crate::domain::apps::{App, AppCursor, AppInput, MAX_BULK_IDS, Page, check_client_id};
use crate::domain::now_unix;
use crate::domain::secret::{digest, digest_matches, random_token};
use crate::error::{AppError, AppResult};
use crate::service::logos;
use crate::state::AppState;

/// An app together with its secret, returned once by create and rotate.
#[derive(Debug, Clone)]
pub struct AppWithSecret {
    /// The app.
    pub app: App,
    /// The client secret in clear: shown this once, stored only as a digest.
    pub client_secret: String,
}

impl From<&apps::Model> for App {
    fn from(row: &apps::Model) -> Self {
        App {
            client_id: row.client_id.clone(),
            name: row.name.clone(),
            url: row.url.clone(),
            redirect_uri: row.redirect_uri.clone(),
            logo: row.logo.clone(),
            creator_id: row.creator_id.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Reads one app row through the cache. Malformed ids are simply unknown.
pub(crate) async fn record(
    state: &AppState,
    client_id: &str,
) -> AppResult<Option<Arc<apps::Model>>> {
    if check_client_id(client_id).is_err() {
        return Ok(None);
    }
    if let Some(cached) = state.apps.get(client_id) {
        return Ok(cached);
    }
    let row = apps::Entity::find_by_id(client_id)
        .one(&state.db)
        .await?
        .map(Arc::new);
    state.apps.put(client_id, row.clone());
    Ok(row)
}

/// Public: one app by client id.
pub async fn get_app(state: &AppState, client_id: &str) -> AppResult<App> {
    record(state, client_id)
        .await?
        .map(|row| App::from(row.as_ref()))
        .ok_or(AppError::NotFound("app"))
}

/// Public: apps by client id, in the order asked, unknown ids left out, each id at most once.
pub async fn apps_by_ids(state: &AppState, client_ids: &[String]) -> AppResult<Vec<App>> {
    if client_ids.len() > MAX_BULK_IDS {
        return Err(AppError::invalid(format!(
            "ids: at most {MAX_BULK_IDS} client ids per request"
        )));
    }
    let mut found: HashMap<&str, Option<Arc<apps::Model>>> = HashMap::new();
    let mut missing = Vec::new();
    let mut asked = HashSet::new();
    for id in client_ids {
        if !asked.insert(id.as_str()) {
            continue;
        }
        if check_client_id(id).is_err() {
            found.insert(id, None);
        } else if let Some(cached) = state.apps.get(id) {
            found.insert(id, cached);
        } else {
            missing.push(id.as_str());
        }
    }
    if !missing.is_empty() {
        let rows = apps::Entity::find()
            .filter(apps::Column::ClientId.is_in(missing.iter().copied()))
            .all(&state.db)
            .await?;
        let mut rows: HashMap<String, Arc<apps::Model>> = rows
            .into_iter()
            .map(|row| (row.client_id.clone(), Arc::new(row)))
            .collect();
        for id in missing {
            let row = rows.remove(id);
            state.apps.put(id, row.clone());
            found.insert(id, row);
        }
    }
    let mut seen = HashSet::new();
    Ok(client_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .filter_map(|id| found.get(id.as_str()).cloned().flatten())
        .map(|row| App::from(row.as_ref()))
        .collect())
}

/// Oauth admins: a page of apps ordered by name, then creation time (then client id), with
/// whether more follow.
pub async fn list_apps(
    state: &AppState,
    principal: &Principal,
    creator_id: Option<&str>,
    page: Page,
) -> AppResult<(Vec<App>, bool)> {
    principal.require_oauth_admin(Scope::AppRead)?;
    let page = page.validate()?;
    let mut query = apps::Entity::find()
        .order_by_asc(apps::Column::Name)
        .order_by_asc(apps::Column::CreatedAt)
        .order_by_asc(apps::Column::ClientId);
    if let Some(creator) = creator_id {
        query = query.filter(apps::Column::CreatorId.eq(creator));
    }
    let size = match page {
        Page::Offset { amount, offset } => {
            query = query.offset(offset).limit(amount + 1);
            amount
        }
        Page::After { first, after } => {
            if let Some(cursor) = after {
                query = query.filter(after_cursor(&cursor));
            }
            query = query.limit(first + 1);
            first
        }
    };
    let mut rows = query.all(&state.db).await?;
    let more = rows.len() as u64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    Ok((rows.iter().map(App::from).collect(), more))
}

/// Rows strictly after `cursor` in (name, created_at, client_id) order.
fn after_cursor(cursor: &AppCursor) -> Condition {
    use apps::Column::{ClientId, CreatedAt, Name};
    Condition::any().add(Name.gt(cursor.name.as_str())).add(
        Condition::all().add(Name.eq(cursor.name.as_str())).add(
            Condition::any().add(CreatedAt.gt(cursor.created_at)).add(
                Condition::all()
                    .add(CreatedAt.eq(cursor.created_at))
                    .add(ClientId.gt(cursor.client_id.as_str())),
            ),
        ),
    )
}

fn audit(action: &str, actor: &str, client_id: &str) {
    tracing::info!(target: "audit", action, actor.id = actor, client.id = client_id, "app changed");
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
    let now = now_unix();
    let row = apps::ActiveModel {
        client_id: Set(random_token(16)),
        name: Set(input.name),
        url: Set(input.url),
        redirect_uri: Set(input.redirect_uri),
        logo: Set(String::new()),
        secret_hash: Set(digest(&client_secret)),
        creator_id: Set(Some(actor.user_id.as_str().to_string())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    state.apps.invalidate(&row.client_id);
    audit("app.create", actor.user_id.as_str(), &row.client_id);
    Ok(AppWithSecret {
        app: App::from(&row),
        client_secret,
    })
}

async fn existing(state: &AppState, client_id: &str) -> AppResult<apps::Model> {
    check_client_id(client_id)?;
    apps::Entity::find_by_id(client_id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("app"))
}

/// Oauth admins: changes an app's name, homepage and redirect URI.
pub async fn update_app(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
    input: AppInput,
) -> AppResult<App> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let input = input.validate()?;
    let mut row: apps::ActiveModel = existing(state, client_id).await?.into();
    row.name = Set(input.name);
    row.url = Set(input.url);
    row.redirect_uri = Set(input.redirect_uri);
    row.updated_at = Set(now_unix());
    let row = row.update(&state.db).await?;
    state.apps.invalidate(client_id);
    audit("app.update", actor.user_id.as_str(), client_id);
    Ok(App::from(&row))
}

/// Oauth admins: replaces the secret; the old one stops working at once.
pub async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
) -> AppResult<AppWithSecret> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let mut row: apps::ActiveModel = existing(state, client_id).await?.into();
    let client_secret = random_token(32);
    row.secret_hash = Set(digest(&client_secret));
    row.updated_at = Set(now_unix());
    let row = row.update(&state.db).await?;
    state.apps.invalidate(client_id);
    audit("app.rotate_secret", actor.user_id.as_str(), client_id);
    Ok(AppWithSecret {
        app: App::from(&row),
        client_secret,
    })
}

/// Oauth admins: deletes an app with its logo and every user's connection to it (and so every
/// token issued to it), in one transaction.
pub async fn delete_app(state: &AppState, principal: &Principal, client_id: &str) -> AppResult<()> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    check_client_id(client_id)?;
    let txn = state.db.begin().await?;
    connections::Entity::delete_many()
        .filter(connections::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    app_logos::Entity::delete_by_id(client_id)
        .exec(&txn)
        .await?;
    let deleted = apps::Entity::delete_by_id(client_id).exec(&txn).await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::NotFound("app"));
    }
    txn.commit().await?;
    state.apps.invalidate(client_id);
    audit("app.delete", actor.user_id.as_str(), client_id);
    Ok(())
}

/// Oauth admins: stores a new logo (PNG, JPEG or GIF bytes) and the app's preview.
pub async fn upload_logo(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
    bytes: Vec<u8>,
) -> AppResult<App> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    existing(state, client_id).await?;
    let logo = logos::process(&state.images, bytes).await?;
    let now = now_unix();
    let txn = state.db.begin().await?;
    app_logos::Entity::delete_by_id(client_id)
        .exec(&txn)
        .await?;
    app_logos::ActiveModel {
        client_id: Set(client_id.to_string()),
        png: Set(logo.png),
        etag: Set(logo.etag),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let updated = apps::Entity::update_many()
        .col_expr(apps::Column::Logo, Expr::value(logo.preview))
        .col_expr(apps::Column::UpdatedAt, Expr::value(now))
        .filter(apps::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(AppError::NotFound("app"));
    }
    txn.commit().await?;
    state.apps.invalidate(client_id);
    audit("app.upload_logo", actor.user_id.as_str(), client_id);
    get_app(state, client_id).await
}

/// Public: an app's logo PNG and ETag.
pub async fn logo(state: &AppState, client_id: &str) -> AppResult<app_logos::Model> {
    check_client_id(client_id)?;
    app_logos::Entity::find_by_id(client_id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("logo"))
}

/// Whether `secret` is the current secret of `client_id` (constant-time comparison). Unknown
/// clients and wrong secrets are indistinguishable to the caller.
pub async fn authenticate_client(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> AppResult<Option<Arc<apps::Model>>> {
    let row = record(state, client_id).await?;
    Ok(row.filter(|row| digest_matches(secret, &row.secret_hash)))
}

/// Public: apps by client id straight from the database in one query (for batch loaders,
/// whose statement count must not depend on what a cache happens to hold).
pub async fn apps_by_ids_uncached(
    state: &AppState,
    client_ids: &[String],
) -> AppResult<HashMap<String, App>> {
    let rows = apps::Entity::find()
        .filter(apps::Column::ClientId.is_in(client_ids.iter().map(String::as_str)))
        .all(&state.db)
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.client_id.clone(), App::from(row)))
        .collect())
}
