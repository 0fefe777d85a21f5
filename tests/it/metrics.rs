//! Prometheus metrics: served on the metrics listener only, and the security and token counters
//! move with the events they name.

use axum::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::rp::{self, REDIRECT};
use crate::common::{PASSWORD, TestApp};

/// Serves the metrics listener of `app` on a loopback port, as `serve` does on `metrics_bind`.
async fn metrics_listener(app: &TestApp) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let router = idgraph::edge::metrics::router(app.state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (address, server)
}

/// `GET /metrics` over TCP; the text exposition.
async fn scrape(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "scrape failed: {head}");
    body.to_string()
}

/// The value of the sample `series` (name with its labels), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

const CODE_REPLAY: &str = r#"idgraph_security_events_total{event="code_replay"}"#;
const SIGN_IN_FAILURE: &str = r#"idgraph_security_events_total{event="sign_in_failure"}"#;
const CODE_GRANT: &str =
    r#"idgraph_tokens_issued_total{grant="authorization_code",algorithm="EdDSA"}"#;

#[tokio::test]
async fn the_metrics_listener_sees_a_sign_in_failure_a_code_replay_and_a_token_grant() {
    let app = TestApp::sqlite_with(|c| c.metrics_bind = Some("127.0.0.1:0".into())).await;
    let (address, server) = metrics_listener(&app).await;
    let rp = rp::setup(&app, "admin", "alice").await;
    let before = scrape(&address).await;

    // A wrong password.
    let body = app
        .graphql(
            "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }",
            json!({ "input": { "username": "alice", "password": format!("{PASSWORD}-wrong") } }),
            None,
        )
        .await;
    assert!(body["errors"].is_array(), "the sign-in must fail: {body}");
    let after_failure = scrape(&address).await;
    assert_eq!(
        sample(&after_failure, SIGN_IN_FAILURE),
        sample(&before, SIGN_IN_FAILURE) + 1.0
    );
    assert_eq!(
        sample(&after_failure, CODE_GRANT),
        sample(&before, CODE_GRANT)
    );

    // A code redeemed once (a grant), then again (a replay).
    let code = rp::consent(&app, &rp, json!({ "scope": "openid" })).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    rp::token(&app, &rp, &form)
        .await
        .assert_status(StatusCode::OK);
    let after_grant = scrape(&address).await;
    assert_eq!(
        sample(&after_grant, CODE_GRANT),
        sample(&before, CODE_GRANT) + 1.0
    );
    assert_eq!(
        sample(&after_grant, CODE_REPLAY),
        sample(&before, CODE_REPLAY)
    );
    rp::token(&app, &rp, &form)
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    let after_replay = scrape(&address).await;
    assert_eq!(
        sample(&after_replay, CODE_REPLAY),
        sample(&before, CODE_REPLAY) + 1.0
    );
    assert_eq!(
        sample(&after_replay, CODE_GRANT),
        sample(&after_grant, CODE_GRANT)
    );

    // Requests are counted by route template, never by raw path.
    app.get(&format!("/api/oauth/app/id/{}", rp.client_id), None)
        .await
        .assert_status(StatusCode::OK);
    let after_replay = scrape(&address).await;
    assert!(
        sample(
            &after_replay,
            r#"idgraph_http_requests_total{route="/api/oauth/app/id/{clientid}",method="GET",status="200"}"#
        ) == 1.0,
        "{after_replay}"
    );
    assert!(
        sample(
            &after_replay,
            r#"idgraph_http_requests_total{route="/api/oauth/token",method="POST",status="400"}"#
        ) >= 1.0,
        "{after_replay}"
    );
    assert!(
        !after_replay.contains(&rp.client_id),
        "a raw path was labelled"
    );
    assert!(sample(&after_replay, r#"idgraph_signing_keys{state="signing"}"#) >= 1.0);
    // Every write above went through the SQLite writer and was answered: none waits now.
    assert!(
        after_replay
            .lines()
            .any(|line| line == "idgraph_db_writes_waiting 0"),
        "{after_replay}"
    );
    assert!(
        app.state.writer.statements() > 0,
        "the writes went through the writer"
    );
    server.abort();
}

#[tokio::test]
async fn the_public_port_has_no_metrics() {
    let app = TestApp::sqlite_with(|c| c.metrics_bind = Some("127.0.0.1:0".into())).await;
    app.get("/metrics", None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

/// A sweep's removals reach `idgraph_housekeeping_removed_total`, by table.
#[tokio::test]
async fn the_sweep_counts_what_it_removed_by_table() {
    use idgraph::service::housekeeping;
    let app = TestApp::sqlite_with(|c| c.metrics_bind = Some("127.0.0.1:0".into())).await;
    let (address, server) = metrics_listener(&app).await;
    let rp = rp::setup(&app, "admin", "alice").await;
    for _ in 0..2 {
        rp::consent(&app, &rp, json!({ "scope": "openid" })).await;
    }
    const CODES: &str = r#"idgraph_housekeeping_removed_total{table="codes"}"#;
    let before = scrape(&address).await;
    assert_eq!(sample(&before, CODES), 0.0);
    // Past the codes' minute and the sweep's leeway.
    app.advance(std::time::Duration::from_secs(3600));
    let swept = housekeeping::sweep(&app.state, housekeeping::BATCH)
        .await
        .unwrap();
    assert_eq!(swept.codes, 2, "{swept:?}");
    let after = scrape(&address).await;
    assert_eq!(sample(&after, CODES), 2.0, "{after}");
    server.abort();
}
