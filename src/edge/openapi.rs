//! The OpenAPI 3.1 document of everything under `/api/oauth` and the health probes, generated
//! from the handlers' own annotations (utoipa) as the router is built, so a route cannot be
//! served without being described. It is served at `GET /api/oauth/openapi.json` and committed
//! as `openapi.json`; a test fails when the two differ (`UPDATE_SCHEMA=1 cargo test --test it contracts`
//! regenerates it).
//!
//! The types here describe bodies that the protocol endpoints read by hand (form bodies are
//! parsed strictly, each parameter at most once, see `oidc::token`), so they exist for the
//! document only.

use std::sync::Arc;

use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder, Server};
use utoipa_axum::router::OpenApiRouter;

/// Security scheme of a first-party bearer token (a signed-in user's session token); each
/// operation names the scope it needs.
pub const USER_BEARER: &str = "user_bearer";
/// Security scheme of an app's OAuth access token (from `/token`), good for `/userinfo`.
pub const APP_ACCESS_TOKEN: &str = "app_access_token";
/// Security scheme of an app authenticating with its secret in HTTP Basic.
pub const CLIENT_BASIC: &str = "client_secret_basic";

/// The REST error envelope of the management routes.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"code": "NOT_FOUND", "message": "app not found"}))]
pub struct ApiErrorBody {
    /// A stable code: `INVALID_INPUT`, `UNAUTHENTICATED`, `INVALID_TOKEN`, `FORBIDDEN`,
    /// `NOT_FOUND`, `CONFLICT`, `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`,
    /// `TOO_MANY_ATTEMPTS` or `INTERNAL`.
    pub code: String,
    /// Human-readable text; never internal details.
    pub message: String,
}

/// An RFC 6749 §5.2 error body, answered by the protocol endpoints.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "the code is not valid"}))]
pub struct ProtocolErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`, `invalid_token` or
    /// `server_error`.
    pub error: String,
    /// Human-readable text.
    pub error_description: String,
}

/// A token request (RFC 6749 §4.1.3, §6, §4.4; RFC 8707 `resource`), form-encoded. An app
/// authenticates with HTTP Basic or, when registered for `client_secret_post`, with
/// `client_id` and `client_secret` here; a public app sends only `client_id`.
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    #[schema(example = "authorization_code")]
    pub grant_type: String,
    /// The authorization code (`authorization_code`).
    pub code: Option<String>,
    /// The redirect URI the code was issued for (`authorization_code`).
    pub redirect_uri: Option<String>,
    /// The PKCE verifier (`authorization_code`, when a challenge was sent).
    pub code_verifier: Option<String>,
    /// The refresh token (`refresh_token`).
    pub refresh_token: Option<String>,
    /// A narrower scope (`refresh_token`, `client_credentials`).
    pub scope: Option<String>,
    /// The resource server the access token is for (RFC 8707): for `client_credentials` one of
    /// the app's `resources`; for the code and refresh grants only the one the authorization
    /// request named.
    pub resource: Option<String>,
    /// The app's client id (public apps and `client_secret_post`).
    pub client_id: Option<String>,
    /// The app's secret (`client_secret_post` only).
    pub client_secret: Option<String>,
}

/// A revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1) request, form-encoded; the
/// app authenticates as at `/token` (introspection is for confidential apps only).
#[derive(Serialize, ToSchema)]
pub struct TokenHintForm {
    /// The token in question.
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
    /// The app's client id (public apps, at `/revoke` only, and `client_secret_post`).
    pub client_id: Option<String>,
    /// The app's secret (`client_secret_post` only).
    pub client_secret: Option<String>,
}

/// A userinfo request that carries the access token in the body (RFC 6750 §2.2).
#[derive(Serialize, ToSchema)]
pub struct UserinfoForm {
    /// The app's access token.
    pub access_token: String,
}

/// The parameter names of a documented form (its schema's properties). The protocol endpoints
/// read their forms by name through these lists (`oidc::token::Form`), so that a parameter a
/// handler reads is one the document declares, and `openapi.json`'s drift test covers it.
pub fn form_fields<T: utoipa::PartialSchema>() -> Vec<String> {
    match T::schema() {
        utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(object)) => {
            object.properties.into_keys().collect()
        }
        _ => Vec::new(),
    }
}

/// Documents what a layer that refuses control characters in the URL adds to every operation
/// of `router`: a 400 whose body is the schema `error_body` (unless the operation already
/// documents one).
pub fn refuses_control_characters<S>(
    mut router: OpenApiRouter<S>,
    error_body: &str,
) -> OpenApiRouter<S>
where
    S: Send + Sync + Clone + 'static,
{
    let refusal = ResponseBuilder::new()
        .description("A control character in the URL, or another malformed request")
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name(error_body))),
        )
        .build();
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .entry("400".into())
                .or_insert_with(|| refusal.clone().into());
        }
    }
    router
}

/// The document as served, rendered once.
#[derive(Clone)]
pub struct Document(Arc<str>);

impl Document {
    /// Completes the generated document (servers, security schemes, tags) and renders it.
    pub fn new(mut api: OpenApi) -> Self {
        api.info.title = "idgraph REST and protocol API".into();
        api.info.description = Some(
            "The REST compatibility shim of idgraph (apps, consent, connections) and its OAuth \
             2.0 / OpenID Connect protocol endpoints. Management routes answer errors as \
             `{\"code\",\"message\"}`; protocol routes as RFC 6749 `{\"error\",\"error_description\"}`."
                .into(),
        );
        api.info.version = env!("CARGO_PKG_VERSION").into();
        api.info.contact = None;
        api.info.license = Some(utoipa::openapi::License::new("MIT"));
        api.servers = Some(vec![Server::new("/")]);
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            USER_BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A signed-in user's first-party session token; an operation lists the \
                         scope it needs (the scope `all` grants every one). Administration \
                         also needs the role `oauth` or `admin`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            APP_ACCESS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token issued to an app at `/token`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLIENT_BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "An app's client id and secret (RFC 6749 §2.3.1). Apps registered for \
                         `client_secret_post` send them in the form instead; public apps send \
                         only `client_id`.",
                    ))
                    .build(),
            ),
        );
        api.tags = Some(
            [
                ("apps", "OAuth apps: registration, secrets, logos"),
                ("connections", "Consent and the apps a user has connected"),
                ("protocol", "OAuth 2.0 and OpenID Connect endpoints"),
                ("health", "Probes"),
            ]
            .into_iter()
            .map(|(name, description)| {
                TagBuilder::new()
                    .name(name)
                    .description(Some(description))
                    .build()
            })
            .collect(),
        );
        let json = api
            .to_pretty_json()
            .expect("an OpenAPI document serialises");
        Self(format!("{json}\n").into())
    }

    /// The rendered JSON.
    pub fn json(&self) -> &str {
        &self.0
    }
}

/// `GET /api/oauth/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json", operation_id = "getOpenApi",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn serve(Extension(document): Extension<Document>) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0.to_string(),
    )
        .into_response();
    crate::edge::cors::allow_any(&mut response);
    response
}
