//! The REST compatibility transport under `/api/oauth` (paths fixed by REST.md, described by
//! the committed `openapi.json`), with the `{"code","message"}` error envelope, plus the health
//! probes.

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};

mod apps;
mod connections;
pub mod extract;

use crate::edge::input::{control_in_uri, refusal};
use crate::error::AppError;
use crate::service::AppState;

/// Routes mounted under `/api/oauth`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut management = Router::new()
        .merge(apps::routes())
        .merge(connections::routes())
        .layer(middleware::from_fn(refuse_control_characters))
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT));
    if let Some(cors) = crate::edge::cors::management(&state.config) {
        management = management.layer(cors);
    }
    Router::new()
        .merge(management)
        .merge(crate::oidc::routes(state))
        .fallback(|| async { AppError::NotFound("route") })
}

/// A URL with a control character gets a 400 naming the field.
async fn refuse_control_characters(request: Request, next: Next) -> Response {
    match control_in_uri(request.uri()) {
        Some(field) => AppError::invalid(refusal(&field)).into_response(),
        None => next.run(request).await,
    }
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
