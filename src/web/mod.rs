//! idgraph's own web pages: the authorization endpoint (`GET`/`POST /oauth/authorize`) with
//! its sign-in and consent pages, and sign-out (`/oauth/logout`). Thin like the other
//! transports: the rules live in `service::authorize` and `service::browser`.
//!
//! `POST /oauth/authorize` serves two purposes. Without an `action` field it is an authorization
//! request sent as a form (OpenID Connect Core §3.1.2.1); it is answered with a 303 to the same
//! request as a `GET`, because a `SameSite=Lax` cookie does not travel with a cross-site POST.
//! With `action` (`signin`, `approve`, `deny`) it is one of our own forms, which carry the
//! request in a hidden `request` field and a CSRF token bound to the browser's cookie.

mod logout;
pub mod pages;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use url::form_urlencoded;

use crate::domain::authorize::AuthorizeParams;
use crate::domain::oauth::OidcScope;
use crate::domain::secs;
use crate::error::AppError;
use crate::service::authorize::{self, Pending, Step};
use crate::service::browser::{self, BrowserSession, COOKIE, csrf_matches, csrf_token};
use crate::state::AppState;
use pages::{ConsentPage, PageError, SignInPage, message, page, see_other};

/// Largest form accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The hosted pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(authorize_get).post(authorize_post))
        .route("/oauth/logout", get(logout::confirm).post(logout::sign_out))
        .route("/oauth/style.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// What a request tells about the browser: its cookie (when well-formed) and address.
struct Browser {
    cookie: Option<String>,
    addr: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            cookie: cookie_value(&parts.headers),
            addr: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        })
    }
}

impl Browser {
    /// The cookie, when the form's CSRF token was issued for it; `None` means the form must be
    /// refused.
    fn vouched_cookie(&self, form: &[(String, String)]) -> Option<&str> {
        self.cookie
            .as_deref()
            .filter(|cookie| csrf_matches(cookie, field(form, "csrf")))
    }
}

/// The first value of a form field; empty when absent.
fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| browser::is_cookie_value(value))
}

/// `Set-Cookie` for `value`: host-only, `/oauth` only, never readable by scripts, not sent on
/// cross-site subrequests, `Secure` when the issuer is https. `max_age` of `None` makes a
/// cookie that ends with the browser; `Some(0)` deletes it.
fn set_cookie(state: &AppState, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut cookie = format!("{COOKIE}={value}; Path=/oauth; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if state.config.secure_cookies() {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The origin (or, for a custom scheme, `scheme:`) that forms may be redirected to.
fn form_target(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let origin = url.origin();
    Some(if origin.is_tuple() {
        origin.ascii_serialization()
    } else {
        format!("{}:", url.scheme())
    })
}

fn display_name(user: &crate::db::entities::users::Model) -> &str {
    if user.name.trim().is_empty() {
        &user.username
    } else {
        &user.name
    }
}

/// Renders the sign-in page; `error` and `username` refill it after a failed attempt.
fn sign_in_page(
    pending: &Pending,
    cookie: &str,
    status: StatusCode,
    error: &str,
    username: Option<&str>,
) -> Response {
    let request = pending.params.to_query();
    let username = username.or(pending.request.login_hint.as_deref());
    page(
        status,
        &SignInPage {
            app_name: &pending.app.name,
            error,
            csrf: &csrf_token(cookie),
            request: &request,
            username: username.unwrap_or_default(),
        },
        form_target(&pending.app.redirect_uri).as_deref(),
    )
}

/// Turns a step into a response. `cookie` is the browser's cookie value, if it has one;
/// a page with a form gets a fresh value when it has none.
fn render(
    state: &AppState,
    step: Step,
    cookie: Option<&str>,
    session: Option<&BrowserSession>,
) -> Response {
    match step {
        Step::Redirect(location) => see_other(&location),
        Step::ErrorPage(text) => message(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            &text,
        ),
        Step::SignIn(pending) => {
            let fresh = cookie.is_none().then(browser::new_cookie_value);
            let value = cookie.or(fresh.as_deref()).unwrap_or_default();
            let mut response = sign_in_page(&pending, value, StatusCode::OK, "", None);
            if let Some(fresh) = &fresh {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, set_cookie(state, fresh, None));
            }
            response
        }
        Step::Consent(pending) => match (cookie, session) {
            (Some(cookie), Some(session)) => consent_page(&pending, cookie, session),
            _ => PageError(AppError::internal(anyhow::anyhow!(
                "consent page without a session"
            )))
            .into_response(),
        },
    }
}

fn consent_page(pending: &Pending, cookie: &str, session: &BrowserSession) -> Response {
    let request = pending.params.to_query();
    let target = form_target(&pending.app.redirect_uri);
    page(
        StatusCode::OK,
        &ConsentPage {
            app_name: &pending.app.name,
            client_id: &pending.app.client_id,
            has_logo: !pending.app.logo.is_empty(),
            app_url: &pending.app.url,
            scopes: OidcScope::DISPLAY_ORDER
                .into_iter()
                .filter(|scope| pending.request.scopes.contains(*scope))
                .map(OidcScope::describe)
                .collect(),
            redirect_origin: target.as_deref().unwrap_or(&pending.app.redirect_uri),
            csrf: &csrf_token(cookie),
            request: &request,
            display_name: display_name(&session.user),
            username: &session.user.username,
        },
        target.as_deref(),
    )
}

async fn current_session(
    state: &AppState,
    cookie: Option<&str>,
) -> Result<Option<BrowserSession>, PageError> {
    Ok(match cookie {
        Some(value) => browser::find(state, value).await?,
        None => None,
    })
}

/// `GET /oauth/authorize`: the authorization request.
async fn authorize_get(
    State(state): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = AuthorizeParams::from_query(query.as_deref().unwrap_or_default());
    let cookie = browser.cookie.as_deref();
    let session = current_session(&state, cookie).await?;
    let step = authorize::next_step(&state, params, session.as_ref(), false).await?;
    Ok(render(&state, step, cookie, session.as_ref()))
}

fn refused_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form did not come from this page, it has expired, or this browser blocks cookies. \
         Go back, reload the page and try again.",
    )
}

/// `POST /oauth/authorize`: an authorization request sent as a form, or one of our forms.
async fn authorize_post(
    State(state): State<AppState>,
    browser: Browser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let action = field(&form, "action");
    if action.is_empty() {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        return Ok(see_other(&format!("/oauth/authorize?{query}")));
    }
    let params = AuthorizeParams::from_query(field(&form, "request"));
    let Some(cookie) = browser.vouched_cookie(&form) else {
        return Ok(refused_form());
    };
    match action {
        "signin" => {
            let pending = match authorize::check(&state, params).await? {
                Ok(pending) => pending,
                Err(step) => return Ok(render(&state, step, Some(cookie), None)),
            };
            let username = field(&form, "username").trim();
            let password = field(&form, "password").to_string();
            match browser::sign_in(&state, username, password, browser.addr, Some(cookie)).await {
                Ok((value, session)) => {
                    let step = authorize::decide(&state, pending, Some(&session), true).await?;
                    let mut response = render(&state, step, Some(&value), Some(&session));
                    let max_age = secs(state.config.browser_session_ttl);
                    response.headers_mut().append(
                        header::SET_COOKIE,
                        set_cookie(&state, &value, Some(max_age)),
                    );
                    Ok(response)
                }
                Err(AppError::InvalidCredentials) => Ok(sign_in_page(
                    &pending,
                    cookie,
                    StatusCode::UNAUTHORIZED,
                    "The username or password is not right.",
                    Some(username),
                )),
                Err(err @ AppError::TooManyAttempts { retry_after_secs }) => {
                    let text = format!(
                        "Too many failed attempts. Wait {retry_after_secs} seconds, then try again."
                    );
                    let mut response =
                        sign_in_page(&pending, cookie, err.status(), &text, Some(username));
                    err.add_headers(response.headers_mut());
                    Ok(response)
                }
                Err(other) => Err(other.into()),
            }
        }
        "approve" => {
            let Some(session) = browser::find(&state, cookie).await? else {
                // Signed out (or expired) since the page was shown: start again.
                let step = authorize::next_step(&state, params, None, false).await?;
                return Ok(render(&state, step, Some(cookie), None));
            };
            let step = authorize::approve(&state, params, &session).await?;
            Ok(render(&state, step, Some(cookie), Some(&session)))
        }
        "deny" => {
            let step = authorize::deny(&state, params).await?;
            Ok(render(&state, step, Some(cookie), None))
        }
        _ => Ok(message(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            "The form asked for an unknown action.",
        )),
    }
}

/// `GET /oauth/style.css`.
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
