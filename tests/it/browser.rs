//! In a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`), driven over
//! WebDriver by fantoccini, signs in on idgraph's own pages. The `openidconnect` crate plays the
//! relying party: it builds the authorization URL and, after the browser lands on its redirect
//! URI, exchanges the code and verifies the ID token.
//!
//! Five runs in one browser: sign in and approve; then remembered consent goes straight back
//! with a code; then `prompt=consent` and Deny give `access_denied`; then the app's logout
//! request is confirmed on idgraph's page and lands on its post-logout URI; then `prompt=none`
//! gives `login_required`. Screenshots of the sign-in, consent and logout pages are saved under
//! `target/browser-screenshots/` for people to look at.
//!
//! And GraphiQL: served from the binary, it boots under its `'self'`-only policy and loads the
//! schema by introspection (`graphiql.png`).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::http::Method;
use axum::response::Html;
use axum::routing::get;
use fantoccini::{Client, Locator};
use image::ImageFormat;
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, Scope, TokenResponse,
};
use serde_json::json;

use crate::common::chromium::{
    ChromeDriver, open_browser_with, save_screenshot, start_chromedriver,
};
use crate::common::oidc_rp::{Rp, discover};
use crate::common::{PASSWORD, Served};
use crate::fixtures::{BOUNDARY, image, multipart_file};

async fn open_browser(driver: &ChromeDriver) -> Client {
    open_browser_with(driver, &[], false).await
}

/// What the relying party's pages were asked for: the path and its query.
type Landings = tokio::sync::mpsc::UnboundedReceiver<(String, HashMap<String, String>)>;

/// Waits until the relying party's page at `path` is asked for (the browser landed there) and
/// returns its query; fails at once if another of its pages was asked for first.
async fn landed_on(landings: &mut Landings, path: &str) -> HashMap<String, String> {
    let (landed, query) = tokio::time::timeout(Duration::from_secs(15), landings.recv())
        .await
        .unwrap_or_else(|_| panic!("the browser never reached {path}"))
        .expect("the relying party is serving");
    assert_eq!(landed, path, "{query:?}");
    query
}

struct Request {
    url: url::Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn authorization_request(rp: &Rp, prompt: Option<CoreAuthPrompt>) -> Request {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut builder = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge);
    if let Some(prompt) = prompt {
        builder = builder.add_prompt(prompt);
    }
    let (url, state, nonce) = builder.url();
    Request {
        url,
        state,
        nonce,
        verifier,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_browser, idgraph_ci)),
    ignore = "Chromium or chromedriver is not installed here (apt-get install chromium chromium-driver); under CI it runs"
)]
async fn a_person_signs_in_and_approves_in_a_real_browser() {
    // idgraph on a loopback port, and a relying party's callback page on another.
    let served = Served::start(|_| {}).await;
    let (app, issuer) = (&served.app, &served.issuer);
    let rp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", rp_listener.local_addr().unwrap());
    let signed_out = format!("http://{}/signed-out", rp_listener.local_addr().unwrap());
    // Each page tells the test when the browser asks for it.
    let (landed, mut landings) = tokio::sync::mpsc::unbounded_channel();
    let page = |path: &'static str, text: &'static str| {
        let landed = landed.clone();
        get(
            move |Query(query): Query<HashMap<String, String>>| async move {
                let _ = landed.send((path.to_string(), query));
                Html(format!("<!doctype html><title>RP</title><p>{text}</p>"))
            },
        )
    };
    let rp_server = tokio::spawn(
        axum::serve(
            rp_listener,
            axum::Router::new()
                .route("/callback", page("/callback", "Back at the app."))
                .route("/signed-out", page("/signed-out", "Signed out.")),
        )
        .into_future(),
    );

    let admin = app.oauth_admin("ops").await;
    let created = app
        .register_app_with(
            &admin,
            json!({
                "name": "Analytical Engine",
                "url": "https://engine.example",
                "redirect_uri": callback,
                "post_logout_redirect_uris": [signed_out],
            }),
        )
        .await;
    let client_id = created.client_id.clone();
    let logo = app
        .send_bytes(
            Method::PUT,
            &format!("/api/oauth/app/id/{client_id}/image"),
            Some(&admin),
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &[],
            multipart_file(
                "image",
                "logo.png",
                "image/png",
                &image(ImageFormat::Png, 96, 96),
            ),
        )
        .await;
    assert_eq!(logo.status, axum::http::StatusCode::NO_CONTENT);
    let ada = app.create_user("ada", &[]).await;

    let (http, rp) = discover(issuer, &created, &callback).await;
    assert_eq!(
        rp.auth_uri().as_str(),
        format!("{issuer}/oauth/authorize"),
        "discovery points at the hosted endpoint"
    );

    let driver = start_chromedriver().await;
    let browser = open_browser(&driver).await;

    // 1. Sign in, approve, land on the callback with a code; the RP verifies the ID token.
    let first = authorization_request(&rp, None);
    browser.goto(first.url.as_str()).await.unwrap();
    let username = browser
        .wait()
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    save_screenshot(&browser, "sign-in.png").await;
    username.send_keys("ada").await.unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let approve = browser
        .wait()
        .for_element(Locator::Css("button[value=approve]"))
        .await
        .unwrap();
    let consent_text = browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent_text.contains("Analytical Engine"), "{consent_text}");
    assert!(
        consent_text.contains("See your email address"),
        "{consent_text}"
    );
    save_screenshot(&browser, "consent.png").await;
    approve.click().await.unwrap();
    let answer = landed_on(&mut landings, "/callback").await;
    assert_eq!(&answer["state"], first.state.secret());
    assert_eq!(&answer["iss"], issuer);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .unwrap()
        .set_pkce_verifier(first.verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let verifier = rp
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let claims = tokens
        .id_token()
        .expect("an ID token")
        .claims(&verifier, &first.nonce)
        .expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), ada.id.as_str());
    assert!(claims.auth_time().is_some());

    // 2. Remembered consent: no page at all, straight back with a code.
    let second = authorization_request(&rp, None);
    browser.goto(second.url.as_str()).await.unwrap();
    let answer = landed_on(&mut landings, "/callback").await;
    assert_eq!(&answer["state"], second.state.secret());
    let tokens = rp
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .unwrap()
        .set_pkce_verifier(second.verifier)
        .request_async(&http)
        .await
        .expect("second code exchange");
    tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &second.nonce)
        .expect("a valid second ID token");

    // 3. prompt=consent shows the page again; Deny answers access_denied.
    let third = authorization_request(&rp, Some(CoreAuthPrompt::Consent));
    browser.goto(third.url.as_str()).await.unwrap();
    browser
        .wait()
        .for_element(Locator::Css("button[value=deny]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let answer = landed_on(&mut landings, "/callback").await;
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(&answer["state"], third.state.secret());
    assert!(!answer.contains_key("code"));

    // 4. RP-initiated logout without an id_token_hint: idgraph asks, the person confirms, and
    //    the browser lands on the app's registered post-logout URI with its state.
    let logout = openidconnect::LogoutRequest::from(
        openidconnect::EndSessionUrl::new(format!("{issuer}/oauth/logout")).unwrap(),
    )
    .set_client_id(openidconnect::ClientId::new(client_id.clone()))
    .set_post_logout_redirect_uri(
        openidconnect::PostLogoutRedirectUrl::new(signed_out.clone()).unwrap(),
    )
    .set_state(CsrfToken::new("bye-42".into()))
    .http_get_url();
    browser.goto(logout.as_str()).await.unwrap();
    let confirm = browser
        .wait()
        .for_element(Locator::Css("button[type=submit]"))
        .await
        .unwrap();
    let logout_text = browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        logout_text.contains("Analytical Engine asks you to sign out"),
        "{logout_text}"
    );
    save_screenshot(&browser, "logout.png").await;
    confirm.click().await.unwrap();
    let answer = landed_on(&mut landings, "/signed-out").await;
    assert_eq!(answer["state"], "bye-42");

    // 5. Signed out: a silent request finds nobody signed in.
    let fifth = authorization_request(&rp, Some(CoreAuthPrompt::None));
    browser.goto(fifth.url.as_str()).await.unwrap();
    let answer = landed_on(&mut landings, "/callback").await;
    assert_eq!(answer["error"], "login_required");

    browser.close().await.unwrap();
    rp_server.abort();
}

/// GraphiQL, served from the binary under its `'self'`-only policy, boots in a real browser and
/// loads idgraph's schema by introspection: the documentation explorer lists the root types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_browser, idgraph_ci)),
    ignore = "Chromium or chromedriver is not installed here (apt-get install chromium chromium-driver); under CI it runs"
)]
async fn graphiql_loads_the_schema_in_a_real_browser() {
    let served = Served::start(|_| {}).await;
    let driver = start_chromedriver().await;
    let browser = open_browser(&driver).await;
    browser
        .goto(&format!("{}/graphql", served.issuer))
        .await
        .unwrap();
    // The first sidebar button opens the documentation explorer.
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(".graphiql-sidebar button[data-index='0']"))
        .await
        .expect("GraphiQL rendered")
        .click()
        .await
        .unwrap();
    let root = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(
            ".graphiql-doc-explorer-root-type, .graphiql-doc-explorer-error",
        ))
        .await
        .expect("the documentation explorer shows the schema or an error");
    let text = root.text().await.unwrap();
    save_screenshot(&browser, "graphiql.png").await;
    assert!(
        root.attr("class")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("root-type"),
        "GraphiQL could not load the schema: {text}"
    );
    let mut types = Vec::new();
    for name in browser
        .find_all(Locator::Css(".graphiql-doc-explorer-type-name"))
        .await
        .unwrap()
    {
        types.push(name.text().await.unwrap());
    }
    assert!(types.iter().any(|name| name == "Query"), "{types:?}");
    assert!(types.iter().any(|name| name == "Mutation"), "{types:?}");
    browser.close().await.unwrap();
}
