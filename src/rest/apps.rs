//! REST handlers for apps (paths and shapes fixed by the REST contract, `openapi.json`): extract, call one service
//! function, convert back.

use axum::Json;
use axum::extract::DefaultBodyLimit as BodyLimit;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use secrecy::ExposeSecret;

use super::extract::{ApiJson, ApiPath, ApiQuery, MaybeJson, client_id};
use crate::domain::apps::{App, AppInput};
use crate::domain::capabilities::GrantType;
use crate::domain::ids::UserId;
use crate::domain::page::Page;
use crate::domain::scopes::Scopes;
use crate::edge::auth::{AppRead, AppWrite, OauthAdminGuard};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::apps::{self, AppWithSecret};
use crate::service::logos::{MAX_UPLOAD_BYTES, UPLOAD_BODY_LIMIT};

use crate::edge::openapi::ApiErrorBody;

/// App routes, mounted under `/api/oauth`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(by_ids))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(logo, upload_logo).layer(BodyLimit::max(UPLOAD_BODY_LIMIT)))
        .routes(routes!(rotate))
        .routes(routes!(secrets))
        .routes(routes!(revoke_secret))
}

// It borrows the app it shows: a look-up served from the app cache copies nothing on its way to
// the response.
/// An app as the REST contract (`openapi.json`) shows it: the seed's fields, then the client metadata (RFC 7591 names).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = App)]
pub struct AppBody<'a> {
    /// The app's client id.
    client_id: &'a str,
    /// Display name, 1..127 characters.
    name: &'a str,
    /// The app's home page, or empty.
    url: &'a str,
    /// The first registered redirect URI.
    redirect_uri: &'a str,
    /// A `data:` URL of a tiny thumbnail of the logo, empty when none.
    logo: &'a str,
    /// Last change, Unix seconds.
    time: i64,
    /// Creation, Unix seconds.
    creation_time: i64,
    /// Every registered redirect URI.
    #[schema(value_type = Vec<String>)]
    redirect_uris: &'a [String],
    /// Where RP-initiated logout may send the browser.
    #[schema(value_type = Vec<String>)]
    post_logout_redirect_uris: &'a [String],
    /// `client_secret_basic`, `client_secret_post` or `none` (a public app).
    #[schema(value_type = String, example = "client_secret_basic")]
    token_endpoint_auth_method: &'static str,
    /// Grants the app may use: `authorization_code`, `refresh_token`, `client_credentials`.
    #[schema(value_type = Vec<String>)]
    #[serde(serialize_with = "grant_names")]
    grant_types: &'a [GrantType],
    /// The most the app may be granted, space-separated.
    #[schema(value_type = String)]
    #[serde(serialize_with = "as_text")]
    scope: &'a Scopes,
    /// `RS256`, `ES256` or `EdDSA`.
    #[schema(value_type = String, example = "RS256")]
    id_token_signed_response_alg: &'static str,
    /// Resource servers (RFC 8707) the app may ask access tokens for.
    #[schema(value_type = Vec<String>)]
    resources: &'a [String],
    /// Where idgraph POSTs back-channel logout tokens; null when none is registered.
    #[schema(value_type = Option<String>)]
    backchannel_logout_uri: Option<&'a str>,
    /// Whether every logout token the app receives must carry `sid`.
    backchannel_logout_session_required: bool,
}

fn grant_names<S: Serializer>(grants: &&[GrantType], to: S) -> Result<S::Ok, S::Error> {
    to.collect_seq(grants.iter().map(|grant| grant.as_str()))
}

fn as_text<S: Serializer>(scope: &&Scopes, to: S) -> Result<S::Ok, S::Error> {
    to.collect_str(scope)
}

impl<'a> From<&'a App> for AppBody<'a> {
    fn from(app: &'a App) -> Self {
        let policy = &*app.policy;
        Self {
            client_id: app.client_id.as_str(),
            name: &app.name,
            url: &app.url,
            redirect_uri: app.redirect_uri(),
            logo: &app.logo,
            time: app.updated_at,
            creation_time: app.created_at,
            redirect_uris: &policy.redirect_uris,
            post_logout_redirect_uris: &policy.post_logout_redirect_uris,
            token_endpoint_auth_method: policy.auth_method.as_str(),
            grant_types: &policy.grant_types,
            scope: &policy.scope,
            id_token_signed_response_alg: policy.id_token_alg.as_str(),
            resources: &policy.resources,
            backchannel_logout_uri: policy.backchannel_logout_uri.as_deref(),
            backchannel_logout_session_required: policy.backchannel_logout_session_required,
        }
    }
}

/// A list of apps.
#[derive(Serialize, ToSchema)]
#[schema(as = Apps)]
struct AppsBody<'a> {
    apps: Vec<AppBody<'a>>,
}

impl AppsBody<'_> {
    /// The JSON answer listing `apps`.
    fn of<'a>(apps: impl IntoIterator<Item = &'a App>) -> Response {
        let apps: Vec<AppBody> = apps.into_iter().map(AppBody::from).collect();
        let capacity = apps.iter().map(AppBody::capacity).sum();
        json_answer(&AppsBody { apps }, capacity)
    }
}

/// About the size of one app's JSON with a redirect URI or two, without its logo.
const APP_JSON_BYTES: usize = 640;

impl AppBody<'_> {
    /// About how long its JSON is: a buffer of this size rarely grows.
    fn capacity(&self) -> usize {
        APP_JSON_BYTES + self.logo.len()
    }
}

/// `value` as a JSON answer, written into one buffer of `capacity` bytes: axum's `Json` starts
/// at 128 bytes and grows, copying, three times for a single app.
fn json_answer<T: Serialize>(value: &T, capacity: usize) -> Response {
    let mut buffer = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buffer, value) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], buffer).into_response(),
        Err(err) => AppError::internal(err).into_response(),
    }
}

/// A new secret, shown once: `{"client_id","key"}`; a public app's create answers
/// `{"client_id"}` alone.
#[derive(Serialize, ToSchema)]
#[schema(as = NewSecret)]
struct SecretBody {
    client_id: String,
    /// The secret, shown this once; absent for a public app.
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
#[derive(Deserialize, ToSchema)]
#[schema(as = AppInput, example = json!({"name": "Example", "url": "https://app.example", "redirect_uri": "https://app.example/callback"}))]
struct AppRequest {
    /// Display name, 1..127 characters.
    name: String,
    /// The app's home page: empty, or an absolute http(s) URL of at most 512 bytes.
    #[serde(default)]
    url: String,
    /// One redirect URI (the seed's field); `redirect_uris` takes several.
    redirect_uri: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    scope: Option<String>,
    id_token_signed_response_alg: Option<String>,
    resources: Option<Vec<String>>,
    /// https, or http on a loopback host; an empty string removes it.
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: Option<bool>,
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
            backchannel_logout_uri: body.backchannel_logout_uri,
            backchannel_logout_session_required: body.backchannel_logout_session_required,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many, 1..1024 (default 32).
    amount: Option<u64>,
    /// How many to skip.
    offset: Option<u64>,
    /// Only apps created by this user.
    creatorid: Option<String>,
}

#[utoipa::path(get, path = "/app", operation_id = "listApps", tag = "apps", params(ListQuery),
    security(("user_bearer" = ["gov.user.oauth.app:read"])),
    responses(
        (status = 200, description = "Apps ordered by name, then creation time", body = AppsBody),
        (status = 400, description = "Bad paging", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
    ))]
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
            None => return Ok(AppsBody::of([])),
        },
    };
    let (found, _) = apps::list_apps(&state, &principal, creator.as_ref(), None, page).await?;
    Ok(AppsBody::of(&found))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct IdsQuery {
    /// Comma-separated client ids.
    #[serde(default)]
    ids: String,
}

#[utoipa::path(get, path = "/app/ids", operation_id = "getAppsByIds", tag = "apps", params(IdsQuery),
    responses(
        (status = 200, description = "The apps found; unknown ids are left out", body = AppsBody),
        (status = 400, description = "Too many ids", body = ApiErrorBody),
    ))]
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
    let found = apps::apps_by_ids(&state, &ids).await?;
    Ok(AppsBody::of(found.iter().map(|app| &**app)))
}

#[utoipa::path(get, path = "/app/id/{clientid}", operation_id = "getApp", tag = "apps",
    params(("clientid" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, description = "The app", body = AppBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
    ))]
async fn get_one(State(state): State<AppState>, ApiPath(id): ApiPath) -> AppResult<Response> {
    let client_id = client_id(&id, "app")?;
    let app = apps::get_app(&state, &client_id).await?;
    let body = AppBody::from(&*app);
    Ok(json_answer(&body, body.capacity()))
}

#[utoipa::path(post, path = "/app", operation_id = "createApp", tag = "apps", request_body = AppRequest,
    security(("user_bearer" = ["gov.user.oauth.app:write"])),
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = SecretBody),
        (status = 400, description = "Invalid metadata", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 413, description = "Body too large", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiJson(body): ApiJson<AppRequest>,
) -> AppResult<impl IntoResponse> {
    let created = apps::create_app(&state, &principal, body.into()).await?;
    Ok((StatusCode::CREATED, Json(SecretBody::from(created))))
}

#[utoipa::path(put, path = "/app/id/{clientid}", operation_id = "updateApp", tag = "apps", request_body = AppRequest,
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.app:write"])),
    responses(
        (status = 204, description = "Updated"),
        (status = 400, description = "Invalid metadata", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
        (status = 413, description = "Body too large", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    ))]
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
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RotateInput)]
struct RotateRequest {
    /// How long the previous secret keeps working, 0..2592000 seconds (default 86400).
    grace_seconds: Option<i64>,
}

#[utoipa::path(put, path = "/app/id/{clientid}/rotate", operation_id = "rotateAppSecret", tag = "apps",
    request_body(content = Option<RotateRequest>, description = "Optional; an empty body keeps the default grace"),
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.app:write"])),
    responses(
        (status = 200, description = "The new secret, shown this once", body = SecretBody),
        (status = 400, description = "Bad grace period, or a public app", body = ApiErrorBody),
        (status = 409, description = "The app already holds the most live secrets allowed", body = ApiErrorBody),
        (status = 413, description = "Body too large", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    ))]
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
#[derive(Serialize, ToSchema)]
#[schema(as = SecretInfo)]
struct SecretInfoBody {
    id: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

/// An app's secrets, never the secrets themselves.
#[derive(Serialize, ToSchema)]
#[schema(as = Secrets)]
struct SecretsBody {
    secrets: Vec<SecretInfoBody>,
}

#[utoipa::path(get, path = "/app/id/{clientid}/secrets", operation_id = "listAppSecrets", tag = "apps",
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.app:read"])),
    responses(
        (status = 200, description = "The app's secrets, never a secret itself", body = SecretsBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
    ))]
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

#[utoipa::path(delete, path = "/app/id/{clientid}/secrets/{secretid}", operation_id = "revokeAppSecret", tag = "apps",
    params(
        ("clientid" = String, Path, description = "The app's client id"),
        ("secretid" = String, Path, description = "The secret's id, as listed"),
    ),
    security(("user_bearer" = ["gov.user.oauth.app:write"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app or secret", body = ApiErrorBody),
    ))]
async fn revoke_secret(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath((id, secret_id)): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "app")?;
    apps::revoke_secret(&state, &principal, &client_id, &secret_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/app/id/{clientid}", operation_id = "deleteApp", tag = "apps",
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.app:write"])),
    responses(
        (status = 204, description = "Deleted, with its grants and tokens"),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    OauthAdminGuard(principal, ..): OauthAdminGuard<AppWrite>,
    ApiPath(id): ApiPath,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "app")?;
    apps::delete_app(&state, &principal, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/app/id/{clientid}/image", operation_id = "putAppLogo", tag = "apps",
    request_body(content = LogoUpload, content_type = "multipart/form-data"),
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.app:write"])),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Not a png, jpeg or gif, or no `image` field", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Not an oauth administrator, or scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
        (status = 413, description = "Image too large", body = ApiErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ApiErrorBody),
    ))]
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

/// The multipart body of a logo upload.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the form for the document; the handler reads it as a stream
struct LogoUpload {
    /// A png, jpeg or gif image.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
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

#[utoipa::path(get, path = "/app/id/{clientid}/image", operation_id = "getAppLogo", tag = "apps",
    params(
        ("clientid" = String, Path, description = "The app's client id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag seen before"),
    ),
    responses(
        (status = 200, description = "The logo", content_type = "image/png", body = Vec<u8>,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 404, description = "No such app, or no logo", body = ApiErrorBody),
    ))]
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
