//! The pages, rendered by askama from `templates/`, and the headers every page and redirect
//! carries: a strict Content-Security-Policy (no scripts at all), no framing, no caching, no
//! referrer.

use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The sign-in page.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage<'a> {
    pub app_name: &'a str,
    /// Empty, or what went wrong with the last attempt.
    pub error: &'a str,
    pub csrf: &'a str,
    /// The authorization request, as a query string.
    pub request: &'a str,
    pub username: &'a str,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub client_id: &'a str,
    pub has_logo: bool,
    pub app_url: &'a str,
    /// Each requested scope in plain words.
    pub scopes: Vec<String>,
    /// The API the access is for, if the app named one.
    pub resource: Option<&'a str>,
    pub redirect_origin: &'a str,
    pub csrf: &'a str,
    pub request: &'a str,
    pub display_name: &'a str,
    pub username: &'a str,
    /// The authorization request as a query, to start over after signing out.
    pub restart_query: &'a str,
}

/// The sign-out confirmation.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub display_name: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    /// An authorization request to return to afterwards, as a query string; may be empty.
    pub continue_query: &'a str,
}

/// "Sign out?" for an app's logout request (RP-Initiated Logout 1.0).
#[derive(Template)]
#[template(path = "end_session.html")]
pub struct EndSessionPage<'a> {
    pub display_name: &'a str,
    pub username: &'a str,
    /// The app asking; empty when it did not name itself.
    pub app_name: &'a str,
    pub csrf: &'a str,
    /// The checked request, sealed.
    pub request: &'a str,
}

/// A title and a sentence: errors and confirmations.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
}

/// Headers for every response of the hosted pages (beside the Content-Security-Policy).
const PAGE_HEADERS: [(HeaderName, &str); 5] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::PRAGMA, "no-cache"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

/// Gives `response` the [`PAGE_HEADERS`].
fn protect(response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in PAGE_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The Content-Security-Policy of every hosted response: nothing runs, nothing frames us, and
/// forms post only to us (and, when `form_target` is given, the client's origin, where a form
/// may end up after a redirect: browsers check that against `form-action`).
fn csp(form_target: Option<&str>) -> HeaderValue {
    let form_action = match form_target.filter(|origin| !origin.is_empty()) {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".into(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

/// A page with `status`. `form_target` is an origin the page's forms may end up at after a
/// redirect (the client's).
pub fn page(status: StatusCode, template: &impl Template, form_target: Option<&str>) -> Response {
    page_under(status, template, csp(form_target))
}

/// A page with `status` under the Content-Security-Policy `policy` (the admin console's allows
/// its own scripts), with the headers every page carries.
pub fn page_under(status: StatusCode, template: &impl Template, policy: HeaderValue) -> Response {
    let html = match template.render() {
        Ok(html) => html,
        Err(err) => return PageError(AppError::internal(err)).into_response(),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, policy);
    protect(&mut response);
    response
}

/// Gives a response the hosted pages' headers where its handler set none: axum's own refusals
/// (a form over the size limit, a wrong content type, a method not allowed) are plain text
/// that no handler of ours wrote. A header a handler set (the stylesheet's `Cache-Control`,
/// a page's own policy) is kept.
pub async fn fill_in_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp(None));
        for (name, value) in PAGE_HEADERS {
            headers
                .entry(name)
                .or_insert(HeaderValue::from_static(value));
        }
    }
    response
}

/// A message page.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let is_error = status.is_client_error() || status.is_server_error();
    page(
        status,
        &MessagePage {
            title,
            message: text,
            is_error,
        },
        None,
    )
}

/// A 303 See Other to `location`.
pub fn see_other(location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return PageError(AppError::internal(anyhow::anyhow!("unencodable redirect")))
            .into_response();
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    headers.insert(header::CONTENT_SECURITY_POLICY, csp(None));
    protect(&mut response);
    response
}

/// An error shown as a page rather than as JSON.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log_if_internal();
        let status = self.0.status();
        let text = match &self.0 {
            AppError::Internal(_) => "Something went wrong on our side. Please try again.".into(),
            other => other.to_string(),
        };
        let mut response = message(status, "Something went wrong", &text);
        self.0.add_headers(response.headers_mut());
        response
    }
}
