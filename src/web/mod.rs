//! idgraph's own web pages: the authorization endpoint (`GET`/`POST /oauth/authorize`) with
//! its sign-in and consent pages, and sign-out (`/oauth/logout`). Each handler extracts, calls
//! one service entry point (`service::authorize::authorize` or `sign_out`) and renders what
//! comes back.
//!
//! `POST /oauth/authorize` serves two purposes. Without an `action` field it is an authorization
//! request sent as a form (OpenID Connect Core §3.1.2.1); it is answered with a 303 to the same
//! request as a `GET` (carrying only the authorization parameters), because a `SameSite=Lax`
//! cookie does not travel with a cross-site POST. With `action` (`signin`, `approve`, `deny`) it
//! is one of our own forms, which carry the sealed request in `request` and its seal in `csrf`.

mod admin;
mod logout;
pub mod pages;

use axum::extract::{DefaultBodyLimit, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use secrecy::SecretString;
use url::form_urlencoded;

use crate::domain::authorize::AuthorizeParams;
use crate::edge::ClientAddr;
use crate::edge::input::{RefuseControlCharacters, refusal};
use crate::service::AppState;
use crate::service::authorize::{
    self, AuthorizeView, CookieChange, Interaction, Outcome, SignInFailure,
};
use crate::service::browser::{BrowserContext, COOKIE, cookie_name};
use crate::service::seal::Sealed;
use pages::{ConsentPage, PageError, SignInPage, message, page, see_other};

/// Largest form accepted.
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;

/// The admin console's routes (see [`admin`]); `schemas` are the ones `/graphql` runs.
pub fn console_routes(schemas: crate::graphql::Schemas) -> Router<AppState> {
    admin::routes(schemas)
}

/// The hosted pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(authorize_get).post(authorize_post))
        .route("/oauth/logout", get(logout::confirm).post(logout::sign_out))
        .route("/oauth/style.css", get(stylesheet))
        // One `layer` call (see `crate::app`), outermost first.
        .layer((
            middleware::from_fn(pages::fill_in_headers),
            RefuseControlCharacters(bad_request),
            DefaultBodyLimit::max(MAX_FORM_BYTES),
        ))
}

/// A 400 page saying `text` (a URL with a control character gets one naming the field).
fn bad_request(text: &str) -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "This request cannot be completed",
        text,
    )
}

/// The browser's context: its cookie (when well-formed) and address.
struct Browser(BrowserContext);

impl FromRequestParts<AppState> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        Ok(Self(BrowserContext {
            cookie: crate::edge::auth::session_cookie(&parts.headers, &state.config),
            addr,
        }))
    }
}

/// A posted form's fields. A field holding NUL is refused by name (see [`Fields::nul`]).
struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of a field; empty when absent.
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first field whose name or value holds NUL.
    fn nul(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n.contains('\0') || v.contains('\0'))
            .map(|(n, _)| n.as_str())
    }

    /// The form's sealed request and seal.
    fn sealed(&self) -> Sealed {
        Sealed {
            payload: self.get("request").to_string(),
            tag: self.get("csrf").to_string(),
        }
    }
}

/// `Set-Cookie` for a change: host-only, for the whole origin (the hosted pages, the admin
/// console and GraphiQL share the sign-in), never readable by scripts, not sent on cross-site
/// subrequests, `Secure` and `__Host-` named when the issuer is https ([`cookie_name`]).
fn set_cookie(state: &AppState, change: &CookieChange) -> HeaderValue {
    let (value, max_age) = match change {
        CookieChange::Anchor(value) => (value.as_str(), None),
        CookieChange::SignedIn { value, max_age } => (value.as_str(), Some(*max_age)),
        CookieChange::Clear => ("", Some(0)),
    };
    let name = cookie_name(&state.config);
    cookie_header(state, name, value, "/", max_age)
}

fn cookie_header(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if state.config.secure_cookies() {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds the outcome's cookie change to a rendered response. Every change also expires the
/// cookies earlier releases set: with `Path=/oauth`, which would otherwise shadow the new one on
/// the hosted pages, and on https the one named without the `__Host-` prefix.
pub(crate) fn with_cookie(
    state: &AppState,
    mut response: Response,
    cookie: Option<&CookieChange>,
) -> Response {
    if let Some(change) = cookie {
        let headers = response.headers_mut();
        headers.append(header::SET_COOKIE, set_cookie(state, change));
        headers.append(
            header::SET_COOKIE,
            cookie_header(state, COOKIE, "", "/oauth", Some(0)),
        );
        if cookie_name(&state.config) != COOKIE {
            headers.append(
                header::SET_COOKIE,
                cookie_header(state, COOKIE, "", "/", Some(0)),
            );
        }
    }
    response
}

fn refused_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form did not come from this page, it has expired, or this browser blocks cookies. \
         Go back, reload the page and try again.",
    )
}

/// Renders what the authorization endpoint answered.
fn render(state: &AppState, outcome: Outcome<AuthorizeView>) -> Response {
    let response = match outcome.view {
        AuthorizeView::Redirect(location) => see_other(&location),
        AuthorizeView::Error(text) => bad_request(&text),
        AuthorizeView::FormRefused => refused_form(),
        AuthorizeView::SignIn(view) => {
            let (status, error, retry_after) = match view.failure {
                None => (StatusCode::OK, String::new(), None),
                Some(SignInFailure::WrongCredentials) => (
                    StatusCode::UNAUTHORIZED,
                    "The username or password is not right.".into(),
                    None,
                ),
                Some(SignInFailure::TooManyAttempts { retry_after_secs }) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed attempts. Wait {retry_after_secs} seconds, then try again."
                    ),
                    Some(retry_after_secs),
                ),
            };
            let mut response = page(
                status,
                &SignInPage {
                    app_name: &view.app.name,
                    error: &error,
                    csrf: &view.form.tag,
                    request: &view.form.payload,
                    username: &view.username,
                },
                Some(&view.app.client_origin),
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        AuthorizeView::Consent(view) => page(
            StatusCode::OK,
            &ConsentPage {
                app_name: &view.app.name,
                client_id: &view.app.client_id,
                has_logo: view.app.has_logo,
                app_url: &view.app.url,
                scopes: view.scopes.clone(),
                resource: view.resource.as_deref(),
                redirect_origin: &view.app.client_origin,
                csrf: &view.form.tag,
                request: &view.form.payload,
                display_name: &view.signed_in_as.display_name,
                username: &view.signed_in_as.username,
                restart_query: &view.restart_query,
            },
            Some(&view.app.client_origin),
        ),
    };
    with_cookie(state, response, outcome.cookie.as_ref())
}

/// `GET /oauth/authorize`: the authorization request.
async fn authorize_get(
    State(state): State<AppState>,
    Browser(context): Browser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = AuthorizeParams::from_query(query.as_deref().unwrap_or_default());
    let outcome =
        authorize::authorize(&state, &context, Interaction::Request(Box::new(params))).await?;
    Ok(render(&state, outcome))
}

/// `POST /oauth/authorize`: an authorization request sent as a form, or one of our forms.
async fn authorize_post(
    State(state): State<AppState>,
    Browser(context): Browser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let fields = Fields(form);
    if let Some(name) = fields.nul() {
        return Ok(bad_request(&refusal(&crate::edge::input::printable(name))));
    }
    let interaction = match fields.get("action") {
        "" => {
            // Only the authorization request's own parameters travel into the URL: a password
            // or anything else posted along must never end up in a Location or a history.
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(
                    fields
                        .0
                        .iter()
                        .filter(|(name, _)| AuthorizeParams::is_parameter(name)),
                )
                .finish();
            return Ok(see_other(&format!("/oauth/authorize?{query}")));
        }
        "signin" => Interaction::SignIn {
            form: fields.sealed(),
            username: fields.get("username").to_string(),
            password: SecretString::from(fields.get("password")),
        },
        "approve" => Interaction::Approve(fields.sealed()),
        "deny" => Interaction::Deny(fields.sealed()),
        _ => return Ok(bad_request("The form asked for an unknown action.")),
    };
    let outcome = authorize::authorize(&state, &context, interaction).await?;
    Ok(render(&state, outcome))
}

/// `GET /oauth/style.css`: the one stylesheet of every page.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}
