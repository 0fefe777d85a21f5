//! REST handlers for apps (paths and shapes fixed by REST.md): extract, call one service
//! function, convert back.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use secrecy::ExposeSecret;

use super::extract::{ApiJson, ApiPath, ApiQuery, MaybeJson, client_id};
use crate::domain::apps::{App, AppInput};
use crate::domain::ids::UserId;
use crate::domain::page::Page;
use crate::edge::auth::{AppRead, AppWrite, OauthAdminGuard};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::apps::{self, AppWithSecret};
use crate::service::logos::{MAX_UPLOAD_BYTES, UPLOAD_BODY_LIMIT};

/// App routes, mounted under `/api/oauth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app", get(list).post(create))
        .route("/app/ids", get(by_ids))
        .route(
            "/app/id/{clientid}",
            get(get_one).put(update).delete(delete),
        )
        .route(
            "/app/id/{clientid}/image",
            get(logo)
                .put(upload_logo)
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/app/id/{clientid}/rotate", put(rotate))
        .route("/app/id/{clientid}/secrets", get(secrets))
        .route(
            "/app/id/{clientid}/secrets/{secretid}",
            axum::routing::delete(revoke_secret),
        )
}

/// An app as REST.md shows it: the seed's fields, then the client metadata (RFC 7591 names).
#[derive(Debug, Serialize)]
pub struct AppBody {
    client_id: String,
    name: String,
    url: String,
    redirect_uri: String,
    logo: String,
    time: i64,
    creation_time: i64,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    token_endpoint_auth_method: &'static str,
    grant_types: Vec<&'static str>,
    scope: String,
    id_token_signed_response_alg: &'static str,
    resources: Vec<String>,
}

impl From<App> for AppBody {
    fn from(app: App) -> Self {
        Self {
            client_id: app.client_id.to_string(),
            redirect_uri: app.redirect_uri().to_string(),
            name: app.name,
            url: app.url,
            logo: app.logo,
            time: app.updated_at,
            creation_time: app.created_at,
            token_endpoint_auth_method: app.policy.auth_method.as_str(),
            grant_types: app.policy.grant_types.iter().map(|g| g.as_str()).collect(),
            scope: app.policy.scope.to_string(),
            id_token_signed_response_alg: app.policy.id_token_alg.as_str(),
            redirect_uris: app.policy.redirect_uris.clone(),
            post_logout_redirect_uris: app.policy.post_logout_redirect_uris.clone(),
            resources: app.policy.resources.clone(),
        }
    }
}

#[derive(Serialize)]
struct AppsBody {
    apps: Vec<AppBody>,
}

impl AppsBody {
    fn of(apps: Vec<App>) -> Json<Self> {
        Json(Self {
            apps: apps.into_iter().map(AppBody::from).collect(),
        })
    }
}

/// A new secret, shown once: `{"client_id","key"}`; a public app's create answers
/// `{"client_id"}` alone.
#[derive(Serialize)]
struct SecretBody {
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<AppWithSecret> for SecretBody {
    fn from(value: AppWithSecret) -> Self {
        Self {
            client_id: value.app.client_id.to_string(),
            key: value
                .client_secret
                .map(|secret| secret.expose_secret().to_string()),
        }
    }
}

/// The body of create and update: the seed's three fields, then the metadata, all optional
/// but `name`.
#[derive(Deserialize)]
struct AppRequest {
    name: String,
    #[serde(default)]
    url: String,
    redirect_uri: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    scope: Option<String>,
    id_token_signed_response_alg: Option<String>,
    resources: Option<Vec<String>>,
}

impl From<AppRequest> for AppInput {
    fn from(body: AppRequest) -> Self {
        Self {
            name: body.name,
            url: body.url,
            redirect_uri: body.redirect_uri,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            token_endpoint_auth_method: body.token_endpoint_auth_method,
            grant_types: body.grant_types,
            scope: body.scope,
            id_token_signed_response_alg: body.id_token_signed_response_alg,
            resources: body.resources,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    amount: Option<u64>,
    offset: Option<u64>,
    creatorid: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let page = Page::offset(query.amount, query.offset)?;
    // A creator id that cannot be one matches no app.
    let creator = match query.creatorid.as_deref() {
        None => None,
        Some(text) => match UserId::parse(text) {
            Some(id) => Some(id),
            None => return Ok(AppsBody::of(Vec::new())),
        },
    };
    let (found, _) = apps::list_apps(&state, &principal, creator.as_ref(), page).await?;
    Ok(AppsBody::of(found))
}

#[derive(Deserialize)]
struct IdsQuery {
    #[serde(default)]
    ids: String,
}

async fn by_ids(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<IdsQuery>,
) -> AppResult<impl IntoResponse> {
    let ids: Vec<String> = query
        .ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    Ok(AppsBody::of(apps::apps_by_ids(&state, &ids).await?))
}

async fn get_one(State(state): State<AppState>, ApiPath(id): ApiPath) -> AppResult<Json<AppBody>> {
    let client_id = client_id(&id, "app")?;
    Ok(Json(apps::get_app(&state, &client_id).await?.into()))
}

async fn create(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiJson(body): ApiJson<AppRequest>,
) -> AppResult<impl IntoResponse> {
    let created = apps::create_app(&state, &principal, body.into()).await?;
    Ok((StatusCode::CREATED, Json(SecretBody::from(created))))
}

async fn update(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<AppRequest>,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "app")?;
    apps::update_app(&state, &principal, &client_id, body.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The optional body of a rotation.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    grace_seconds: Option<i64>,
}

async fn rotate(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath(id): ApiPath,
    MaybeJson(body): MaybeJson<RotateRequest>,
) -> AppResult<Json<SecretBody>> {
    let client_id = client_id(&id, "app")?;
    let grace = body.and_then(|body| body.grace_seconds);
    Ok(Json(
        apps::rotate_secret(&state, &principal, &client_id, grace)
            .await?
            .into(),
    ))
}

/// A secret as administrators see it: never the secret itself.
#[derive(Serialize)]
struct SecretInfoBody {
    id: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

#[derive(Serialize)]
struct SecretsBody {
    secrets: Vec<SecretInfoBody>,
}

async fn secrets(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppRead>,
    ApiPath(id): ApiPath,
) -> AppResult<Json<SecretsBody>> {
    let client_id = client_id(&id, "app")?;
    let found = apps::list_secrets(&state, &principal, &client_id).await?;
    Ok(Json(SecretsBody {
        secrets: found
            .into_iter()
            .map(|s| SecretInfoBody {
                id: s.id,
                created_at: s.created_at,
                expires_at: s.expires_at,
                last_used_at: s.last_used_at,
            })
            .collect(),
    }))
}

async fn revoke_secret(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath((id, secret_id)): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "app")?;
    apps::revoke_secret(&state, &principal, &client_id, &secret_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath(id): ApiPath,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "app")?;
    apps::delete_app(&state, &principal, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn upload_logo(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath(id): ApiPath,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "app")?;
    let mut multipart = multipart.map_err(|_| {
        AppError::UnsupportedMediaType(
            "send the image as multipart/form-data, field 'image'".into(),
        )
    })?;
    let too_large = |err: axum::extract::multipart::MultipartError| {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                limit: MAX_UPLOAD_BYTES,
            }
        } else {
            AppError::invalid(format!(
                "image: malformed multipart body: {}",
                err.body_text()
            ))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(too_large)? {
        if field.name() == Some("image") {
            let bytes = field.bytes().await.map_err(too_large)?;
            apps::upload_logo(&state, &principal, &client_id, bytes.to_vec()).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    Err(AppError::invalid(
        "image: the multipart field 'image' is required",
    ))
}

/// Whether an `If-None-Match` header matches `etag` (RFC 9110 §13.1.2, weak comparison).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

async fn logo(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    headers: HeaderMap,
) -> AppResult<Response> {
    let logo = apps::logo(&state, &client_id(&id, "logo")?).await?;
    let etag = HeaderValue::from_str(&logo.etag).map_err(AppError::internal)?;
    let common = [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if none_match(&headers, &logo.etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
        logo.png,
    )
        .into_response())
}
