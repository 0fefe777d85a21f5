//! idgraph's own authorization endpoint as one service entry point, [`authorize`]: the page
//! layer hands it the browser's context and what the person did ([`Interaction`]) and renders
//! the [`Outcome`] it gets back.
//!
//! The request is validated once, when it arrives, and from then on travels between pages
//! sealed (see [`crate::service::seal`]): a MAC over the validated request, bound to the
//! browser's cookie, which is also the form's CSRF token. Signing in and approving open the
//! seal; they never parse the request again. They do check that the world still agrees (the
//! app is still registered, with that redirect URI).
//!
//! An unknown client, or a `redirect_uri` that is missing or not byte-for-byte a registered
//! one, is answered with an error page and never a redirect (RFC 6749 §4.1.2.1). Every other
//! problem goes back to the client as `error`, `error_description`, `state` and `iss`
//! (RFC 9207), in the response mode the request asked for.

mod answer;
mod request;
mod signout;
mod views;

use secrecy::SecretString;

use crate::db::owned::connection_of;
use crate::domain::authorize::{AuthorizeParams, RedirectError};
use crate::domain::secs;
use crate::error::{AppError, AppResult};
use crate::service::browser::{self, BrowserContext, BrowserSession, new_cookie_value};
use crate::service::seal::Sealed;
use crate::service::{AppState, consent};

use answer::{answer, client_origin, error_pairs};
use request::{Checked, check, open, seal};
pub use signout::{SignOut, sign_out};
pub use views::{
    AppView, AuthorizeView, ConsentView, CookieChange, Outcome, SignInFailure, SignInView,
    SignOutView,
};

/// Seal purposes: a seal made for one form never opens another.
const SIGN_IN_FORM: &str = "authorize.sign-in";
const CONSENT_FORM: &str = "authorize.consent";
pub(super) const SIGN_OUT_FORM: &str = "sign-out";

/// What the person did.
pub enum Interaction {
    /// An authorization request arrived (a GET, or a form post of one).
    Request(Box<AuthorizeParams>),
    /// The sign-in form was sent.
    SignIn {
        /// The form's sealed request.
        form: Sealed,
        /// As typed.
        username: String,
        /// As typed; never printed.
        password: SecretString,
    },
    /// "Approve" on the consent page.
    Approve(Sealed),
    /// "Deny" on the consent page.
    Deny(Sealed),
}

/// The hosted authorization endpoint: one call per request.
pub async fn authorize(
    state: &AppState,
    context: &BrowserContext,
    interaction: Interaction,
) -> AppResult<Outcome<AuthorizeView>> {
    match interaction {
        Interaction::Request(params) => {
            let checked = match check(state, &params).await? {
                Ok(checked) => checked,
                Err(view) => return Ok(Outcome::view(view)),
            };
            let session = browser::find(state, context.cookie.as_deref()).await?;
            decide(state, context.cookie.as_deref(), checked, session, false).await
        }
        Interaction::SignIn {
            form,
            username,
            password,
        } => {
            let checked = match open(state, context, SIGN_IN_FORM, &form).await? {
                Ok(checked) => checked,
                Err(view) => return Ok(Outcome::view(view)),
            };
            let username = username.trim();
            match browser::sign_in(state, username, password, context).await {
                Ok((value, session)) => {
                    let mut outcome =
                        decide(state, Some(&value), checked, Some(session), true).await?;
                    outcome.cookie = Some(CookieChange::SignedIn {
                        value,
                        max_age: secs(state.config.browser_session_ttl),
                    });
                    Ok(outcome)
                }
                Err(AppError::InvalidCredentials) => Ok(sign_in_again(
                    &form,
                    &checked,
                    username,
                    SignInFailure::WrongCredentials,
                )),
                Err(AppError::TooManyAttempts { retry_after_secs }) => Ok(sign_in_again(
                    &form,
                    &checked,
                    username,
                    SignInFailure::TooManyAttempts { retry_after_secs },
                )),
                Err(other) => Err(other),
            }
        }
        Interaction::Approve(form) => {
            let checked = match open(state, context, CONSENT_FORM, &form).await? {
                Ok(checked) => checked,
                Err(view) => return Ok(Outcome::view(view)),
            };
            let now = state.clock.now();
            match browser::find(state, context.cookie.as_deref()).await? {
                Some(session) if !checked.request.sign_in_too_old(session.auth_time, now) => {
                    approve(state, &checked, &session).await
                }
                // Signed out (or expired) since the page was shown, or the page was left open
                // until the sign-in grew older than `max_age` allows: sign in again.
                _ => decide(state, context.cookie.as_deref(), checked, None, false).await,
            }
        }
        Interaction::Deny(form) => match open(state, context, CONSENT_FORM, &form).await? {
            Ok(checked) => refuse(
                state,
                &checked,
                "access_denied",
                "the user denied the request",
            ),
            Err(view) => Ok(Outcome::view(view)),
        },
    }
}

/// Decides what an authorization request shows. `fresh` says the browser signed in during this
/// very request, which satisfies `prompt=login` and `max_age`.
async fn decide(
    state: &AppState,
    cookie: Option<&str>,
    checked: Checked,
    session: Option<BrowserSession>,
    fresh: bool,
) -> AppResult<Outcome<AuthorizeView>> {
    let request = &checked.request;
    let now = state.clock.now();
    let too_old = |s: &BrowserSession| request.sign_in_too_old(s.auth_time, now);
    let (session, cookie) = match (session, cookie) {
        (Some(s), Some(cookie)) if fresh || !(request.prompt.login || too_old(&s)) => (s, cookie),
        _ if request.prompt.none => {
            return refuse(
                state,
                &checked,
                "login_required",
                "the user is not signed in",
            );
        }
        _ => return sign_in_page(state, cookie, &checked),
    };
    if request.prompt.consent {
        return consent_page(state, cookie, &checked, &session);
    }
    let principal = session.principal()?;
    let me = principal.require_user(crate::domain::Scope::Authorize)?;
    let remembered = connection_of(&me.user_id, &request.consent.client_id)
        .one(&state.db)
        .await?
        .map(|row| consent::consented(&row));
    if remembered.is_some_and(|granted| request.consent.scopes.is_subset_of(&granted)) {
        return approve(state, &checked, &session).await;
    }
    if request.prompt.none {
        return refuse(
            state,
            &checked,
            "consent_required",
            "the user has not consented to this app",
        );
    }
    consent_page(state, cookie, &checked, &session)
}

/// The app as pages show it.
fn app_view(checked: &Checked) -> AppView {
    let app = checked.app.app();
    AppView {
        name: app.name.clone(),
        client_id: app.client_id.to_string(),
        url: app.url.clone(),
        has_logo: !app.logo.is_empty(),
        client_origin: client_origin(&checked.request.redirect_uri),
    }
}

/// The sign-in page, sealed for the browser's cookie (a fresh one when it has none).
fn sign_in_page(
    state: &AppState,
    cookie: Option<&str>,
    checked: &Checked,
) -> AppResult<Outcome<AuthorizeView>> {
    let fresh = cookie.is_none().then(new_cookie_value);
    let cookie = cookie.or(fresh.as_deref()).unwrap_or_default();
    let view = SignInView {
        app: app_view(checked),
        form: seal(state, SIGN_IN_FORM, cookie, &checked.request)?,
        username: checked.request.login_hint.clone().unwrap_or_default(),
        failure: None,
    };
    Ok(Outcome {
        view: AuthorizeView::SignIn(view),
        cookie: fresh.map(CookieChange::Anchor),
    })
}

/// The sign-in page again after a failed attempt: the same sealed form, the name as typed.
fn sign_in_again(
    form: &Sealed,
    checked: &Checked,
    username: &str,
    failure: SignInFailure,
) -> Outcome<AuthorizeView> {
    Outcome::view(AuthorizeView::SignIn(SignInView {
        app: app_view(checked),
        form: form.clone(),
        username: username.to_string(),
        failure: Some(failure),
    }))
}

fn consent_page(
    state: &AppState,
    cookie: &str,
    checked: &Checked,
    session: &BrowserSession,
) -> AppResult<Outcome<AuthorizeView>> {
    let request = &checked.request;
    let view = ConsentView {
        app: app_view(checked),
        scopes: request.consent.scopes.describe(),
        resource: request.consent.resource.clone(),
        form: seal(state, CONSENT_FORM, cookie, request)?,
        signed_in_as: session.signed_in_as(),
        restart_query: request.to_params().to_query(),
    };
    Ok(Outcome::view(AuthorizeView::Consent(view)))
}

/// Records consent from the already validated request and sends the code back.
async fn approve(
    state: &AppState,
    checked: &Checked,
    session: &BrowserSession,
) -> AppResult<Outcome<AuthorizeView>> {
    let request = &checked.request;
    let code = consent::record(
        state,
        &session.principal()?,
        &request.consent,
        Some(&request.redirect_uri),
    )
    .await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(value) = request.state.as_deref() {
        pairs.push(("state", value));
    }
    let url = answer(state, &request.redirect_uri, request.response_mode, &pairs)?;
    Ok(Outcome::view(AuthorizeView::Redirect(url)))
}

/// An error for the client, by redirect.
fn refuse(
    state: &AppState,
    checked: &Checked,
    error: &'static str,
    text: &str,
) -> AppResult<Outcome<AuthorizeView>> {
    let request = &checked.request;
    let error = RedirectError::new(error, text);
    let pairs = error_pairs(&error, request.state.as_deref());
    let url = answer(state, &request.redirect_uri, request.response_mode, &pairs)?;
    Ok(Outcome::view(AuthorizeView::Redirect(url)))
}
