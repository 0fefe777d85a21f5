//! OpenID Connect protocol endpoints. For now: the JSON Web Key Set.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};

use crate::error::AppResult;
use crate::state::AppState;

/// Protocol routes, mounted under `/api/oauth`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/jwks", get(jwks))
}

/// `GET /api/oauth/jwks`: every published public signing key with its `kid`.
async fn jwks(State(state): State<AppState>) -> AppResult<Response> {
    let mut response = Json(state.keys.jwks().await?).into_response();
    // Relying parties may cache the set briefly; a rotated key is published at least one
    // access-token lifetime before the old one disappears.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
