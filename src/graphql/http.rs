//! The GraphQL HTTP endpoint: async-graphql-axum's extractor and response, with idgraph's
//! hardening around them:
//! - the body is read under a byte cap first (413 beyond it; an upload may be as large as a
//!   logo plus the operation, anything else `graphql_body_limit_bytes`);
//! - CSRF: a POST whose content type a browser may send cross-site without a preflight
//!   (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`, or none) is
//!   refused unless it carries `apollo-require-preflight` or `x-apollo-operation-name`;
//! - batches are refused; mutations over GET get 405;
//! - every document is bounded before the library validates it ([`super::limits`]): bracket
//!   nesting, expanded selections, NUL in strings; depth and complexity limits come with the
//!   schema (see [`super::build_schema`]); operations that only introspect get a deeper
//!   depth limit ([`super::Schemas`]);
//! - every error carries a stable `extensions.code`.
//!
//! `GET /graphql` from a browser (accepting `text/html`, without a `query`) serves GraphiQL,
//! page and assets from the binary ([`super::graphiql`]).

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{ParseRequestError, ServerError};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router, routing::get};

use crate::auth::Principal;
use crate::edge::ClientAddr;
use crate::edge::auth::GraphqlCaller;
use crate::edge::input::{control_in_uri, refusal};
use crate::error::AppError;
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::logos::UPLOAD_BODY_LIMIT;

use super::Schemas;
use super::graphiql;
use super::limits::{MAX_NESTING, check_nesting, check_selections, check_strings, check_variables};
use super::loaders::{AppLoader, ConnectionCountLoader, CreatorLoader, UserLoader};

/// Headers whose presence shows the request was not a simple cross-site form post.
const PREFLIGHT_HEADERS: [&str; 2] = ["apollo-require-preflight", "x-apollo-operation-name"];

/// Routes for `/graphql`, and GraphiQL's assets under `/graphql/assets/`. The assets are
/// merged after the layers, so neither the guard nor CORS applies to them: they are public,
/// static files (the guard would only have checked their URL for control characters, which
/// no asset name has).
pub fn routes(state: AppState, schema: Schemas) -> Router<AppState> {
    let cors = crate::edge::cors::management(&state.config);
    let router = Router::new().route("/graphql", get(get_graphql).post(post_graphql));
    // One `layer` call (see `crate::app`), outermost first.
    let layers = (
        Extension(schema),
        middleware::from_fn_with_state(state, guard),
    );
    let router = match cors {
        Some(cors) => router.layer((cors, layers)),
        None => router.layer(layers),
    };
    router.merge(graphiql::routes())
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

/// Refuses requests a browser could send cross-site without a CORS preflight.
fn check_csrf(headers: &HeaderMap) -> Result<(), AppError> {
    let simple = match media_type(headers).as_deref() {
        None => true,
        Some(media) => matches!(
            media,
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        ),
    };
    let preflighted = PREFLIGHT_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name));
    if simple && !preflighted {
        return Err(AppError::invalid(
            "this request could be a cross-site request forgery: send Content-Type: application/json, \
             or add an 'apollo-require-preflight' header",
        ));
    }
    Ok(())
}

/// Everything checked before the library reads the request: control characters in the URL,
/// and for a POST the CSRF rule, the content type and the body's size (the body is read here,
/// under its cap, and handed on).
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(field) = control_in_uri(request.uri()) {
        return AppError::invalid(refusal(&field)).into_response();
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if let Err(err) = check_csrf(&parts.headers) {
        state.metrics.security(SecurityEvent::CsrfRefused);
        return err.into_response();
    }
    let media = media_type(&parts.headers).unwrap_or_default();
    let limit = match media.as_str() {
        "application/json" | "application/graphql-response+json" => {
            state.config.graphql_body_limit_bytes
        }
        "multipart/form-data" => UPLOAD_BODY_LIMIT,
        other => {
            return AppError::UnsupportedMediaType(format!(
                "GraphQL requests must be application/json or multipart/form-data, not {other:?}"
            ))
            .into_response();
        }
    };
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => AppError::PayloadTooLarge { limit }.into_response(),
    }
}

impl From<ParseRequestError> for AppError {
    fn from(err: ParseRequestError) -> Self {
        match err {
            ParseRequestError::UnsupportedBatch => AppError::invalid(
                "batched GraphQL requests are not supported; send one operation per request",
            ),
            ParseRequestError::PayloadTooLarge => AppError::PayloadTooLarge {
                limit: UPLOAD_BODY_LIMIT,
            },
            other => AppError::invalid(format!("malformed GraphQL request: {other}")),
        }
    }
}

async fn post_graphql(
    State(state): State<AppState>,
    Extension(schema): Extension<Schemas>,
    GraphqlCaller(principal): GraphqlCaller,
    addr: ClientAddr,
    request: Result<GraphQLRequest<AppError>, AppError>,
) -> Response {
    match request {
        Ok(request) => execute(&schema, state, principal, addr, request.into_inner()).await,
        Err(err) => err.into_response(),
    }
}

async fn get_graphql(
    State(state): State<AppState>,
    Extension(schema): Extension<Schemas>,
    GraphqlCaller(principal): GraphqlCaller,
    addr: ClientAddr,
    headers: HeaderMap,
    request: Result<GraphQLRequest<AppError>, AppError>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let request = match request {
        Ok(request) => request.into_inner(),
        Err(_) if wants_html => return graphiql::page(),
        Err(err) => return err.into_response(),
    };
    if wants_html && request.query.is_empty() {
        return graphiql::page();
    }
    if is_mutation(&request) {
        let mut response = AppError::invalid("mutations must be sent with POST").into_response();
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&schema, state, principal, addr, request).await
}

/// Whether the operation the request would run is a mutation. Unparsable documents are left
/// to the executor, which reports the syntax error.
fn is_mutation(request: &async_graphql::Request) -> bool {
    if check_nesting(&request.query, MAX_NESTING).is_err() {
        return false;
    }
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

/// Whether the operation to run selects only `__schema`, `__type` and `__typename` at its root
/// (fragments at the root count as other fields).
fn introspection_only(request: &mut async_graphql::Request) -> bool {
    let wanted = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match &document.operations {
        DocumentOperations::Single(op) => Some(op),
        // Named operations: the one asked for, or the only one.
        DocumentOperations::Multiple(ops) => match wanted.as_deref() {
            Some(name) => ops
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, op)| op),
            None if ops.len() == 1 => ops.values().next(),
            None => None,
        },
    };
    let Some(operation) = operation else {
        return false;
    };
    operation.node.ty == OperationType::Query
        && operation.node.selection_set.node.items.iter().all(|item| {
            matches!(&item.node, Selection::Field(field)
                if matches!(field.node.name.node.as_str(), "__schema" | "__type" | "__typename"))
        })
}

/// The bounds of [`super::limits`], checked on the parsed document before it reaches the
/// schema. A document that fails to parse is left for the executor's syntax error.
///
/// The document itself is held to `max_bytes` (the JSON body limit) whichever way it came: a
/// multipart request may be as large as an upload, but only its files may use that room.
fn bound(
    request: &mut async_graphql::Request,
    max_selections: u64,
    max_bytes: usize,
) -> Result<(), ServerError> {
    let refuse = |why: String| ServerError::new(why, None);
    if request.query.len() > max_bytes {
        return Err(refuse(format!(
            "the GraphQL document is longer than {max_bytes} bytes"
        )));
    }
    check_nesting(&request.query, MAX_NESTING).map_err(refuse)?;
    check_variables(&request.variables).map_err(refuse)?;
    let Ok(document) = request.parsed_query() else {
        return Ok(());
    };
    check_selections(document, max_selections).map_err(refuse)?;
    check_strings(document).map_err(refuse)
}

async fn execute(
    schemas: &Schemas,
    state: AppState,
    principal: Principal,
    addr: ClientAddr,
    request: async_graphql::Request,
) -> Response {
    let (response, challenge) = run(schemas, state, principal, addr, request).await;
    let mut http = GraphQLResponse::from(response).into_response();
    if let Some(challenge) = challenge {
        http.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    http
}

/// Runs one request as `principal`, under every bound the endpoint applies, with the
/// per-request loaders; every error carries its `extensions.code`. Also answers the
/// `WWW-Authenticate` challenge owed when a field failed for want of a valid token. The admin
/// console runs its operations through this too, in-process.
pub async fn run(
    schemas: &Schemas,
    state: AppState,
    principal: Principal,
    addr: ClientAddr,
    mut request: async_graphql::Request,
) -> (async_graphql::Response, Option<&'static str>) {
    // As many selections as the complexity limit could ever allow, counted before expansion.
    let max_selections =
        u64::try_from(state.config.graphql_max_complexity.saturating_mul(2)).unwrap_or(u64::MAX);
    let operation = request.operation_name.clone();
    let max_bytes = state.config.graphql_body_limit_bytes;
    if let Err(error) = bound(&mut request, max_selections, max_bytes) {
        state.metrics.graphql_operation(operation.as_deref(), false);
        let mut response = async_graphql::Response::from_errors(vec![error]);
        let challenge = annotate(&mut response);
        return (response, challenge);
    }
    let schema = if introspection_only(&mut request) {
        &schemas.introspection
    } else {
        &schemas.regular
    };
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
    let connection_counts = DataLoader::with_cache(
        ConnectionCountLoader {
            state: state.clone(),
            principal: principal.clone(),
        },
        tokio::spawn,
        HashMapCache::default(),
    );
    let people = DataLoader::with_cache(
        UserLoader {
            state: state.clone(),
            principal: principal.clone(),
        },
        tokio::spawn,
        HashMapCache::default(),
    );
    let metrics = state.metrics.clone();
    let request = request
        .data(state)
        .data(principal)
        .data(addr)
        .data(creators)
        .data(apps)
        .data(connection_counts)
        .data(people);
    let mut response = schema.execute(request).await;
    metrics.graphql_operation(operation.as_deref(), response.errors.is_empty());
    let challenge = annotate(&mut response);
    (response, challenge)
}

/// Gives every error its stable `extensions.code`, and answers the `WWW-Authenticate`
/// challenge owed when a field failed for want of a valid token. An error of ours carries its
/// own code; any other error is the library refusing the request: with no path, the document
/// (`GRAPHQL_VALIDATION_FAILED`); on a field, its input, such as a variable of the wrong type
/// or an `Int` out of range (`INVALID_INPUT`).
fn annotate(response: &mut async_graphql::Response) -> Option<&'static str> {
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
            None => "INVALID_INPUT",
        };
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", code);
    }
    challenge
}
