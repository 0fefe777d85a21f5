//! The admin console, `/admin`: server-rendered pages (askama) with htmx for partial updates,
//! for people with role `admin` or `oauth`.
//!
//! - **Sign-in** is the hosted sign-in session (see [`crate::service::console`]); the console's
//!   own sign-in form opens one the same way the authorization endpoint's does.
//! - **Data** comes only from GraphQL: each page runs committed operations of
//!   `frontend-queries/` in-process as the signed-in person ([`gql`]). The handlers never read
//!   the database or call a service themselves; what a person sees and may do follows from what
//!   the schema lets their roles do, and the navigation hides what it would refuse.
//! - **Forms**: every state-changing form carries the console token (a MAC of the cookie);
//!   without it the request is refused with 403 and changes nothing. Errors from GraphQL are
//!   shown next to the field they concern.
//! - **Scripts**: htmx and the console's own `console.js` (copy buttons, logo preview) come
//!   from the binary (`static/admin/`); pages run under a policy that allows scripts, styles,
//!   requests and images from this origin only, and no inline script. Without scripts every
//!   page still works as plain links and forms.

mod apps;
mod audit;
mod gql;
mod keys;
mod users;

use askama::Template;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use secrecy::SecretString;
use serde::Deserialize;

use crate::edge::ClientAddr;
use crate::edge::auth::session_cookie;
use crate::edge::input::{RefuseControlCharacters, refusal};
use crate::error::AppError;
use crate::graphql::Schemas;
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::authorize::CookieChange;
use crate::service::browser::{BrowserContext, new_cookie_value};
use crate::service::console::{self, ConsoleUser};
use crate::service::logos::UPLOAD_BODY_LIMIT;
use gql::{Gql, Problem};

use super::pages::message;
use super::{MAX_FORM_BYTES, with_cookie};

/// The console's routes; `schemas` are the ones `/graphql` runs.
pub fn routes(schemas: Schemas) -> Router<AppState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/signin", get(sign_in_page).post(sign_in))
        .route("/admin/signout", post(sign_out))
        .route("/admin/assets/{file}", get(asset))
        .merge(users::routes())
        .merge(keys::routes())
        .merge(audit::routes())
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        // Last, so that the logo upload's larger limit is the only one on its route.
        .merge(apps::routes(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        // One `layer` call (see `crate::app`), outermost first. What the framework answers by
        // itself (a method not allowed, a form over the limit) carries the pages' policy and
        // headers too.
        .layer((
            middleware::from_fn(super::pages::fill_in_headers),
            Extension(schemas),
            RefuseControlCharacters(super::bad_request),
        ))
}

/// The Content-Security-Policy of every console page: scripts, styles, images and requests from
/// this origin only (images also as `data:`, for the logo preview), no inline script, forms
/// post only here, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What every console page shows around its content.
pub struct Chrome {
    /// The section the page belongs to, for the navigation: `apps`, `users`, `keys`, `audit`.
    pub section: &'static str,
    /// Who is signed in.
    pub display_name: String,
    pub username: String,
    /// Role `admin`: users, keys and the audit trail.
    pub is_admin: bool,
    /// The console token every form carries.
    pub token: String,
}

/// A page under the console's policy, with the headers every page carries.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    super::pages::page_under(status, template, HeaderValue::from_static(CSP))
}

pub use super::pages::see_other;

/// A page that says what went wrong, with the status the problem calls for.
#[derive(Template)]
#[template(path = "admin/problem.html")]
struct ProblemPage<'a> {
    chrome: &'a Chrome,
    title: &'a str,
    problems: &'a [Problem],
}

/// Renders problems that concern no form (a missing app, a refused operation).
pub fn problem_page(chrome: &Chrome, title: &str, problems: &[Problem]) -> Response {
    let status = problems
        .first()
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, Problem::status);
    render(
        status,
        &ProblemPage {
            chrome,
            title,
            problems,
        },
    )
}

/// The person using the console, with the means to run operations as them. Extracting it
/// sends a browser that is not signed in to the sign-in page, and refuses a person whose roles
/// include neither `admin` nor `oauth`.
pub struct Console {
    pub user: ConsoleUser,
    pub cookie: String,
    pub gql: Gql,
}

impl Console {
    /// The page frame for `section`.
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            section,
            display_name: self.user.signed_in_as.display_name.clone(),
            username: self.user.signed_in_as.username.clone(),
            is_admin: self.user.is_admin(),
            token: console::form_token(&self.gql.state, &self.cookie),
        }
    }

    /// Checks a posted form's console token: the refusal page when it does not match.
    pub fn refuse_forged(&self, token: &str) -> Option<Response> {
        if console::check_form_token(&self.gql.state, &self.cookie, token) {
            return None;
        }
        self.gql.state.metrics.security(SecurityEvent::CsrfRefused);
        let refusal = [Problem::general("FORBIDDEN", REFUSED_FORM.into())];
        Some(problem_page(
            &self.chrome(""),
            "This form has expired",
            &refusal,
        ))
    }
}

const REFUSED_FORM: &str = "The form did not come from this console, it has expired, or this \
    browser blocks cookies. Go back, reload the page and try again. Nothing was changed.";

/// The refusal of a form posted without a session (sign-in, sign-out).
fn refused_form(state: &AppState) -> Response {
    state.metrics.security(SecurityEvent::CsrfRefused);
    message(StatusCode::FORBIDDEN, "This form has expired", REFUSED_FORM)
}

/// "Your account cannot use the console."
#[derive(Template)]
#[template(path = "admin/refused.html")]
struct RefusedPage<'a> {
    display_name: &'a str,
    username: &'a str,
    token: &'a str,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let cookie = session_cookie(&parts.headers, &state.config);
        let found = console::signed_in(state, cookie.as_deref())
            .await
            .map_err(|err| super::pages::PageError(err).into_response())?;
        let (Some(user), Some(cookie)) = (found, cookie) else {
            let htmx = parts.headers.contains_key("hx-request");
            let next = parts.uri.path_and_query().map_or("/admin", |p| p.as_str());
            let next = if parts.method == axum::http::Method::GET {
                next
            } else {
                "/admin"
            };
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            let location = format!("/admin/signin?{query}");
            if htmx {
                // htmx follows a redirect inside its request and would swap the sign-in page
                // into a fragment; this header makes it load the page whole instead.
                let mut response = StatusCode::NO_CONTENT.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert("hx-redirect", value);
                }
                return Err(response);
            }
            return Err(see_other(&location));
        };
        if !user.may_use_console() {
            return Err(render(
                StatusCode::FORBIDDEN,
                &RefusedPage {
                    display_name: &user.signed_in_as.display_name,
                    username: &user.signed_in_as.username,
                    token: &console::form_token(state, &cookie),
                },
            ));
        }
        let Extension(schemas) = Extension::<Schemas>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state)
            .await
            .map_err(|never| match never {})?;
        Ok(Self {
            gql: Gql {
                schemas,
                state: state.clone(),
                principal: user.principal.clone(),
                addr: ClientAddr(addr),
            },
            user,
            cookie,
        })
    }
}

/// `GET /admin`: the first section the person may use.
async fn home(console: Console) -> Response {
    see_other(if console.user.is_admin() {
        "/admin/users"
    } else {
        "/admin/apps"
    })
}

/// Where to go after signing in: a console path (visible ASCII, as a request line carries it),
/// nothing else.
fn next_path(next: &str) -> &str {
    let ours = (next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?"))
        && !next.contains("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if ours { next } else { "/admin" }
}

/// The console's sign-in page.
#[derive(Template)]
#[template(path = "admin/signin.html")]
struct SignInPage<'a> {
    error: &'a str,
    token: &'a str,
    next: &'a str,
    username: &'a str,
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /admin/signin`: the form, bound to the browser's cookie (set here when it has none, so
/// that the form cannot be posted from another site: no login CSRF).
async fn sign_in_page(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let (cookie, change) = match session_cookie(&headers, &state.config) {
        Some(cookie) => (cookie, None),
        None => {
            let value = new_cookie_value();
            (value.clone(), Some(CookieChange::Anchor(value)))
        }
    };
    let response = render(
        StatusCode::OK,
        &SignInPage {
            error: "",
            token: &console::form_token(&state, &cookie),
            next: next_path(&query.next),
            username: "",
        },
    );
    with_cookie(&state, response, change.as_ref())
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/signin`.
async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let cookie = session_cookie(&headers, &state.config);
    let Some(cookie) =
        cookie.filter(|cookie| console::check_form_token(&state, cookie, &form.token))
    else {
        return refused_form(&state);
    };
    let context = BrowserContext {
        cookie: Some(cookie.clone()),
        addr,
    };
    let next = next_path(&form.next);
    let again = |status: StatusCode, error: &str| {
        render(
            status,
            &SignInPage {
                error,
                token: &form.token,
                next,
                username: &form.username,
            },
        )
    };
    // A username is bound into SQL (the back-off's key, the user's look-up), where PostgreSQL
    // refuses NUL: refuse it here, naming the field, as the other sign-in paths do.
    if form.username.contains('\0') {
        return again(StatusCode::BAD_REQUEST, &refusal("username"));
    }
    match console::sign_in(
        &state,
        &context,
        &form.username,
        SecretString::from(form.password.as_str()),
    )
    .await
    {
        Ok(value) => {
            let change = CookieChange::SignedIn {
                value,
                max_age: crate::domain::secs(state.config.browser_session_ttl),
            };
            with_cookie(&state, see_other(next), Some(&change))
        }
        Err(AppError::InvalidCredentials) => again(
            StatusCode::UNAUTHORIZED,
            "The username or password is not right.",
        ),
        Err(AppError::TooManyAttempts { retry_after_secs }) => {
            let mut response = again(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many failed attempts. Wait {retry_after_secs} seconds, then try again."
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Err(other) => super::pages::PageError(other).into_response(),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `POST /admin/signout`: ends the browser session (a person refused the console may sign out
/// too, so this takes the cookie rather than a [`Console`]).
async fn sign_out(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let Some(cookie) = session_cookie(&headers, &state.config)
        .filter(|cookie| console::check_form_token(&state, cookie, &form.token))
    else {
        return refused_form(&state);
    };
    if let Err(err) = console::sign_out(&state, &cookie).await {
        return super::pages::PageError(err).into_response();
    }
    with_cookie(
        &state,
        see_other("/admin/signin"),
        Some(&CookieChange::Clear),
    )
}

/// `GET /admin/assets/{file}`: htmx and the console's script, from the binary.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let body: &'static [u8] = match file.as_str() {
        "htmx.min.js" => include_bytes!("../../../static/admin/htmx.min.js"),
        "console.js" => include_bytes!("../../../static/admin/console.js"),
        _ => return AppError::NotFound("asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A state-changing form from the console: the person using it and the form's fields, whose
/// console token has been checked (a forged or stale form is answered with the refusal page
/// before any handler runs).
pub struct Posted {
    pub console: Console,
    pub fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        // A body that is not a form carries no token: refused like a forged form.
        let fields = match Form::<Vec<(String, String)>>::from_request(request, state).await {
            Ok(Form(fields)) => Fields(fields),
            Err(_) => Fields(Vec::new()),
        };
        if let Some(refused) = console.refuse_forged(fields.get("token")) {
            return Err(refused);
        }
        Ok(Self { console, fields })
    }
}

/// A page of a GraphQL connection, as the listing operations select it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T> {
    pub edges: Vec<Edge<T>>,
    pub page_info: PageInfo,
}

#[derive(Deserialize)]
pub struct Edge<T> {
    pub node: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl<T> Listing<T> {
    /// The link to the next page: `path` with `query` and `after`; empty on the last page.
    pub fn next_link(&self, path: &str, query: &[(&str, &str)]) -> String {
        match (&self.page_info.has_next_page, &self.page_info.end_cursor) {
            (true, Some(cursor)) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .append_pair("after", cursor)
                    .finish();
                format!("{path}?{query}")
            }
            _ => String::new(),
        }
    }

    /// The nodes, in order.
    pub fn nodes(self) -> impl Iterator<Item = T> {
        self.edges.into_iter().map(|edge| edge.node)
    }
}

/// A searchable listing's query: `search` and the cursor `after`.
#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    after: String,
}

impl SearchQuery {
    /// The search, trimmed.
    pub fn search(&self) -> String {
        self.search.trim().to_string()
    }

    /// The listing operation's variables: `first`, `after` and `search`, each only when given.
    pub fn variables(&self, first: i64) -> serde_json::Value {
        let search = self.search();
        serde_json::json!({
            "first": first,
            "after": (!self.after.is_empty()).then_some(&self.after),
            "search": (!search.is_empty()).then_some(&search),
        })
    }
}

/// A form's fields in order (repeated names kept: checkboxes, lists).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Which problems concern which field, for a form.
pub struct Errors(pub Vec<Problem>);

impl Errors {
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// The messages about `field`, joined.
    pub fn of(&self, field: &str) -> String {
        let found: Vec<&str> = self
            .0
            .iter()
            .filter(|p| p.field == field)
            .map(|p| p.message.as_str())
            .collect();
        found.join(" ")
    }

    /// Problems about no field this form has (`fields`), shown above it.
    pub fn general(&self, fields: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| !fields.contains(&p.field.as_str()))
            .map(|p| p.full.clone())
            .collect()
    }

    /// The status a form answers with.
    pub fn status(&self) -> StatusCode {
        self.0.first().map_or(StatusCode::OK, Problem::status)
    }
}

/// A date as pages show it, from GraphQL's RFC 3339 text: `2026-11-30 14:05 UTC`.
pub fn when(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text).map_or_else(
        |_| text.to_string(),
        |at| {
            at.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        },
    )
}

/// A path segment, percent-encoded.
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
