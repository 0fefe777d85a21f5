//! Sign-out of the hosted pages, one call per request. `/oauth/logout` is also the
//! `end_session_endpoint` of RP-Initiated Logout 1.0.
//!
//! A plain visit asks (a form bound to the browser's cookie); the form's POST ends the browser
//! session and leads back to the authorization request it came from, if any.
//!
//! An app's logout request ([`SignOut::Request`]) is checked first: an `id_token_hint` must be
//! an ID token idgraph signed (expired is fine; another issuer's, an altered one or any other
//! kind of token is refused with an error page), and `client_id`, when given too, its
//! audience. A `post_logout_redirect_uri` is followed only when it is byte for byte one the app
//! (named by the hint or `client_id`) registered; otherwise the browser is not sent anywhere
//! and the page says why. When the hint names the browser's own session, the session ends at
//! once; otherwise the person confirms on a page whose form carries the checked request sealed
//! to the cookie (which is also its CSRF token). Without a session there is nothing to end:
//! the browser goes straight to the redirect, if any.

use serde::{Deserialize, Serialize};
use url::Url;

use super::{CookieChange, Outcome, SIGN_OUT_FORM, SignOutView};
use crate::domain::authorize::AuthorizeParams;
use crate::domain::ids::ClientId;
use crate::domain::logout::EndSessionParams;
use crate::domain::secs;
use crate::error::{AppError, AppResult};
use crate::metrics::SecurityEvent;
use crate::service::browser::{self, BrowserContext};
use crate::service::seal::Sealed;
use crate::service::{AppState, apps};

/// The seal purpose of the RP-initiated logout's confirmation form.
const END_SESSION_FORM: &str = "end-session";

/// Where an app's logout request leads once the session has ended: checked, then sealed into
/// the confirmation form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterLogout {
    /// The app's name, to say who asked.
    pub app_name: Option<String>,
    /// A registered `post_logout_redirect_uri`, with `state` already added.
    pub redirect: Option<String>,
    /// The request named a `post_logout_redirect_uri` that is not registered for the app.
    pub unregistered_redirect: bool,
}

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
    /// An app's logout request (RP-Initiated Logout 1.0), by GET or POST.
    Request(Box<EndSessionParams>),
    /// The confirmation form of an app's logout request was sent.
    ConfirmRequest(Sealed),
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
        SignOut::Request(params) => end_session(state, context, &params).await,
        SignOut::ConfirmRequest(form) => {
            let cookie = context.cookie.as_deref();
            let opened = cookie.and_then(|cookie| {
                state
                    .sealer
                    .open::<AfterLogout>(END_SESSION_FORM, cookie, &form)
                    .map(|after| (cookie, after))
            });
            let Some((cookie, after)) = opened else {
                if cookie.is_some() {
                    state.metrics.security(SecurityEvent::CsrfRefused);
                }
                return Ok(Outcome::view(SignOutView::FormRefused));
            };
            browser::sign_out(state, cookie).await?;
            Ok(Outcome {
                view: finished(after, true),
                cookie: Some(CookieChange::Clear),
            })
        }
    }
}

/// An app's logout request: checks it, then ends the session or asks.
async fn end_session(
    state: &AppState,
    context: &BrowserContext,
    params: &EndSessionParams,
) -> AppResult<Outcome<SignOutView>> {
    let after = match check(state, params).await? {
        Ok(checked) => checked,
        Err(text) => return Ok(Outcome::view(SignOutView::BadRequest(text))),
    };
    let cookie = context.cookie.as_deref();
    let (Some(cookie), Some(session)) = (cookie, browser::find(state, cookie).await?) else {
        return Ok(Outcome::view(finished(after.after, false)));
    };
    let names_this_session = after.hint.as_ref().is_some_and(|hint| {
        hint.sid.is_some() && hint.sid == session.sid && hint.sub == session.user.id
    });
    if names_this_session {
        browser::sign_out(state, cookie).await?;
        return Ok(Outcome {
            view: finished(after.after, true),
            cookie: Some(CookieChange::Clear),
        });
    }
    let form = state.sealer.seal(END_SESSION_FORM, cookie, &after.after)?;
    Ok(Outcome::view(SignOutView::ConfirmRequest {
        signed_in_as: session.signed_in_as(),
        app_name: after.after.app_name,
        // A private-use scheme (`com.example.app:`) as well as a web origin: browsers check the
        // redirect after the form against `form-action`.
        redirect_origin: after
            .after
            .redirect
            .as_deref()
            .map(super::answer::client_origin),
        form,
    }))
}

/// A checked logout request.
struct Checked {
    hint: Option<crate::auth::jwt::IdClaims>,
    after: AfterLogout,
}

/// Checks an app's logout request; `Err` holds the error page's text.
async fn check(state: &AppState, params: &EndSessionParams) -> AppResult<Result<Checked, String>> {
    if let Some(text) = params.too_long() {
        return Ok(Err(text));
    }
    let hint = match params.id_token_hint.as_deref() {
        None => None,
        Some(token) => match state
            .keys
            .verify_id_token_hint(
                token,
                &state.config.issuer,
                state.clock.now() - secs(state.config.browser_session_ttl),
            )
            .await?
        {
            Some(claims) => Some(claims),
            None => {
                return Ok(Err(
                    "id_token_hint: not an ID token issued by this server (a \
                               wrong signature, another issuer or an altered token)"
                        .into(),
                ));
            }
        },
    };
    let client_id = match (params.client_id.as_deref(), hint.as_ref()) {
        (Some(given), Some(hint)) if given != hint.aud => {
            return Ok(Err(
                "client_id: is not the app the id_token_hint was issued to".into(),
            ));
        }
        (Some(given), _) => Some(given.to_string()),
        (None, Some(hint)) => Some(hint.aud.clone()),
        (None, None) => None,
    };
    let app = match client_id {
        None => None,
        Some(id) => {
            let found = match ClientId::parse(&id) {
                Some(id) => apps::record(state, &id).await?,
                None => None,
            };
            match found {
                Some(app) => Some(app),
                None => return Ok(Err("client_id: no such app".into())),
            }
        }
    };
    let registered = |uri: &str| {
        app.as_ref().is_some_and(|app| {
            app.policy()
                .post_logout_redirect_uris
                .iter()
                .any(|r| r == uri)
        })
    };
    let mut after = AfterLogout {
        app_name: app.as_ref().map(|app| app.app().name.clone()),
        ..AfterLogout::default()
    };
    match params.post_logout_redirect_uri.as_deref() {
        None => {}
        Some(uri) if registered(uri) => {
            let mut url = Url::parse(uri).map_err(AppError::internal)?;
            if let Some(value) = params.state.as_deref() {
                url.query_pairs_mut().append_pair("state", value);
            }
            after.redirect = Some(url.into());
        }
        Some(_) => after.unregistered_redirect = true,
    }
    Ok(Ok(Checked { hint, after }))
}

/// What the browser sees once the logout request is done: the app's page, or ours.
fn finished(after: AfterLogout, signed_out: bool) -> SignOutView {
    match after.redirect {
        Some(url) => SignOutView::Redirect(url),
        None => SignOutView::Done {
            signed_out,
            unregistered_redirect: after.unregistered_redirect,
        },
    }
}
