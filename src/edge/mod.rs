//! What every transport reads from a request the same way: the caller's [`Principal`] from a
//! bearer token, guard extractors that reject early through the service's own checks, the
//! client's address, the refusal of control characters in the URL, and the OpenAPI document
//! the REST and protocol handlers describe themselves in.
//!
//! [`Principal`]: crate::auth::Principal

pub mod auth;
pub mod cors;
pub mod input;
pub mod metrics;
pub mod openapi;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The address of the peer that sent the request (the TCP connection's, never a header a
/// client could forge; behind a proxy every client shares the proxy's).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// Runs the request inside its [`RequestMeta`](crate::service::audit::RequestMeta) (its
/// `x-request-id` and the client's address), which the audit events it records carry.
pub async fn request_context(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let meta = crate::service::audit::RequestMeta {
        request_id: request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map(|id| id.chars().take(64).collect()),
        address: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip()),
    };
    crate::service::audit::within(meta, next.run(request)).await
}
