//! Apps for every kind of client: public PKCE clients, several redirect URIs, per-app policy
//! (grants, scope ceiling, ID-token algorithm), secrets that rotate with overlap, and CORS for
//! browser clients.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, RedirectUrl,
    RefreshToken, TokenResponse, reqwest,
};
use serde_json::{Value, json};

use crate::common::browser::{Browser, authorize_path};
use crate::common::oidc_rp::{CodeRequest, code_request};
use crate::common::rp::{
    REDIRECT, Rp, VERIFIER, basic, consent, refresh_grant, s256, setup, token, token_with,
};
use crate::common::{PASSWORD, Served, TestApp, json_request};

/// The hosted flow for `rp` with `changes`, signed in as ada: the redirect's query.
async fn hosted_code(
    app: &TestApp,
    rp: &Rp,
    changes: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let mut browser = Browser::new(app);
    let page = browser.get(&authorize_path(rp, changes)).await;
    page.assert_status(StatusCode::OK);
    let signed_in = browser.sign_in(&page, "ada", PASSWORD).await;
    // Consent given before is remembered: then the sign-in itself answers.
    let answer = if signed_in.status == StatusCode::SEE_OTHER {
        signed_in
    } else {
        browser.press(&signed_in, "approve").await
    };
    answer.assert_status(StatusCode::SEE_OTHER);
    let location = url::Url::parse(answer.header("location").unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}

/// The end to end test: `openidconnect` as a public client (no secret, PKCE S256) signs a user
/// in through the hosted pages, reads userinfo and refreshes; without PKCE it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_signs_in_with_pkce_and_no_secret() {
    let served = Served::start(|_| {}).await;
    let (app, issuer) = (&served.app, &served.issuer);
    let admin = app.oauth_admin("ops").await;
    let redirect = "http://127.0.0.1:9/spa-callback";
    let public = app
        .register_app_with(
            &admin,
            json!({ "name": "SPA", "redirect_uri": redirect, "token_endpoint_auth_method": "none" }),
        )
        .await;
    app.create_user("ada", &[]).await;

    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let methods = metadata.token_endpoint_auth_methods_supported().unwrap();
    assert!(methods.iter().any(|m| m.as_ref() == "none"), "{methods:?}");
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(public.client_id.clone()), None)
            .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());

    let CodeRequest {
        url: auth_url,
        state,
        nonce,
        verifier,
    } = code_request(&client, &["profile", "offline_access"], &[]);
    // A browser signs in and approves on the hosted pages.
    let mut browser = Browser::new(app);
    let page = browser
        .get(&format!(
            "{}?{}",
            auth_url.path(),
            auth_url.query().unwrap()
        ))
        .await;
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    let answer = browser.press(&consent, "approve").await;
    let location = url::Url::parse(answer.header("location").unwrap()).unwrap();
    assert!(location.as_str().starts_with(redirect), "{location}");
    let query: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(&query["state"], state.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(query["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("a public client's code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token");
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
        .expect("a public client's refresh");
    assert_ne!(refreshed.refresh_token().unwrap().secret(), &refresh);

    // Without PKCE, the same client is refused with invalid_request.
    let (auth_url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let refused = browser
        .get(&format!(
            "{}?{}",
            auth_url.path(),
            auth_url.query().unwrap()
        ))
        .await;
    refused.assert_status(StatusCode::SEE_OTHER);
    let location = url::Url::parse(refused.header("location").unwrap()).unwrap();
    let error: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(error["error"], "invalid_request", "{location}");
}

async fn a_public_client_never_uses_a_secret_and_a_confidential_one_only_its_method(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let public = app
        .register_app_with(
            &admin,
            json!({ "name": "CLI", "redirect_uri": REDIRECT, "token_endpoint_auth_method": "none" }),
        )
        .await;
    // A public client gets no secret to rotate, and consent without S256 is refused.
    let rotate = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{}/rotate", public.client_id),
            Some(&admin),
            None,
        )
        .await;
    rotate.assert_status(StatusCode::BAD_REQUEST);
    let public_rp = rp.for_app(&public);
    for body in [
        json!({ "client_id": public.client_id, "scope": "openid" }),
        json!({ "client_id": public.client_id, "scope": "openid", "code_challenge": VERIFIER, "code_challenge_method": "plain" }),
    ] {
        let refused = app
            .rest(
                Method::POST,
                "/api/oauth/auth/code",
                Some(&rp.user_token),
                Some(body),
            )
            .await;
        refused.assert_status(StatusCode::BAD_REQUEST);
    }
    let code = consent(&app, &public_rp, json!({ "scope": "openid", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256" })).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", public.client_id.as_str()),
    ];
    // A public client that sends a secret is invalid_client, whichever way it sends it.
    let with_secret = token_with(&app, Some(basic(&public.client_id, "made-up")), &form).await;
    with_secret.assert_status(StatusCode::UNAUTHORIZED);
    let mut posted = form.to_vec();
    posted.push(("client_secret", "made-up"));
    token_with(&app, None, &posted)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    token_with(&app, None, &form)
        .await
        .assert_status(StatusCode::OK);
    // A confidential app authenticates with its own method only.
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let by_post = token_with(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &rp.client_id),
            ("client_secret", &rp.secret),
        ],
    )
    .await;
    assert_eq!(
        by_post.status,
        StatusCode::UNAUTHORIZED,
        "basic app, post method"
    );
    let by_nothing = token_with(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &rp.client_id),
        ],
    )
    .await;
    assert_eq!(by_nothing.status, StatusCode::UNAUTHORIZED);
}

async fn a_second_redirect_uri_works_and_a_near_miss_never_redirects(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let staging = "https://staging.rp.example/cb";
    let both = app
        .register_app_with(
            &admin,
            json!({ "name": "Two", "redirect_uris": [REDIRECT, staging] }),
        )
        .await;
    let two = rp.for_app(&both);
    let answer = hosted_code(&app, &two, &[("redirect_uri", staging)]).await;
    let exchanged = token(
        &app,
        &two,
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", staging),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    exchanged.assert_status(StatusCode::OK);
    // The code is bound to the URI it was asked for, even though the other one is registered.
    let answer = hosted_code(&app, &two, &[("redirect_uri", staging)]).await;
    let other = token(
        &app,
        &two,
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    other.assert_status(StatusCode::BAD_REQUEST);
    let mut browser = Browser::new(&app);
    for near in [
        "https://staging.rp.example/cb/",
        "https://staging.rp.example/cb?x",
        "https://staging.rp.example:8443/cb",
        "http://staging.rp.example/cb",
    ] {
        let response = browser
            .get(&authorize_path(&two, &[("redirect_uri", near)]))
            .await;
        response.assert_status(StatusCode::BAD_REQUEST);
        assert!(response.header("location").is_none(), "{near}");
    }
    // The seed's field reads the first URI.
    let fetched = app
        .get(&format!("/api/oauth/app/id/{}", both.client_id), None)
        .await
        .json();
    assert_eq!(fetched["redirect_uri"], REDIRECT);
    assert_eq!(fetched["redirect_uris"], json!([REDIRECT, staging]));
}

async fn loopback_redirects_match_any_port_for_public_apps_only(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let registered = "http://127.0.0.1/callback";
    let asked = "http://127.0.0.1:53211/callback";
    let native = app
        .register_app_with(
            &admin,
            json!({ "name": "Native", "redirect_uri": registered, "token_endpoint_auth_method": "none" }),
        )
        .await;
    let native_rp = rp.for_app(&native);
    let answer = hosted_code(&app, &native_rp, &[("redirect_uri", asked)]).await;
    let exchanged = token_with(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", asked),
            ("code_verifier", VERIFIER),
            ("client_id", &native.client_id),
        ],
    )
    .await;
    exchanged.assert_status(StatusCode::OK);
    let confidential = app
        .register_app_with(
            &admin,
            json!({ "name": "Server", "redirect_uri": registered }),
        )
        .await;
    let mut browser = Browser::new(&app);
    let refused = browser
        .get(&authorize_path(
            &rp.for_app(&confidential),
            &[("redirect_uri", asked)],
        ))
        .await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    assert!(refused.header("location").is_none());
}

async fn grants_outside_the_list_are_unauthorized_client_and_scopes_stay_under_the_ceiling(
    app: TestApp,
) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let narrow = app
        .register_app_with(
            &admin,
            json!({ "name": "Narrow", "redirect_uri": REDIRECT, "grant_types": ["authorization_code"], "scope": "openid profile" }),
        )
        .await;
    let narrow_rp = rp.for_app(&narrow);
    let code = consent(
        &app,
        &narrow_rp,
        json!({ "scope": "openid profile email offline_access" }),
    )
    .await;
    let tokens = crate::common::rp::redeem_for(&app, &narrow_rp, &code).await;
    // Narrowed, never widened, never refused: the answer's scope says what was granted.
    assert_eq!(tokens["scope"], "openid profile");
    assert!(tokens.get("refresh_token").is_none());
    let refresh = refresh_grant(&app, &narrow_rp, "a.b").await;
    refresh.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(refresh.json()["error"], "unauthorized_client");
    // The connection records the narrowed scope too.
    let connection = app
        .get(
            &format!("/api/oauth/connection/id/{}", narrow.client_id),
            Some(&rp.user_token),
        )
        .await
        .json();
    assert_eq!(connection["scope"], "openid profile");
    // Bad metadata is refused by name, and writes nothing.
    for (body, field) in [
        (
            json!({ "name": "X", "redirect_uri": REDIRECT, "grant_types": ["implicit"] }),
            "grant_types",
        ),
        (
            json!({ "name": "X", "redirect_uri": REDIRECT, "scope": "openid admin" }),
            "scope",
        ),
        (
            json!({ "name": "X", "redirect_uri": REDIRECT, "token_endpoint_auth_method": "private_key_jwt" }),
            "token_endpoint_auth_method",
        ),
        (
            json!({ "name": "X", "redirect_uri": REDIRECT, "id_token_signed_response_alg": "HS256" }),
            "id_token_signed_response_alg",
        ),
        (
            json!({ "name": "X", "redirect_uri": "https://rp.example/a\r\nb" }),
            "redirect_uri",
        ),
        (
            json!({ "name": "X", "redirect_uri": "https:///cb" }),
            "redirect_uri",
        ),
        (
            json!({ "name": "X", "redirect_uri": "https://rp.example/a b" }),
            "redirect_uri",
        ),
        (
            json!({ "name": "X", "redirect_uris": (0..11).map(|i| format!("https://rp.example/{i}")).collect::<Vec<_>>() }),
            "redirect_uris",
        ),
    ] {
        let refused = app
            .rest(Method::POST, "/api/oauth/app", Some(&admin), Some(body))
            .await;
        refused.assert_status(StatusCode::BAD_REQUEST);
        let message = refused.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(field), "{field}: {message}");
    }
    let listed = app
        .get("/api/oauth/app?amount=100", Some(&admin))
        .await
        .json();
    assert_eq!(
        listed["apps"].as_array().unwrap().len(),
        2,
        "nothing was written"
    );
}

#[tokio::test]
async fn discovery_lists_rs256_whatever_the_configured_default() {
    for default in ["EdDSA", "ES256", "RS256"] {
        let app = TestApp::sqlite_with(|c| c.signing_algorithm = default.into()).await;
        let doc = app
            .get("/.well-known/openid-configuration", None)
            .await
            .json();
        let listed = doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .clone();
        let expected: Vec<Value> = if default == "RS256" {
            vec![json!("RS256")]
        } else {
            vec![json!(default), json!("RS256")]
        };
        assert_eq!(listed, expected, "default {default}");
        assert_eq!(
            doc["access_token_signing_alg_values_supported"],
            json!([default])
        );
    }
}

/// A secret's `last_used_at` is written at most once a minute: a use half a minute after the
/// last write leaves it as it was, one a minute after moves it.
async fn a_secrets_last_use_is_written_at_most_once_a_minute(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app.register_app(&admin, "Used", "", REDIRECT).await;
    let id = created.client_id.clone();
    let last_used = async || {
        let listed = app
            .get(&format!("/api/oauth/app/id/{id}/secrets"), Some(&admin))
            .await
            .json();
        listed["secrets"][0]["last_used_at"].clone()
    };
    assert_eq!(last_used().await, Value::Null, "never used yet");
    assert!(app.secret_works(&id, &created.secret).await);
    let written = app.now();
    assert_eq!(last_used().await, json!(written));
    app.advance(Duration::from_secs(30));
    assert!(app.secret_works(&id, &created.secret).await);
    assert_eq!(last_used().await, json!(written), "within the minute");
    app.advance(Duration::from_secs(31));
    assert!(app.secret_works(&id, &created.secret).await);
    assert_eq!(last_used().await, json!(written + 61));
}

/// Secret overlap with the clock moved: during the grace both work, after it only the new one;
/// a revoked secret fails at once.
async fn rotated_secrets_overlap_for_the_grace_and_revoked_ones_fail_at_once(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app.register_app(&admin, "Rotating", "", REDIRECT).await;
    let (id, old) = (created.client_id.clone(), created.secret.clone());
    let rotated = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{id}/rotate"),
            Some(&admin),
            Some(json!({ "grace_seconds": 3600 })),
        )
        .await;
    rotated.assert_status(StatusCode::OK);
    let new = rotated.json()["key"].as_str().unwrap().to_string();
    assert!(app.secret_works(&id, &old).await && app.secret_works(&id, &new).await);
    let secrets = app
        .get(&format!("/api/oauth/app/id/{id}/secrets"), Some(&admin))
        .await
        .json();
    let list = secrets["secrets"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list[0]["expires_at"].is_null(),
        "the newest has no end: {secrets}"
    );
    assert_eq!(list[1]["expires_at"], json!(app.now() + 3600));
    assert!(
        list[1]["last_used_at"].is_i64(),
        "the old one was just used"
    );
    assert!(!secrets.to_string().contains(&old) && !secrets.to_string().contains(&new));
    app.advance(Duration::from_secs(3601));
    assert!(!app.secret_works(&id, &old).await, "the grace is over");
    assert!(app.secret_works(&id, &new).await);
    // An hour on, the admin's access token has expired too: sign in again.
    let admin = app.token("ops", None).await;
    // Out-of-range grace is refused.
    let refused = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{id}/rotate"),
            Some(&admin),
            Some(json!({ "grace_seconds": 2592001 })),
        )
        .await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    // Revoking ends a secret at once.
    let secrets = app
        .get(&format!("/api/oauth/app/id/{id}/secrets"), Some(&admin))
        .await
        .json();
    let newest = secrets["secrets"][0]["id"].as_str().unwrap().to_string();
    app.rest(
        Method::DELETE,
        &format!("/api/oauth/app/id/{id}/secrets/{newest}"),
        Some(&admin),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert!(!app.secret_works(&id, &new).await);
    app.rest(
        Method::DELETE,
        &format!("/api/oauth/app/id/{id}/secrets/{newest}"),
        Some(&admin),
        None,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
}

/// Ten rotations at once: each answer that hands out a secret holds one that works (the earlier
/// ones keep their grace); the rest are told there is no room (409), never handed a dead one.
async fn concurrent_rotations_hand_out_only_working_secrets(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app.register_app(&admin, "Busy", "", REDIRECT).await;
    let path = format!("/api/oauth/app/id/{}/rotate", created.client_id);
    let answers = app
        .send_all(
            (0..10)
                .map(|_| json_request(Method::PUT, &path, Some(&admin), None))
                .collect(),
        )
        .await;
    let mut handed_out = Vec::new();
    for answer in &answers {
        match answer.status {
            StatusCode::OK => handed_out.push(answer.json()["key"].as_str().unwrap().to_string()),
            StatusCode::CONFLICT => {}
            other => panic!("{other}: {}", String::from_utf8_lossy(&answer.body)),
        }
    }
    assert!(
        !handed_out.is_empty() && handed_out.len() <= 2,
        "{}",
        handed_out.len()
    );
    for secret in handed_out {
        assert!(app.secret_works(&created.client_id, &secret).await);
    }
}

/// Ten rotations with no grace at once: the first ends every other secret and hands out one
/// that works; the other nine would end it in turn, so they are told so (409), never handed a
/// secret that the next one kills.
async fn concurrent_rotations_with_no_grace_hand_out_one_working_secret(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app.register_app(&admin, "Busy", "", REDIRECT).await;
    let path = format!("/api/oauth/app/id/{}/rotate", created.client_id);
    let answers = app
        .send_all(
            (0..10)
                .map(|_| {
                    json_request(
                        Method::PUT,
                        &path,
                        Some(&admin),
                        Some(json!({ "grace_seconds": 0 })),
                    )
                })
                .collect(),
        )
        .await;
    let mut handed_out = Vec::new();
    for answer in &answers {
        match answer.status {
            StatusCode::OK => handed_out.push(answer.json()["key"].as_str().unwrap().to_string()),
            StatusCode::CONFLICT => {
                let message = answer.json()["message"].as_str().unwrap().to_string();
                assert!(message.contains("rotated 0 seconds ago"), "{message}");
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&answer.body)),
        }
    }
    assert_eq!(handed_out.len(), 1);
    assert!(app.secret_works(&created.client_id, &handed_out[0]).await);
    assert!(!app.secret_works(&created.client_id, &created.secret).await);
}

/// An app holding its three live secrets can still be rotated with no grace (the emergency:
/// a secret leaked), since that ends the other three; with a grace it is told there is no room.
async fn a_rotation_with_no_grace_always_has_room(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app.register_app(&admin, "Full", "", REDIRECT).await;
    let path = format!("/api/oauth/app/id/{}/rotate", created.client_id);
    let mut secrets = vec![created.secret.clone()];
    for _ in 0..2 {
        app.advance(Duration::from_secs(60));
        let rotated = app.rest(Method::PUT, &path, Some(&admin), None).await;
        rotated.assert_status(StatusCode::OK);
        secrets.push(rotated.json()["key"].as_str().unwrap().to_string());
    }
    app.advance(Duration::from_secs(60));
    app.rest(Method::PUT, &path, Some(&admin), None)
        .await
        .assert_status(StatusCode::CONFLICT);
    let rotated = app
        .rest(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({ "grace_seconds": 0 })),
        )
        .await;
    rotated.assert_status(StatusCode::OK);
    let new = rotated.json()["key"].as_str().unwrap().to_string();
    assert!(app.secret_works(&created.client_id, &new).await);
    for old in secrets {
        assert!(!app.secret_works(&created.client_id, &old).await);
    }
}

/// Two nodes over one PostgreSQL: a secret revoked on one is refused by the other once its
/// app cache entry has aged out (the bound, five seconds), with the clock moved, not slept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn a_secret_change_on_one_node_is_seen_by_another_within_the_cache_bound() {
    let a = TestApp::postgres()
        .await
        .expect("TEST_DATABASE_URL must be set");
    let b_state = idgraph::service::AppState::with_clock(
        a.state.db.clone(),
        (*a.state.config).clone(),
        a.state.clock.clone(),
    )
    .await
    .unwrap();
    let b = idgraph::app(b_state);
    let admin = a.oauth_admin("ops").await;
    let created = a.register_app(&admin, "Shared", "", REDIRECT).await;
    let on_b = |secret: String| {
        let b = b.clone();
        let id = created.client_id.clone();
        async move {
            let basic = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{id}:{secret}"),
            );
            let request = Request::builder()
                .method(Method::POST)
                .uri("/api/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, format!("Basic {basic}"))
                .body(Body::from("grant_type=refresh_token&refresh_token=a.b"))
                .unwrap();
            crate::common::send_on(b, request).await.status == StatusCode::BAD_REQUEST
        }
    };
    assert!(
        on_b(created.secret.clone()).await,
        "B knows the secret (and caches it)"
    );
    let rotated = a
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{}/rotate", created.client_id),
            Some(&admin),
            Some(json!({ "grace_seconds": 0 })),
        )
        .await;
    let new = rotated.json()["key"].as_str().unwrap().to_string();
    assert!(
        !a.secret_works(&created.client_id, &created.secret).await,
        "A: at once"
    );
    a.advance(Duration::from_secs(5));
    assert!(!on_b(created.secret.clone()).await, "B: within the bound");
    assert!(on_b(new).await);
}

/// CORS: the token endpoint and userinfo answer the origin of the app's redirect URIs (and its
/// preflight), and no other; discovery any origin; the management API none unless configured.
async fn browsers_read_token_and_userinfo_from_the_apps_origin_only(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let tokens_for = |origin: &str, code: &str| {
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        );
        Request::builder()
            .method(Method::POST)
            .uri("/api/oauth/token")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic(&rp.client_id, &rp.secret))
            .body(Body::from(form))
            .unwrap()
    };
    let allowed = app.send(tokens_for("https://rp.example", &code)).await;
    allowed.assert_status(StatusCode::OK);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://rp.example")
    );
    let access = allowed.json()["access_token"].as_str().unwrap().to_string();
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let other = app.send(tokens_for("https://evil.example", &code)).await;
    other.assert_status(StatusCode::OK);
    assert!(other.header("access-control-allow-origin").is_none());
    for (origin, expected) in [
        ("https://rp.example", Some("https://rp.example")),
        ("https://evil.example", None),
    ] {
        let info = app
            .send(
                Request::builder()
                    .uri("/api/oauth/userinfo")
                    .header(header::ORIGIN, origin)
                    .header(header::AUTHORIZATION, format!("Bearer {access}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        info.assert_status(StatusCode::OK);
        assert_eq!(
            info.header("access-control-allow-origin"),
            expected,
            "{origin}"
        );
        for path in ["/api/oauth/token", "/api/oauth/userinfo"] {
            let preflight = app
                .send(
                    Request::builder()
                        .method(Method::OPTIONS)
                        .uri(path)
                        .header(header::ORIGIN, origin)
                        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(
                preflight.header("access-control-allow-origin"),
                expected,
                "{path} {origin}"
            );
        }
    }
    let discovery = app
        .send(
            Request::builder()
                .uri("/.well-known/openid-configuration")
                .header(header::ORIGIN, "https://anyone.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(discovery.header("access-control-allow-origin"), Some("*"));
    let management = app
        .send(
            Request::builder()
                .uri(format!("/api/oauth/app/id/{}", rp.client_id))
                .header(header::ORIGIN, "https://rp.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(management.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_management_api_answers_the_configured_origins() {
    let app =
        TestApp::sqlite_with(|c| c.cors_allowed_origins = vec!["https://admin.example".into()])
            .await;
    for (origin, expected) in [
        ("https://admin.example", Some("https://admin.example")),
        ("https://evil.example", None),
    ] {
        let response = app
            .send(
                Request::builder()
                    .method(Method::OPTIONS)
                    .uri("/graphql")
                    .header(header::ORIGIN, origin)
                    .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            response.header("access-control-allow-origin"),
            expected,
            "{origin}"
        );
    }
}

/// The client metadata reads and writes the same through REST and GraphQL.
async fn client_metadata_agrees_between_rest_and_graphql(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app
        .graphql(
            "mutation M($input: AppInput!) { createApp(input: $input) { clientSecret app { clientId } } }",
            json!({ "input": {
                "name": "Metadata",
                "redirectUris": [REDIRECT, "com.example.app:/cb"],
                "postLogoutRedirectUris": ["https://rp.example/bye"],
                "tokenEndpointAuthMethod": "NONE",
                "grantTypes": ["AUTHORIZATION_CODE"],
                "scope": "openid email",
                "idTokenSignedResponseAlg": "EdDSA",
                "backchannelLogoutUri": "https://rp.example/backchannel",
                "backchannelLogoutSessionRequired": true,
            } }),
            Some(&admin),
        )
        .await;
    assert!(
        created["data"]["createApp"]["clientSecret"].is_null(),
        "{created}"
    );
    let id = created["data"]["createApp"]["app"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = app
        .get(&format!("/api/oauth/app/id/{id}"), None)
        .await
        .json();
    let gql = app
        .graphql(
            "query Q($id: ID!) { app(clientId: $id) { redirectUri redirectUris postLogoutRedirectUris tokenEndpointAuthMethod grantTypes scope idTokenSignedResponseAlg backchannelLogoutUri backchannelLogoutSessionRequired } }",
            json!({ "id": id }),
            None,
        )
        .await;
    let gql = &gql["data"]["app"];
    assert_eq!(rest["redirect_uri"], gql["redirectUri"]);
    assert_eq!(rest["redirect_uris"], gql["redirectUris"]);
    assert_eq!(
        rest["post_logout_redirect_uris"],
        gql["postLogoutRedirectUris"]
    );
    assert_eq!(rest["token_endpoint_auth_method"], "none");
    assert_eq!(gql["tokenEndpointAuthMethod"], "NONE");
    assert_eq!(rest["grant_types"], json!(["authorization_code"]));
    assert_eq!(gql["grantTypes"], json!(["AUTHORIZATION_CODE"]));
    assert_eq!(rest["scope"], gql["scope"]);
    assert_eq!(
        rest["id_token_signed_response_alg"],
        gql["idTokenSignedResponseAlg"]
    );
    assert_eq!(
        rest["backchannel_logout_uri"],
        "https://rp.example/backchannel"
    );
    assert_eq!(rest["backchannel_logout_uri"], gql["backchannelLogoutUri"]);
    assert_eq!(rest["backchannel_logout_session_required"], true);
    assert_eq!(
        rest["backchannel_logout_session_required"],
        gql["backchannelLogoutSessionRequired"]
    );
    // An older client's update (the seed's three fields) leaves the metadata as it was.
    app.rest(
        Method::PUT,
        &format!("/api/oauth/app/id/{id}"),
        Some(&admin),
        Some(json!({ "name": "Renamed", "url": "", "redirect_uri": REDIRECT })),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    let after = app
        .get(&format!("/api/oauth/app/id/{id}"), None)
        .await
        .json();
    for field in [
        "redirect_uris",
        "post_logout_redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "scope",
        "id_token_signed_response_alg",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
    ] {
        assert_eq!(after[field], rest[field], "{field}");
    }
    assert_eq!(after["name"], "Renamed");
    // The same bad value is the same error on both.
    let rest_bad = app
        .rest(
            Method::POST,
            "/api/oauth/app",
            Some(&admin),
            Some(json!({ "name": "B", "redirect_uri": REDIRECT, "scope": "openid nope" })),
        )
        .await;
    let gql_bad = app
        .graphql(
            "mutation { createApp(input: {name: \"B\", redirectUri: \"https://rp.example/cb\", scope: \"openid nope\"}) { clientSecret } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(rest_bad.json()["message"], gql_bad["errors"][0]["message"]);
    // Secrets: listed and revoked alike.
    let confidential = app.register_app(&admin, "Conf", "", REDIRECT).await;
    let rest_list = app
        .get(
            &format!("/api/oauth/app/id/{}/secrets", confidential.client_id),
            Some(&admin),
        )
        .await
        .json();
    let gql_list = app
        .graphql(
            "query S($id: ID!) { app(clientId: $id) { secrets { id expiresAt } } }",
            json!({ "id": confidential.client_id }),
            Some(&admin),
        )
        .await;
    assert_eq!(
        rest_list["secrets"][0]["id"],
        gql_list["data"]["app"]["secrets"][0]["id"]
    );
    let secret_id = rest_list["secrets"][0]["id"].as_str().unwrap();
    let revoked = app
        .graphql(
            "mutation R($id: ID!, $s: ID!) { revokeAppSecret(clientId: $id, secretId: $s) }",
            json!({ "id": confidential.client_id, "s": secret_id }),
            Some(&admin),
        )
        .await;
    assert_eq!(revoked["data"]["revokeAppSecret"], secret_id);
    assert!(
        !app.secret_works(&confidential.client_id, &confidential.secret)
            .await
    );
}

/// The ceiling is the app's policy now, not at consent: a refresh after it was narrowed gives
/// only what it still allows, and once it leaves out `offline_access` the grant ends.
async fn a_ceiling_narrowed_after_consent_holds_for_refreshes(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let code = consent(
        &app,
        &rp,
        json!({ "scope": "openid profile email offline_access" }),
    )
    .await;
    let tokens = crate::common::rp::redeem_for(&app, &rp, &code).await;
    assert_eq!(tokens["scope"], "email offline_access openid profile");
    let set_ceiling = async |scope: &str| {
        let body = app
            .graphql(
                "mutation($id: ID!, $input: AppInput!) { updateApp(clientId: $id, input: $input) { scope } }",
                json!({ "id": rp.client_id, "input": { "name": "RP", "redirectUri": REDIRECT, "scope": scope } }),
                Some(&admin),
            )
            .await;
        assert_eq!(body["data"]["updateApp"]["scope"], scope, "{body}");
    };
    set_ceiling("offline_access openid profile").await;
    let refreshed = refresh_grant(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await;
    refreshed.assert_status(StatusCode::OK);
    let refreshed = refreshed.json();
    assert_eq!(refreshed["scope"], "offline_access openid profile");
    set_ceiling("openid profile").await;
    let ended = refresh_grant(&app, &rp, refreshed["refresh_token"].as_str().unwrap()).await;
    ended.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(ended.json()["error"], "invalid_grant");
    // The grant is gone: its access token too, even with offline_access allowed again.
    set_ceiling("offline_access openid profile").await;
    let info = app
        .get(
            "/api/oauth/userinfo",
            Some(refreshed["access_token"].as_str().unwrap()),
        )
        .await;
    info.assert_status(StatusCode::UNAUTHORIZED);
}

/// A code issued while the app was confidential, without PKCE, does not redeem once the app
/// is public: a public client proves itself with PKCE alone.
async fn a_code_from_before_the_app_became_public_needs_pkce(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let body = app
        .graphql(
            "mutation($id: ID!, $input: AppInput!) { updateApp(clientId: $id, input: $input) { tokenEndpointAuthMethod } }",
            json!({ "id": rp.client_id, "input": { "name": "RP", "url": "https://rp.example", "redirectUri": REDIRECT, "tokenEndpointAuthMethod": "NONE" } }),
            Some(&admin),
        )
        .await;
    assert_eq!(
        body["data"]["updateApp"]["tokenEndpointAuthMethod"], "NONE",
        "{body}"
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", rp.client_id.as_str()),
    ];
    let refused = token_with(&app, None, &form).await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    let refused = refused.json();
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("public client"),
        "{refused}"
    );
}

crate::on_every_database!(
    a_code_from_before_the_app_became_public_needs_pkce,
    a_ceiling_narrowed_after_consent_holds_for_refreshes,
    client_metadata_agrees_between_rest_and_graphql,
    a_public_client_never_uses_a_secret_and_a_confidential_one_only_its_method,
    a_second_redirect_uri_works_and_a_near_miss_never_redirects,
    loopback_redirects_match_any_port_for_public_apps_only,
    grants_outside_the_list_are_unauthorized_client_and_scopes_stay_under_the_ceiling,
    rotated_secrets_overlap_for_the_grace_and_revoked_ones_fail_at_once,
    a_secrets_last_use_is_written_at_most_once_a_minute,
    concurrent_rotations_hand_out_only_working_secrets,
    concurrent_rotations_with_no_grace_hand_out_one_working_secret,
    a_rotation_with_no_grace_always_has_room,
    browsers_read_token_and_userinfo_from_the_apps_origin_only,
);
