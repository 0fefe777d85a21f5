//! The app registry: every rule and authorization decision for apps, shared by REST and
//! GraphQL. Look-ups by client id go through the [`AppCache`], which holds each app with its
//! parsed policy and its live secrets (see [`crate::service::cache`]).
//!
//! A request that loses a race with another change gets the answer it would get a moment later:
//! updating, rotating or giving a logo to an app that is being deleted is a 404, never a 500.

mod secrets;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use secrecy::SecretString;

pub use secrets::{SecretInfo, list_secrets, revoke_secret, rotate_secret};
pub(crate) use secrets::{SecretRecord, authenticate_client};

use crate::auth::Principal;
use crate::db::entities::{app_logos, app_origins, app_secrets, apps, connections};
use crate::domain::Scope;
use crate::domain::apps::{App, AppCursor, AppFields, AppInput, MAX_BULK_IDS};
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::capabilities::{ClientAuthMethod, GrantType};
use crate::domain::clients::ClientPolicy;
use crate::domain::ids::{ClientId, UserId};
use crate::domain::page::{Page, split_page};
use crate::domain::scopes::Scopes;
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, Actor, Entry, Recorded};
use crate::service::cache::Cache;
use crate::service::changes::{self, Change};
use crate::service::{AppState, keys, logos};

/// Apps (or their absence) by client id; changes reach it through
/// [`changes::announce`](crate::service::changes::announce).
pub(crate) type AppCache = Cache<ClientId, Option<Arc<AppRecord>>>;

/// How long a cached app is trusted: the bound within which nodes converge should an
/// announcement be lost.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// An app as the services use it: the app (its policy parsed once, shared with every look-up,
/// so that a cached one copies nothing), and its secrets, read the first time the token
/// endpoint needs them (public look-ups never do).
pub(crate) struct AppRecord {
    app: Arc<App>,
    /// Its secrets (digests), once read.
    secrets: tokio::sync::OnceCell<Vec<SecretRecord>>,
}

impl AppRecord {
    fn new(row: apps::Model) -> Self {
        Self {
            app: Arc::new(app_of(&row)),
            secrets: tokio::sync::OnceCell::new(),
        }
    }

    /// The app's secrets, read from the database the first time.
    pub(crate) async fn secrets(&self, db: &impl ConnectionTrait) -> AppResult<&[SecretRecord]> {
        let secrets = self
            .secrets
            .get_or_try_init(|| async {
                let rows = app_secrets::Entity::find()
                    .filter(app_secrets::Column::ClientId.eq(self.app.client_id.as_str()))
                    .all(db)
                    .await?;
                Ok::<_, AppError>(rows.into_iter().map(SecretRecord::from).collect())
            })
            .await?;
        Ok(secrets)
    }

    /// The app, as transports see it too.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// What the app is allowed.
    pub fn policy(&self) -> &ClientPolicy {
        &self.app.policy
    }
}

/// The app a row holds, as transports see it.
pub(crate) fn app_of(row: &apps::Model) -> App {
    App {
        client_id: ClientId::from_trusted(row.client_id.clone()),
        name: row.name.clone(),
        url: row.url.clone(),
        logo: row.logo.clone(),
        creator_id: row.creator_id.clone().map(UserId::from_trusted),
        created_at: row.created_at,
        updated_at: row.updated_at,
        policy: Arc::new(policy_of(row)),
    }
}

/// Reads an app's stored metadata. Rows older than a column fall back to what every app was
/// before it (one redirect URI, a confidential client, both grants, every scope, RS256).
fn policy_of(row: &apps::Model) -> ClientPolicy {
    let list = |json: &str| serde_json::from_str::<Vec<String>>(json).unwrap_or_default();
    let mut redirect_uris = list(&row.redirect_uris);
    if redirect_uris.is_empty() {
        redirect_uris.push(row.redirect_uri.clone());
    }
    let defaults = ClientPolicy::default();
    let grant_types: Vec<GrantType> = row
        .grant_types
        .split_ascii_whitespace()
        .filter_map(GrantType::parse)
        .collect();
    ClientPolicy {
        redirect_uris,
        post_logout_redirect_uris: list(&row.post_logout_redirect_uris),
        auth_method: ClientAuthMethod::parse(&row.token_endpoint_auth_method)
            .unwrap_or(defaults.auth_method),
        grant_types: if grant_types.is_empty() {
            defaults.grant_types
        } else {
            grant_types
        },
        scope: Scopes::filter(&row.scope),
        id_token_alg: row
            .id_token_signed_response_alg
            .parse()
            .unwrap_or(defaults.id_token_alg),
        resources: list(&row.resources),
        backchannel_logout_uri: Some(row.backchannel_logout_uri.clone())
            .filter(|uri| !uri.is_empty()),
        backchannel_logout_session_required: row.backchannel_logout_session_required,
    }
}

/// The columns that store `fields` and `policy`.
fn set_columns(model: &mut apps::ActiveModel, fields: &AppFields, policy: &ClientPolicy) {
    let json = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    model.name = Set(fields.name.clone());
    model.url = Set(fields.url.clone());
    model.redirect_uri = Set(policy.redirect_uris.first().cloned().unwrap_or_default());
    model.redirect_uris = Set(json(&policy.redirect_uris));
    model.post_logout_redirect_uris = Set(json(&policy.post_logout_redirect_uris));
    model.token_endpoint_auth_method = Set(policy.auth_method.as_str().into());
    let grants: Vec<&str> = policy.grant_types.iter().map(|g| g.as_str()).collect();
    model.grant_types = Set(grants.join(" "));
    model.scope = Set(policy.scope.to_string());
    model.id_token_signed_response_alg = Set(policy.id_token_alg.as_str().into());
    model.resources = Set(json(&policy.resources));
    model.backchannel_logout_uri = Set(policy.backchannel_logout_uri.clone().unwrap_or_default());
    model.backchannel_logout_session_required = Set(policy.backchannel_logout_session_required);
}

/// Maps the failure of a write that referenced an app: when the app was deleted meanwhile
/// (a foreign key no longer holds), the answer is the 404 a moment later would give.
pub(crate) fn app_gone(err: DbErr) -> AppError {
    if crate::db::foreign_key_violation(&err) {
        AppError::NotFound("app")
    } else {
        err.into()
    }
}

/// Reads apps straight from the database, in one query.
async fn load_records(
    db: &impl ConnectionTrait,
    condition: Condition,
) -> AppResult<Vec<AppRecord>> {
    let rows = apps::Entity::find().filter(condition).all(db).await?;
    Ok(rows.into_iter().map(AppRecord::new).collect())
}

/// Reads one app through the cache.
pub(crate) async fn record(
    state: &AppState,
    client_id: &ClientId,
) -> AppResult<Option<Arc<AppRecord>>> {
    if let Some(cached) = state.apps.get(client_id) {
        return Ok(cached);
    }
    let ticket = state.apps.ticket();
    let found = load_records(
        &state.db,
        Condition::all().add(apps::Column::ClientId.eq(client_id.as_str())),
    )
    .await?
    .into_iter()
    .next()
    .map(Arc::new);
    state.apps.put(ticket, client_id.clone(), found.clone());
    Ok(found)
}

/// Public: one app by client id (shared with the cache: a look-up copies nothing).
pub async fn get_app(state: &AppState, client_id: &ClientId) -> AppResult<Arc<App>> {
    record(state, client_id)
        .await?
        .map(|record| record.app().clone())
        .ok_or(AppError::NotFound("app"))
}

/// Public: apps by client id, in the order asked, unknown (or malformed) ids left out, each id
/// at most once.
pub async fn apps_by_ids(state: &AppState, client_ids: &[String]) -> AppResult<Vec<Arc<App>>> {
    if client_ids.len() > MAX_BULK_IDS {
        return Err(AppError::invalid(format!(
            "ids: at most {MAX_BULK_IDS} client ids per request"
        )));
    }
    // Each well-formed id once, in the order asked; the others name no app.
    let mut seen = HashSet::new();
    let asked: Vec<ClientId> = client_ids
        .iter()
        .filter(|text| seen.insert(text.as_str()))
        .filter_map(|text| ClientId::parse(text))
        .collect();
    let mut found: Vec<Option<Arc<AppRecord>>> = Vec::with_capacity(asked.len());
    let mut missing = Vec::new();
    for (at, id) in asked.iter().enumerate() {
        match state.apps.get(id) {
            Some(cached) => found.push(cached),
            None => {
                found.push(None);
                missing.push(at);
            }
        }
    }
    if !missing.is_empty() {
        let ticket = state.apps.ticket();
        let condition = Condition::all()
            .add(apps::Column::ClientId.is_in(missing.iter().map(|&at| asked[at].as_str())));
        let mut loaded: HashMap<String, Arc<AppRecord>> = load_records(&state.db, condition)
            .await?
            .into_iter()
            .map(|record| (record.app.client_id.to_string(), Arc::new(record)))
            .collect();
        for at in missing {
            let record = loaded.remove(asked[at].as_str());
            state.apps.put(ticket, asked[at].clone(), record.clone());
            found[at] = record;
        }
    }
    Ok(found
        .into_iter()
        .flatten()
        .map(|record| record.app().clone())
        .collect())
}

/// Oauth admins: a page of apps ordered by name, then creation time (then client id), with
/// whether more follow; only `creator_id`'s when given, and only those whose name, client id
/// or URL contains `search` (any case) when given.
pub async fn list_apps(
    state: &AppState,
    principal: &Principal,
    creator_id: Option<&UserId>,
    search: Option<String>,
    page: Page<AppCursor>,
) -> AppResult<(Vec<App>, bool)> {
    principal.require_oauth_admin(Scope::AppRead)?;
    let search = crate::domain::users::check_search(search)?;
    let mut query = apps::Entity::find()
        .order_by_asc(apps::Column::Name)
        .order_by_asc(apps::Column::CreatedAt)
        .order_by_asc(apps::Column::ClientId);
    if let Some(creator) = creator_id {
        query = query.filter(apps::Column::CreatorId.eq(creator.as_str()));
    }
    if let Some(search) = search {
        query = query.filter(crate::db::contains_any(
            [
                apps::Column::Name,
                apps::Column::ClientId,
                apps::Column::Url,
            ],
            &search,
        ));
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
    Ok((rows.into_iter().map(|row| app_of(&row)).collect(), more))
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

/// Records `action` on the app `client_id` as the principal's, in `txn`.
pub(crate) async fn audit(
    txn: &impl ConnectionTrait,
    now: i64,
    principal: &Principal,
    action: AuditAction,
    client_id: &ClientId,
) -> AppResult<Recorded> {
    audit::record(
        txn,
        now,
        &Actor::of(principal),
        Entry::new(action, AuditTarget::App, client_id.as_str()),
    )
    .await
}

/// Writes the app's web origins (for CORS), replacing what was there.
async fn store_origins(
    db: &impl ConnectionTrait,
    client_id: &ClientId,
    policy: &ClientPolicy,
) -> AppResult<()> {
    app_origins::Entity::delete_many()
        .filter(app_origins::Column::ClientId.eq(client_id.as_str()))
        .exec(db)
        .await?;
    let origins: Vec<app_origins::ActiveModel> = policy
        .origins()
        .into_iter()
        .map(|origin| app_origins::ActiveModel {
            origin: Set(origin),
            client_id: Set(client_id.to_string()),
        })
        .collect();
    if !origins.is_empty() {
        app_origins::Entity::insert_many(origins)
            .exec_without_returning(db)
            .await
            .map_err(app_gone)?;
    }
    Ok(())
}

/// Makes sure the key ring can sign the app's ID tokens; a key created for them is
/// `principal`'s doing.
async fn ensure_signing_key(
    state: &AppState,
    principal: &Principal,
    policy: &ClientPolicy,
) -> AppResult<()> {
    let actor = Actor::of(principal);
    let (alg, now) = (policy.id_token_alg, state.clock.now());
    if keys::ensure_active_key(&state.db, alg, now, &actor).await? {
        // Every node, this one included, reads its keys again at its next use.
        changes::announce(state, Change::Keys).await;
    }
    Ok(())
}

/// An app together with its secret, returned once by create and rotate.
pub struct AppWithSecret {
    /// The app.
    pub app: App,
    /// The client secret in clear: shown this once, stored only as a digest. Never printed.
    /// `None` for a public client, which has none.
    pub client_secret: Option<SecretString>,
}

/// Oauth admins: registers an app and returns its secret once (a public client has none).
pub async fn create_app(
    state: &AppState,
    principal: &Principal,
    input: AppInput,
) -> AppResult<AppWithSecret> {
    let actor = principal.require_oauth_admin(Scope::AppWrite)?;
    let (fields, policy) = input.validate(None)?;
    refuse_the_issuer_as_resource(state, &policy)?;
    ensure_signing_key(state, principal, &policy).await?;
    let now = state.clock.now();
    let client_id = ClientId::generate();
    let mut model = apps::ActiveModel {
        client_id: Set(client_id.to_string()),
        logo: Set(String::new()),
        creator_id: Set(Some(actor.user_id.to_string())),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    set_columns(&mut model, &fields, &policy);
    let txn = state.db.begin().await?;
    let row = apps::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    let client_secret = if policy.is_public() {
        None
    } else {
        Some(secrets::insert_secret(&txn, &client_id, now).await?)
    };
    store_origins(&txn, &client_id, &policy).await?;
    let recorded = audit(&txn, now, principal, AuditAction::AppCreate, &client_id).await?;
    txn.commit().await?;
    recorded.log();
    changes::announce(state, Change::App(&client_id)).await;
    Ok(AppWithSecret {
        app: app_of(&row),
        client_secret,
    })
}

/// Oauth admins: changes an app. Fields not given keep their value. An app that becomes a
/// public client loses its secrets; one that becomes confidential has none until its secret is
/// rotated.
pub async fn update_app(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
    input: AppInput,
) -> AppResult<App> {
    principal.require_oauth_admin(Scope::AppWrite)?;
    let current = load_records(
        &state.db,
        Condition::all().add(apps::Column::ClientId.eq(client_id.as_str())),
    )
    .await?
    .into_iter()
    .next()
    .ok_or(AppError::NotFound("app"))?;
    let (fields, policy) = input.validate(Some(current.policy()))?;
    refuse_the_issuer_as_resource(state, &policy)?;
    ensure_signing_key(state, principal, &policy).await?;
    let now = state.clock.now();
    let mut model = apps::ActiveModel {
        updated_at: Set(now),
        ..Default::default()
    };
    set_columns(&mut model, &fields, &policy);
    let txn = state.db.begin().await?;
    let updated = apps::Entity::update_many()
        .set(model)
        .filter(apps::Column::ClientId.eq(client_id.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let row = updated
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("app"))?;
    store_origins(&txn, client_id, &policy).await?;
    if policy.is_public() {
        app_secrets::Entity::delete_many()
            .filter(app_secrets::Column::ClientId.eq(client_id.as_str()))
            .exec(&txn)
            .await?;
    }
    let recorded = audit(&txn, now, principal, AuditAction::AppUpdate, client_id).await?;
    txn.commit().await?;
    recorded.log();
    changes::announce(state, Change::App(client_id)).await;
    Ok(app_of(&row))
}

/// The issuer is the audience of every user's access token whose grant names no resource: an
/// app that named it as a resource would see all of them at introspection.
fn refuse_the_issuer_as_resource(state: &AppState, policy: &ClientPolicy) -> AppResult<()> {
    let issuer = state.config.issuer.trim_end_matches('/');
    match policy
        .resources
        .iter()
        .position(|resource| resource.trim_end_matches('/') == issuer)
    {
        Some(at) => Err(AppError::invalid(format!(
            "resources[{at}]: the issuer is not a resource an app may name"
        ))),
        None => Ok(()),
    }
}

/// Oauth admins: deletes an app with its logo, its secrets and every user's connection to it
/// (and so every grant and token issued to it), in one transaction.
pub async fn delete_app(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
) -> AppResult<()> {
    principal.require_oauth_admin(Scope::AppWrite)?;
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
    let now = state.clock.now();
    let recorded = audit(&txn, now, principal, AuditAction::AppDelete, client_id).await?;
    txn.commit().await?;
    recorded.log();
    changes::announce(state, Change::App(client_id)).await;
    changes::announce(state, Change::Tokens).await;
    Ok(())
}

/// Oauth admins: stores a new logo (PNG, JPEG or GIF bytes) and the app's preview.
pub async fn upload_logo(
    state: &AppState,
    principal: &Principal,
    client_id: &ClientId,
    bytes: Vec<u8>,
) -> AppResult<App> {
    principal.require_oauth_admin(Scope::AppWrite)?;
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
    let recorded = audit(&txn, now, principal, AuditAction::AppLogoChange, client_id).await?;
    txn.commit().await?;
    recorded.log();
    changes::announce(state, Change::App(client_id)).await;
    Ok(app_of(&row))
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
        .into_iter()
        .map(|row| {
            let app = app_of(&row);
            (app.client_id.clone(), app)
        })
        .collect())
}

/// Whether a browser at `origin` may read the answers the token endpoint and userinfo give
/// `client_id` (CORS): only from the origin of one of the app's redirect URIs.
pub async fn allows_origin(
    state: &AppState,
    client_id: &ClientId,
    origin: &str,
) -> AppResult<bool> {
    Ok(record(state, client_id)
        .await?
        .is_some_and(|record| record.policy().origins().contains(origin)))
}

/// Whether any app registers `origin` (a CORS preflight, which names no client yet).
pub async fn is_registered_origin(state: &AppState, origin: &str) -> AppResult<bool> {
    Ok(app_origins::Entity::find()
        .filter(app_origins::Column::Origin.eq(origin))
        .one(&state.db)
        .await?
        .is_some())
}
