//! Sign-out of the hosted pages, one call per request: `GET /oauth/logout` asks (a form bound
//! to the browser's cookie), the form's POST ends the browser session and leads back to the
//! authorization request it came from, if any.

use super::{CookieChange, Outcome, SIGN_OUT_FORM, SignOutView};
use crate::domain::authorize::AuthorizeParams;
use crate::error::AppResult;
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::browser::{self, BrowserContext};

/// What the person did on sign-out.
pub enum SignOut {
    /// `GET /oauth/logout`: show "Sign out?"; changes nothing.
    Ask {
        /// An authorization request to return to afterwards, as a query.
        continue_query: String,
    },
    /// The confirmation form was sent.
    Confirm {
        /// The form's token.
        token: String,
        /// An authorization request to return to afterwards, as a query.
        continue_query: String,
    },
}

/// Keeps only the authorization parameters of a `continue` value, so that signing out can only
/// ever lead back to our own authorization endpoint.
fn sanitize_continue(text: &str) -> String {
    AuthorizeParams::from_query(text).to_query()
}

/// Sign-out of the hosted pages: one call per request.
pub async fn sign_out(
    state: &AppState,
    context: &BrowserContext,
    interaction: SignOut,
) -> AppResult<Outcome<SignOutView>> {
    match interaction {
        SignOut::Ask { continue_query } => {
            let cookie = context.cookie.as_deref();
            let (Some(cookie), Some(session)) = (cookie, browser::find(state, cookie).await?)
            else {
                return Ok(Outcome::view(SignOutView::NotSignedIn));
            };
            Ok(Outcome::view(SignOutView::Confirm {
                signed_in_as: session.signed_in_as(),
                token: state.sealer.token(SIGN_OUT_FORM, cookie),
                continue_query: sanitize_continue(&continue_query),
            }))
        }
        SignOut::Confirm {
            token,
            continue_query,
        } => {
            let cookie = context.cookie.as_deref();
            let Some(cookie) =
                cookie.filter(|cookie| state.sealer.check_token(SIGN_OUT_FORM, cookie, &token))
            else {
                // A token that does not match the cookie is a possible forgery.
                if cookie.is_some() {
                    state.metrics.security(SecurityEvent::CsrfRefused);
                }
                return Ok(Outcome::view(SignOutView::FormRefused));
            };
            browser::sign_out(state, cookie).await?;
            let next = sanitize_continue(&continue_query);
            let view = if next.is_empty() {
                SignOutView::SignedOut
            } else {
                SignOutView::Continue(next)
            };
            Ok(Outcome {
                view,
                cookie: Some(CookieChange::Clear),
            })
        }
    }
}
