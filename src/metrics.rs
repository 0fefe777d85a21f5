//! Prometheus metrics, served on their own listener (`metrics_bind`), never on the public port.
//!
//! Each server state owns its recorder instead of installing the process-wide one, so that
//! several servers in one process (the tests) count apart. With `metrics_bind` unset nothing is
//! recorded. What is counted:
//! - `idgraph_http_requests_total` and `idgraph_http_request_duration_seconds` by route
//!   template (never the raw path), method and status;
//! - `idgraph_tokens_issued_total` by grant and signing algorithm;
//! - `idgraph_security_events_total` by [`SecurityEvent`];
//! - `idgraph_graphql_operations_total` by operation name (the admin console's, from
//!   `frontend-queries/`; any other is `other`) and outcome;
//! - `idgraph_housekeeping_removed_total` by table;
//! - at each scrape: `idgraph_db_pool_connections` by state, `idgraph_db_writes_waiting` (the
//!   SQLite writer's queue) and `idgraph_signing_keys` by state.
//!
//! This module is the recorder alone, which services count through; the request middleware and
//! the listener's router are a transport's, in `edge::metrics`.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use metrics::{Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// A security-relevant event an operator may alert on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEvent {
    /// An authorization code presented a second time (its tokens are revoked).
    CodeReplay,
    /// A rotated refresh token presented again (its grant or session is revoked).
    RefreshReuse,
    /// An app failed to authenticate at a client endpoint.
    InvalidClient,
    /// A wrong username or password.
    SignInFailure,
    /// A sign-in refused because too many failed attempts came before it.
    SignInThrottled,
    /// A form or request refused as possibly cross-site (a hosted form whose seal does not
    /// match the browser, a GraphQL POST a browser could send without a preflight).
    CsrfRefused,
}

impl SecurityEvent {
    /// The `event` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeReplay => "code_replay",
            Self::RefreshReuse => "refresh_reuse",
            Self::InvalidClient => "invalid_client",
            Self::SignInFailure => "sign_in_failure",
            Self::SignInThrottled => "sign_in_throttled",
            Self::CsrfRefused => "csrf_refused",
        }
    }
}

/// The admin console's operations (`frontend-queries/`), the only GraphQL operation names that
/// become labels: a client can send any name, and must not grow the metrics with them.
const FRONTEND_QUERIES: [&str; 7] = [
    include_str!("../frontend-queries/apps.graphql"),
    include_str!("../frontend-queries/audit.graphql"),
    include_str!("../frontend-queries/connections.graphql"),
    include_str!("../frontend-queries/consent.graphql"),
    include_str!("../frontend-queries/keys.graphql"),
    include_str!("../frontend-queries/session.graphql"),
    include_str!("../frontend-queries/users.graphql"),
];

/// The operation names labelled: the console's, and GraphiQL's introspection.
static OPERATION_NAMES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    FRONTEND_QUERIES
        .iter()
        .flat_map(|document| document.lines())
        .filter_map(operation_name)
        .chain(["IntrospectionQuery"])
        .collect()
});

/// The name a line such as `query AppsPage($first: Int) {` declares.
fn operation_name(line: &str) -> Option<&str> {
    let rest = ["query ", "mutation ", "subscription "]
        .iter()
        .find_map(|keyword| line.trim_start().strip_prefix(keyword))?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The `method` label: the methods idgraph serves, anything else `other` (a client may send any
/// token as a method).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
/// Latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Static metadata of every metric.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

/// The metrics of one server; cheap to clone. Recording is a no-op when disabled.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

impl Metrics {
    /// Metrics that record nothing.
    pub fn disabled() -> Self {
        Self(None)
    }

    /// Whether these metrics record.
    pub fn enabled_here(&self) -> bool {
        self.0.is_some()
    }

    /// Metrics that record, for a metrics listener to render.
    pub fn enabled() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".into()),
                &LATENCY_BUCKETS,
            )
            .expect("the latency buckets are not empty")
            .build_recorder();
        let describe = |name: &'static str, unit: Option<Unit>, text: &'static str| {
            recorder.describe_counter(name.into(), unit, text.into());
        };
        describe(
            "idgraph_http_requests_total",
            None,
            "HTTP requests answered, by route template, method and status",
        );
        describe(
            "idgraph_tokens_issued_total",
            None,
            "Access tokens issued, by grant and signing algorithm",
        );
        describe(
            "idgraph_security_events_total",
            None,
            "Security events: code replay, refresh reuse, invalid_client, sign-in failure and throttling, CSRF refusals",
        );
        describe(
            "idgraph_graphql_operations_total",
            None,
            "GraphQL operations, by operation name and outcome (ok or error)",
        );
        describe(
            "idgraph_housekeeping_removed_total",
            None,
            "Rows the housekeeping sweep removed, by table",
        );
        recorder.describe_histogram(
            "idgraph_http_request_duration_seconds".into(),
            Some(Unit::Seconds),
            "HTTP request latency, by route template, method and status".into(),
        );
        recorder.describe_gauge(
            "idgraph_db_pool_connections".into(),
            None,
            "Database pool connections: in_use, idle, max".into(),
        );
        recorder.describe_gauge(
            "idgraph_db_writes_waiting".into(),
            None,
            "Requests waiting for the SQLite writer thread, queued or being committed (0 on PostgreSQL)".into(),
        );
        recorder.describe_gauge(
            "idgraph_signing_keys".into(),
            None,
            "Published signing keys: signing, or verify_only (superseded or retiring, published for verification)".into(),
        );
        let handle = recorder.handle();
        Self(Some(Arc::new(Inner { recorder, handle })))
    }

    fn add(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        if let Some(inner) = &self.0 {
            let key = Key::from_parts(name, labels);
            inner
                .recorder
                .register_counter(&key, &METADATA)
                .increment(by);
        }
    }

    pub fn gauge(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        if let Some(inner) = &self.0 {
            let key = Key::from_parts(name, labels);
            inner.recorder.register_gauge(&key, &METADATA).set(value);
        }
    }

    /// Counts a security event.
    pub fn security(&self, event: SecurityEvent) {
        self.add(
            "idgraph_security_events_total",
            vec![Label::new("event", event.as_str())],
            1,
        );
    }

    /// Counts an access token issued by `grant`, signed with `algorithm`.
    pub fn token_issued(&self, grant: &'static str, algorithm: &'static str) {
        self.add(
            "idgraph_tokens_issued_total",
            vec![
                Label::new("grant", grant),
                Label::new("algorithm", algorithm),
            ],
            1,
        );
    }

    /// Counts a GraphQL operation by the name the client sent: one of the console's, `other`,
    /// or `-` for none.
    pub fn graphql_operation(&self, name: Option<&str>, ok: bool) {
        let name = match name {
            None => "-",
            Some(name) => OPERATION_NAMES.get(name).copied().unwrap_or("other"),
        };
        self.add(
            "idgraph_graphql_operations_total",
            vec![
                Label::new("operation", name),
                Label::new("outcome", if ok { "ok" } else { "error" }),
            ],
            1,
        );
    }

    /// Counts rows the housekeeping sweep removed from `table`.
    pub fn removed(&self, table: &'static str, rows: u64) {
        if rows > 0 {
            self.add(
                "idgraph_housekeeping_removed_total",
                vec![Label::new("table", table)],
                rows,
            );
        }
    }

    pub fn http(&self, route: String, method: &'static str, status: u16, elapsed: Duration) {
        let Some(inner) = &self.0 else { return };
        let labels = vec![
            Label::new("route", route),
            Label::new("method", method),
            Label::new("status", status.to_string()),
        ];
        let key = Key::from_parts("idgraph_http_requests_total", labels.clone());
        inner
            .recorder
            .register_counter(&key, &METADATA)
            .increment(1);
        let key = Key::from_parts("idgraph_http_request_duration_seconds", labels);
        inner
            .recorder
            .register_histogram(&key, &METADATA)
            .record(elapsed.as_secs_f64());
    }

    /// Drains histogram samples into their buckets; the metrics listener runs it periodically
    /// so that memory stays bounded between scrapes.
    pub fn upkeep(&self) {
        if let Some(inner) = &self.0 {
            inner.handle.run_upkeep();
        }
    }

    pub fn render(&self) -> String {
        self.0
            .as_ref()
            .map(|inner| inner.handle.render())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frontend_query_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/frontend-queries");
        let files = std::fs::read_dir(dir)
            .expect("frontend-queries/")
            .filter(|entry| {
                let path = entry.as_ref().expect("an entry").path();
                path.extension().is_some_and(|ext| ext == "graphql")
            })
            .count();
        assert_eq!(
            files,
            FRONTEND_QUERIES.len(),
            "add the new file to FRONTEND_QUERIES"
        );
    }

    #[test]
    fn operation_names_come_from_the_declarations() {
        assert_eq!(
            operation_name("query AppsPage($first: Int) {"),
            Some("AppsPage")
        );
        assert_eq!(operation_name("mutation Login {"), Some("Login"));
        assert_eq!(operation_name("  query { viewer { id } }"), None);
        assert_eq!(operation_name("# query Commented"), None);
        assert!(OPERATION_NAMES.contains("IntrospectionQuery"));
        assert!(OPERATION_NAMES.len() > 5, "{:?}", *OPERATION_NAMES);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let made_up = axum::http::Method::from_bytes(b"FOO1").unwrap();
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&axum::http::Method::DELETE), "DELETE");
    }
}
