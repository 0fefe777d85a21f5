//! REST handlers for consent and a user's connections (REST.md): extract, call one service
//! function, convert back.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiQuery};
use crate::auth::extract::{Authorize, ConnectionRead, ConnectionWrite, UserGuard};
use crate::domain::connections::Connection;
use crate::error::AppResult;
use crate::service::connections::{self, ConnectionPage};
use crate::service::consent::{self, ConsentInput};
use crate::state::AppState;

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
    let input = ConsentInput {
        client_id: body.client_id,
        scope: body.scope,
        nonce: body.nonce,
        code_challenge: body.code_challenge,
        code_challenge_method: body.code_challenge_method,
    };
    let code = consent::authorize(&state, &principal, input).await?;
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
            client_id: c.client_id,
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
    let page = ConnectionPage::Offset(query.amount.unwrap_or(32), query.offset.unwrap_or(0));
    let (found, _) = connections::list(&state, &principal, page).await?;
    Ok(Json(ConnectionsBody {
        connections: found.into_iter().map(ConnectionBody::from).collect(),
    }))
}

async fn get_one(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<ConnectionRead>,
    Path(client_id): Path<String>,
) -> AppResult<Json<ConnectionBody>> {
    Ok(Json(
        connections::get(&state, &principal, &client_id)
            .await?
            .into(),
    ))
}

async fn delete(
    State(state): State<AppState>,
    UserGuard(principal, ..): UserGuard<ConnectionWrite>,
    Path(client_id): Path<String>,
) -> AppResult<StatusCode> {
    connections::delete(&state, &principal, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
