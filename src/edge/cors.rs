//! Cross-origin requests (CORS) from browsers:
//! - discovery and the JWKS answer any origin (they are public documents);
//! - the token endpoint and userinfo answer an origin only when it is the origin of one of the
//!   calling app's redirect URIs (a single-page app calls them from where it runs); a preflight,
//!   which names no app yet, is answered when some app registers the origin;
//! - the management API and GraphQL send no CORS headers unless the operator lists origins in
//!   `cors_allowed_origins`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::service::{AppState, apps};

/// How long browsers may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The request's `Origin`, when it sent one that could be an origin.
pub fn origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty() && o.len() <= 512 && *o != "null")
}

/// Lets a browser at `origin` read `response`.
pub fn allow(response: &mut Response, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Public documents: any origin may read them.
pub fn allow_any(response: &mut Response) {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// Answers the preflight of the token endpoint and userinfo (`OPTIONS` with an `Origin` and an
/// `Access-Control-Request-Method`): allowed when an app registers the origin. Other requests
/// pass on.
pub async fn app_preflight(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let Some(origin) = origin(request.headers())
        .filter(|_| preflight)
        .map(str::to_string)
    else {
        return next.run(request).await;
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    match apps::is_registered_origin(&state, &origin).await {
        Ok(true) => {
            allow(&mut response, &origin);
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
        }
        Ok(false) => {}
        Err(err) => return err.into_response(),
    }
    response
}

/// The CORS layer of the management API and GraphQL: the configured origins, or none at all.
pub fn management(config: &Config) -> Option<CorsLayer> {
    if config.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = config
        .cors_allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("apollo-require-preflight"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
