//! REST handlers for apps (paths and shapes fixed by REST.md): extract, call one service
//! function, convert back.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use secrecy::ExposeSecret;

use super::extract::{ApiJson, ApiPath, ApiQuery, client_id};
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
            client_id: app.client_id.to_string(),
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
            client_id: value.app.client_id.to_string(),
            key: value.client_secret.expose_secret().to_string(),
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

async fn rotate(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath(id): ApiPath,
) -> AppResult<Json<SecretBody>> {
    let client_id = client_id(&id, "app")?;
    Ok(Json(
        apps::rotate_secret(&state, &principal, &client_id)
            .await?
            .into(),
    ))
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
