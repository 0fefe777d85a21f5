//! `POST /api/oauth/revoke` (RFC 7009) and `POST /api/oauth/introspect` (RFC 7662): an app
//! authenticates as at the token endpoint and names a token (`token`, `token_type_hint`).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::token::{TOKEN_HINT_FORM, client_endpoint};
use crate::edge::openapi::{ProtocolErrorBody, TokenHintForm};
use crate::service::{AppState, tokens};

/// `POST /api/oauth/revoke`: `{}` with 200 for every token, good or not (RFC 7009 §2.2).
#[utoipa::path(post, path = "/revoke", operation_id = "revokeToken", tag = "protocol",
    request_body(content = TokenHintForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)", body = Object),
        (status = 400, description = "Invalid request, or a body that is not a form", body = ProtocolErrorBody),
        (status = 401, description = "Client authentication failed", body = ProtocolErrorBody),
        (status = 413, description = "Body too large", body = ProtocolErrorBody),
    ))]
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    client_endpoint(
        state,
        headers,
        body,
        &TOKEN_HINT_FORM,
        |state, client, form| async move {
            let token = form.require("token")?;
            tokens::revoke(&state, &client, token, form.get("token_type_hint")).await?;
            Ok(json!({}))
        },
    )
    .await
}

/// `POST /api/oauth/introspect`: `{"active": …}` (RFC 7662 §2.2); confidential apps only.
#[utoipa::path(post, path = "/introspect", operation_id = "introspectToken", tag = "protocol",
    request_body(content = TokenHintForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "RFC 7662 §2.2 answer", body = tokens::Introspection),
        (status = 400, description = "Invalid request, or a body that is not a form", body = ProtocolErrorBody),
        (status = 401, description = "Client authentication failed, or a public app", body = ProtocolErrorBody),
        (status = 413, description = "Body too large", body = ProtocolErrorBody),
    ))]
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    client_endpoint(
        state,
        headers,
        body,
        &TOKEN_HINT_FORM,
        |state, client, form| async move {
            let token = form.require("token")?;
            tokens::introspect(&state, &client, token, form.get("token_type_hint")).await
        },
    )
    .await
}
