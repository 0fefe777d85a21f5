//! Sign-out, also the `end_session_endpoint` (RP-Initiated Logout 1.0).
//!
//! `GET /oauth/logout` asks (a form, no state change), or, with an app's logout parameters,
//! handles its logout request. `POST /oauth/logout` is one of our two confirmation forms (it
//! carries `csrf`), or an app's logout request sent as a form, which is answered with a 303 to
//! the same request as a `GET`: the `SameSite=Lax` cookie does not travel with a cross-site
//! POST, so only the `GET` can see whose session it is.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::pages::{EndSessionPage, LogoutPage, PageError, message, page, see_other};
use super::{Browser, Fields, bad_request, refused_form, with_cookie};
use crate::domain::logout::EndSessionParams;
use crate::edge::input::{printable, refusal};
use crate::service::AppState;
use crate::service::authorize::{self, SignOut, SignOutView};

/// `GET /oauth/logout`: asks for confirmation, or handles an app's logout request.
pub(super) async fn confirm(
    State(state): State<AppState>,
    Browser(context): Browser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = query.unwrap_or_default();
    let params = EndSessionParams::from_query(&query);
    let interaction = if params.is_empty() {
        // `continue` holds an authorization request to return to after signing out.
        let continue_query = url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "continue")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        SignOut::Ask { continue_query }
    } else {
        SignOut::Request(Box::new(params))
    };
    let outcome = authorize::sign_out(&state, &context, interaction).await?;
    Ok(render(&state, outcome))
}

/// `POST /oauth/logout`: a confirmation form, or an app's logout request as a form.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    Browser(context): Browser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let fields = Fields(form);
    if let Some(name) = fields.nul() {
        return Ok(bad_request(&refusal(&printable(name))));
    }
    let interaction = if !fields.get("request").is_empty() {
        SignOut::ConfirmRequest(fields.sealed())
    } else if fields.0.iter().any(|(name, _)| name == "csrf") {
        SignOut::Confirm {
            token: fields.get("csrf").to_string(),
            continue_query: fields.get("continue").to_string(),
        }
    } else {
        let params = EndSessionParams::from_pairs(fields.0.iter().map(|(n, v)| (n, v)));
        return Ok(see_other(&format!("/oauth/logout?{}", params.to_query())));
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
        SignOutView::BadRequest(text) => bad_request(&text),
        SignOutView::ConfirmRequest {
            signed_in_as,
            app_name,
            redirect_origin,
            form,
        } => page(
            StatusCode::OK,
            &EndSessionPage {
                display_name: &signed_in_as.display_name,
                username: &signed_in_as.username,
                app_name: app_name.as_deref().unwrap_or_default(),
                csrf: &form.tag,
                request: &form.payload,
            },
            redirect_origin.as_deref(),
        ),
        SignOutView::Done {
            signed_out,
            unregistered_redirect,
        } => {
            let mut text = if signed_out {
                "You are signed out of idgraph.".to_string()
            } else {
                "You are not signed in to idgraph.".to_string()
            };
            if unregistered_redirect {
                text.push_str(
                    " The app asked to send you to an address it has not registered, so you \
                     stay here.",
                );
            }
            message(StatusCode::OK, "Signed out", &text)
        }
        SignOutView::Redirect(location) => see_other(&location),
    };
    with_cookie(state, response, outcome.cookie.as_ref())
}
