//! idgraph: a GraphQL-first OpenID Connect app registry, consent and token service, with a REST
//! compatibility shim. [`app`] builds the whole HTTP application; `main.rs` and the tests both
//! use it.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod edge;
pub mod error;
pub mod graphql;
pub mod metrics;
pub mod oidc;
pub mod rest;
pub mod service;
pub mod telemetry;
pub mod web;

use std::time::Duration;

use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::graphql::{Limits, Schemas};
use crate::service::AppState;

/// Builds the router: `/graphql`, `/api/oauth/*`, the hosted pages under `/oauth/*`, `/healthz`,
/// `/readyz`, with request ids, request spans, a request timeout, and a last line of defence: a
/// handler that panics (a bug) answers 500 with the error envelope, and the panic is logged,
/// instead of dropping the connection.
pub fn app(state: AppState) -> Router {
    let limits = Limits {
        max_depth: state.config.graphql_max_depth,
        max_complexity: state.config.graphql_max_complexity,
    };
    let request_id = HeaderName::from_static("x-request-id");
    let (described, document) = OpenApiRouter::new()
        .nest("/api/oauth", rest::routes(&state))
        .merge(rest::health_routes())
        .merge(oidc::well_known())
        .split_for_parts();
    let schemas = Schemas::new(limits);
    let trusted_proxies = state.config.trusted_proxies.clone();
    // Every middleware in one `layer` call, outermost first: axum wraps each route in a boxed
    // service per `layer` call and clones the whole chain of boxes on every request: eight calls
    // cost the trivial route about a fifth of its throughput (`bench/run.sh`, side by side).
    let router = Router::new()
        .merge(graphql::http::routes(state.clone(), schemas.clone()))
        .merge(described)
        .merge(web::routes())
        .merge(web::console_routes(schemas))
        .with_state(state.clone())
        .layer((
            SetRequestIdLayer::new(request_id.clone(), telemetry::RandomRequestId),
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            PropagateRequestIdLayer::new(request_id),
            // Outside the panic and timeout layers, so that their 500 and 408 are counted too.
            axum::middleware::from_fn_with_state(state, edge::metrics::track),
            TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            ),
            CatchPanicLayer::custom(panicked),
            Extension(edge::openapi::Document::new(document)),
            axum::middleware::from_fn(edge::request_context),
        ));
    // Before anything reads the client's address (none of the layers above does); only behind
    // trusted proxies, so that no other deployment pays for it.
    if trusted_proxies.is_empty() {
        router
    } else {
        let trusted: std::sync::Arc<[ipnet::IpNet]> = trusted_proxies.into();
        router.layer(axum::middleware::from_fn(move |request, next| {
            edge::client_address(trusted.clone(), request, next)
        }))
    }
}

/// The answer to a request whose handler panicked.
fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = cause
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| cause.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    error::AppError::internal(anyhow::anyhow!("a handler panicked: {what}")).into_response()
}
