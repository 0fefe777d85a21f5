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

/// The address of the client that sent the request: the TCP peer's, or, when that peer is a
/// configured trusted proxy, the one its `X-Forwarded-For` names ([`client_address`]); an IPv4
/// client seen by a dual-stack listener (`::ffff:a.b.c.d`) as its IPv4 address.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer_address(&parts.extensions)))
    }
}

/// The connection's peer (or, behind trusted proxies, the client [`client_address`] put in its
/// place), in canonical form.
fn peer_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical())
}

/// Behind trusted proxies (`trusted_proxies`), puts the client's address where the TCP peer's
/// was, so that the sign-in back-off, the audit trail and the logs see the client rather than
/// the proxy (which would otherwise share one back-off among every client). The address is
/// read from `X-Forwarded-For` right to left, each hop believed only while the one who added it
/// is trusted: the first hop that is not a trusted proxy is the client. A header added by the
/// client itself sits left of that and is never believed; a hop that is not an address stops
/// the walk at the last one known. From a peer that is not trusted, the header is ignored.
pub async fn client_address(
    trusted: std::sync::Arc<[ipnet::IpNet]>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        let client = forwarded_client(peer.ip(), &forwarded, &trusted);
        let port = peer.port();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, port)));
    }
    next.run(request).await
}

/// The client behind `peer`, given the `X-Forwarded-For` hops in order (see [`client_address`]).
/// Addresses are compared in canonical form, so that an IPv4 proxy seen by a dual-stack
/// listener (`::ffff:10.0.0.5`) is the `10.0.0.5` the settings name.
fn forwarded_client(peer: IpAddr, hops: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |addr: &IpAddr| trusted.iter().any(|net| net.contains(addr));
    let mut client = peer.to_canonical();
    for hop in hops.iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match hop_address(hop) {
            Some(addr) => client = addr.to_canonical(),
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` hop as an address: `203.0.113.7`, `2001:db8::1`, and with a port as
/// some proxies write them, `203.0.113.7:4711` or `[2001:db8::1]:4711`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
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
        address: peer_address(request.extensions()),
    };
    crate::service::audit::within(meta, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_first_hop_from_the_right_that_no_trusted_proxy_added() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let client = |peer: &str, hops: &[&str]| forwarded_client(ip(peer), hops, &trusted);
        // One proxy in front: the hop it added.
        assert_eq!(client("10.0.0.1", &["203.0.113.7"]), ip("203.0.113.7"));
        // Two trusted proxies: past both.
        assert_eq!(
            client("10.0.0.1", &["203.0.113.7", "10.0.0.2"]),
            ip("203.0.113.7")
        );
        // A client that forges the header is named by what the proxy added after it.
        assert_eq!(
            client("10.0.0.1", &["198.51.100.1", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        // A forged hop that is a trusted address is passed only when a trusted proxy added it:
        // here the client (untrusted) sits right of it.
        assert_eq!(
            client("10.0.0.1", &["10.9.9.9", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Not from a trusted proxy: the header is not believed.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // No header, or a hop that is no address: the last address known.
        assert_eq!(client("10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(client("10.0.0.1", &["unknown"]), ip("10.0.0.1"));
        // A proxy seen by a dual-stack listener is the IPv4 address the settings name.
        assert_eq!(
            client("::ffff:10.0.0.1", &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Hops written with a port.
        assert_eq!(client("10.0.0.1", &["203.0.113.7:4711"]), ip("203.0.113.7"));
        assert_eq!(
            client("10.0.0.1", &["[2001:db8::7]:4711"]),
            ip("2001:db8::7")
        );
    }
}
