//! The GraphQL HTTP endpoint, hardened beyond async-graphql's defaults:
//! - the body is read under a byte cap (413 beyond it);
//! - batches are refused;
//! - mutations are refused over GET (405);
//! - CSRF: a POST whose content type a browser may send cross-site without a preflight
//!   (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`, or none) is
//!   refused unless it carries `apollo-require-preflight` or `x-apollo-operation-name`;
//! - depth and complexity limits come with the schema (see [`super::build_schema`]).
//!
//! `GET /graphql` from a browser (accepting `text/html`, without a `query`) serves GraphiQL.

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::http::{GraphiQLSource, MultipartOptions};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Router, routing::get};

use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::service::logos::MAX_UPLOAD_BYTES;
use crate::state::AppState;

use super::IdgraphSchema;
use super::loaders::{AppLoader, CreatorLoader};

/// Headers whose presence shows the request was not a simple cross-site form post.
const PREFLIGHT_HEADERS: [&str; 2] = ["apollo-require-preflight", "x-apollo-operation-name"];

/// Routes for `/graphql`.
pub fn routes(schema: IdgraphSchema) -> Router<AppState> {
    Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .layer(Extension(schema))
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn has_preflight_header(headers: &HeaderMap) -> bool {
    PREFLIGHT_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// Refuses requests a browser could send cross-site without a CORS preflight.
fn check_csrf(headers: &HeaderMap) -> AppResult<()> {
    let simple = match media_type(headers).as_deref() {
        None => true,
        Some(media) => matches!(
            media,
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        ),
    };
    if simple && !has_preflight_header(headers) {
        return Err(AppError::invalid(
            "this request could be a cross-site request forgery: send Content-Type: application/json, \
             or add an 'apollo-require-preflight' header",
        ));
    }
    Ok(())
}

async fn post_graphql(
    State(state): State<AppState>,
    Extension(schema): Extension<IdgraphSchema>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match parse_post(&state, &headers, body).await {
        Ok(request) => execute(&schema, state, principal, request).await,
        Err(err) => err.into_response(),
    }
}

async fn parse_post(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> AppResult<async_graphql::Request> {
    check_csrf(headers)?;
    let media = media_type(headers).unwrap_or_default();
    if !matches!(
        media.as_str(),
        "application/json" | "application/graphql-response+json" | "multipart/form-data"
    ) {
        return Err(AppError::UnsupportedMediaType(format!(
            "GraphQL requests must be application/json or multipart/form-data, not {media:?}"
        )));
    }
    // Multipart requests carry a logo upload: they may be as large as a logo plus the
    // operation; everything else is held to the configured GraphQL body limit.
    let multipart = media == "multipart/form-data";
    let limit = if multipart {
        MAX_UPLOAD_BYTES + 64 * 1024
    } else {
        state.config.graphql_body_limit_bytes
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let options = MultipartOptions::default()
        .max_file_size(MAX_UPLOAD_BYTES)
        .max_num_files(1);
    async_graphql::http::receive_body(content_type, bytes.as_ref(), options)
        .await
        .map_err(|err| match err {
            async_graphql::ParseRequestError::UnsupportedBatch => AppError::invalid(
                "batched GraphQL requests are not supported; send one operation per request",
            ),
            async_graphql::ParseRequestError::PayloadTooLarge => AppError::PayloadTooLarge {
                limit: MAX_UPLOAD_BYTES,
            },
            other => AppError::invalid(format!("malformed GraphQL request: {other}")),
        })
}

async fn get_graphql(
    State(state): State<AppState>,
    Extension(schema): Extension<IdgraphSchema>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && query.is_empty() {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .title("idgraph")
                .finish(),
        )
        .into_response();
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(err) => {
            return AppError::invalid(format!("malformed GraphQL request: {err}")).into_response();
        }
    };
    if is_mutation(&request) {
        let mut response = AppError::invalid("mutations must be sent with POST").into_response();
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&schema, state, principal, request).await
}

/// Whether the operation the request would run is a mutation. Unparsable documents are left
/// to the executor, which reports the syntax error.
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let wanted = request.operation_name.as_deref();
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => ops.iter().any(|(name, op)| {
            op.node.ty == OperationType::Mutation && wanted.is_none_or(|w| w == name.as_str())
        }),
    }
}

async fn execute(
    schema: &IdgraphSchema,
    state: AppState,
    principal: Principal,
    request: async_graphql::Request,
) -> Response {
    // Per-request loaders with a per-request cache: a page resolver primes its loader with all
    // of the page's keys at once (one batch, whatever the timing), and the fields read from it.
    let creators = DataLoader::with_cache(
        CreatorLoader {
            state: state.clone(),
            principal: principal.clone(),
        },
        tokio::spawn,
        HashMapCache::default(),
    );
    let apps = DataLoader::with_cache(
        AppLoader {
            state: state.clone(),
        },
        tokio::spawn,
        HashMapCache::default(),
    );
    let request = request
        .data(state)
        .data(principal)
        .data(creators)
        .data(apps);
    let response = schema.execute(request).await;
    render(response)
}

/// Serialises a response, giving every error its stable `extensions.code`, and answering with
/// a `WWW-Authenticate` challenge when a field failed for want of a valid token.
fn render(mut response: async_graphql::Response) -> Response {
    let mut challenge = None;
    for error in &mut response.errors {
        let app_error = error
            .source::<AppError>()
            .or_else(|| error.source::<Arc<AppError>>().map(Arc::as_ref));
        let code = match app_error {
            Some(app_error) => {
                app_error.log_if_internal();
                challenge = challenge.or(app_error.bearer_challenge());
                app_error.code()
            }
            None if error.path.is_empty() => "GRAPHQL_VALIDATION_FAILED",
            None => "INTERNAL",
        };
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", code);
    }
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(err) => return AppError::internal(err).into_response(),
    };
    let mut http = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(challenge) = challenge {
        http.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    http
}
