//! idgraph's own authorization endpoint and its pages, driven through the real router by a
//! small cookie-keeping client that reads the forms' hidden fields the way a browser would.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idgraph::db::entities::{browser_sessions, connections, grants};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, PaginatorTrait, Set};
use serde_json::Value;

use crate::common::browser::{Browser, authorize_path, hidden, redirect_query, text, unescape};
use crate::common::rp::{REDIRECT, Rp, VERIFIER, setup, token};
use crate::common::{PASSWORD, TestApp, TestResponse};

fn assert_page_headers(response: &TestResponse) {
    let csp = response.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(response.header("x-frame-options"), Some("DENY"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
}

/// Signs ada in from a fresh authorization request and returns the consent page.
async fn signed_in_at_consent<'a>(app: &'a TestApp, rp: &Rp) -> (Browser<'a>, TestResponse) {
    let mut browser = Browser::new(app);
    let page = browser.get(&authorize_path(rp, &[])).await;
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    consent.assert_status(StatusCode::OK);
    assert!(text(&consent).contains("Approve"));
    (browser, consent)
}

/// How many rows `E` holds.
async fn rows<E: EntityTrait<Model: Sync>>(app: &TestApp) -> u64 {
    E::find().count(&app.state.db).await.unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn unknown_client_gets_an_error_page_and_no_redirect(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    for path in [
        authorize_path(&rp, &[("client_id", "no-such-client")]),
        authorize_path(&rp, &[("client_id", "")]),
    ] {
        let response = browser.get(&path).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert!(response.header("location").is_none());
        assert_page_headers(&response);
        assert!(!text(&response).contains("<form"));
    }
}

async fn a_redirect_uri_not_exactly_the_registered_one_never_redirects(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    for redirect in [
        "",
        "https://rp.example/cb/",
        "https://RP.example/cb",
        "https://rp.example/CB",
        "https://rp.example/cb?x=1",
        "https://rp.example:8443/cb",
        "http://rp.example/cb",
    ] {
        // Even with other errors in the request, no redirect is made to an unchecked URI.
        for extra in [("scope", "openid"), ("response_type", "token")] {
            let response = browser
                .get(&authorize_path(&rp, &[("redirect_uri", redirect), extra]))
                .await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{redirect:?}");
            assert!(response.header("location").is_none(), "{redirect:?}");
            assert!(text(&response).contains("redirect_uri"));
        }
    }
}

async fn request_errors_go_back_to_the_client_with_state_and_iss(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            &[("request_uri", "https://rp.example/req/1")],
            "request_uri_not_supported",
        ),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (&[("scope", "profile email")], "invalid_scope"),
        (&[("code_challenge", "short")], "invalid_request"),
        (&[("code_challenge_method", "S512")], "invalid_request"),
        (&[("prompt", "none login")], "invalid_request"),
    ];
    for (changes, error) in cases {
        let answer = redirect_query(&browser.get(&authorize_path(&rp, changes)).await);
        assert_eq!(answer["error"], error, "{changes:?}");
        assert!(!answer["error_description"].is_empty());
        assert_eq!(answer["state"], "st-42 &?");
        assert_eq!(answer["iss"], "http://idgraph.test");
        assert!(!answer.contains_key("code"));
    }
    assert_eq!(rows::<connections::Entity>(&app).await, 0);
}

async fn a_browser_not_signed_in_sees_the_sign_in_page(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&authorize_path(&rp, &[("login_hint", "ada")]))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_page_headers(&page);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    let html = text(&page);
    assert!(html.contains("<label for=\"username\">"));
    assert!(html.contains("<label for=\"password\">"));
    assert!(
        html.contains("value=\"ada\""),
        "login_hint pre-fills the username"
    );
    assert!(html.contains("RP"), "the app is named");
    assert!(!html.contains("<script"));
    // A cookie anchors the form's CSRF token; no session exists yet.
    assert!(browser.cookie.is_some());
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 0);
    let stylesheet = app.get("/oauth/style.css", None).await;
    assert_eq!(stylesheet.status, StatusCode::OK);
    assert!(
        stylesheet
            .header("content-type")
            .unwrap()
            .starts_with("text/css")
    );
}

async fn prompt_none_without_a_session_answers_login_required(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let answer = redirect_query(
        &browser
            .get(&authorize_path(&rp, &[("prompt", "none")]))
            .await,
    );
    assert_eq!(answer["error"], "login_required");
    assert_eq!(answer["state"], "st-42 &?");
}

async fn wrong_credentials_say_so_without_telling_which(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let cookie_before = browser.cookie.clone();
    let wrong_password = browser.sign_in(&page, "ada", "not the password").await;
    let unknown_user = browser.sign_in(&page, "nobody", "not the password").await;
    for response in [&wrong_password, &unknown_user] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(text(response).contains("The username or password is not right."));
        assert_page_headers(response);
    }
    assert_eq!(browser.cookie, cookie_before, "no session was opened");
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 0);
}

async fn repeated_failed_sign_ins_are_slowed_down(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    for _ in 0..idgraph::service::throttle::USER_FREE {
        let failed = browser.sign_in(&page, "ada", "guess").await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password has to wait: it is not checked during the delay.
    let slowed = browser.sign_in(&page, "ADA", PASSWORD).await;
    assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(slowed.header("retry-after"), Some("1"));
    assert!(text(&slowed).contains("Too many failed attempts"));
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 0);
    // The delay is bounded: once it has passed, the right password works.
    app.advance(idgraph::service::throttle::BASE_DELAY);
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    consent.assert_status(StatusCode::OK);
}

async fn signing_in_sets_a_host_only_http_only_lax_cookie(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    // An expired session of ada's is cleared by her next sign-in.
    browser_sessions::Entity::insert(browser_sessions::ActiveModel {
        id: Set("e".repeat(64)),
        user_id: Set(rp.user_id.clone()),
        auth_time: Set(app.now() - 100_000),
        expires_at: Set(app.now() - 10),
        sid: Set(None),
    })
    .exec_without_returning(&app.state.db)
    .await
    .unwrap();
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let anonymous = browser.cookie.clone().unwrap();
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    let set = consent.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(
        set.contains("; Path=/;"),
        "the console and GraphiQL share it: {set}"
    );
    let legacy: Vec<&str> = consent
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.contains("Path=/oauth;"))
        .collect();
    assert!(
        matches!(legacy.as_slice(), [clear] if clear.contains("Max-Age=0")),
        "the cookie earlier releases set at /oauth is expired: {legacy:?}"
    );
    assert!(!set.contains("Domain"), "host-only: {set}");
    assert!(!set.contains("Secure"), "the issuer is http: {set}");
    // The value changes at sign-in, so a planted value never becomes a session.
    assert_ne!(browser.cookie.as_deref(), Some(anonymous.as_str()));
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 1);
}

/// On an https issuer the cookie is `Secure` and named `__Host-…`, which browsers take only
/// from this very host; a cookie of the plain name (which another host could plant) is not
/// read, and the one an earlier release set under that name is expired at sign-in.
#[tokio::test]
async fn the_cookie_is_secure_and_host_only_by_name_when_the_issuer_is_https() {
    let app = TestApp::sqlite_with(|c| c.issuer = Some("https://id.example".into())).await;
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let anchor = page.header("set-cookie").unwrap();
    assert!(anchor.starts_with("__Host-idgraph_session="), "{anchor}");
    assert!(
        anchor.contains("; Secure") && anchor.contains("; Path=/;"),
        "{anchor}"
    );
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    let set: Vec<&str> = consent
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        set.iter().any(|v| v.starts_with("__Host-idgraph_session=")
            && v.contains("; Secure")
            && !v.contains("Max-Age=0")),
        "{set:?}"
    );
    assert!(
        set.iter().any(|v| v.starts_with("idgraph_session=;")
            && v.contains("; Path=/;")
            && v.contains("Max-Age=0")),
        "the plain name an earlier release used is expired: {set:?}"
    );
    // Signed in under the prefixed name: approved once, the next request gets a code at once.
    assert!(redirect_query(&browser.press(&consent, "approve").await).contains_key("code"));
    let signed_in = browser.cookie.clone().expect("signed in");
    let again = browser.get(&authorize_path(&rp, &[])).await;
    assert!(redirect_query(&again).contains_key("code"));
    // The same value under the plain name is not the session: the sign-in page again.
    let request = axum::http::Request::builder()
        .uri(authorize_path(&rp, &[]))
        .header("cookie", format!("idgraph_session={signed_in}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let planted = app.send(request).await;
    planted.assert_status(StatusCode::OK);
    assert!(text(&planted).contains("name=\"password\""));
}

async fn approving_redirects_with_a_code_that_redeems_with_the_sign_in_time(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (mut browser, consent) = signed_in_at_consent(&app, &rp).await;
    let csp = consent.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    // Pretend the password was typed a while ago: the code must carry that time.
    let signed_in_at = app.now() - 500;
    browser_sessions::Entity::update_many()
        .col_expr(
            browser_sessions::Column::AuthTime,
            Expr::value(signed_in_at),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let answer = redirect_query(&browser.press(&consent, "approve").await);
    assert_eq!(answer["state"], "st-42 &?");
    assert_eq!(answer["iss"], "http://idgraph.test");
    let redeemed = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    redeemed.assert_status(StatusCode::OK);
    let id = claims(redeemed.json()["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], signed_in_at);
    assert_eq!(id["nonce"], "n-0S6");
    assert_eq!(id["sub"], rp.user_id.as_str());
    assert_eq!(redeemed.json()["scope"], "email openid profile");
}

async fn denying_redirects_with_access_denied(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (mut browser, consent) = signed_in_at_consent(&app, &rp).await;
    let answer = redirect_query(&browser.press(&consent, "deny").await);
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "st-42 &?");
    assert_eq!(answer["iss"], "http://idgraph.test");
    assert_eq!(rows::<connections::Entity>(&app).await, 0);
}

async fn remembered_consent_skips_the_consent_page_unless_prompt_asks(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (mut browser, consent) = signed_in_at_consent(&app, &rp).await;
    redirect_query(&browser.press(&consent, "approve").await);
    // Same or fewer scopes: straight back with a code.
    for changes in [
        &[][..],
        &[("scope", "openid email")][..],
        &[("prompt", "none")][..],
    ] {
        let answer = redirect_query(&browser.get(&authorize_path(&rp, changes)).await);
        assert!(answer.contains_key("code"), "{changes:?}: {answer:?}");
    }
    // prompt=consent asks again; a wider scope asks again.
    for changes in [
        &[("prompt", "consent")][..],
        &[("scope", "openid offline_access")][..],
    ] {
        let page = browser.get(&authorize_path(&rp, changes)).await;
        assert_eq!(page.status, StatusCode::OK, "{changes:?}");
        assert!(text(&page).contains("Approve"));
    }
    // …and prompt=none cannot ask, so it says so.
    let answer = redirect_query(
        &browser
            .get(&authorize_path(
                &rp,
                &[("scope", "openid offline_access"), ("prompt", "none")],
            ))
            .await,
    );
    assert_eq!(answer["error"], "consent_required");
}

async fn prompt_login_and_an_old_sign_in_ask_for_the_password_again(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (mut browser, consent) = signed_in_at_consent(&app, &rp).await;
    redirect_query(&browser.press(&consent, "approve").await);
    let again = browser
        .get(&authorize_path(&rp, &[("prompt", "login")]))
        .await;
    assert!(text(&again).contains("name=\"password\""));
    // Signing in again satisfies prompt=login; consent is remembered, so a code follows.
    let answer = redirect_query(&browser.sign_in(&again, "ada", PASSWORD).await);
    assert!(answer.contains_key("code"));

    browser_sessions::Entity::update_many()
        .col_expr(
            browser_sessions::Column::AuthTime,
            Expr::value(app.now() - 1000),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let fresh_enough = browser
        .get(&authorize_path(&rp, &[("max_age", "5000")]))
        .await;
    assert!(redirect_query(&fresh_enough).contains_key("code"));
    let too_old = browser
        .get(&authorize_path(&rp, &[("max_age", "60")]))
        .await;
    assert!(text(&too_old).contains("name=\"password\""));
    let silent = browser
        .get(&authorize_path(
            &rp,
            &[("max_age", "60"), ("prompt", "none")],
        ))
        .await;
    assert_eq!(redirect_query(&silent)["error"], "login_required");
}

/// `max_age` holds when "Approve" is pressed, not only when the consent page was shown: a page
/// left open until the sign-in is older than allowed asks for the password again, and records
/// no consent.
async fn max_age_is_checked_again_when_consent_is_given(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&authorize_path(&rp, &[("max_age", "60")]))
        .await;
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    assert!(text(&consent).contains("value=\"approve\""));
    app.advance(std::time::Duration::from_secs(61));
    let again = browser.press(&consent, "approve").await;
    again.assert_status(StatusCode::OK);
    assert!(text(&again).contains("name=\"password\""));
    assert_eq!(rows::<grants::Entity>(&app).await, 0, "no code was issued");
    // Signed in afresh, the same request goes on to consent and a code.
    let consent = browser.sign_in(&again, "ada", PASSWORD).await;
    let answer = redirect_query(&browser.press(&consent, "approve").await);
    assert!(answer.contains_key("code"));
}

async fn forms_without_their_csrf_token_are_refused(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let request = hidden(&text(&page), "request");
    for csrf in ["", "0000"] {
        let refused = browser
            .post(
                "/oauth/authorize",
                &[
                    ("action", "signin"),
                    ("csrf", csrf),
                    ("request", &request),
                    ("username", "ada"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 0);

    let (mut browser, consent) = signed_in_at_consent(&app, &rp).await;
    // Another browser's token (bound to another cookie) does not work either.
    let mut other = Browser::new(&app);
    let other_page = other.get(&authorize_path(&rp, &[])).await;
    let refused = browser
        .post(
            "/oauth/authorize",
            &[
                ("action", "approve"),
                ("csrf", &hidden(&text(&other_page), "csrf")),
                ("request", &hidden(&text(&consent), "request")),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.header("location").is_none());
    assert_eq!(rows::<connections::Entity>(&app).await, 0);
    let refused = browser.post("/oauth/logout", &[("csrf", "")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 1);
}

async fn the_consent_page_shows_the_app_the_scopes_and_who_is_signed_in(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (_, consent) = signed_in_at_consent(&app, &rp).await;
    assert_page_headers(&consent);
    let html = text(&consent);
    for expected in [
        "<strong>RP</strong> wants to use your idgraph account",
        "https://rp.example",
        "Sign you in with your idgraph account",
        "See your name and username",
        "See your email address",
        "Signed in as",
        "(ada)",
        "Not you? Sign out",
        "value=\"approve\"",
        "value=\"deny\"",
    ] {
        assert!(html.contains(expected), "{expected:?} missing from {html}");
    }
    assert!(
        !html.contains("Stay connected"),
        "offline_access was not asked"
    );
}

async fn logout_asks_first_and_returns_to_the_request(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (mut browser, consent) = signed_in_at_consent(&app, &rp).await;
    let html = text(&consent);
    let start = html.find("/oauth/logout?").unwrap();
    let link = unescape(&html[start..start + html[start..].find('"').unwrap()]);
    let confirm = browser.get(&link).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert_page_headers(&confirm);
    assert!(text(&confirm).contains("Sign out?"));
    // The bare GET changed nothing: still signed in.
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 1);
    let confirm_html = text(&confirm);
    let signed_out = browser
        .post(
            "/oauth/logout",
            &[
                ("csrf", &hidden(&confirm_html, "csrf")),
                ("continue", &hidden(&confirm_html, "continue")),
            ],
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    let back = signed_out.header("location").unwrap().to_string();
    assert!(back.starts_with("/oauth/authorize?"), "{back}");
    assert!(
        signed_out
            .header("set-cookie")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 0);
    let page = browser.get(&back).await;
    assert!(
        text(&page).contains("name=\"password\""),
        "signed out: the sign-in page"
    );
}

async fn a_form_posted_authorization_request_is_answered_as_a_get(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let posted = browser
        .post(
            "/oauth/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &rp.client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let location = posted.header("location").unwrap().to_string();
    assert!(location.starts_with("/oauth/authorize?response_type=code&client_id="));
    assert_eq!(browser.get(&location).await.status, StatusCode::OK);
}

async fn discovery_points_at_the_hosted_endpoint(app: TestApp) {
    let document = app
        .get("/.well-known/openid-configuration", None)
        .await
        .json();
    assert_eq!(
        document["authorization_endpoint"],
        "http://idgraph.test/oauth/authorize"
    );
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );
}

#[tokio::test]
async fn an_external_sign_in_ui_takes_the_place_of_the_hosted_endpoint_in_discovery() {
    let app = TestApp::sqlite_with(|c| {
        c.authorization_endpoint = Some("https://login.example/authorize".into())
    })
    .await;
    let document = app
        .get("/.well-known/openid-configuration", None)
        .await
        .json();
    assert_eq!(
        document["authorization_endpoint"],
        "https://login.example/authorize"
    );
    assert!(document["authorization_response_iss_parameter_supported"].is_null());
}

/// What axum refuses before any handler of ours runs (a form over the size limit, a wrong
/// content type, a method the path does not take) carries the hosted pages' headers too; the
/// stylesheet keeps its own cache lifetime.
#[tokio::test]
async fn refusals_no_handler_wrote_carry_the_hosted_pages_headers() {
    let app = TestApp::sqlite().await;
    let form = |body: String, content_type: &str| {
        axum::http::Request::builder()
            .method(axum::http::Method::POST)
            .uri("/oauth/authorize")
            .header(axum::http::header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let too_large = format!("action=signin&username={}", "a".repeat(20 * 1024));
    let put = axum::http::Request::builder()
        .method(axum::http::Method::PUT)
        .uri("/oauth/logout")
        .body(axum::body::Body::empty())
        .unwrap();
    for (request, status) in [
        (
            form(too_large, "application/x-www-form-urlencoded"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            form("action=signin".into(), "application/json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (put, StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let answer = app.send(request).await;
        answer.assert_status(status);
        let csp = answer.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{status}: {csp}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{status}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{status}");
    }
    let css = app.get("/oauth/style.css", None).await;
    assert_eq!(css.header("cache-control"), Some("public, max-age=3600"));
}

crate::on_every_database!(
    unknown_client_gets_an_error_page_and_no_redirect,
    a_redirect_uri_not_exactly_the_registered_one_never_redirects,
    request_errors_go_back_to_the_client_with_state_and_iss,
    a_browser_not_signed_in_sees_the_sign_in_page,
    prompt_none_without_a_session_answers_login_required,
    wrong_credentials_say_so_without_telling_which,
    repeated_failed_sign_ins_are_slowed_down,
    signing_in_sets_a_host_only_http_only_lax_cookie,
    approving_redirects_with_a_code_that_redeems_with_the_sign_in_time,
    denying_redirects_with_access_denied,
    remembered_consent_skips_the_consent_page_unless_prompt_asks,
    prompt_login_and_an_old_sign_in_ask_for_the_password_again,
    max_age_is_checked_again_when_consent_is_given,
    forms_without_their_csrf_token_are_refused,
    the_consent_page_shows_the_app_the_scopes_and_who_is_signed_in,
    logout_asks_first_and_returns_to_the_request,
    a_form_posted_authorization_request_is_answered_as_a_get,
    discovery_points_at_the_hosted_endpoint,
);
