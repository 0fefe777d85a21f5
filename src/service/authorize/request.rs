//! The authorization request between pages: checked once when it arrives (client, redirect
//! URI, the request's own rules, the app's policy), then sealed into each page's form and
//! opened again when the form comes back.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::AuthorizeView;
use super::answer::{answer, error_pairs};
use crate::domain::authorize::{
    AuthorizationRequest, AuthorizeParams, RedirectError, ResponseMode,
};
use crate::domain::capabilities::GrantType;
use crate::domain::ids::ClientId;
use crate::domain::oauth::PkceMethod;
use crate::error::AppResult;
use crate::metrics::SecurityEvent;
use crate::service::apps::AppRecord;
use crate::service::browser::BrowserContext;
use crate::service::seal::Sealed;
use crate::service::{AppState, consent};

/// How long a page's form stays good.
const FORM_LIFETIME_SECS: i64 = 3600;

/// What a page's form carries: the validated request and when the form stops being good.
#[derive(Serialize, Deserialize)]
pub(super) struct FormRequest {
    request: AuthorizationRequest,
    expires_at: i64,
}

/// A request whose client and redirect URI are good: pages may be shown for it.
pub(super) struct Checked {
    pub app: Arc<AppRecord>,
    pub request: AuthorizationRequest,
}

/// Finds the client and checks the redirect URI, then validates the rest of the request.
pub(super) async fn check(
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
        .filter(|uri| app.policy().redirect_for(uri).is_some())
    else {
        return error("The redirect_uri is missing or is not one registered for this application.");
    };
    let client_id = app.app().client_id.clone();
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
/// client must use PKCE with `S256`, a `resource` must be one the app may name, and the scopes
/// are narrowed to the app's ceiling (never refused for it).
fn within_policy(
    app: &AppRecord,
    mut request: AuthorizationRequest,
) -> Result<AuthorizationRequest, RedirectError> {
    if !app.policy().allows_grant(GrantType::AuthorizationCode) {
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
    if app.policy().is_public() && !s256 {
        return Err(RedirectError::new(
            "invalid_request",
            "a public client must send a code_challenge with code_challenge_method S256",
        ));
    }
    if let Some(resource) = &request.consent.resource
        && !app.policy().may_name(resource)
    {
        return Err(RedirectError::new(
            "invalid_target",
            "resource is not one of the resource servers registered for the app",
        ));
    }
    request.consent.scopes = app.policy().narrow(&request.consent.scopes);
    Ok(request)
}

/// Opens a page's sealed request: it must have been sealed for this browser's cookie and this
/// form, not have expired, and its app must still be registered with its redirect URI.
pub(super) async fn open(
    state: &AppState,
    context: &BrowserContext,
    purpose: &str,
    form: &Sealed,
) -> AppResult<Result<Checked, AuthorizeView>> {
    let opened = context
        .cookie
        .as_deref()
        .map(|cookie| state.sealer.open::<FormRequest>(purpose, cookie, form));
    // A seal that does not match the browser's cookie is a possible forgery; a page left open
    // past its lifetime, or a browser whose cookie has gone, is ordinary.
    if matches!(opened, Some(None)) {
        state.metrics.security(SecurityEvent::CsrfRefused);
    }
    let sealed = opened
        .flatten()
        .filter(|sealed| sealed.expires_at > state.clock.now());
    let Some(FormRequest { request, .. }) = sealed else {
        return Ok(Err(AuthorizeView::FormRefused));
    };
    let Some(app) = crate::service::apps::record(state, &request.consent.client_id).await? else {
        return Ok(Err(AuthorizeView::Error(
            "The application is no longer registered here.".into(),
        )));
    };
    if app.policy().redirect_for(&request.redirect_uri).is_none() {
        return Ok(Err(AuthorizeView::Error(
            "The redirect_uri is no longer registered for this application.".into(),
        )));
    }
    Ok(Ok(Checked { app, request }))
}

/// Seals `request` for the holder of `cookie` and the form `purpose`.
pub(super) fn seal(
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
