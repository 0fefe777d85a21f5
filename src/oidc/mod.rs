//! OpenID Connect protocol endpoints: discovery, JWKS, token and userinfo.

pub mod capabilities;
pub mod token;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::extract::bearer_token;
use crate::error::{AppError, AppResult};
use crate::service::tokens;
use crate::state::AppState;

/// Protocol routes, mounted under `/api/oauth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jwks", get(jwks))
        .route("/openid-configuration", get(discovery))
        .route(
            "/token",
            post(token::token).layer(DefaultBodyLimit::max(token::MAX_BODY)),
        )
        .route("/userinfo", get(userinfo).post(userinfo))
}

/// `/.well-known/openid-configuration`, mounted at the root.
pub fn well_known() -> Router<AppState> {
    Router::new().route("/.well-known/openid-configuration", get(discovery))
}

/// `GET /api/oauth/jwks`: every published public signing key with its `kid`.
async fn jwks(State(state): State<AppState>) -> AppResult<Response> {
    let mut response = Json(state.keys.jwks().await?).into_response();
    // Relying parties may cache the set briefly; a superseded key stays published at least one
    // access-token lifetime after rotation.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// The discovery document, generated from the capability table.
async fn discovery(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let ring = state.keys.ring().await?;
    let algorithms: Vec<_> = ring.verifying.values().map(|key| key.algorithm).collect();
    Ok(Json(capabilities::discovery(&state.config, &algorithms)))
}

/// `GET`/`POST /api/oauth/userinfo` with an app's access token.
async fn userinfo(State(state): State<AppState>, parts: Parts) -> AppResult<Response> {
    let token = match bearer_token(&parts) {
        None => return Err(AppError::Unauthenticated),
        Some(Err(())) => return Err(AppError::InvalidToken),
        Some(Ok(token)) => token,
    };
    let claims = tokens::userinfo(&state, token).await?;
    let mut response = Json(claims).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
