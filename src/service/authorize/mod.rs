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

mod views;

use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::db::owned::connection_of;
use crate::domain::authorize::{
    AuthorizationRequest, AuthorizeParams, RedirectError, ResponseMode,
};
use crate::domain::capabilities::GrantType;
use crate::domain::ids::ClientId;
use crate::domain::oauth::PkceMethod;
use crate::domain::secs;
use crate::error::{AppError, AppResult};
use crate::service::apps::AppRecord;
use crate::service::browser::{self, BrowserContext, BrowserSession, new_cookie_value};
use crate::service::seal::Sealed;
use crate::service::{AppState, consent};

pub use views::{
    AppView, AuthorizeView, ConsentView, CookieChange, Outcome, SignInFailure, SignInView,
    SignOutView,
};

/// How long a page's form stays good.
const FORM_LIFETIME_SECS: i64 = 3600;
/// Seal purposes: a seal made for one form never opens another.
const SIGN_IN_FORM: &str = "authorize.sign-in";
const CONSENT_FORM: &str = "authorize.consent";
const SIGN_OUT_FORM: &str = "sign-out";

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

/// What a page's form carries: the validated request and when the form stops being good.
#[derive(Serialize, Deserialize)]
struct FormRequest {
    request: AuthorizationRequest,
    expires_at: i64,
}

/// A request whose client and redirect URI are good: pages may be shown for it.
struct Checked {
    app: Arc<AppRecord>,
    request: AuthorizationRequest,
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
            match browser::find(state, context.cookie.as_deref()).await? {
                Some(session) => approve(state, &checked, &session).await,
                // Signed out (or expired) since the page was shown: start again.
                None => decide(state, context.cookie.as_deref(), checked, None, false).await,
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

/// Finds the client and checks the redirect URI, then validates the rest of the request.
async fn check(
    state: &AppState,
    params: &AuthorizeParams,
) -> AppResult<Result<Checked, AuthorizeView>> {
    let error = |text: &str| Ok(Err(AuthorizeView::Error(text.into())));
    let Some(client_id) = params.client_id.as_deref() else {
        return error("The request names no client (client_id is missing).");
    };
    let app = match ClientId::parse(client_id) {
        Some(id) => crate::service::apps::record(state, &id).await?,
        None => None,
    };
    let Some(app) = app else {
        return error("The request names an application that is not registered here.");
    };
    if params.repeated.contains(&"client_id") || params.repeated.contains(&"redirect_uri") {
        return error("client_id or redirect_uri was given more than once.");
    }
    let Some(redirect_uri) = params
        .redirect_uri
        .as_deref()
        .filter(|uri| app.policy.redirect_for(uri).is_some())
    else {
        return error("The redirect_uri is missing or is not one registered for this application.");
    };
    let client_id = ClientId::from_trusted(app.row.client_id.clone());
    let validated = AuthorizationRequest::validate(
        params,
        &client_id,
        redirect_uri,
        consent::pkce_policy(state),
    )
    .and_then(|request| within_policy(&app, request));
    match validated {
        Ok(request) => Ok(Ok(Checked { app, request })),
        Err(error) => {
            // The request's own mode, if it named one we offer; the default otherwise.
            let mode = params
                .response_mode
                .as_deref()
                .and_then(ResponseMode::parse)
                .unwrap_or_default();
            let url = answer(
                state,
                redirect_uri,
                mode,
                &error_pairs(&error, params.state.as_deref()),
            )?;
            Ok(Err(AuthorizeView::Redirect(url)))
        }
    }
}

/// Holds a valid request to the app's policy: it must be allowed the code grant, a public
/// client must use PKCE with `S256`, and the scopes are narrowed to the app's ceiling (never
/// refused for it).
fn within_policy(
    app: &AppRecord,
    mut request: AuthorizationRequest,
) -> Result<AuthorizationRequest, RedirectError> {
    if !app.policy.allows_grant(GrantType::AuthorizationCode) {
        return Err(RedirectError::new(
            "unauthorized_client",
            "the app may not use the authorization code grant",
        ));
    }
    let s256 = request
        .consent
        .pkce
        .as_ref()
        .is_some_and(|pkce| pkce.method == PkceMethod::S256);
    if app.policy.is_public() && !s256 {
        return Err(RedirectError::new(
            "invalid_request",
            "a public client must send a code_challenge with code_challenge_method S256",
        ));
    }
    request.consent.scopes = app.policy.narrow(&request.consent.scopes);
    Ok(request)
}

/// Opens a page's sealed request: it must have been sealed for this browser's cookie and this
/// form, not have expired, and its app must still be registered with its redirect URI.
async fn open(
    state: &AppState,
    context: &BrowserContext,
    purpose: &str,
    form: &Sealed,
) -> AppResult<Result<Checked, AuthorizeView>> {
    let sealed = context
        .cookie
        .as_deref()
        .and_then(|cookie| state.sealer.open::<FormRequest>(purpose, cookie, form))
        .filter(|sealed| sealed.expires_at > state.clock.now());
    let Some(FormRequest { request, .. }) = sealed else {
        return Ok(Err(AuthorizeView::FormRefused));
    };
    let Some(app) = crate::service::apps::record(state, &request.consent.client_id).await? else {
        return Ok(Err(AuthorizeView::Error(
            "The application is no longer registered here.".into(),
        )));
    };
    if app.policy.redirect_for(&request.redirect_uri).is_none() {
        return Ok(Err(AuthorizeView::Error(
            "The redirect_uri is no longer registered for this application.".into(),
        )));
    }
    Ok(Ok(Checked { app, request }))
}

/// Seals `request` for the holder of `cookie` and the form `purpose`.
fn seal(
    state: &AppState,
    purpose: &str,
    cookie: &str,
    request: &AuthorizationRequest,
) -> AppResult<Sealed> {
    let form = FormRequest {
        request: request.clone(),
        expires_at: state.clock.now() + FORM_LIFETIME_SECS,
    };
    state.sealer.seal(purpose, cookie, &form)
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
    let too_old = |s: &BrowserSession| {
        request
            .max_age
            .is_some_and(|max_age| now - s.auth_time > max_age)
    };
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
    let app = &checked.app.row;
    AppView {
        name: app.name.clone(),
        client_id: app.client_id.clone(),
        url: app.url.clone(),
        has_logo: !app.logo.is_empty(),
        client_origin: client_origin(&checked.request.redirect_uri),
    }
}

/// The origin of `redirect_uri` (or `scheme:` for a private-use scheme).
fn client_origin(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(url) if url.origin().is_tuple() => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => String::new(),
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
        scopes: request
            .consent
            .scopes
            .in_display_order()
            .map(|scope| scope.describe())
            .collect(),
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

fn error_pairs<'a>(error: &'a RedirectError, state: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("error", error.error),
        ("error_description", error.description.as_str()),
    ];
    if let Some(value) = state {
        pairs.push(("state", value));
    }
    pairs
}

/// `redirect_uri` with `pairs` and `iss` (RFC 9207) added in the response mode's place: the
/// query (kept after what the registered URI already holds) or the fragment.
fn answer(
    state: &AppState,
    redirect_uri: &str,
    mode: ResponseMode,
    pairs: &[(&str, &str)],
) -> AppResult<String> {
    let mut url = Url::parse(redirect_uri).map_err(AppError::internal)?;
    let issuer = ("iss", state.config.issuer.as_str());
    match mode {
        ResponseMode::Query => {
            url.query_pairs_mut()
                .extend_pairs(pairs)
                .extend_pairs([issuer]);
        }
        ResponseMode::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .extend_pairs([issuer])
                .finish();
            url.set_fragment(Some(&fragment));
        }
    }
    Ok(url.into())
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
            let Some(cookie) = context
                .cookie
                .as_deref()
                .filter(|cookie| state.sealer.check_token(SIGN_OUT_FORM, cookie, &token))
            else {
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
