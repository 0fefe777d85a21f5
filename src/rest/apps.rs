//! REST handlers for apps (paths and shapes fixed by REST.md): extract, call one service
//! function, convert back.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiQuery};
use crate::auth::extract::{AppRead, AppWrite, OauthAdminGuard};
use crate::domain::apps::{App, AppInput, Page};
use crate::error::{AppError, AppResult};
use crate::service::apps::{self, AppWithSecret};
use crate::service::logos::MAX_UPLOAD_BYTES;
use crate::state::AppState;

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
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + 64 * 1024)),
        )
        .route("/app/id/{clientid}/rotate", put(rotate))
}

/// An app as REST.md shows it.
#[derive(Debug, Serialize)]
pub struct AppBody {
    client_id: String,
    name: String,
    url: String,
    redirect_uri: String,
    logo: String,
    time: i64,
    creation_time: i64,
}

impl From<App> for AppBody {
    fn from(app: App) -> Self {
        Self {
            client_id: app.client_id,
            name: app.name,
            url: app.url,
            redirect_uri: app.redirect_uri,
            logo: app.logo,
            time: app.updated_at,
            creation_time: app.created_at,
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

#[derive(Serialize)]
struct SecretBody {
    client_id: String,
    key: String,
}

impl From<AppWithSecret> for SecretBody {
    fn from(value: AppWithSecret) -> Self {
        Self {
            client_id: value.app.client_id,
            key: value.client_secret,
        }
    }
}

#[derive(Deserialize)]
struct AppRequest {
    name: String,
    #[serde(default)]
    url: String,
    redirect_uri: String,
}

impl From<AppRequest> for AppInput {
    fn from(body: AppRequest) -> Self {
        Self {
            name: body.name,
            url: body.url,
            redirect_uri: body.redirect_uri,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    amount: Option<u64>,
    offset: Option<u64>,
    creatorid: Option<String>,
}

/// Rows per page when `amount` is not given.
const DEFAULT_AMOUNT: u64 = 32;

async fn list(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let page = Page::Offset {
        amount: query.amount.unwrap_or(DEFAULT_AMOUNT),
        offset: query.offset.unwrap_or(0),
    };
    let (found, _) = apps::list_apps(&state, &principal, query.creatorid.as_deref(), page).await?;
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

async fn get_one(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> AppResult<Json<AppBody>> {
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
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<AppRequest>,
) -> AppResult<StatusCode> {
    apps::update_app(&state, &principal, &client_id, body.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    Path(client_id): Path<String>,
) -> AppResult<Json<SecretBody>> {
    Ok(Json(
        apps::rotate_secret(&state, &principal, &client_id)
            .await?
            .into(),
    ))
}

async fn delete(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    Path(client_id): Path<String>,
) -> AppResult<StatusCode> {
    apps::delete_app(&state, &principal, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn upload_logo(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    Path(client_id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<StatusCode> {
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
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let logo = apps::logo(&state, &client_id).await?;
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
