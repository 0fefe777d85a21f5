//! Calls of the protocol endpoints an API's side makes: a service app with API scopes and a
//! resource, form posts, introspection, and a resource server's check of an access token.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::rp::{REDIRECT, Rp, basic};
use super::{Registered, TestApp, TestResponse};

pub const ORDERS: &str = "https://api.example/orders";
/// A confidential app allowed every grant, API scopes and one resource.
pub async fn service_app(app: &TestApp, admin: &str) -> Registered {
    app.register_app_with(
        admin,
        json!({
            "name": "Orders",
            "redirect_uri": REDIRECT,
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": "openid profile offline_access orders:read orders:write",
            "resources": [ORDERS],
        }),
    )
    .await
}

/// A resource server's check of an access token (RFC 9068 §4): the header's `typ`, the issuer,
/// the audience, and the signature by the key the JWKS publishes under the header's `kid`, with
/// that key's own algorithm.
pub fn resource_server_accepts(jwks: &Value, token: &str, issuer: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    let kid = header.kid.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let algorithm: jsonwebtoken::Algorithm = key["alg"].as_str().unwrap().parse().unwrap();
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .expect("a resource server accepts the token")
        .claims;
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        assert!(
            claims.get(claim).is_some(),
            "RFC 9068 §2.2 claim {claim}: {claims}"
        );
    }
    claims
}

fn form_of(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

pub async fn post(
    app: &TestApp,
    path: &str,
    authorization: Option<String>,
    pairs: &[(&str, &str)],
) -> TestResponse {
    let mut headers = Vec::new();
    if let Some(value) = &authorization {
        headers.push(("authorization", value.as_str()));
    }
    app.send_bytes(
        Method::POST,
        path,
        None,
        "application/x-www-form-urlencoded",
        &headers,
        form_of(pairs),
    )
    .await
}

pub async fn introspect(app: &TestApp, caller: &Rp, token: &str) -> Value {
    let response = post(
        app,
        "/api/oauth/introspect",
        Some(basic(&caller.client_id, &caller.secret)),
        &[("token", token)],
    )
    .await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    response.json()
}

/// `caller` revokes `token` (RFC 7009); every answer of the endpoint but a fault is 200.
pub async fn revoke(app: &TestApp, caller: &Rp, token: &str) {
    post(
        app,
        "/api/oauth/revoke",
        Some(basic(&caller.client_id, &caller.secret)),
        &[("token", token)],
    )
    .await
    .assert_status(StatusCode::OK);
}
