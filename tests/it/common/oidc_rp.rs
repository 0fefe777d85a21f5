//! A relying party built with the `openidconnect` crate, as the end-to-end tests drive one:
//! discovery, the authorization request of the code flow with PKCE S256, and the sign-in UI's
//! consent to it.

use axum::http::Method;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, reqwest,
};
use serde_json::json;

use super::Registered;

/// A relying party's client, as built from discovery.
pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovers idgraph at `issuer` and builds the relying party's client for `app`, with its HTTP
/// client (which, as a relying party's should, does not follow redirects).
pub async fn discover(issuer: &str, app: &Registered, redirect: &str) -> (reqwest::Client, Rp) {
    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.into()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    (http, client)
}

/// An authorization request of the code flow with PKCE S256, as a relying party makes one.
pub struct CodeRequest {
    /// The authorization endpoint's URL with the request.
    pub url: url::Url,
    /// The `state` it carries.
    pub state: CsrfToken,
    /// The `nonce` the ID token must repeat.
    pub nonce: Nonce,
    /// The PKCE verifier the code exchange sends.
    pub verifier: PkceCodeVerifier,
}

/// `client`'s authorization request for `scopes` (besides `openid`), with the `extra`
/// parameters.
pub fn code_request(client: &Rp, scopes: &[&str], extra: &[(&str, &str)]) -> CodeRequest {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).into()));
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state, nonce) = request.url();
    CodeRequest {
        url,
        state,
        nonce,
        verifier,
    }
}

/// The sign-in UI's part: reads the authorization request `auth_url` and records the consent
/// of the user whose token is `session` to it, with its parameters (`resource` when it names
/// one); returns the code.
pub async fn consent_to(
    app: &crate::common::TestApp,
    session: &str,
    auth_url: &url::Url,
) -> String {
    let query: std::collections::HashMap<String, String> =
        auth_url.query_pairs().into_owned().collect();
    let mut body = json!({});
    for name in [
        "client_id",
        "scope",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "resource",
    ] {
        if let Some(value) = query.get(name) {
            body[name] = json!(value);
        }
    }
    let response = app
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(session),
            Some(body),
        )
        .await;
    response.assert_status(axum::http::StatusCode::OK);
    response.json()["code"].as_str().unwrap().to_string()
}
