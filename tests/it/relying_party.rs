//! End to end: the `openidconnect` crate plays a relying party against idgraph served on a
//! loopback port. Discovery, consent through the API (as a sign-in UI would), the code
//! exchange with PKCE S256 and `client_secret_basic`, the ID token verified against the JWKS
//! (signature, iss, aud, nonce, at_hash), userinfo and refresh; with RS256 and with EdDSA keys.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, TokenResponse, reqwest,
};
use serde_json::json;

use crate::common::Served;
use crate::common::oidc_rp::{CodeRequest, code_request, consent_to, discover};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The server signs with `server` by default; the app asks for `id_token` ID tokens, which the
/// relying party accepts alone (`jws`).
async fn sign_in_with(server: &str, id_token: &str, jws: CoreJwsSigningAlgorithm) {
    let served = Served::start(|c| c.signing_algorithm = server.into()).await;
    let (app, issuer) = (&served.app, &served.issuer);

    // An oauth admin registers the relying party; a user signs in to the sign-in UI.
    let admin = app.oauth_admin("ops").await;
    let created = app
        .register_app_with(
            &admin,
            json!({ "name": "RP", "redirect_uri": REDIRECT, "id_token_signed_response_alg": id_token }),
        )
        .await;
    let user = app.create_user("ada", &[]).await;
    let session = app.token("ada", Some("gov.user.oauth.authorize")).await;

    let (http, client) = discover(issuer, &created, REDIRECT).await;
    let CodeRequest {
        url: auth_url,
        nonce,
        verifier,
        ..
    } = code_request(&client, &["profile", "email", "offline_access"], &[]);

    // The sign-in UI reads the request and records the user's consent.
    let code = consent_to(app, &session, &auth_url).await;

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier().set_allowed_algs(vec![jws]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), user.id.as_str());
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual_hash, expected_hash);

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.preferred_username().unwrap().as_str(), "ada");
    assert_eq!(info.email().unwrap().as_str(), "ada@example.com");

    let refresh = tokens
        .refresh_token()
        .expect("a refresh token")
        .secret()
        .clone();
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(refreshed.refresh_token().unwrap().secret(), &refresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_signs_a_user_in_with_rs256() {
    sign_in_with(
        "RS256",
        "RS256",
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_signs_a_user_in_with_eddsa() {
    sign_in_with("EdDSA", "EdDSA", CoreJwsSigningAlgorithm::EdDsa).await;
}

/// The app's `id_token_signed_response_alg` decides its ID tokens, whatever the server's
/// default: here the server signs with RS256 and the app asked for EdDSA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_gets_the_id_token_algorithm_it_registered() {
    sign_in_with("RS256", "EdDSA", CoreJwsSigningAlgorithm::EdDsa).await;
}

/// RP-Initiated Logout with the `openidconnect` crate's own logout types: discovery gives the
/// `end_session_endpoint`; ada signs in on the hosted pages (a cookie-keeping client through
/// the same server), the relying party redeems the code and verifies the ID token, then sends
/// the browser to its logout URL with `id_token_hint`, `client_id`, a registered
/// `post_logout_redirect_uri` and `state`. The browser lands there with the `state`, and the
/// next `prompt=none` request answers `login_required`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_logs_the_user_out_through_the_end_session_endpoint() {
    use openidconnect::core::CoreAuthPrompt;
    use openidconnect::{LogoutRequest, PostLogoutRedirectUrl, ProviderMetadataWithLogout};

    use crate::common::PASSWORD;
    use crate::common::browser::{Browser, text};

    const SIGNED_OUT: &str = "http://127.0.0.1:9/signed-out";
    let served = Served::start(|_| {}).await;
    let (app, issuer) = (&served.app, &served.issuer);
    let admin = app.oauth_admin("ops").await;
    let created = app
        .register_app_with(
            &admin,
            json!({ "name": "RP", "redirect_uri": REDIRECT, "post_logout_redirect_uris": [SIGNED_OUT] }),
        )
        .await;
    app.create_user("ada", &[]).await;

    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        ProviderMetadataWithLogout::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("an end_session_endpoint");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(created.client_id.clone()),
        Some(ClientSecret::new(created.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let path_of = |url: &url::Url| format!("{}?{}", url.path(), url.query().unwrap_or_default());

    // Sign in and approve on the hosted pages.
    let mut browser = Browser::new(app);
    let CodeRequest {
        url: auth_url,
        nonce,
        verifier,
        ..
    } = code_request(&client, &[], &[]);
    let page = browser.get(&path_of(&auth_url)).await;
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    let approved = browser.press(&consent, "approve").await;
    let callback = url::Url::parse(approved.header("location").expect("a redirect")).unwrap();
    let code = callback
        .query_pairs()
        .find(|(name, _)| name == "code")
        .expect("a code")
        .1
        .into_owned();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token");

    // Signed in: a silent request answers with a code.
    let silent_request = || {
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .add_prompt(CoreAuthPrompt::None)
            .url()
            .0
    };
    let silent_answer = |response: &crate::common::TestResponse| {
        let location = url::Url::parse(response.header("location").expect("a redirect")).unwrap();
        location
            .query_pairs()
            .find(|(name, _)| name == "code" || name == "error")
            .map(|(name, value)| format!("{name}={value}"))
            .unwrap()
    };
    let before = browser.get(&path_of(&silent_request())).await;
    assert!(silent_answer(&before).starts_with("code="));

    // Log out with the crate's logout request.
    let state = CsrfToken::new_random();
    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_client_id(ClientId::new(created.client_id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(SIGNED_OUT.into()).unwrap())
        .set_state(state.clone())
        .http_get_url();
    assert!(
        logout_url
            .as_str()
            .starts_with(&format!("{issuer}/oauth/logout?"))
    );
    let signed_out = browser.get(&path_of(&logout_url)).await;
    assert_eq!(
        signed_out.status,
        axum::http::StatusCode::SEE_OTHER,
        "{}",
        text(&signed_out)
    );
    let landed = url::Url::parse(signed_out.header("location").unwrap()).unwrap();
    assert!(landed.as_str().starts_with(SIGNED_OUT), "{landed}");
    let returned: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert_eq!(&returned["state"], state.secret());

    // The session ended (the cookie is cleared), and the next silent sign-in finds nobody.
    assert!(browser.cookie.is_none());
    let after = browser.get(&path_of(&silent_request())).await;
    assert_eq!(silent_answer(&after), "error=login_required");
}
