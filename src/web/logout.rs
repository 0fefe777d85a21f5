//! Sign-out: `GET /oauth/logout` asks (a form, no state change); `POST /oauth/logout` ends the
//! browser session and returns to the authorization request it came from, if any.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::pages::{LogoutPage, PageError, message, page, see_other};
use super::{Browser, Fields, refused_form, with_cookie};
use crate::service::AppState;
use crate::service::authorize::{self, SignOut, SignOutView};

/// `GET /oauth/logout`: asks for confirmation; changes nothing.
pub(super) async fn confirm(
    State(state): State<AppState>,
    Browser(context): Browser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    // `continue` holds an authorization request to return to after signing out.
    let continue_query = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "continue")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let interaction = SignOut::Ask { continue_query };
    let outcome = authorize::sign_out(&state, &context, interaction).await?;
    Ok(render(&state, outcome))
}

/// `POST /oauth/logout`: signs the browser out, then returns to the authorization request it
/// came from, if any.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    Browser(context): Browser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let fields = Fields(form);
    let interaction = SignOut::Confirm {
        token: fields.get("csrf").to_string(),
        continue_query: fields.get("continue").to_string(),
    };
    let outcome = authorize::sign_out(&state, &context, interaction).await?;
    Ok(render(&state, outcome))
}

fn render(state: &AppState, outcome: authorize::Outcome<SignOutView>) -> Response {
    let response = match outcome.view {
        SignOutView::NotSignedIn => message(
            StatusCode::OK,
            "Signed out",
            "You are not signed in to idgraph.",
        ),
        SignOutView::Confirm {
            signed_in_as,
            token,
            continue_query,
        } => page(
            StatusCode::OK,
            &LogoutPage {
                display_name: &signed_in_as.display_name,
                username: &signed_in_as.username,
                csrf: &token,
                continue_query: &continue_query,
            },
            None,
        ),
        SignOutView::SignedOut => message(
            StatusCode::OK,
            "Signed out",
            "You are signed out of idgraph.",
        ),
        SignOutView::Continue(query) => see_other(&format!("/oauth/authorize?{query}")),
        SignOutView::FormRefused => refused_form(),
    };
    with_cookie(state, response, outcome.cookie.as_ref())
}
