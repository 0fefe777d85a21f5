//! The REST compatibility transport under `/api/oauth` (paths fixed by the REST contract, described by
//! the committed `openapi.json`), with the `{"code","message"}` error envelope, plus the health
//! probes.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod apps;
mod connections;
pub mod extract;

use crate::edge::input::RefuseControlCharacters;
use crate::edge::openapi;
use crate::error::AppError;
use crate::service::AppState;

/// Routes mounted under `/api/oauth`, with their OpenAPI description (the document itself is
/// served from an [`axum::Extension`] that [`crate::app`] adds once the whole description is known).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let management = OpenApiRouter::new()
        .merge(apps::routes())
        .merge(connections::routes());
    let management = openapi::refuses_control_characters(management, "ApiErrorBody");
    // One `layer` call per router (see `crate::app`), outermost first.
    let guards = (
        DefaultBodyLimit::max(extract::JSON_BODY_LIMIT),
        RefuseControlCharacters(|message| AppError::invalid(message).into_response()),
    );
    let management = match crate::edge::cors::management(&state.config) {
        Some(cors) => management.layer((cors, guards)),
        None => management.layer(guards),
    };
    OpenApiRouter::new()
        .merge(management)
        .merge(crate::oidc::routes(state))
        .routes(routes!(openapi::serve))
        .fallback(|| async { AppError::NotFound("route") })
}

/// `/healthz` and `/readyz`.
pub fn health_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "Alive", content_type = "text/plain", body = String, example = "ok")))]
async fn live() -> &'static str {
    "ok"
}

/// Ready when the database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", content_type = "text/plain", body = String, example = "ready"),
        (status = 503, description = "The database does not answer", content_type = "text/plain", body = String),
    ))]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
