//! The REST compatibility transport under `/api/oauth` (paths fixed by REST.md), with the
//! `{"code","message"}` error envelope, plus the health probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Router, routing::get};

mod apps;
mod connections;
pub mod extract;

use crate::error::AppError;
use crate::state::AppState;

/// Routes mounted under `/api/oauth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(apps::routes())
        .merge(connections::routes())
        .merge(crate::oidc::routes())
        .fallback(|| async { AppError::NotFound("route") })
}

/// `/healthz` and `/readyz`.
pub fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

/// Ready when the database answers.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
