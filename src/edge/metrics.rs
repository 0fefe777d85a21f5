//! The metrics' transport: the middleware that counts and times every request by its route
//! template, and the metrics listener's router (`GET /metrics`, the Prometheus text format).
//! The recorder itself is [`crate::metrics`].

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::Label;
use sea_orm::DbBackend;

use crate::metrics::method_label;
use crate::service::AppState;

/// Middleware: counts and times every request by its route template.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.metrics.enabled_here() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// The metrics listener's routes: `GET /metrics` in the Prometheus text format.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    let (size, idle, max) = match state.db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = state.db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle() as u32,
                pool.options().get_max_connections(),
            )
        }
        DbBackend::Sqlite => {
            let pool = state.db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle() as u32,
                pool.options().get_max_connections(),
            )
        }
        _ => (0, 0, 0),
    };
    let pool = "idgraph_db_pool_connections";
    metrics.gauge(
        pool,
        vec![Label::new("state", "in_use")],
        f64::from(size.saturating_sub(idle)),
    );
    metrics.gauge(pool, vec![Label::new("state", "idle")], f64::from(idle));
    metrics.gauge(pool, vec![Label::new("state", "max")], f64::from(max));
    metrics.gauge(
        "idgraph_db_writes_waiting",
        Vec::new(),
        state.writer.waiting() as f64,
    );
    if let Ok(ring) = state.keys.ring().await {
        let signing = ring.signers.len();
        let verify_only = ring.verifying.len().saturating_sub(signing);
        let keys = "idgraph_signing_keys";
        metrics.gauge(keys, vec![Label::new("state", "signing")], signing as f64);
        metrics.gauge(
            keys,
            vec![Label::new("state", "verify_only")],
            verify_only as f64,
        );
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
        .into_response()
}
