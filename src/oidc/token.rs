//! `POST /api/oauth/token`, and what it shares with revocation and introspection: form parsing,
//! HTTP Basic decoding, client authentication, RFC 6749 §5.2 errors. The rules themselves live
//! in `service::tokens`. Every answer, errors included (a wrong method, a body too large), is
//! JSON and `Cache-Control: no-store`.

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{no_store, protocol_error};
use crate::domain::capabilities::GrantType;
use crate::domain::ids::ClientId;
use crate::edge::cors;
use crate::edge::input::{printable, refusal};
use crate::edge::openapi::{ProtocolErrorBody, TokenForm, TokenHintForm, form_fields};
use crate::metrics::SecurityEvent;
use crate::service::tokens::{self, ClientCredentials, OAuthError};
use crate::service::{AppState, apps};

/// Largest token request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            OAuthError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            OAuthError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed".to_string(),
            ),
            OAuthError::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", d),
            OAuthError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or client_credentials"
                    .to_string(),
            ),
            OAuthError::InvalidScope(d) => (StatusCode::BAD_REQUEST, "invalid_scope", d),
            OAuthError::InvalidTarget(d) => (StatusCode::BAD_REQUEST, "invalid_target", d),
            OAuthError::UnauthorizedClient => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "the client may not use this grant type".to_string(),
            ),
            OAuthError::Server(err) => {
                err.log_if_internal();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error".to_string(),
                )
            }
        };
        protocol_error(status, code, &description)
    }
}

/// Any method but POST on `/token`, `/revoke` and `/introspect`.
pub async fn method_not_allowed() -> Response {
    super::method_not_allowed("POST")
}

/// The parameters `/token` reads, as `openapi.json` documents them.
static TOKEN_FORM: LazyLock<Vec<String>> = LazyLock::new(form_fields::<TokenForm>);
/// The parameters `/revoke` and `/introspect` read, as `openapi.json` documents them.
pub(super) static TOKEN_HINT_FORM: LazyLock<Vec<String>> =
    LazyLock::new(form_fields::<TokenHintForm>);

/// A form body parsed with every parameter at most once (RFC 6749 §3.2) and none holding NUL,
/// read by the names its endpoint documents.
pub(super) struct Form {
    pairs: Vec<(String, String)>,
    documented: &'static [String],
}

impl Form {
    fn parse(body: &[u8], documented: &'static [String]) -> Result<Self, OAuthError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            if key.contains('\0') || value.contains('\0') {
                return Err(OAuthError::InvalidRequest(refusal(&printable(&key))));
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {} is repeated",
                    printable(&key)
                )));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs, documented })
    }

    /// A parameter's value; an empty one counts as absent (RFC 6749 §3.1). Only a documented
    /// parameter is ever asked for (the tests, run with debug assertions, hold the handlers to
    /// it).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(
            self.documented.iter().any(|field| field == name),
            "{name} is read but not in the endpoint's documented form"
        );
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that must be there.
    pub(super) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is required")))
    }
}

/// Client credentials from HTTP Basic (form-urlencoded inside, RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient;
    let text = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(bad());
    };
    // Another scheme is an authentication method we do not support: `invalid_client`, with the
    // Basic challenge (RFC 6749 §5.2).
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A form request from an app to one of the endpoints it authenticates at (token,
/// revocation, introspection): the body read under its cap, the form parsed strictly, the
/// client authenticated by its registered method. `answer` makes the endpoint's own reply; every
/// reply is uncached, a Basic `invalid_client` carries its challenge, and a browser may read it
/// from the origin of one of the named app's redirect URIs.
pub(super) async fn client_endpoint<F, Fut, T>(
    state: AppState,
    headers: HeaderMap,
    body: Body,
    documented: &'static [String],
    answer: F,
) -> Response
where
    F: FnOnce(AppState, tokens::Client, Form) -> Fut,
    Fut: std::future::Future<Output = Result<T, OAuthError>>,
    T: serde::Serialize,
{
    let basic = headers.contains_key(header::AUTHORIZATION);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return protocol_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                &format!("the request body is too large (limit {MAX_BODY} bytes)"),
            );
        }
    };
    let result = match authenticated(&state, &headers, &body, documented).await {
        Ok((client, form)) => answer(state.clone(), client, form).await,
        Err(err) => Err(err),
    };
    if matches!(result, Err(OAuthError::InvalidClient)) {
        state.metrics.security(SecurityEvent::InvalidClient);
    }
    let mut response = match result {
        Ok(reply) => no_store(axum::Json(reply).into_response()),
        Err(OAuthError::InvalidClient) if basic => {
            let mut response = OAuthError::InvalidClient.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="idgraph""#),
            );
            response
        }
        Err(err) => err.into_response(),
    };
    if let (Some(origin), Some(client_id)) = (cors::origin(&headers), named_client(&headers, &body))
        && apps::allows_origin(&state, &client_id, origin)
            .await
            .unwrap_or(false)
    {
        cors::allow(&mut response, origin);
    }
    response
}

/// The client a request names (by HTTP Basic or the form's `client_id`), authenticated or not.
fn named_client(headers: &HeaderMap, body: &[u8]) -> Option<ClientId> {
    let from_basic = basic_credentials(headers).ok().flatten().map(|(id, _)| id);
    let from_form = || {
        url::form_urlencoded::parse(body)
            .find(|(name, _)| name == "client_id")
            .map(|(_, value)| value.into_owned())
    };
    ClientId::parse(&from_basic.or_else(from_form)?)
}

/// The form of a request, and the client it authenticates.
async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    documented: &'static [String],
) -> Result<(tokens::Client, Form), OAuthError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "send the request as application/x-www-form-urlencoded".into(),
        ));
    }
    let form = Form::parse(body, documented)?;
    let credentials = ClientCredentials {
        basic: basic_credentials(headers)?,
        form_id: form.get("client_id"),
        form_secret: form.get("client_secret"),
    };
    let client = tokens::authenticate_client(state, credentials).await?;
    Ok((client, form))
}

/// `POST /api/oauth/token`.
#[utoipa::path(post, path = "/token", operation_id = "token", tag = "protocol",
    request_body(content = crate::edge::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = []), ()),
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`)", body = tokens::TokenResponse),
        (status = 400, description = "Invalid request (a body that is not a form included), grant, scope or target", body = ProtocolErrorBody),
        (status = 401, description = "Client authentication failed", body = ProtocolErrorBody),
        (status = 413, description = "Body too large", body = ProtocolErrorBody),
    ))]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    client_endpoint(
        state,
        headers,
        body,
        &TOKEN_FORM,
        |state, client, form| async move { grant(&state, &client, &form).await },
    )
    .await
}

/// Dispatches a token request by its `grant_type`, through the capability table.
async fn grant(
    state: &AppState,
    client: &tokens::Client,
    form: &Form,
) -> Result<tokens::TokenResponse, OAuthError> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
    let grant = GrantType::parse(grant_type).ok_or(OAuthError::UnsupportedGrantType)?;
    client.may_use(grant)?;
    let issued = match grant {
        GrantType::AuthorizationCode => {
            let code = form.require("code")?;
            tokens::exchange_code(
                state,
                client,
                code,
                form.get("redirect_uri"),
                form.get("code_verifier"),
                form.get("resource"),
            )
            .await
        }
        GrantType::RefreshToken => {
            let refresh_token = form.require("refresh_token")?;
            tokens::refresh(
                state,
                client,
                refresh_token,
                form.get("scope"),
                form.get("resource"),
            )
            .await
        }
        GrantType::ClientCredentials => {
            tokens::client_credentials(state, client, form.get("scope"), form.get("resource")).await
        }
    }?;
    // Access tokens are signed with the configured algorithm, whatever the grant.
    let algorithm = state.config.signing_algorithm.as_str();
    state.metrics.token_issued(grant.as_str(), algorithm);
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_hold_their_parameters() {
        for name in [
            "grant_type",
            "code",
            "code_verifier",
            "refresh_token",
            "client_id",
        ] {
            assert!(TOKEN_FORM.iter().any(|field| field == name), "{name}");
        }
        for name in ["token", "token_type_hint", "client_secret"] {
            assert!(TOKEN_HINT_FORM.iter().any(|field| field == name), "{name}");
        }
        assert!(!TOKEN_HINT_FORM.iter().any(|field| field == "grant_type"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not in the endpoint's documented form")]
    fn reading_a_parameter_the_document_does_not_declare_fails() {
        let form = Form::parse(b"token=t&grant_type=x", &TOKEN_HINT_FORM).unwrap();
        form.get("grant_type");
    }
}
