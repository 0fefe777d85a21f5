//! Sign-out: `GET /oauth/logout` asks (a form, no state change); `POST /oauth/logout` ends the
//! browser session and returns to the authorization request it came from, if any.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::pages::{LogoutPage, PageError, message, page, see_other};
use super::{Browser, current_session, display_name, field, refused_form, set_cookie};
use crate::domain::authorize::AuthorizeParams;
use crate::service::browser::{self, csrf_token};
use crate::state::AppState;

/// Query of `GET /oauth/logout`.
#[derive(serde::Deserialize)]
pub(super) struct LogoutQuery {
    /// An authorization request to return to after signing out.
    #[serde(rename = "continue", default)]
    continue_query: String,
}

/// Keeps only the authorization parameters of a `continue` value, so that signing out can only
/// ever lead back to our own authorization endpoint.
fn sanitize_continue(text: &str) -> String {
    AuthorizeParams::from_query(text).to_query()
}

/// `GET /oauth/logout`: asks for confirmation; changes nothing.
pub(super) async fn confirm(
    State(state): State<AppState>,
    browser: Browser,
    Query(query): Query<LogoutQuery>,
) -> Result<Response, PageError> {
    let cookie = browser.cookie.as_deref();
    let Some(session) = current_session(&state, cookie).await? else {
        return Ok(message(
            StatusCode::OK,
            "Signed out",
            "You are not signed in to idgraph.",
        ));
    };
    Ok(page(
        StatusCode::OK,
        &LogoutPage {
            display_name: display_name(&session.user),
            username: &session.user.username,
            csrf: &csrf_token(cookie.unwrap_or_default()),
            continue_query: &sanitize_continue(&query.continue_query),
        },
        None,
    ))
}

/// `POST /oauth/logout`: signs the browser out, then returns to the authorization request it
/// came from, if any.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    browser: Browser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let Some(cookie) = browser.vouched_cookie(&form) else {
        return Ok(refused_form());
    };
    browser::sign_out(&state, cookie).await?;
    let next = sanitize_continue(field(&form, "continue"));
    let mut response = if next.is_empty() {
        message(
            StatusCode::OK,
            "Signed out",
            "You are signed out of idgraph.",
        )
    } else {
        see_other(&format!("/oauth/authorize?{next}"))
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, "", Some(0)));
    Ok(response)
}
