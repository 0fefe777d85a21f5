//! Logout that relying parties drive: `sid` in ID tokens, RP-Initiated Logout at
//! `/oauth/logout` (the `end_session_endpoint`), and Back-Channel Logout tokens delivered to a
//! loopback receiver from the `logout_deliveries` table. The browser is the cookie-keeping
//! client of the hosted tests, through the real router; deliveries are sent by calling the
//! worker's round (`backchannel::deliver_due`) with the test's clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idgraph::auth::jwt::IdClaims;
use idgraph::auth::keys::SigningAlgorithm;
use idgraph::db::entities::{browser_sessions, grants, logout_deliveries};
use idgraph::domain::Role;
use idgraph::service::backchannel::{self, Delivered, GIVE_UP_AFTER_SECS, LOGOUT_EVENT};
use idgraph::service::browser::COOKIE;
use idgraph::service::keys;
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::api::revoke;
use crate::common::browser::{Browser, authorize_path, hidden, redirect_query, text};
use crate::common::rp::{REDIRECT, Rp, VERIFIER, refresh_grant, token};
use crate::common::{PASSWORD, TestApp, TestResponse};

/// Where the app asks to land after logout (registered).
const SIGNED_OUT: &str = "https://rp.example/signed-out";

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Registers "RP" with [`SIGNED_OUT`] as its post-logout redirect URI and, when given, a
/// back-channel logout URI; creates ada.
async fn register(app: &TestApp, backchannel: Option<&str>, session_required: bool) -> Rp {
    let admin = app.oauth_admin("ops").await;
    let mut body = json!({
        "name": "RP",
        "url": "https://rp.example",
        "redirect_uri": REDIRECT,
        "post_logout_redirect_uris": [SIGNED_OUT],
        "backchannel_logout_session_required": session_required,
    });
    if let Some(uri) = backchannel {
        body["backchannel_logout_uri"] = json!(uri);
    }
    let created = app.register_app_with(&admin, body).await;
    let ada = app.create_user("ada", &[Role::Oauth]).await;
    Rp {
        client_id: created.client_id,
        secret: created.secret,
        user_token: app.token("ada", None).await,
        user_id: ada.id.to_string(),
    }
}

/// Ada signs in on the hosted pages, approves `scope`, and the app redeems the code: the
/// browser (signed in) and the token response.
async fn signed_in<'a>(app: &'a TestApp, rp: &Rp, scope: &str) -> (Browser<'a>, Value) {
    let mut browser = Browser::new(app);
    let page = browser.get(&authorize_path(rp, &[("scope", scope)])).await;
    let after = browser.sign_in(&page, "ada", PASSWORD).await;
    // Consent is remembered from an earlier sign-in: straight back with a code.
    let answered = if after.status == StatusCode::SEE_OTHER {
        after
    } else {
        browser.press(&after, "approve").await
    };
    let answer = redirect_query(&answered);
    (browser, redeem(app, rp, &answer["code"]).await)
}

async fn redeem(app: &TestApp, rp: &Rp, code: &str) -> Value {
    let redeemed = token(
        app,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    redeemed.assert_status(StatusCode::OK);
    redeemed.json()
}

fn logout_path(params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/logout?{query}")
}

async fn sessions(app: &TestApp) -> u64 {
    browser_sessions::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap()
}

async fn deliveries(app: &TestApp) -> Vec<logout_deliveries::Model> {
    logout_deliveries::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
}

/// Whether the browser is still signed in: `prompt=none` answers with a code, or with
/// `login_required`.
async fn still_signed_in(browser: &mut Browser<'_>, rp: &Rp) -> bool {
    let answer = redirect_query(
        &browser
            .get(&authorize_path(
                rp,
                &[("prompt", "none"), ("scope", "openid")],
            ))
            .await,
    );
    match answer.get("error").map(String::as_str) {
        None => true,
        Some("login_required") => false,
        Some(other) => panic!("prompt=none answered {other}"),
    }
}

fn assert_error_page(response: &TestResponse, needle: &str) {
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(response.header("location").is_none());
    assert!(text(response).contains(needle), "{}", text(response));
}

/// `hint` is refused with an error page, and ada's session in `browser` lives on.
async fn assert_hint_refused(app: &TestApp, browser: &mut Browser<'_>, rp: &Rp, hint: &str) {
    let answer = browser
        .get(&logout_path(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ]))
        .await;
    assert_error_page(&answer, "id_token_hint");
    assert_eq!(sessions(app).await, 1);
    assert!(still_signed_in(browser, rp).await);
}

async fn id_tokens_carry_the_browser_sessions_sid(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (browser, tokens) = signed_in(&app, &rp, "openid").await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    let row = browser_sessions::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let sid = row.sid.unwrap();
    assert_eq!(id["sid"], sid.as_str());
    // Public and distinct from the cookie and from its digest (the row's key).
    let cookie = browser.cookie.clone().unwrap();
    assert_ne!(sid, cookie);
    assert_ne!(sid, row.id);
    // The consent API names no browser session: no sid.
    let code = crate::common::rp::consent(
        &app,
        &rp,
        json!({"scope": "openid", "code_challenge": crate::common::rp::s256(VERIFIER), "code_challenge_method": "S256"}),
    )
    .await;
    let api = claims(redeem(&app, &rp, &code).await["id_token"].as_str().unwrap());
    assert!(api.get("sid").is_none(), "{api}");
    let discovery = app
        .get("/.well-known/openid-configuration", None)
        .await
        .json();
    assert_eq!(
        discovery["end_session_endpoint"],
        "http://idgraph.test/oauth/logout"
    );
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);
    assert_eq!(discovery["frontchannel_logout_supported"], false);
}

/// Sessions a node of the previous release opens during a rolling upgrade have no `sid`: many
/// may exist at once, consent in them records none, and they sign out as any other.
async fn sessions_without_a_sid_still_work(app: TestApp) {
    use idgraph::domain::secret::digest;
    use sea_orm::Set;
    let rp = register(&app, None, false).await;
    let cookies = ["a".repeat(43), "b".repeat(43)];
    for cookie in &cookies {
        browser_sessions::Entity::insert(browser_sessions::ActiveModel {
            id: Set(digest(cookie)),
            user_id: Set(rp.user_id.clone()),
            auth_time: Set(app.now()),
            expires_at: Set(app.now() + 3600),
            sid: Set(None),
        })
        .exec_without_returning(&app.state.db)
        .await
        .unwrap();
    }
    let mut browser = Browser::new(&app);
    browser.cookie = Some(cookies[0].clone());
    let page = browser
        .get(&authorize_path(&rp, &[("scope", "openid")]))
        .await;
    let answer = redirect_query(&browser.press(&page, "approve").await);
    let id = claims(
        redeem(&app, &rp, &answer["code"]).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert!(id.get("sid").is_none(), "{id}");
    sign_out_on_the_page(&mut browser).await;
    assert_eq!(sessions(&app).await, 1);
}

async fn a_hint_naming_this_session_ends_it_at_once_even_expired(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();
    // The ID token expired hours ago: for logout it still names the sign-in.
    app.advance(std::time::Duration::from_secs(3 * 3600));
    let answer = browser
        .get(&logout_path(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "bye &?"),
        ]))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some("https://rp.example/signed-out?state=bye+%26%3F")
    );
    let set = answer.header("set-cookie").unwrap();
    assert!(
        set.starts_with(&format!("{COOKIE}=;")) && set.contains("Max-Age=0"),
        "{set}"
    );
    assert_eq!(sessions(&app).await, 0);
    assert!(!still_signed_in(&mut browser, &rp).await);
}

/// A relying party logs out with the ID token of its sign-in although the key that signed it
/// has been rotated out and unpublished since: the hint still ends the session. A key retired
/// longer ago than a browser session lives names no sign-in that could still be live: its
/// hints are refused.
async fn a_hint_signed_by_a_key_rotated_out_since_still_ends_the_session(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(hint).unwrap().kid.unwrap();
    let at_once = keys::Rotation {
        publish_ahead: Duration::ZERO,
        overlap: Duration::ZERO,
    };
    keys::rotate(&app.state.db, SigningAlgorithm::Rs256, at_once, app.now())
        .await
        .unwrap();
    app.advance(Duration::from_secs(3600));
    app.state.keys.reload().await.unwrap();
    let published = app.get("/api/oauth/jwks", None).await.json();
    assert!(
        !published.to_string().contains(&kid),
        "the hint's key is no longer published: {published}"
    );
    let answer = browser
        .get(&logout_path(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ]))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(answer.header("location"), Some(SIGNED_OUT));
    assert_eq!(sessions(&app).await, 0);
    // Longer ago than a browser session lives (12 hours): refused.
    app.advance(Duration::from_secs(12 * 3600));
    let answer = Browser::new(&app)
        .get(&logout_path(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ]))
        .await;
    assert_error_page(&answer, "id_token_hint");
}

async fn an_unregistered_post_logout_redirect_uri_is_not_followed(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    let answer = browser
        .get(&logout_path(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            (
                "post_logout_redirect_uri",
                "https://rp.example/signed-out/other",
            ),
            ("state", "s"),
        ]))
        .await;
    answer.assert_status(StatusCode::OK);
    assert!(answer.header("location").is_none());
    assert!(
        text(&answer).contains("has not registered"),
        "{}",
        text(&answer)
    );
    // The hint named this session, so it ended all the same.
    assert_eq!(sessions(&app).await, 0);
    assert!(!still_signed_in(&mut browser, &rp).await);
}

async fn a_tampered_hint_is_refused(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();
    // Change one claim and keep the signature.
    let mut parts: Vec<String> = hint.split('.').map(str::to_string).collect();
    let mut payload = claims(hint);
    payload["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    assert_hint_refused(&app, &mut browser, &rp, &parts.join(".")).await;
}

async fn a_hint_from_another_issuer_is_refused(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    // Signed with our own key, every claim ours but the issuer.
    let mut id: IdClaims =
        serde_json::from_value(claims(tokens["id_token"].as_str().unwrap())).unwrap();
    id.iss = "https://other.example".into();
    let ring = app.state.keys.ring().await.unwrap();
    let foreign = ring.sign_with(ring.default, &id).unwrap();
    assert_hint_refused(&app, &mut browser, &rp, &foreign).await;
}

async fn a_hint_signed_by_a_key_idgraph_never_held_is_refused(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    // Every claim ours, signed by another idgraph's key (its own ring, a key id this one has
    // never published).
    let id: IdClaims =
        serde_json::from_value(claims(tokens["id_token"].as_str().unwrap())).unwrap();
    let elsewhere = TestApp::sqlite().await;
    let ring = elsewhere.state.keys.ring().await.unwrap();
    let foreign = ring.sign_with(ring.default, &id).unwrap();
    assert_hint_refused(&app, &mut browser, &rp, &foreign).await;
    // The same claims signed by this idgraph's key: the hint names the session and ends it.
    let ring = app.state.keys.ring().await.unwrap();
    let own = ring.sign_with(ring.default, &id).unwrap();
    let answer = browser
        .get(&logout_path(&[
            ("id_token_hint", &own),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ]))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", text(&answer));
    assert_eq!(sessions(&app).await, 0);
}

async fn tokens_that_are_not_id_tokens_are_refused_as_hints(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    // Signed by idgraph with the same keys, but a first-party session token (audience: the
    // issuer), an app's access token (`at+jwt`), and a token with every ID-token claim whose
    // audience is the issuer, as a first-party token's is (only the audience rule refuses it).
    let mut id: IdClaims =
        serde_json::from_value(claims(tokens["id_token"].as_str().unwrap())).unwrap();
    id.aud = "http://idgraph.test".into();
    let ring = app.state.keys.ring().await.unwrap();
    let first_party = ring.sign_with(ring.default, &id).unwrap();
    for not_an_id_token in [
        rp.user_token.as_str(),
        tokens["access_token"].as_str().unwrap(),
        first_party.as_str(),
    ] {
        assert_hint_refused(&app, &mut browser, &rp, not_an_id_token).await;
    }
}

async fn client_id_must_be_the_hints_audience(app: TestApp) {
    let rp = register(&app, None, false).await;
    let admin = app.token("ops", None).await;
    let other = app
        .register_app(
            &admin,
            "Other",
            "https://other.example",
            "https://other.example/cb",
        )
        .await;
    let (_browser, tokens) = signed_in(&app, &rp, "openid").await;
    let mut browser = Browser::new(&app);
    let answer = browser
        .get(&logout_path(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("client_id", &other.client_id),
        ]))
        .await;
    assert_error_page(&answer, "client_id");
    assert_eq!(sessions(&app).await, 1);
}

async fn without_a_hint_the_person_confirms(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    let path = logout_path(&[
        ("client_id", &rp.client_id),
        ("post_logout_redirect_uri", SIGNED_OUT),
        ("state", "s1"),
    ]);
    let page = browser.get(&path).await;
    page.assert_status(StatusCode::OK);
    let html = text(&page);
    assert!(
        html.contains("<strong>RP</strong> asks you to sign out"),
        "{html}"
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    // Asking changes nothing.
    assert_eq!(sessions(&app).await, 1);
    let answer = browser
        .post(
            "/oauth/logout",
            &[
                ("csrf", &hidden(&html, "csrf")),
                ("request", &hidden(&html, "request")),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some("https://rp.example/signed-out?state=s1")
    );
    assert_eq!(sessions(&app).await, 0);
    assert!(!still_signed_in(&mut browser, &rp).await);
}

/// A native app's private-use scheme is a redirect the confirmation form may lead to, so the
/// page's `form-action` names it (browsers check the redirect after the form against it).
async fn a_native_apps_post_logout_redirect_is_allowed_by_the_confirmation_page(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    let admin = app.token("ops", None).await;
    let native = "com.example.app:/signed-out";
    let created = app
        .register_app_with(
            &admin,
            json!({
                "name": "Native",
                "url": "https://native.example",
                "redirect_uris": ["com.example.app:/cb"],
                "post_logout_redirect_uris": [native],
                "token_endpoint_auth_method": "none",
            }),
        )
        .await;
    let page = browser
        .get(&logout_path(&[
            ("client_id", &created.client_id),
            ("post_logout_redirect_uri", native),
        ]))
        .await;
    page.assert_status(StatusCode::OK);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' com.example.app:;"),
        "{csp}"
    );
}

async fn the_confirmation_form_refuses_a_forged_post(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    let page = browser
        .get(&logout_path(&[
            ("client_id", &rp.client_id),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ]))
        .await;
    let html = text(&page);
    let request = hidden(&html, "request");
    let csrf = hidden(&html, "csrf");
    // Another site posts the form it copied, with the victim's cookie (a top-level POST) but a
    // tag of its own making, or without the tag.
    for forged in [URL_SAFE_NO_PAD.encode([7u8; 32]), String::new()] {
        let answer = browser
            .post("/oauth/logout", &[("csrf", &forged), ("request", &request)])
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert_eq!(sessions(&app).await, 1);
    }
    // A form served to another browser does not work in this one.
    let mut other = Browser::new(&app);
    other.cookie = Some("A".repeat(43));
    let answer = other
        .post("/oauth/logout", &[("csrf", &csrf), ("request", &request)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(sessions(&app).await, 1);
    assert!(still_signed_in(&mut browser, &rp).await);
}

async fn logout_without_a_session_goes_back_or_says_so(app: TestApp) {
    let rp = register(&app, None, false).await;
    let (_signed_in, tokens) = signed_in(&app, &rp, "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let mut stranger = Browser::new(&app);
    let answer = stranger
        .get(&logout_path(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "s2"),
        ]))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some("https://rp.example/signed-out?state=s2")
    );
    let answer = stranger
        .get(&logout_path(&[("client_id", &rp.client_id)]))
        .await;
    answer.assert_status(StatusCode::OK);
    assert!(text(&answer).contains("not signed in"), "{}", text(&answer));
    // Ada's own session, in another browser, is untouched.
    assert_eq!(sessions(&app).await, 1);
}

async fn a_logout_request_posted_as_a_form_becomes_a_get(app: TestApp) {
    let rp = register(&app, None, false).await;
    let mut browser = Browser::new(&app);
    let answer = browser
        .post(
            "/oauth/logout",
            &[
                ("client_id", rp.client_id.as_str()),
                ("post_logout_redirect_uri", SIGNED_OUT),
                ("password", "never forwarded"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let location = answer.header("location").unwrap();
    assert!(location.starts_with("/oauth/logout?"), "{location}");
    assert!(location.contains("post_logout_redirect_uri="), "{location}");
    assert!(!location.contains("password"), "{location}");
}

/// Ending a browser session ends its grants without `offline_access`, and its codes not yet
/// redeemed; a redeemed grant with `offline_access` lives on.
async fn tokens_without_offline_access_end_with_the_session(app: TestApp) {
    let rp = register(&app, None, false).await;
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&authorize_path(&rp, &[("scope", "openid offline_access")]))
        .await;
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    let offline = redirect_query(&browser.press(&consent, "approve").await);
    let offline = redeem(&app, &rp, &offline["code"]).await;
    // A second consent in the same session, without offline_access.
    let page = browser
        .get(&authorize_path(
            &rp,
            &[("scope", "openid"), ("prompt", "consent")],
        ))
        .await;
    let online = redirect_query(&browser.press(&page, "approve").await);
    let online = redeem(&app, &rp, &online["code"]).await;
    let userinfo = |token: String| {
        let app = &app;
        async move { app.get("/api/oauth/userinfo", Some(&token)).await.status }
    };
    let online_access = online["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(online_access.clone()).await, StatusCode::OK);
    // A third, with offline_access, whose code the app has not redeemed before the sign-out.
    let page = browser
        .get(&authorize_path(
            &rp,
            &[("scope", "openid offline_access"), ("prompt", "consent")],
        ))
        .await;
    let pending = redirect_query(&browser.press(&page, "approve").await);

    browser
        .get(&logout_path(&[(
            "id_token_hint",
            online["id_token"].as_str().unwrap(),
        )]))
        .await
        .assert_status(StatusCode::OK);
    assert_eq!(sessions(&app).await, 0);
    // The grant without offline_access ended: its access token fails at once.
    assert_eq!(userinfo(online_access).await, StatusCode::UNAUTHORIZED);
    // The unredeemed code ended with the session although it holds offline_access: redeemed
    // now, it would give an ID token naming a session that is gone.
    let late = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", pending["code"].as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    late.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(late.json()["error"], "invalid_grant");
    // The offline grant lives on: its refresh token still works.
    let refreshed = refresh_grant(&app, &rp, offline["refresh_token"].as_str().unwrap()).await;
    refreshed.assert_status(StatusCode::OK);
    assert_eq!(
        grants::Entity::find().count(&app.state.db).await.unwrap(),
        1
    );
}

/// A loopback app that records the logout tokens POSTed to it and answers `status`.
struct Receiver {
    uri: String,
    received: Arc<Mutex<Vec<String>>>,
    /// Signalled on every token received.
    arrived: Arc<tokio::sync::Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start_on(listener: tokio::net::TcpListener, status: StatusCode) -> Self {
        let uri = format!("http://{}/backchannel", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        type Seen = (
            Arc<Mutex<Vec<String>>>,
            Arc<tokio::sync::Notify>,
            StatusCode,
        );
        let router = Router::new()
            .route(
                "/backchannel",
                post(
                    |State((seen, arrived, status)): State<Seen>,
                     Form(form): Form<Vec<(String, String)>>| async move {
                        for (name, value) in form {
                            if name == "logout_token" {
                                seen.lock().unwrap().push(value);
                                arrived.notify_one();
                            }
                        }
                        status
                    },
                ),
            )
            .with_state((received.clone(), arrived.clone(), status));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            uri,
            received,
            arrived,
            server,
        }
    }

    async fn start(status: StatusCode) -> Self {
        Self::start_on(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            status,
        )
        .await
    }

    fn tokens(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until a token has arrived, for at most `limit` (another process is sending it:
    /// nothing here times a rule, the limit only keeps a broken run from hanging).
    async fn first_token(&self, limit: std::time::Duration) -> Option<String> {
        let arrived = self.arrived.notified();
        if let Some(token) = self.tokens().into_iter().next() {
            return Some(token);
        }
        tokio::time::timeout(limit, arrived).await.ok()?;
        self.tokens().into_iter().next()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Verifies a logout token the way an app would: with the published JWKS, for `audience`.
async fn verify_logout_token(app: &TestApp, token: &str, audience: &str) -> Value {
    let jwks = app.get("/api/oauth/jwks", None).await.json();
    verify_with(&jwks, token, audience)
}

/// [`verify_logout_token`] with the JWKS given.
fn verify_with(jwks: &Value, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("a published key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["http://idgraph.test"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // The test clock is ahead of or behind the system clock that jsonwebtoken reads.
    validation.validate_exp = false;
    let claims =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("a logout token signed with a published key")
            .claims;
    assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    claims
}

/// Signs ada out on the plain sign-out page (ask, then confirm).
async fn sign_out_on_the_page(browser: &mut Browser<'_>) {
    let page = browser.get("/oauth/logout").await;
    let html = text(&page);
    browser
        .post(
            "/oauth/logout",
            &[("csrf", &hidden(&html, "csrf")), ("continue", "")],
        )
        .await
        .assert_status(StatusCode::OK);
}

async fn signing_out_sends_a_verifiable_logout_token(app: TestApp) {
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    sign_out_on_the_page(&mut browser).await;
    // Written with the sign-out, not sent on its request.
    assert_eq!(deliveries(&app).await.len(), 1);
    assert!(receiver.tokens().is_empty());
    let round = backchannel::deliver_due(&app.state).await.unwrap();
    assert_eq!(
        round,
        Delivered {
            sent: 1,
            retrying: 0,
            dropped: 0
        }
    );
    let received = receiver.tokens();
    assert_eq!(received.len(), 1);
    let logout = verify_logout_token(&app, &received[0], &rp.client_id).await;
    assert_eq!(logout["sid"], sid);
    assert_eq!(logout["sub"], rp.user_id.as_str());
    assert!(deliveries(&app).await.is_empty());
}

/// An app whose grant ended before the session did (it revoked its own token here; a replayed
/// code or a reused refresh token ends the grant the same way) received an ID token naming the
/// session, so signing out still tells it; the sweep then finds nothing left to remember.
async fn an_app_whose_grant_ended_early_is_still_told_when_the_session_ends(app: TestApp) {
    use idgraph::db::entities::session_apps;
    use idgraph::service::housekeeping;
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    revoke(&app, &rp, tokens["access_token"].as_str().unwrap()).await;
    let remembered = session_apps::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    sign_out_on_the_page(&mut browser).await;
    let owed = deliveries(&app).await;
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].client_id, rp.client_id);
    assert_eq!(json!(owed[0].sid), sid);
    assert!(
        session_apps::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty(),
        "the sign-out used what was remembered"
    );
    backchannel::deliver_due(&app.state).await.unwrap();
    let received = receiver.tokens();
    assert_eq!(received.len(), 1);
    let logout = verify_logout_token(&app, &received[0], &rp.client_id).await;
    assert_eq!(logout["sid"], sid);

    // A revocation in a session that then simply expires leaves a row the sweep removes.
    let (_, tokens) = signed_in(&app, &rp, "openid").await;
    revoke(&app, &rp, tokens["access_token"].as_str().unwrap()).await;
    app.advance(app.state.config.browser_session_ttl + std::time::Duration::from_secs(3600));
    let swept = housekeeping::sweep(&app.state, housekeeping::BATCH)
        .await
        .unwrap();
    assert_eq!(swept.session_apps, 1, "{swept:?}");
}

/// What a session remembered for an app is told once: withdrawing the connection tells the app
/// and takes the memory, so the sign-out that follows owes nothing more; and an app with both a
/// remembered grant and a live one in the session hears once when the account is disabled.
async fn an_app_remembered_for_a_session_is_told_once(app: TestApp) {
    use idgraph::db::entities::session_apps;
    let rp = register(&app, Some("http://127.0.0.1:9/logout"), false).await;
    let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
    revoke(&app, &rp, tokens["access_token"].as_str().unwrap()).await;
    let path = format!("/api/oauth/connection/id/{}", rp.client_id);
    app.rest(
        axum::http::Method::DELETE,
        &path,
        Some(&rp.user_token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        deliveries(&app).await.len(),
        1,
        "the withdrawal tells the app"
    );
    assert!(
        session_apps::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
    sign_out_on_the_page(&mut browser).await;
    assert_eq!(
        deliveries(&app).await.len(),
        1,
        "and the sign-out owes nothing more"
    );

    // An app that requires `sid`: revoked, then signed in to again in the same browser
    // session, then the account is disabled: one token, naming that session.
    app.create_user("root", &[Role::Admin]).await;
    let admin = app.token("root", None).await;
    let ops = app.token("ops", None).await;
    let created = app
        .register_app_with(
            &ops,
            json!({
                "name": "RP2",
                "redirect_uri": REDIRECT,
                "backchannel_logout_uri": "http://127.0.0.1:9/logout",
                "backchannel_logout_session_required": true,
            }),
        )
        .await;
    let rp2 = Rp {
        client_id: created.client_id,
        secret: created.secret,
        ..rp.clone()
    };
    let (mut browser, tokens) = signed_in(&app, &rp2, "openid").await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    revoke(&app, &rp2, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        session_apps::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .len(),
        1,
        "the revocation remembered the app"
    );
    let again = redirect_query(
        &browser
            .get(&authorize_path(&rp2, &[("scope", "openid")]))
            .await,
    );
    redeem(&app, &rp2, &again["code"]).await;
    let before = deliveries(&app).await.len();
    let body = app
        .graphql(
            "mutation($id: ID!) { disableUser(id: $id) { id } }",
            json!({ "id": rp.user_id }),
            Some(&admin),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let owed: Vec<_> = deliveries(&app)
        .await
        .into_iter()
        .filter(|d| d.client_id == rp2.client_id)
        .collect();
    assert_eq!(deliveries(&app).await.len(), before + 1, "{owed:?}");
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(json!(owed[0].sid), sid);
}

/// Refresh tokens far shorter-lived than a sign-in: the sweep leaves the app's dead grant while
/// the browser session lasts, so signing out still tells the app.
async fn an_owed_logout_outlives_the_grants_tokens(app: TestApp) {
    use idgraph::service::housekeeping;
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    let grants_left = || grants::Entity::find().count(&app.state.db);
    assert_eq!(grants_left().await.unwrap(), 1);
    // Past the refresh and access tokens' lifetimes (300 s and 900 s), within the sign-in's.
    app.advance(std::time::Duration::from_secs(300 + 900 + 120));
    housekeeping::sweep(&app.state, housekeeping::BATCH)
        .await
        .unwrap();
    assert_eq!(grants_left().await.unwrap(), 1, "kept for the sign-out");
    sign_out_on_the_page(&mut browser).await;
    assert_eq!(deliveries(&app).await.len(), 1, "the app is told");
    backchannel::deliver_due(&app.state).await.unwrap();
    assert_eq!(receiver.tokens().len(), 1);
    // Signing out ended the grant with the session (no `offline_access`).
    assert_eq!(grants_left().await.unwrap(), 0);
}

fn short_refresh_tokens(c: &mut idgraph::config::RawConfig) {
    c.refresh_token_ttl_secs = 300;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owed_logout_outlives_short_refresh_tokens_on_sqlite() {
    an_owed_logout_outlives_the_grants_tokens(TestApp::sqlite_with(short_refresh_tokens).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn an_owed_logout_outlives_short_refresh_tokens_on_postgres() {
    let app = TestApp::postgres_with(short_refresh_tokens)
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    an_owed_logout_outlives_the_grants_tokens(app).await;
}

async fn a_delivery_waits_for_a_receiver_that_is_down(app: TestApp) {
    // A port nobody listens on yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let uri = format!("http://{address}/backchannel");
    let rp = register(&app, Some(&uri), false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    sign_out_on_the_page(&mut browser).await;
    let round = backchannel::deliver_due(&app.state).await.unwrap();
    assert_eq!(round.retrying, 1);
    let pending = deliveries(&app).await;
    assert_eq!(pending[0].attempts, 1);
    // Not due again until its back-off has passed.
    assert_eq!(
        backchannel::deliver_due(&app.state).await.unwrap(),
        Delivered::default()
    );
    let receiver = Receiver::start_on(
        tokio::net::TcpListener::bind(address).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    app.advance(std::time::Duration::from_secs(
        backchannel::backoff(1).unsigned_abs(),
    ));
    let round = backchannel::deliver_due(&app.state).await.unwrap();
    assert_eq!(round.sent, 1);
    let received = receiver.tokens();
    assert_eq!(received.len(), 1);
    // The same jti on every try: the app can drop repeats.
    assert_eq!(
        verify_logout_token(&app, &received[0], &rp.client_id).await["jti"],
        pending[0].id.as_str()
    );
    assert!(deliveries(&app).await.is_empty());
}

async fn a_delivery_survives_a_restart(app: TestApp) {
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    sign_out_on_the_page(&mut browser).await;
    // This node stops before its worker ran; a fresh process on the same database delivers.
    let restarted = app.another_node().await;
    let round = backchannel::deliver_due(&restarted.state).await.unwrap();
    assert_eq!(round.sent, 1);
    assert_eq!(receiver.tokens().len(), 1);
}

/// The node that ended the session stops before it sent anything (as when it is killed right
/// after the commit); the real `idgraph serve`, started on the same database, delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_written_before_a_crash_is_sent_by_the_restarted_binary() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(StatusCode::OK).await;
    let (client_id, sid, jwks) = {
        let app = TestApp::sqlite_in(dir.path()).await;
        let rp = register(&app, Some(&receiver.uri), false).await;
        let (mut browser, tokens) = signed_in(&app, &rp, "openid").await;
        sign_out_on_the_page(&mut browser).await;
        assert_eq!(deliveries(&app).await.len(), 1);
        let jwks = app.get("/api/oauth/jwks", None).await.json();
        let sid = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
        app.state.db.clone().close().await.unwrap();
        (rp.client_id, sid, jwks)
    };
    assert!(receiver.tokens().is_empty());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_idgraph"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("IDGRAPH_BIND", format!("127.0.0.1:{port}"))
        .env("IDGRAPH_ISSUER", "http://idgraph.test")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let token = receiver
        .first_token(std::time::Duration::from_secs(30))
        .await;
    let _ = server.kill();
    let _ = server.wait();
    let token = token.expect("the restarted server delivered");
    assert_eq!(receiver.tokens().len(), 1);
    assert_eq!(verify_with(&jwks, &token, &client_id)["sid"], sid);
}

async fn a_refused_or_overdue_delivery_is_given_up(app: TestApp) {
    let refusing = Receiver::start(StatusCode::BAD_REQUEST).await;
    let rp = register(&app, Some(&refusing.uri), false).await;
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    sign_out_on_the_page(&mut browser).await;
    // A 400 means the app refused the token: sending it again would not help.
    let round = backchannel::deliver_due(&app.state).await.unwrap();
    assert_eq!(
        round,
        Delivered {
            sent: 0,
            retrying: 0,
            dropped: 1
        }
    );
    assert!(deliveries(&app).await.is_empty());

    // A 503 is tried again, until the bound.
    let failing = Receiver::start(StatusCode::SERVICE_UNAVAILABLE).await;
    let admin = app.token("ops", None).await;
    let changed = app
        .rest(
            axum::http::Method::PUT,
            &format!("/api/oauth/app/id/{}", rp.client_id),
            Some(&admin),
            Some(json!({"name": "RP", "url": "https://rp.example", "redirect_uri": REDIRECT, "backchannel_logout_uri": failing.uri})),
        )
        .await;
    changed.assert_status(StatusCode::NO_CONTENT);
    let (mut browser, _) = signed_in(&app, &rp, "openid").await;
    sign_out_on_the_page(&mut browser).await;
    assert_eq!(
        backchannel::deliver_due(&app.state).await.unwrap().retrying,
        1
    );
    app.advance(std::time::Duration::from_secs(GIVE_UP_AFTER_SECS as u64));
    let round = backchannel::deliver_due(&app.state).await.unwrap();
    assert_eq!(round.dropped, 1);
    assert_eq!(failing.tokens().len(), 2);
    assert!(deliveries(&app).await.is_empty());
}

/// Two nodes run their rounds at the same moment over 40 due deliveries: each is sent once.
async fn two_nodes_never_send_one_delivery_twice(app: TestApp) {
    use sea_orm::Set;
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), false).await;
    for i in 0..40 {
        logout_deliveries::Entity::insert(logout_deliveries::ActiveModel {
            id: Set(format!("delivery-{i:02}")),
            client_id: Set(rp.client_id.clone()),
            user_id: Set(rp.user_id.clone()),
            sid: Set(Some(format!("sid-{i:02}"))),
            attempts: Set(0),
            next_attempt_at: Set(app.now()),
            created_at: Set(app.now()),
        })
        .exec_without_returning(&app.state.db)
        .await
        .unwrap();
    }
    let other = app.another_node().await;
    let mut sent = 0;
    while sent < 40 {
        let (a, b) = tokio::join!(
            backchannel::deliver_due(&app.state),
            backchannel::deliver_due(&other.state)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.retrying + a.dropped + b.retrying + b.dropped, 0);
        assert!(a.sent + b.sent > 0, "a round sent nothing");
        sent += a.sent + b.sent;
    }
    let mut jtis: Vec<String> = receiver
        .tokens()
        .iter()
        .map(|token| claims(token)["jti"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(jtis.len(), 40);
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 40, "no delivery was sent twice");
    assert!(deliveries(&app).await.is_empty());
}

async fn deleting_a_connection_tells_the_app(app: TestApp) {
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), false).await;
    let (_browser, _) = signed_in(&app, &rp, "openid").await;
    app.rest(
        axum::http::Method::DELETE,
        &format!("/api/oauth/connection/id/{}", rp.client_id),
        Some(&rp.user_token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(backchannel::deliver_due(&app.state).await.unwrap().sent, 1);
    let logout = verify_logout_token(&app, &receiver.tokens()[0], &rp.client_id).await;
    // Every session of the user at the app ends: the token names the user alone.
    assert_eq!(logout["sub"], rp.user_id.as_str());
    assert!(logout.get("sid").is_none(), "{logout}");
}

async fn an_app_that_requires_sid_gets_it_on_withdrawal(app: TestApp) {
    let receiver = Receiver::start(StatusCode::OK).await;
    let rp = register(&app, Some(&receiver.uri), true).await;
    let (_browser, tokens) = signed_in(&app, &rp, "openid").await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    app.rest(
        axum::http::Method::DELETE,
        &format!("/api/oauth/connection/id/{}", rp.client_id),
        Some(&rp.user_token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    backchannel::deliver_due(&app.state).await.unwrap();
    let logout = verify_logout_token(&app, &receiver.tokens()[0], &rp.client_id).await;
    assert_eq!(logout["sid"], sid);
}

async fn backchannel_logout_uri_must_be_https_or_loopback(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    for (uri, ok) in [
        ("https://rp.example/logout", true),
        ("http://127.0.0.1:9/logout", true),
        ("http://rp.example/logout", false),
        ("com.example.app:/logout", false),
        ("https://rp.example/logout#frag", false),
    ] {
        let answer = app
            .rest(
                axum::http::Method::POST,
                "/api/oauth/app",
                Some(&admin),
                Some(
                    json!({"name": "RP", "redirect_uri": REDIRECT, "backchannel_logout_uri": uri}),
                ),
            )
            .await;
        let expected = if ok {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(answer.status, expected, "{uri}: {}", answer.json());
        if !ok {
            assert!(
                answer.json()["message"]
                    .as_str()
                    .unwrap()
                    .contains("backchannel_logout_uri")
            );
        }
    }
}

/// An administrator ending ada's sessions, then disabling her account: each time the app is
/// owed a logout token for the session that ended, queued in the same transaction.
async fn an_administrator_ending_sessions_or_disabling_the_account_tells_the_apps(app: TestApp) {
    let rp = register(&app, Some("http://127.0.0.1:9/logout"), true).await;
    app.create_user("root", &[Role::Admin]).await;
    let admin = app.token("root", None).await;
    let mutate = |mutation: &'static str| {
        let (app, admin, id) = (&app, admin.clone(), rp.user_id.clone());
        async move {
            let body = app
                .graphql(mutation, json!({ "id": id }), Some(&admin))
                .await;
            assert!(body["errors"].is_null(), "{body}");
        }
    };
    let (_, tokens) = signed_in(&app, &rp, "openid").await;
    let first = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    mutate("mutation($id: ID!) { endUserSessions(id: $id) }").await;
    let queued = deliveries(&app).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(json!(queued[0].sid), first);
    assert_eq!(queued[0].user_id, rp.user_id);

    let (_, tokens) = signed_in(&app, &rp, "openid offline_access").await;
    let second = claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    mutate("mutation($id: ID!) { disableUser(id: $id) { id } }").await;
    let sids: Vec<Value> = deliveries(&app)
        .await
        .iter()
        .map(|d| json!(d.sid))
        .collect();
    assert!(sids.contains(&second), "{sids:?}");
    assert_eq!(
        grants::Entity::find().count(&app.state.db).await.unwrap(),
        0
    );
}

crate::on_every_database!(
    an_app_whose_grant_ended_early_is_still_told_when_the_session_ends,
    an_app_remembered_for_a_session_is_told_once,
    an_administrator_ending_sessions_or_disabling_the_account_tells_the_apps,
    id_tokens_carry_the_browser_sessions_sid,
    sessions_without_a_sid_still_work,
    a_hint_naming_this_session_ends_it_at_once_even_expired,
    a_hint_signed_by_a_key_rotated_out_since_still_ends_the_session,
    an_unregistered_post_logout_redirect_uri_is_not_followed,
    a_tampered_hint_is_refused,
    a_hint_from_another_issuer_is_refused,
    a_hint_signed_by_a_key_idgraph_never_held_is_refused,
    tokens_that_are_not_id_tokens_are_refused_as_hints,
    client_id_must_be_the_hints_audience,
    without_a_hint_the_person_confirms,
    a_native_apps_post_logout_redirect_is_allowed_by_the_confirmation_page,
    the_confirmation_form_refuses_a_forged_post,
    logout_without_a_session_goes_back_or_says_so,
    a_logout_request_posted_as_a_form_becomes_a_get,
    tokens_without_offline_access_end_with_the_session,
    signing_out_sends_a_verifiable_logout_token,
    a_delivery_waits_for_a_receiver_that_is_down,
    a_delivery_survives_a_restart,
    a_refused_or_overdue_delivery_is_given_up,
    two_nodes_never_send_one_delivery_twice,
    deleting_a_connection_tells_the_app,
    an_app_that_requires_sid_gets_it_on_withdrawal,
    backchannel_logout_uri_must_be_https_or_loopback,
);
