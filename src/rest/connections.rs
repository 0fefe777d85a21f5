//! REST handlers for consent and a user's connections (REST.md): extract, call one service
//! function, convert back.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

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

/// Consent and connection routes, mounted under `/api/oauth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/code", post(authorize))
        .route("/connection", get(list))
        .route("/connection/id/{clientid}", get(get_one).delete(delete))
}

#[derive(Deserialize)]
struct ConsentBody {
    client_id: String,
    #[serde(default)]
    scope: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

#[derive(Serialize)]
struct CodeBody {
    code: String,
}

async fn authorize(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<Authorize>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> AppResult<Json<CodeBody>> {
    let client_id = ClientId::parse(&body.client_id).ok_or(AppError::NotFound("app"))?;
    let request = ConsentRequest::validate(
        client_id,
        &body.scope,
        body.nonce,
        body.code_challenge,
        body.code_challenge_method,
        consent::pkce_policy(&state),
    )?;
    let code = consent::record(&state, &principal, &request, None).await?;
    Ok(Json(CodeBody { code }))
}

/// A connection as REST.md shows it.
#[derive(Serialize)]
struct ConnectionBody {
    client_id: String,
    scope: String,
    auth_time: i64,
    access_time: i64,
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

#[derive(Serialize)]
struct ConnectionsBody {
    connections: Vec<ConnectionBody>,
}

#[derive(Deserialize)]
struct ListQuery {
    amount: Option<u64>,
    offset: Option<u64>,
}

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

async fn delete(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<ConnectionWrite>,
    ApiPath(id): ApiPath,
) -> AppResult<StatusCode> {
    let client_id = client_id(&id, "connection")?;
    connections::delete(&state, &principal, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
