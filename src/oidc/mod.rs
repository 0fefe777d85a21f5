//! OpenID Connect and OAuth protocol endpoints: discovery, JWKS, token, userinfo, revocation and
//! introspection. Their errors are
//! RFC 6749 §5.2 bodies (`{"error","error_description"}`), never the REST envelope.

pub mod capabilities;
mod lifecycle;
pub mod token;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::edge::auth::bearer_token;
use crate::edge::cors;
use crate::edge::input::RefuseControlCharacters;
use crate::edge::openapi::{self, ProtocolErrorBody, UserinfoForm};
use crate::error::{AppError, AppResult};
use crate::service::{AppState, apps, tokens};

/// Protocol routes, mounted under `/api/oauth`.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let called_by_apps = OpenApiRouter::new()
        .routes(routes!(token::token).map(|post| post.fallback(token::method_not_allowed)))
        .routes(
            routes!(userinfo_get, userinfo_post)
                .map(|methods| methods.fallback(userinfo_method_not_allowed)),
        )
        .routes(routes!(lifecycle::revoke).map(|post| post.fallback(token::method_not_allowed)))
        // One `layer` call per route (see `crate::app`), outermost first.
        .layer((
            RefuseControlCharacters(refusal_answer),
            middleware::from_fn_with_state(state.clone(), cors::app_preflight),
        ));
    let protocol = OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(discovery))
        .routes(routes!(lifecycle::introspect).map(|post| post.fallback(token::method_not_allowed)))
        .layer(RefuseControlCharacters(refusal_answer))
        .merge(called_by_apps);
    openapi::refuses_control_characters(protocol, "ProtocolErrorBody")
}

/// Any method but GET and POST on `/userinfo`: an RFC 6750 body like its other errors.
async fn userinfo_method_not_allowed() -> Response {
    method_not_allowed("GET, POST")
}

/// A protocol endpoint's answer to a method it does not take: 405 with the methods it does
/// (`allow`) and an RFC 6749 §5.2 body, never cached.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = protocol_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        &format!("this endpoint takes {allow} only"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `/.well-known/openid-configuration`, mounted at the root.
pub fn well_known() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(well_known_discovery))
}

/// An RFC 6749 §5.2 error response, never cached.
pub(crate) fn protocol_error(status: StatusCode, error: &str, description: &str) -> Response {
    let description = crate::domain::oauth::error_description(description);
    let body = json!({ "error": error, "error_description": description });
    no_store((status, Json(body)).into_response())
}

/// Marks a response as never to be cached (RFC 6749 §5.1).
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A URL with a control character gets a 400 `invalid_request` naming the field.
fn refusal_answer(message: &str) -> Response {
    protocol_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// `GET /api/oauth/jwks`: every published public signing key with its `kid`.
#[utoipa::path(get, path = "/jwks", operation_id = "getJwks", tag = "protocol",
    responses((status = 200, description = "The JSON Web Key Set (RFC 7517) of the public signing keys", body = Object,
        headers(("Cache-Control" = String)))))]
async fn jwks(State(state): State<AppState>) -> AppResult<Response> {
    let mut response = Json(state.keys.jwks().await?).into_response();
    cors::allow_any(&mut response);
    // A relying party that caches the set this long never meets an unknown key: a rotated key
    // is published at least this long before it signs (see `service::keys`).
    let max_age = crate::service::keys::jwks_max_age(&state.config).as_secs();
    let cache =
        HeaderValue::from_str(&format!("public, max-age={max_age}")).map_err(AppError::internal)?;
    response.headers_mut().insert(header::CACHE_CONTROL, cache);
    Ok(response)
}

/// The discovery document, generated from the capability table; any origin may read it.
#[utoipa::path(get, path = "/openid-configuration", operation_id = "getOpenidConfiguration", tag = "protocol",
    responses((status = 200, description = "OpenID Connect Discovery 1.0 provider metadata", body = Object)))]
async fn discovery(State(state): State<AppState>) -> AppResult<Response> {
    let ring = state.keys.ring().await?;
    let document = capabilities::discovery(&state.config, &ring.algorithms());
    let mut response = Json(document).into_response();
    cors::allow_any(&mut response);
    Ok(response)
}

/// The discovery document at `/.well-known/openid-configuration`.
#[utoipa::path(get, path = "/.well-known/openid-configuration", operation_id = "getWellKnownOpenidConfiguration", tag = "protocol",
    responses((status = 200, description = "OpenID Connect Discovery 1.0 provider metadata", body = Object)))]
async fn well_known_discovery(state: State<AppState>) -> AppResult<Response> {
    discovery(state).await
}

/// Largest userinfo request body (a form with one token).
const USERINFO_BODY_LIMIT: usize = 16 * 1024;

/// A userinfo failure as RFC 6750 §3 answers it: the bearer challenge, and an RFC 6749 body.
fn bearer_error(err: &AppError) -> Response {
    err.log_if_internal();
    let (status, error, description) = match err {
        AppError::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "an access token is required".to_string(),
        ),
        AppError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token", err.to_string()),
        AppError::InvalidInput(text) => (StatusCode::BAD_REQUEST, "invalid_request", text.clone()),
        AppError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error".to_string(),
        ),
        other => (other.status(), "invalid_request", other.to_string()),
    };
    let mut response = protocol_error(status, error, &description);
    let challenge = match err {
        AppError::InvalidInput(_) => Some(r#"Bearer realm="idgraph", error="invalid_request""#),
        other => other.bearer_challenge(),
    };
    if let Some(challenge) = challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// `GET`/`POST /api/oauth/userinfo` with an app's access token, sent in the `Authorization`
/// header or (POST) as the form field `access_token` (RFC 6750 §2.1, §2.2); more than one
/// method at once is `invalid_request`.
#[utoipa::path(get, path = "/userinfo", operation_id = "getUserinfo", tag = "protocol",
    security(("app_access_token" = []), ()),
    responses(
        (status = 200, description = "Claims for the granted scopes (`sub` always)", body = Object),
        (status = 400, description = "Malformed request, or the token sent more than one way", body = ProtocolErrorBody),
        (status = 401, description = "No token, or not a valid access token", body = ProtocolErrorBody,
            headers(("WWW-Authenticate" = String))),
    ))]
async fn userinfo_get(state: State<AppState>, request: Request) -> Response {
    userinfo(state, request).await
}

/// [`userinfo_get`] by POST, where the token may also come in the form.
#[utoipa::path(post, path = "/userinfo", operation_id = "postUserinfo", tag = "protocol",
    request_body(content = Option<UserinfoForm>, content_type = "application/x-www-form-urlencoded",
        description = "When the token is not in the Authorization header"),
    security(("app_access_token" = []), ()),
    responses(
        (status = 200, description = "Claims for the granted scopes (`sub` always)", body = Object),
        (status = 400, description = "Malformed request, or the token sent more than one way", body = ProtocolErrorBody),
        (status = 401, description = "No token, or not a valid access token", body = ProtocolErrorBody,
            headers(("WWW-Authenticate" = String))),
        (status = 413, description = "Body too large (16 KiB)", body = ProtocolErrorBody),
    ))]
async fn userinfo_post(state: State<AppState>, request: Request) -> Response {
    userinfo(state, request).await
}

/// Userinfo by either method: the claims, or an RFC 6750 error, readable cross-origin by the
/// token's app.
async fn userinfo(State(state): State<AppState>, request: Request) -> Response {
    let origin = cors::origin(request.headers()).map(str::to_string);
    let (mut response, readable) = match userinfo_claims(&state, request).await {
        Ok(info) => {
            let readable = match &origin {
                Some(origin) => apps::allows_origin(&state, &info.client_id, origin)
                    .await
                    .unwrap_or(false),
                None => false,
            };
            (no_store(Json(info.claims).into_response()), readable)
        }
        Err(err) => {
            // An app's browser code may read why it failed; the answer names no app.
            let readable = match &origin {
                Some(origin) => apps::is_registered_origin(&state, origin)
                    .await
                    .unwrap_or(false),
                None => false,
            };
            (bearer_error(&err), readable)
        }
    };
    if let Some(origin) = origin.filter(|_| readable) {
        cors::allow(&mut response, &origin);
    }
    response
}

async fn userinfo_claims(state: &AppState, request: Request) -> AppResult<tokens::UserInfo> {
    let (parts, body) = request.into_parts();
    let header = match bearer_token(&parts) {
        None => None,
        Some(Err(())) => return Err(AppError::InvalidToken),
        Some(Ok(token)) => Some(token.to_string()),
    };
    let in_query = url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .any(|(name, _)| name == "access_token");
    if in_query {
        return Err(AppError::invalid(
            "send the access token in the Authorization header, not in the URL",
        ));
    }
    let in_body = if parts.method == Method::POST {
        form_token(&parts.headers, body).await?
    } else {
        None
    };
    let token = match (header, in_body) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid(
                "send the access token one way only (RFC 6750 §2)",
            ));
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return Err(AppError::Unauthenticated),
    };
    tokens::userinfo(state, &token).await
}

/// The `access_token` field of a form body, if the body is a form and has one.
async fn form_token(headers: &axum::http::HeaderMap, body: Body) -> AppResult<Option<String>> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok(None);
    }
    let bytes = axum::body::to_bytes(body, USERINFO_BODY_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge {
            limit: USERINFO_BODY_LIMIT,
        })?;
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(&bytes) {
        if name == "access_token" {
            if found.is_some() {
                return Err(AppError::invalid("access_token is repeated"));
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found)
}
