//! The OpenID Connect flow: discovery, consent, the token endpoint's rules, userinfo.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::common::rp::{
    REDIRECT, Rp, VERIFIER, basic, consent, redeem_for, refresh_grant, s256, setup, token,
    token_with,
};
use crate::common::{TestApp, TestResponse};

async fn redeem(app: &TestApp, rp: &Rp, code: &str) -> TestResponse {
    token(
        app,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

fn pkce_body(scope: &str) -> Value {
    json!({ "scope": scope, "nonce": "n-0S6_WzA2Mj", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256" })
}

fn assert_oauth_error(response: &TestResponse, status: StatusCode, error: &str) {
    response.assert_status(status);
    assert_eq!(
        response.json()["error"],
        error,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("pragma"), Some("no-cache"));
}

async fn userinfo(app: &TestApp, access: &str) -> TestResponse {
    app.get("/api/oauth/userinfo", Some(access)).await
}

async fn discovery_advertises_exactly_what_the_endpoints_accept(app: TestApp) {
    let doc = app
        .get("/.well-known/openid-configuration", None)
        .await
        .json();
    assert_eq!(
        doc,
        app.get("/api/oauth/openid-configuration", None)
            .await
            .json()
    );
    assert_eq!(doc["issuer"], "http://idgraph.test");
    assert_eq!(doc["token_endpoint"], "http://idgraph.test/api/oauth/token");
    assert_eq!(doc["jwks_uri"], "http://idgraph.test/api/oauth/jwks");
    assert_eq!(
        doc["revocation_endpoint"],
        "http://idgraph.test/api/oauth/revoke"
    );
    assert_eq!(
        doc["introspection_endpoint"],
        "http://idgraph.test/api/oauth/introspect"
    );
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["scopes_supported"],
        json!(["email", "offline_access", "openid", "profile"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["EdDSA", "RS256"])
    );
    assert_eq!(
        doc["access_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );

    let rp = setup(&app, "ops", "ada").await;
    // Every advertised PKCE method and grant type is accepted...
    for method in doc["code_challenge_methods_supported"].as_array().unwrap() {
        let challenge = if method == "S256" {
            s256(VERIFIER)
        } else {
            VERIFIER.to_string()
        };
        let code = consent(&app, &rp, json!({ "scope": "openid offline_access", "code_challenge": challenge, "code_challenge_method": method })).await;
        let response = redeem(&app, &rp, &code).await;
        assert_eq!(response.status, StatusCode::OK, "{method}");
        let refresh = response.json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        let refreshed = refresh_grant(&app, &rp, &refresh).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{method} + refresh_token");
    }
    // ...and every advertised client authentication method, each by an app registered for it.
    let admin = app.token("ops", None).await;
    for method in doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
    {
        let registered = app
            .register_app_with(
                &admin,
                json!({ "name": "By method", "redirect_uri": REDIRECT, "token_endpoint_auth_method": method }),
            )
            .await;
        let client = Rp {
            client_id: registered.client_id.clone(),
            secret: registered.secret.clone(),
            user_token: rp.user_token.clone(),
            user_id: rp.user_id.clone(),
        };
        let code = consent(&app, &client, pkce_body("openid offline_access")).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", registered.client_id.as_str()),
        ];
        let authorization = match method.as_str().unwrap() {
            "client_secret_basic" => Some(basic(&registered.client_id, &registered.secret)),
            "client_secret_post" => {
                form.push(("client_secret", registered.secret.as_str()));
                None
            }
            _ => None,
        };
        let response = token_with(&app, authorization, &form).await;
        assert_eq!(response.status, StatusCode::OK, "{method}");
    }
    // ...and nothing else is; an advertised grant the app was not given is unauthorized_client.
    let unsupported = token(
        &app,
        &rp,
        &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
    )
    .await;
    assert_oauth_error(
        &unsupported,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    );
    let not_given = token(&app, &rp, &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(&not_given, StatusCode::BAD_REQUEST, "unauthorized_client");
    let implicit = token(
        &app,
        &rp,
        &[
            ("grant_type", "password"),
            ("username", "ada"),
            ("password", "x"),
        ],
    )
    .await;
    assert_oauth_error(&implicit, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let strict = TestApp::sqlite_with(|c| c.pkce_allow_plain = false).await;
    let doc = strict
        .get("/.well-known/openid-configuration", None)
        .await
        .json();
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    let rp = setup(&strict, "ops", "ada").await;
    let refused = strict
        .rest(Method::POST, "/api/oauth/auth/code", Some(&rp.user_token), Some(json!({ "client_id": rp.client_id, "scope": "openid", "code_challenge": VERIFIER, "code_challenge_method": "plain" })))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

async fn the_code_flow_issues_verifiable_tokens_and_userinfo(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(
        &app,
        &rp,
        pkce_body("openid profile email offline_access bogus"),
    )
    .await;
    assert!(code.len() >= 43, "256 bits of randomness");
    let response = redeem(&app, &rp, &code).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let body = response.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email offline_access openid profile");
    assert!(body["refresh_token"].is_string());
    let id_token = body["id_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["aud"], rp.client_id.as_str());
    assert_eq!(payload["sub"], rp.user_id.as_str());
    assert_eq!(payload["nonce"], "n-0S6_WzA2Mj");
    assert!(payload["auth_time"].as_i64().unwrap() > 0 && payload["at_hash"].is_string());

    let access = body["access_token"].as_str().unwrap();
    let info = userinfo(&app, access).await.json();
    assert_eq!(info["sub"], rp.user_id.as_str());
    assert_eq!(info["preferred_username"], "ada");
    assert_eq!(info["email"], "ada@example.com");
    let post = app
        .send_bytes(
            Method::POST,
            "/api/oauth/userinfo",
            Some(access),
            "application/x-www-form-urlencoded",
            &[],
            vec![],
        )
        .await;
    assert_eq!(post.json(), info);

    // An app's access token never passes a management guard.
    let list = app
        .rest(Method::GET, "/api/oauth/connection", Some(access), None)
        .await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);
}

async fn userinfo_claims_follow_the_granted_scope(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let body = redeem(&app, &rp, &code).await.json();
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let (info, statements) = app
        .count_statements(userinfo(&app, body["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(info.json(), json!({ "sub": rp.user_id }));
    assert_eq!(
        statements, 1,
        "the live grant and its user are read in one query"
    );
    let none = app.get("/api/oauth/userinfo", None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="idgraph""#)
    );
    let bad = userinfo(&app, "nonsense").await;
    assert!(
        bad.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let session = userinfo(&app, &rp.user_token).await;
    assert_eq!(
        session.status,
        StatusCode::UNAUTHORIZED,
        "a first-party token is not an app token"
    );
}

async fn a_code_works_once_and_replaying_it_revokes_tokens_issued_from_it(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid offline_access")).await;
    let first = redeem(&app, &rp, &code).await.json();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.status, StatusCode::OK);
    let replay = redeem(&app, &rp, &code).await;
    assert_oauth_error(&replay, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        userinfo(&app, access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = refresh_grant(&app, &rp, first["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&refresh, StatusCode::BAD_REQUEST, "invalid_grant");
}

async fn pkce_is_enforced_both_ways(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let wrong = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"x".repeat(43)),
        ],
    )
    .await;
    assert_oauth_error(&wrong, StatusCode::BAD_REQUEST, "invalid_grant");
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let missing = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_oauth_error(&missing, StatusCode::BAD_REQUEST, "invalid_grant");
    // A verifier without a prior challenge is a downgrade attempt.
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let downgrade = redeem(&app, &rp, &code).await;
    assert_oauth_error(&downgrade, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        downgrade.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("code_challenge")
    );
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let plain = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        plain.status,
        StatusCode::OK,
        "no PKCE on either side is allowed"
    );
}

async fn the_redirect_uri_and_client_must_match(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid")).await;
    for uri in [
        "https://rp.example/cb/",
        "https://RP.example/cb",
        "https://rp.example/cb?x=1",
    ] {
        let response = token(
            &app,
            &rp,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", uri),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_oauth_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // Another client cannot redeem this client's code.
    let admin = app.token("ops", None).await;
    let other = app.register_app(&admin, "Other", "", REDIRECT).await;
    let thief = Rp {
        client_id: other.client_id,
        secret: other.secret,
        user_token: String::new(),
        user_id: String::new(),
    };
    let stolen = redeem(&app, &thief, &code).await;
    assert_oauth_error(&stolen, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        redeem(&app, &rp, &code).await.status,
        StatusCode::OK,
        "the rightful client still can"
    );
}

async fn client_authentication_failures_look_alike(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let form = [("grant_type", "authorization_code"), ("code", "x")];
    let wrong_secret = token_with(&app, Some(basic(&rp.client_id, "wrong")), &form).await;
    let unknown = token_with(&app, Some(basic("nobody", &rp.secret)), &form).await;
    // Another scheme is an authentication method idgraph does not support (RFC 6749 §5.2).
    let bearer = token_with(&app, Some(format!("Bearer {}", rp.user_token)), &form).await;
    for response in [&wrong_secret, &unknown, &bearer] {
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client");
        assert_eq!(
            response.header("www-authenticate"),
            Some(r#"Basic realm="idgraph""#)
        );
    }
    assert_eq!(wrong_secret.body, unknown.body);
    let post = token_with(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &rp.client_id),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_oauth_error(&post, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(post.header("www-authenticate").is_none());
    let both = token_with(
        &app,
        Some(basic(&rp.client_id, &rp.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("client_secret", &rp.secret),
        ],
    )
    .await;
    assert_oauth_error(&both, StatusCode::BAD_REQUEST, "invalid_request");
    let json_body = app
        .rest(
            Method::POST,
            "/api/oauth/token",
            None,
            Some(json!({ "grant_type": "authorization_code" })),
        )
        .await;
    assert_oauth_error(&json_body, StatusCode::BAD_REQUEST, "invalid_request");
    let repeated = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_oauth_error(&repeated, StatusCode::BAD_REQUEST, "invalid_request");
    let get = app.get("/api/oauth/token", None).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn refresh_tokens_rotate_are_bound_to_their_client_and_only_narrow(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid profile offline_access")).await;
    let first = redeem(&app, &rp, &code).await.json();
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let wider = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("scope", "openid email"),
        ],
    )
    .await;
    assert_oauth_error(&wider, StatusCode::BAD_REQUEST, "invalid_scope");
    let narrower = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("scope", "openid"),
        ],
    )
    .await;
    narrower.assert_status(StatusCode::OK);
    let second = narrower.json();
    assert_eq!(second["scope"], "openid");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    // Reusing the rotated-out token revokes the family, the newest token included.
    let reuse = refresh_grant(&app, &rp, &r1).await;
    assert_oauth_error(&reuse, StatusCode::BAD_REQUEST, "invalid_grant");
    let after = refresh_grant(&app, &rp, &r2).await;
    assert_oauth_error(&after, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        userinfo(&app, second["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn concurrent_redemptions_of_one_code_yield_one_token(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let attempts = (0..20).map(|_| redeem(&app, &rp, &code));
    let responses = futures_util::future::join_all(attempts).await;
    let ok = responses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        responses
            .iter()
            .filter(|r| r.status != StatusCode::OK)
            .all(|r| r.json()["error"] == "invalid_grant")
    );
}

/// Twenty refreshes with one token at once: one rotates it; every other one presents a token
/// that is by then rotated out, which is reuse, so the family ends and the winner's new tokens
/// die with it.
async fn concurrent_refreshes_of_one_token_yield_one_token_and_end_the_family(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid offline_access")).await;
    let first = redeem(&app, &rp, &code).await.json();
    let refresh_token = first["refresh_token"].as_str().unwrap().to_string();
    let attempts = (0..20).map(|_| refresh_grant(&app, &rp, &refresh_token));
    let responses = futures_util::future::join_all(attempts).await;
    let winners: Vec<_> = responses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for loser in responses.iter().filter(|r| r.status != StatusCode::OK) {
        assert_oauth_error(loser, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let won = winners[0].json();
    let next = refresh_grant(&app, &rp, won["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&next, StatusCode::BAD_REQUEST, "invalid_grant");
    let access = won["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&app, access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The `redirect_uri` rule's SQL half. Codes minted through the consent API name no redirect
/// URI, so the cases below are refused before the statement runs (a missing or unregistered
/// URI can never match); a hosted-flow code names the URI its request used, and redeeming it
/// with the app's *other* registered URI reaches the one-statement redemption, whose condition
/// alone must refuse it. The good request then still redeems the code.
async fn a_hosted_code_redeems_only_with_the_redirect_uri_its_request_named(app: TestApp) {
    const SECOND: &str = "https://rp.example/second";
    let admin = app.oauth_admin("ops").await;
    let registered = app
        .register_app_with(
            &admin,
            json!({ "name": "Two URIs", "redirect_uris": [REDIRECT, SECOND] }),
        )
        .await;
    let user = app
        .create_user("ada", &[idgraph::domain::Role::Oauth])
        .await;
    let rp = Rp {
        client_id: registered.client_id,
        secret: registered.secret,
        user_token: app.token("ada", None).await,
        user_id: user.id.to_string(),
    };
    let mut browser = crate::common::browser::Browser::new(&app);
    let page = browser
        .get(&crate::common::browser::authorize_path(&rp, &[]))
        .await;
    let consent_page = browser.sign_in(&page, "ada", crate::common::PASSWORD).await;
    let answered = browser.press(&consent_page, "approve").await;
    let code = crate::common::browser::redirect_query(&answered)["code"].clone();
    let redeem_at = |uri: &'static str| {
        [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", uri),
            ("code_verifier", VERIFIER),
        ]
    };
    let response = token(&app, &rp, &redeem_at(SECOND)).await;
    assert_oauth_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        response.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri must be the one"),
        "{}",
        response.json()
    );
    token(&app, &rp, &redeem_at(REDIRECT))
        .await
        .assert_status(StatusCode::OK);
}

/// Every rule of a code redemption, broken alone. Each rule is written twice in
/// `service/tokens/code.rs`: as a condition of the one-statement redemption, and as a check that
/// names what was wrong. A case passes only if the statement refused it (or tokens would come
/// back) and the check named its rule (the description); the good request passes both in one
/// statement. The statements each refusal took show which cases reached the one-statement
/// redemption (two: the update that matched nothing, then the read for the precise error) and
/// which were refused before it, as no row could ever match them (one: the read): a missing or
/// unregistered `redirect_uri`.
async fn every_redemption_rule_is_enforced_in_sql_and_named_in_rust(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let other = app
        .register_app(&app.token("ops", None).await, "Other", "", REDIRECT)
        .await;
    let bad_code = "the authorization code is invalid, expired or was already used";
    let bad_redirect = "redirect_uri must be the one";
    let good = |code: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), REDIRECT.to_string()),
            ("code_verifier".to_string(), VERIFIER.to_string()),
        ]
    };
    let without = |form: Vec<(String, String)>, name: &str| -> Vec<(String, String)> {
        form.into_iter().filter(|(n, _)| n != name).collect()
    };
    let with = |form: Vec<(String, String)>, name: &str, value: &str| -> Vec<(String, String)> {
        let mut form = without(form, name);
        form.push((name.to_string(), value.to_string()));
        form
    };
    // Both apps' secrets are read and their use written down (once a minute) now, so that the
    // counts below are the redemption's alone.
    assert!(app.secret_works(&rp.client_id, &rp.secret).await);
    assert!(app.secret_works(&other.client_id, &other.secret).await);
    // (rule, what the error names, the request for a fresh code, sent by the code's own client,
    // whether it reaches the one-statement redemption)
    type Form<'a> = Box<dyn Fn(&str) -> Vec<(String, String)> + 'a>;
    let cases: Vec<(&str, &str, Form, bool, bool)> = vec![
        (
            "unknown code",
            bad_code,
            Box::new(|_| good("no-such-code")),
            true,
            true,
        ),
        (
            "another client's code",
            bad_code,
            Box::new(|c| good(c)),
            false,
            true,
        ),
        (
            "missing redirect_uri",
            bad_redirect,
            Box::new(|c| without(good(c), "redirect_uri")),
            true,
            false,
        ),
        (
            "unregistered redirect_uri",
            bad_redirect,
            Box::new(|c| with(good(c), "redirect_uri", "https://rp.example/other")),
            true,
            false,
        ),
        (
            "wrong verifier",
            "code_verifier does not match",
            Box::new(|c| with(good(c), "code_verifier", &"x".repeat(43))),
            true,
            true,
        ),
        (
            "missing verifier",
            "code_verifier is required",
            Box::new(|c| without(good(c), "code_verifier")),
            true,
            true,
        ),
    ];
    for (rule, description, form, as_rp, reaches_sql) in cases {
        let code = consent(&app, &rp, pkce_body("openid")).await;
        let pairs = form(&code);
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let (response, statements) = app
            .count_statements(async {
                if as_rp {
                    token(&app, &rp, &pairs).await
                } else {
                    token_with(&app, Some(basic(&other.client_id, &other.secret)), &pairs).await
                }
            })
            .await;
        assert_oauth_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(
            statements,
            if reaches_sql { 2 } else { 1 },
            "{rule}: statements"
        );
        let said = response.json()["error_description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(said.contains(description), "{rule}: {said}");
        // The rule left the code unused: the good request still redeems it.
        let good_pairs = good(&code);
        let good_pairs: Vec<(&str, &str)> = good_pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let redeemed = token(&app, &rp, &good_pairs).await;
        if rule != "unknown code" {
            redeemed.assert_status(StatusCode::OK);
        }
    }
    // A verifier sent for a code that had no challenge (a downgrade attempt).
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let response = redeem(&app, &rp, &code).await;
    assert_oauth_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        response.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("no code_challenge")
    );
    // An expired code (the clock moved past its minute).
    let code = consent(&app, &rp, pkce_body("openid")).await;
    app.advance(std::time::Duration::from_secs(61));
    let response = redeem(&app, &rp, &code).await;
    assert_oauth_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        response.json()["error_description"]
            .as_str()
            .unwrap()
            .contains(bad_code)
    );
    // The good request: one statement redeems (the consent marked the connection used).
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let (response, statements) = app.count_statements(redeem(&app, &rp, &code)).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(statements, 1, "the fast path redeems in one statement");
}

/// Userinfo remembers a token it verified (the signature is not checked twice), but only until
/// the token's `exp`: the call after it is refused as before.
async fn a_token_userinfo_has_verified_stops_at_its_exp(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let access = redeem(&app, &rp, &code).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let expires_in = app.state.config.access_token_ttl;
    userinfo(&app, &access).await.assert_status(StatusCode::OK);
    let remembered = async |at: i64| {
        let ring = app.state.keys.ring().await.unwrap();
        ring.verified.get(&access, at).is_some()
    };
    assert!(remembered(app.now()).await, "the ring remembers the token");
    // A second before `exp`: the node has reloaded its ring meanwhile, so this call verifies the
    // token again and the new ring remembers it, a second before it expires.
    app.advance(expires_in - std::time::Duration::from_secs(1));
    userinfo(&app, &access).await.assert_status(StatusCode::OK);
    assert!(remembered(app.now()).await);
    // At `exp`, the remembered token is not taken as verified.
    app.advance(std::time::Duration::from_secs(1));
    userinfo(&app, &access)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

/// A grant's row, as stored.
async fn grant_row(app: &TestApp, id: &str) -> Option<idgraph::db::entities::grants::Model> {
    use idgraph::db::entities::grants;
    use sea_orm::EntityTrait;
    grants::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
}

/// Rewrites one column of a grant (to build a row no request can make).
async fn set_grant(
    app: &TestApp,
    id: &str,
    column: idgraph::db::entities::grants::Column,
    value: sea_orm::Value,
) {
    use idgraph::db::entities::grants;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    grants::Entity::update_many()
        .col_expr(column, Expr::value(value))
        .filter(grants::Column::Id.eq(id))
        .exec(&app.state.db)
        .await
        .unwrap();
}

/// Every rule of a refresh, broken alone. Each rule is a condition of the one-statement rotation
/// in `service/tokens/grant_refresh.rs` and a check of the path that reads the row. A case passes
/// only if the request was refused and the statement changed nothing (the stored digest is the
/// same, and where the token can still work, it does); without the condition, the statement
/// would rotate the token and tokens would come back. A rotated-out secret ends the family
/// (reuse detection) while a secret never handed out does not, and a secret matching a grant
/// without `offline_access`, which no request can produce (its secret is never handed out) and
/// which is checked on the returned row, ends it too. The good request rotates in one
/// statement.
async fn every_refresh_rule_is_enforced_in_one_statement(app: TestApp) {
    use idgraph::db::entities::grants::Column as G;
    let rp = setup(&app, "ops", "ada").await;
    let other = app
        .register_app(&app.token("ops", None).await, "Other", "", REDIRECT)
        .await;
    let family = |token: &str| token.split_once('.').unwrap().0.to_string();
    let fresh = async |scope: &str| {
        let code = consent(&app, &rp, pkce_body(scope)).await;
        redeem(&app, &rp, &code).await.json()["refresh_token"]
            .as_str()
            .map(str::to_string)
    };
    let refresh = async |authorization: String, refresh_token: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        token_with(&app, Some(authorization), &form).await
    };
    let as_rp = || basic(&rp.client_id, &rp.secret);
    let refused = |response: &TestResponse| {
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant");
    };

    // Another client's token: refused, and it still works for its own client.
    let token = fresh("openid offline_access").await.unwrap();
    refused(&refresh(basic(&other.client_id, &other.secret), &token).await);
    refresh(as_rp(), &token).await.assert_status(StatusCode::OK);

    // A family whose code was never redeemed (no request makes one with a digest; the rows are
    // rewritten): refused, and once the row is put back, the token works.
    let token = fresh("openid offline_access").await.unwrap();
    let used_at = grant_row(&app, &family(&token)).await.unwrap().code_used_at;
    set_grant(&app, &family(&token), G::CodeUsedAt, None::<i64>.into()).await;
    refused(&refresh(as_rp(), &token).await);
    set_grant(&app, &family(&token), G::CodeUsedAt, used_at.into()).await;
    refresh(as_rp(), &token).await.assert_status(StatusCode::OK);

    // A secret never handed out, on a family id anyone holding an access token can read
    // (`gid`): refused, and the family lives on.
    let token = fresh("openid offline_access").await.unwrap();
    let forged = format!("{}.{}", family(&token), "A".repeat(43));
    refused(&refresh(as_rp(), &forged).await);
    let response = refresh(as_rp(), &token).await;
    response.assert_status(StatusCode::OK);

    // A secret handed out and rotated out since, however many rotations ago (within the
    // 32 a family remembers): refused, and the family ends (whoever holds it is not the
    // family's holder), the newest token included.
    let mut newest = response.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..5 {
        let response = refresh(as_rp(), &newest).await;
        response.assert_status(StatusCode::OK);
        newest = response.json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
    }
    refused(&refresh(as_rp(), &token).await);
    assert!(
        grant_row(&app, &family(&token)).await.is_none(),
        "the family ended"
    );
    refused(&refresh(as_rp(), &newest).await);

    // A grant without offline_access never handed out its secret; given a known digest, the
    // secret is still refused and the family ends.
    let code = consent(&app, &rp, pkce_body("openid")).await;
    let access = redeem(&app, &rp, &code).await.json();
    assert!(access.get("refresh_token").is_none());
    let id = gid_of(access["access_token"].as_str().unwrap());
    set_grant(
        &app,
        &id,
        G::RefreshHash,
        idgraph::domain::secret::digest("known").into(),
    )
    .await;
    refused(&refresh(as_rp(), &format!("{id}.known")).await);
    assert!(grant_row(&app, &id).await.is_none(), "the family ended");

    // The good request: the rotation is its one statement (the connection's mark is written
    // behind it).
    let token = fresh("openid offline_access").await.unwrap();
    let (response, statements) = app.count_statements(refresh(as_rp(), &token)).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(statements, 1, "one statement rotates a good token");

    // An expired token (last: the clock moves a month): refused, its digest unchanged.
    let token = fresh("openid offline_access").await.unwrap();
    let before = grant_row(&app, &family(&token)).await.unwrap();
    let ttl = before.refresh_expires_at.unwrap() - app.now();
    app.advance(std::time::Duration::from_secs(ttl.unsigned_abs()));
    refused(&refresh(as_rp(), &token).await);
    let after = grant_row(&app, &family(&token)).await.unwrap();
    assert_eq!(
        after.refresh_hash, before.refresh_hash,
        "expired: nothing rotated"
    );
}

/// The grant id (`gid`) an access token carries.
fn gid_of(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["gid"].as_str().expect("gid").to_string()
}

/// When the app's connection was last used, as stored once the queued marks are written.
async fn connection_used_at(app: &TestApp, rp: &Rp) -> i64 {
    use idgraph::db::entities::connections;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    idgraph::service::touches::flush(&app.state).await.unwrap();
    connections::Entity::find()
        .filter(connections::Column::UserId.eq(&rp.user_id))
        .filter(connections::Column::ClientId.eq(&rp.client_id))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the connection")
        .access_time
}

/// A refresh marks the app's connection used, to the minute: the first refresh once the stored
/// mark is a minute old writes the time, the refreshes in between write nothing, and one that
/// found the mark fresh (consent set it) does not hold back the next.
async fn refreshes_mark_the_connection_used_at_most_once_a_minute(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, json!({ "scope": "openid offline_access" })).await;
    let consented_at = app.now();
    let mut refresh_token = redeem_for(&app, &rp, &code).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(connection_used_at(&app, &rp).await, consented_at);
    let mut expected = Vec::new();
    let mut stored = Vec::new();
    for (wait, marks) in [(30, false), (30, true), (30, false), (30, true)] {
        app.advance(std::time::Duration::from_secs(wait));
        let response = refresh_grant(&app, &rp, &refresh_token).await;
        response.assert_status(StatusCode::OK);
        refresh_token = response.json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        let last = expected.last().copied().unwrap_or(consented_at);
        expected.push(if marks { app.now() } else { last });
        stored.push(connection_used_at(&app, &rp).await);
    }
    assert_eq!(
        stored, expected,
        "marked at +90 s and +150 s, not at +120 s"
    );
}

/// Refreshes queue their connections' marks, and one flush writes them, each connection at the
/// time of its own refresh (one statement per second of marks), and no other connection: not
/// the one of Ada's user with Bob's app, which shares a user with one marked connection and an
/// app with the other.
async fn queued_marks_are_written_together_each_at_its_own_time(app: TestApp) {
    let ada = setup(&app, "ops", "ada").await;
    let bob = setup(&app, "ops2", "bob").await;
    let crossed = Rp {
        client_id: bob.client_id.clone(),
        secret: bob.secret.clone(),
        user_token: ada.user_token.clone(),
        user_id: ada.user_id.clone(),
    };
    let consented = app.now();
    consent(&app, &crossed, pkce_body("openid")).await;
    let mut refresh_tokens = Vec::new();
    for rp in [&ada, &bob] {
        let code = consent(&app, rp, pkce_body("openid offline_access")).await;
        let tokens = redeem(&app, rp, &code).await.json();
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_string());
    }
    let mut refreshed_at = Vec::new();
    app.advance(std::time::Duration::from_secs(61));
    for (rp, refresh_token) in [&ada, &bob].into_iter().zip(&refresh_tokens) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        token(&app, rp, &form).await.assert_status(StatusCode::OK);
        refreshed_at.push(app.now());
        app.advance(std::time::Duration::from_secs(2));
    }
    app.advance(std::time::Duration::from_secs(3));
    let (flushed, statements) = app
        .count_statements(idgraph::service::touches::flush(&app.state))
        .await;
    assert_eq!(flushed.unwrap(), 2, "both connections marked");
    assert_eq!(statements, 2, "one statement per second of marks");
    let stored = [
        connection_used_at(&app, &ada).await,
        connection_used_at(&app, &bob).await,
        connection_used_at(&app, &crossed).await,
    ];
    assert_eq!(stored, [refreshed_at[0], refreshed_at[1], consented]);
}

crate::on_every_database!(
    every_redemption_rule_is_enforced_in_sql_and_named_in_rust,
    a_hosted_code_redeems_only_with_the_redirect_uri_its_request_named,
    every_refresh_rule_is_enforced_in_one_statement,
    a_token_userinfo_has_verified_stops_at_its_exp,
    refreshes_mark_the_connection_used_at_most_once_a_minute,
    queued_marks_are_written_together_each_at_its_own_time,
    discovery_advertises_exactly_what_the_endpoints_accept,
    the_code_flow_issues_verifiable_tokens_and_userinfo,
    userinfo_claims_follow_the_granted_scope,
    a_code_works_once_and_replaying_it_revokes_tokens_issued_from_it,
    pkce_is_enforced_both_ways,
    the_redirect_uri_and_client_must_match,
    client_authentication_failures_look_alike,
    refresh_tokens_rotate_are_bound_to_their_client_and_only_narrow,
    concurrent_redemptions_of_one_code_yield_one_token,
    concurrent_refreshes_of_one_token_yield_one_token_and_end_the_family,
);
