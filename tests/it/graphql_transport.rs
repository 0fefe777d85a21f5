//! GraphQL transport hardening: body cap, depth and complexity limits, no batches, no mutations
//! over GET, CSRF refusal, GraphiQL for browsers.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::common::{TestApp, TestResponse};

async fn post(
    app: &TestApp,
    content_type: Option<&str>,
    extra: &[(&str, &str)],
    body: impl Into<Body>,
) -> TestResponse {
    let mut request = Request::builder().method(Method::POST).uri("/graphql");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    app.send(request.body(body.into()).unwrap()).await
}

const PROBE: &str = r#"{"query":"{ __typename }"}"#;

async fn json_posts_execute(app: TestApp) {
    let response = post(&app, Some("application/json"), &[], PROBE).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["data"]["__typename"], "Query");
    assert!(
        response
            .header("x-request-id")
            .is_some_and(|id| id.len() >= 16)
    );
}

async fn simple_content_types_without_a_preflight_header_are_refused(app: TestApp) {
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let response = post(&app, content_type, &[], PROBE).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{content_type:?}");
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap()
                .contains("apollo-require-preflight")
        );
    }
    // With the header the CSRF check passes, and text/plain is then simply not GraphQL.
    let response = post(
        &app,
        Some("text/plain"),
        &[("apollo-require-preflight", "true")],
        PROBE,
    )
    .await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn bodies_over_the_cap_are_413(app: TestApp) {
    let padding = " ".repeat(300 * 1024);
    let body = format!(r#"{{"query":"{{ __typename {padding} }}"}}"#);
    let response = post(&app, Some("application/json"), &[], body).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json()["code"], "PAYLOAD_TOO_LARGE");
}

async fn batches_are_refused(app: TestApp) {
    let response = post(
        &app,
        Some("application/json"),
        &[],
        format!("[{PROBE},{PROBE}]"),
    )
    .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(
        response.json()["message"]
            .as_str()
            .unwrap()
            .contains("batched")
    );
}

/// A selection of `__schema` whose type references nest `levels` deep (depth `levels + 5`).
fn type_references(levels: usize) -> String {
    format!(
        "__schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }}",
        "ofType { ".repeat(levels),
        "} ".repeat(levels)
    )
}

async fn deep_queries_are_refused(app: TestApp) {
    // Depth 19: over the limit of 12 once the operation selects one of idgraph's own fields.
    let mixed = format!("{{ viewer {{ id }} {} }}", type_references(14));
    let body = app.graphql(&mixed, json!({}), None).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{body}");
    assert!(body["data"].is_null());
    // Introspection alone has a deeper limit (20), but a limit all the same: depth 21.
    let deepest = format!("{{ {} }}", type_references(16));
    let body = app.graphql(&deepest, json!({}), None).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{body}");
    assert!(body["data"].is_null());
}

/// GraphiQL and other tools introspect with type references nested about ten deep, deeper than
/// the depth limit of operations on idgraph's own fields; that query runs.
async fn the_standard_introspection_depth_is_answered(app: TestApp) {
    let introspection = format!("query IntrospectionQuery {{ {} }}", type_references(14));
    let body = app.graphql(&introspection, json!({}), None).await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 10);
}

async fn complex_queries_are_refused(app: TestApp) {
    let fields: String = (0..300)
        .map(|i| format!("a{i}: viewer {{ id }} "))
        .collect();
    let body = app
        .graphql(&format!("{{ {fields} }}"), json!({}), None)
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{body}"
    );
}

async fn get_runs_queries_but_not_mutations(app: TestApp) {
    let response = app.get("/graphql?query=%7B__typename%7D", None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["data"]["__typename"], "Query");

    let response = app.get("/graphql?query=mutation%7Blogout%7D", None).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("allow"), Some("POST"));
    let named = app
        .get(
            "/graphql?query=query%20A%7B__typename%7D%20mutation%20B%7Blogout%7D&operationName=B",
            None,
        )
        .await;
    assert_eq!(named.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn browsers_get_graphiql(app: TestApp) {
    let request = Request::builder()
        .uri("/graphql")
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&response.body);
    assert!(html.contains("graphiql") && html.contains("/graphql"));
}

async fn malformed_json_is_400(app: TestApp) {
    let response = post(&app, Some("application/json"), &[], "{not json").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.json()["code"], "INVALID_INPUT");
}

crate::on_every_database!(
    json_posts_execute,
    simple_content_types_without_a_preflight_header_are_refused,
    bodies_over_the_cap_are_413,
    batches_are_refused,
    deep_queries_are_refused,
    the_standard_introspection_depth_is_answered,
    complex_queries_are_refused,
    get_runs_queries_but_not_mutations,
    browsers_get_graphiql,
    malformed_json_is_400,
);
