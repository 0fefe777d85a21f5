//! `POST /api/oauth/revoke` (RFC 7009) and `POST /api/oauth/introspect` (RFC 7662): an app
//! authenticates as at the token endpoint and names a token (`token`, `token_type_hint`).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::token::client_endpoint;
use crate::service::{AppState, tokens};

/// `POST /api/oauth/revoke`: `{}` with 200 for every token, good or not (RFC 7009 §2.2).
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    client_endpoint(state, headers, body, |state, client, form| async move {
        let token = form.require("token")?;
        tokens::revoke(&state, &client, token, form.get("token_type_hint")).await?;
        Ok(json!({}))
    })
    .await
}

/// `POST /api/oauth/introspect`: `{"active": …}` (RFC 7662 §2.2); confidential apps only.
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    client_endpoint(state, headers, body, |state, client, form| async move {
        let token = form.require("token")?;
        tokens::introspect(&state, &client, token, form.get("token_type_hint")).await
    })
    .await
}
