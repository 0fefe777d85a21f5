//! Logging: pretty or JSON lines, a span per request carrying its request id, and nothing
//! secret. Request spans record the method and the path only, never the query string or any
//! header, because those may carry tokens or passwords.

use axum::http::Request;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::domain::secret::random_token;

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` filter. Every line
/// keeps its target, so that audit lines (target `audit`) can be told apart.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests, embedding) keeps the first subscriber.
    if result.is_ok() {
        log_panics();
    }
}

/// Sends every panic to the log as an error line (where operators and CI look for errors),
/// then on to the hook that was there (which prints it to stderr). A panic in a request is
/// answered 500 by the router and one in a background task ends only that task; either way it
/// is a defect, and it must not pass unseen. The payload is the panic's message, which never
/// holds a secret (nothing here formats a secret into a panic).
fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panicked");
        previous(info);
    }));
}

/// Generates request ids: 12 random bytes, base64url.
#[derive(Clone, Copy, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        random_token(12).parse().ok().map(RequestId::new)
    }
}

/// The span opened for every request.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}
