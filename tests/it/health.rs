//! Liveness and readiness probes, and the REST envelope for unknown paths.

use axum::http::StatusCode;

use crate::common::TestApp;

async fn probes_answer_when_the_database_is_up(app: TestApp) {
    let alive = app.get("/healthz", None).await;
    assert_eq!(alive.status, StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
}

async fn readiness_fails_once_the_pool_is_closed(app: TestApp) {
    app.state.db.clone().close().await.unwrap();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

async fn unknown_rest_paths_get_the_error_envelope(app: TestApp) {
    let response = app.get("/api/oauth/nothing-here", None).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.json()["code"], "NOT_FOUND");
}

crate::on_every_database!(
    probes_answer_when_the_database_is_up,
    readiness_fails_once_the_pool_is_closed,
    unknown_rest_paths_get_the_error_envelope,
);
