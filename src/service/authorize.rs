//! idgraph's own authorization endpoint: from a browser's authorization request to the page it
//! is shown or the redirect back to the client. The pages themselves belong to the `web`
//! transport; every rule is here.
//!
//! An unknown client, or a `redirect_uri` that is missing or not byte-for-byte the registered
//! one, is answered with an error page and never a redirect (RFC 6749 §4.1.2.1). Every other
//! problem goes back to the client as `error`, `error_description`, `state` and `iss`
//! (RFC 9207).

use std::sync::Arc;

use url::Url;

use crate::auth::{Principal, Scope};
use crate::db::entities::apps;
use crate::db::owned::connection_of;
use crate::domain::authorize::{AuthorizationRequest, AuthorizeParams, RedirectError};
use crate::domain::now_unix;
use crate::error::AppResult;
use crate::service::browser::BrowserSession;
use crate::service::consent::{self, ConsentInput};
use crate::state::AppState;

/// A request whose client and redirect URI are good: pages may be shown for it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The client.
    pub app: Arc<apps::Model>,
    /// The validated request.
    pub request: AuthorizationRequest,
    /// The request's parameters, carried by the pages' forms.
    pub params: AuthorizeParams,
}

/// What the browser gets next.
#[derive(Debug)]
pub enum Step {
    /// The client cannot be trusted with a redirect: an error page (400) saying this.
    ErrorPage(String),
    /// The sign-in page.
    SignIn(Pending),
    /// The consent page.
    Consent(Pending),
    /// A 303 to this URL: the client's redirect URI with the answer.
    Redirect(String),
}

/// `redirect_uri` with `pairs` and `iss` appended to its query.
fn redirect_url(state: &AppState, redirect_uri: &str, pairs: &[(&str, &str)]) -> AppResult<String> {
    let mut url = Url::parse(redirect_uri).map_err(crate::error::AppError::internal)?;
    url.query_pairs_mut()
        .extend_pairs(pairs)
        .append_pair("iss", &state.config.issuer);
    Ok(url.into())
}

fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    request_state: Option<&str>,
    error: &RedirectError,
) -> AppResult<Step> {
    let mut pairs = vec![
        ("error", error.error),
        ("error_description", error.description.as_str()),
    ];
    if let Some(value) = request_state {
        pairs.push(("state", value));
    }
    Ok(Step::Redirect(redirect_url(state, redirect_uri, &pairs)?))
}

/// Finds the client and checks the redirect URI, then validates the rest of the request.
/// `Err` holds the step that ends the request early (an error page or an error redirect).
pub async fn check(state: &AppState, params: AuthorizeParams) -> AppResult<Result<Pending, Step>> {
    let Some(client_id) = params.client_id.as_deref() else {
        return Ok(Err(Step::ErrorPage(
            "The request names no client (client_id is missing).".into(),
        )));
    };
    let Some(app) = crate::service::apps::record(state, client_id).await? else {
        return Ok(Err(Step::ErrorPage(
            "The request names an application that is not registered here.".into(),
        )));
    };
    if params.repeated.contains(&"client_id") || params.repeated.contains(&"redirect_uri") {
        return Ok(Err(Step::ErrorPage(
            "client_id or redirect_uri was given more than once.".into(),
        )));
    }
    if params.redirect_uri.as_deref() != Some(app.redirect_uri.as_str()) {
        return Ok(Err(Step::ErrorPage(
            "The redirect_uri is missing or is not the one registered for this application.".into(),
        )));
    }
    match AuthorizationRequest::validate(
        &params,
        &app.client_id,
        &app.redirect_uri,
        state.config.pkce_allow_plain,
    ) {
        Ok(request) => Ok(Ok(Pending {
            app,
            request,
            params,
        })),
        Err(error) => Ok(Err(error_redirect(
            state,
            &app.redirect_uri,
            params.state.as_deref(),
            &error,
        )?)),
    }
}

/// Decides what an authorization request shows. `fresh` says the browser signed in during this
/// very request, which satisfies `prompt=login` and `max_age`.
pub async fn next_step(
    state: &AppState,
    params: AuthorizeParams,
    session: Option<&BrowserSession>,
    fresh: bool,
) -> AppResult<Step> {
    match check(state, params).await? {
        Ok(pending) => decide(state, pending, session, fresh).await,
        Err(step) => Ok(step),
    }
}

/// [`next_step`] for a request already [`check`]ed.
pub async fn decide(
    state: &AppState,
    pending: Pending,
    session: Option<&BrowserSession>,
    fresh: bool,
) -> AppResult<Step> {
    let request = &pending.request;
    let too_old = |s: &BrowserSession| {
        request
            .max_age
            .is_some_and(|max_age| now_unix() - s.auth_time > max_age)
    };
    let session = match session {
        Some(s) if fresh || !(request.prompt.login || too_old(s)) => s,
        _ if request.prompt.none => {
            return refuse(
                state,
                &pending,
                "login_required",
                "the user is not signed in",
            );
        }
        _ => return Ok(Step::SignIn(pending)),
    };
    if request.prompt.consent {
        return Ok(Step::Consent(pending));
    }
    // Through the gate, as every consent: the browser's principal may authorize apps.
    let principal = session.principal()?;
    let me = principal.require_user(Scope::Authorize)?;
    let granted = connection_of(&me.user_id, &pending.app.client_id)
        .one(&state.db)
        .await?
        .map(|row| row.consented());
    if granted.is_some_and(|granted| request.scopes.is_subset_of(&granted)) {
        return approve_pending(state, &pending, &principal).await;
    }
    if request.prompt.none {
        return refuse(
            state,
            &pending,
            "consent_required",
            "the user has not consented to this app",
        );
    }
    Ok(Step::Consent(pending))
}

fn refuse(state: &AppState, pending: &Pending, error: &'static str, text: &str) -> AppResult<Step> {
    error_redirect(
        state,
        &pending.app.redirect_uri,
        pending.request.state.as_deref(),
        &RedirectError::new(error, text),
    )
}

async fn approve_pending(
    state: &AppState,
    pending: &Pending,
    principal: &Principal,
) -> AppResult<Step> {
    let consent = &pending.request.consent;
    let input = ConsentInput {
        client_id: consent.client_id.clone(),
        scope: pending.request.scopes.to_string(),
        nonce: consent.nonce.clone(),
        code_challenge: consent
            .pkce
            .as_ref()
            .map(|(challenge, _)| challenge.clone()),
        code_challenge_method: consent.pkce.as_ref().map(|(_, m)| m.as_str().to_string()),
    };
    let code = consent::authorize(state, principal, input).await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(value) = pending.request.state.as_deref() {
        pairs.push(("state", value));
    }
    Ok(Step::Redirect(redirect_url(
        state,
        &pending.app.redirect_uri,
        &pairs,
    )?))
}

/// The person approved on the consent page: records consent through the same service as
/// `POST /api/oauth/auth/code` and sends the code back.
pub async fn approve(
    state: &AppState,
    params: AuthorizeParams,
    session: &BrowserSession,
) -> AppResult<Step> {
    match check(state, params).await? {
        Ok(pending) => approve_pending(state, &pending, &session.principal()?).await,
        Err(step) => Ok(step),
    }
}

/// The person denied on the consent page: `access_denied` goes back to the client.
pub async fn deny(state: &AppState, params: AuthorizeParams) -> AppResult<Step> {
    match check(state, params).await? {
        Ok(pending) => refuse(
            state,
            &pending,
            "access_denied",
            "the user denied the request",
        ),
        Err(step) => Ok(step),
    }
}
