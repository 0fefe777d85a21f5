//! REST handlers for consent and a user's connections (the REST contract, `openapi.json`): extract, call one service
//! function, convert back.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, client_id};
use crate::domain::connections::Connection;
use crate::domain::ids::ClientId;
use crate::domain::oauth::ConsentRequest;
use crate::domain::page::Page;
use crate::edge::auth::{Authorize, ConnectionRead, ConnectionWrite, UserGuard};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::connections;
use crate::service::consent;

use crate::edge::openapi::ApiErrorBody;

/// Consent and connection routes, mounted under `/api/oauth`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(list))
        .routes(routes!(get_one, delete))
}

/// A user's consent to an app.
#[derive(Deserialize, ToSchema)]
#[schema(as = ConsentInput, example = json!({"client_id": "a1b2c3", "scope": "openid profile", "nonce": "n-0S6_WzA2Mj"}))]
struct ConsentBody {
    /// The app's client id.
    client_id: String,
    /// Space-separated; must contain `openid`. Unknown scopes are dropped.
    #[serde(default)]
    scope: String,
    /// Printable, at most 255 characters; echoed in the ID token.
    nonce: Option<String>,
    /// PKCE challenge, 43..128 characters of `[A-Za-z0-9._~-]`.
    code_challenge: Option<String>,
    /// `S256` or `plain`; given with `code_challenge` or not at all.
    code_challenge_method: Option<String>,
    /// The resource server (RFC 8707) the access tokens are for: one of the app's
    /// `resources`. Without it they are for this issuer (userinfo).
    resource: Option<String>,
}

/// An authorization code: it lives one minute and works once.
#[derive(Serialize, ToSchema)]
#[schema(as = Code)]
struct CodeBody {
    code: String,
}

#[utoipa::path(post, path = "/auth/code", operation_id = "createAuthorizationCode", tag = "connections", request_body = ConsentBody,
    security(("user_bearer" = ["gov.user.oauth.authorize"])),
    responses(
        (status = 200, description = "Consent recorded", body = CodeBody),
        (status = 400, description = "Invalid scope, nonce or challenge", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Scope missing", body = ApiErrorBody),
        (status = 404, description = "No such app", body = ApiErrorBody),
        (status = 413, description = "Body too large", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
    ))]
async fn authorize(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<Authorize>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> AppResult<Json<CodeBody>> {
    let client_id = ClientId::parse(&body.client_id).ok_or(AppError::NotFound("app"))?;
    let mut request = ConsentRequest::validate(
        client_id,
        &body.scope,
        body.nonce,
        body.code_challenge,
        body.code_challenge_method,
        consent::pkce_policy(&state),
    )?;
    request.resource = body.resource;
    let code = consent::record(&state, &principal, &request, None).await?;
    Ok(Json(CodeBody { code }))
}

/// An app the user has connected.
#[derive(Serialize, ToSchema)]
#[schema(as = Connection)]
struct ConnectionBody {
    /// The app's client id.
    client_id: String,
    /// The scope granted, space-separated.
    scope: String,
    /// When the user signed in for the latest consent, Unix seconds.
    auth_time: i64,
    /// Last use, Unix seconds.
    access_time: i64,
    /// First consent, Unix seconds.
    creation_time: i64,
}

impl From<Connection> for ConnectionBody {
    fn from(c: Connection) -> Self {
        Self {
            client_id: c.client_id.to_string(),
            scope: c.scope,
            auth_time: c.auth_time,
            access_time: c.access_time,
            creation_time: c.creation_time,
        }
    }
}

/// A user's connections, most recently used first.
#[derive(Serialize, ToSchema)]
#[schema(as = Connections)]
struct ConnectionsBody {
    connections: Vec<ConnectionBody>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many, 1..1024 (default 32).
    amount: Option<u64>,
    /// How many to skip.
    offset: Option<u64>,
}

#[utoipa::path(get, path = "/connection", operation_id = "listConnections", tag = "connections", params(ListQuery),
    security(("user_bearer" = ["gov.user.oauth.connection:read"])),
    responses(
        (status = 200, description = "The caller's connections", body = ConnectionsBody),
        (status = 400, description = "Bad paging", body = ApiErrorBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Scope missing", body = ApiErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<ConnectionRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<Json<ConnectionsBody>> {
    let page = Page::offset(query.amount, query.offset)?;
    let (found, _) = connections::list(&state, &principal, page).await?;
    Ok(Json(ConnectionsBody {
        connections: found.into_iter().map(ConnectionBody::from).collect(),
    }))
}

#[utoipa::path(get, path = "/connection/id/{clientid}", operation_id = "getConnection", tag = "connections",
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.connection:read"])),
    responses(
        (status = 200, description = "The connection", body = ConnectionBody),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Scope missing", body = ApiErrorBody),
        (status = 404, description = "The caller has no such connection", body = ApiErrorBody),
    ))]
async fn get_one(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<ConnectionRead>,
    ApiPath(id): ApiPath,
) -> AppResult<Json<ConnectionBody>> {
    let client_id = client_id(&id, "connection")?;
    Ok(Json(
        connections::get(&state, &principal, &client_id)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/connection/id/{clientid}", operation_id = "deleteConnection", tag = "connections",
    params(("clientid" = String, Path, description = "The app's client id")),
    security(("user_bearer" = ["gov.user.oauth.connection:write"])),
    responses(
        (status = 204, description = "Deleted; the app's tokens for this user stop working"),
        (status = 401, description = "No valid token", body = ApiErrorBody),
        (status = 403, description = "Scope missing", body = ApiErrorBody),
        (status = 404, description = "The caller has no such connection", body = ApiErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<ConnectionWrite>,
    ApiPath(id): ApiPath,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "connection")?;
    connections::delete(&state, &principal, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
