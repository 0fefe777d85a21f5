//! The rest of the token lifecycle: revocation (RFC 7009), introspection (RFC 7662),
//! `client_credentials` (RFC 6749 §4.4) with resource indicators (RFC 8707), and access tokens
//! in the RFC 9068 profile that a resource server validates with the JWKS alone.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessToken, AdditionalProviderMetadata, ClientId, ClientSecret, IntrospectionUrl, IssuerUrl,
    OAuth2TokenResponse, ProviderMetadata, RefreshToken, RevocationUrl, Scope,
    TokenIntrospectionResponse, reqwest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::api::{ORDERS, introspect, post, resource_server_accepts, revoke, service_app};
use crate::common::browser::{Browser, authorize_path, text};
use crate::common::rp::{
    REDIRECT, Rp, VERIFIER, basic, consent, consented_tokens, redeem_for, refresh_grant, s256,
    setup, token, token_with,
};
use crate::common::{PASSWORD, Served, TestApp};

/// Discovery's revocation and introspection endpoints, which `openidconnect` reads as
/// additional metadata.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct LifecycleEndpoints {
    revocation_endpoint: String,
    introspection_endpoint: String,
}

impl AdditionalProviderMetadata for LifecycleEndpoints {}

type Metadata = ProviderMetadata<
    LifecycleEndpoints,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Sends `request` over plain HTTP, as if it were https: the scheme is the only change. See
/// its use in the end-to-end test below.
async fn over_loopback(
    http: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (mut parts, body) = request.into_parts();
    let uri = parts.uri.to_string().replacen("https://", "http://", 1);
    parts.uri = uri.parse().expect("the same URI over http");
    let request =
        reqwest::Request::try_from(openidconnect::http::Request::from_parts(parts, body))?;
    let response = http.execute(request).await?;
    let mut answer = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).expect("a response"))
}

/// End to end with `openidconnect`: introspect active tokens, revoke the refresh token and see
/// its family die, and get a `client_credentials` token that a resource server validates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_revokes_introspects_and_gets_a_token_for_itself() {
    let served = Served::start(|c| c.signing_algorithm = "EdDSA".into()).await;
    let (app, issuer) = (&served.app, &served.issuer);
    let admin = app.oauth_admin("ops").await;
    let registered = service_app(app, &admin).await;
    let user = app.create_user("ada", &[]).await;
    let rp = Rp {
        client_id: registered.client_id.clone(),
        secret: registered.secret.clone(),
        user_token: app.token("ada", Some("gov.user.oauth.authorize")).await,
        user_id: user.id.to_string(),
    };
    let code = consent(
        app,
        &rp,
        json!({ "scope": "openid offline_access orders:read" }),
    )
    .await;
    let tokens = redeem_for(app, &rp, &code).await;
    assert_eq!(tokens["scope"], "offline_access openid orders:read");

    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = Metadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
        .await
        .expect("discovery with revocation and introspection endpoints");
    let endpoints = metadata.additional_metadata().clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.client_id.clone()),
        Some(ClientSecret::new(rp.secret.clone())),
    )
    .set_revocation_url(RevocationUrl::new(endpoints.revocation_endpoint.clone()).unwrap())
    .set_introspection_url(IntrospectionUrl::new(endpoints.introspection_endpoint).unwrap());

    let access = AccessToken::new(tokens["access_token"].as_str().unwrap().into());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let active = client
        .introspect(&access)
        .request_async(&http)
        .await
        .unwrap();
    assert!(active.active());
    assert_eq!(active.client_id().unwrap().as_str(), rp.client_id);
    assert_eq!(active.sub(), Some(rp.user_id.as_str()));

    // `openidconnect` sends a revocation only to an https endpoint (RFC 7009 §2: "Clients MUST
    // verify that the URL is an HTTPS URL"), and this server is plain HTTP on loopback. The
    // library is given the endpoint as https and a transport that carries its https requests
    // over the loopback connection: the request (HTTP Basic, `token`, `token_type_hint`) and
    // the reading of the answer are the library's own; only TLS is left out.
    let insecure =
        client.revoke_token(CoreRevocableToken::from(RefreshToken::new(refresh.clone())));
    assert!(
        insecure.is_err(),
        "the library refuses a plain-http endpoint"
    );
    let https = endpoints
        .revocation_endpoint
        .replacen("http://", "https://", 1);
    let client = client.set_revocation_url(RevocationUrl::new(https).unwrap());
    let transport = |request| over_loopback(&http, request);
    client
        .revoke_token(CoreRevocableToken::from(RefreshToken::new(refresh.clone())))
        .expect("an https revocation endpoint")
        .request_async(&transport)
        .await
        .expect("the refresh token is revoked");
    let revoked = client
        .introspect(&access)
        .request_async(&http)
        .await
        .unwrap();
    assert!(!revoked.active(), "the family's access token died with it");
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(access.secret()))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(refresh))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(
        refreshed.is_err(),
        "a revoked refresh token no longer works"
    );

    let service = client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("orders:read".into()))
        .add_extra_param("resource", ORDERS)
        .request_async(&http)
        .await
        .expect("a client_credentials token");
    assert!(service.refresh_token().is_none());
    let jwks = app.get("/api/oauth/jwks", None).await.json();
    let claims = resource_server_accepts(&jwks, service.access_token().secret(), issuer, ORDERS);
    assert_eq!(claims["sub"], rp.client_id.as_str());
    assert_eq!(claims["client_id"], rp.client_id.as_str());
    assert_eq!(claims["scope"], "orders:read");
    // The code flow's access tokens follow the same profile.
    let code = consent(app, &rp, json!({ "scope": "openid" })).await;
    let user_tokens = redeem_for(app, &rp, &code).await;
    resource_server_accepts(
        &jwks,
        user_tokens["access_token"].as_str().unwrap(),
        issuer,
        issuer,
    );
}

async fn revocation_ends_only_what_the_caller_owns(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let other = app.register_app(&admin, "Other", "", REDIRECT).await;
    let other_rp = Rp {
        client_id: other.client_id.clone(),
        secret: other.secret.clone(),
        user_token: rp.user_token.clone(),
        user_id: rp.user_id.clone(),
    };
    let code = consent(&app, &rp, json!({ "scope": "openid offline_access" })).await;
    let tokens = redeem_for(&app, &rp, &code).await;
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    );
    // Another client's revocation answers 200 and changes nothing.
    for token in [access, refresh] {
        let foreign = post(
            &app,
            "/api/oauth/revoke",
            Some(basic(&other.client_id, &other.secret)),
            &[("token", token)],
        )
        .await;
        foreign.assert_status(StatusCode::OK);
    }
    assert_eq!(introspect(&app, &rp, access).await["active"], true);
    assert_eq!(
        introspect(&app, &other_rp, access).await,
        json!({ "active": false }),
        "not the other app's to see"
    );
    // Junk of every kind: 200, nothing changes, never a 5xx.
    for junk in [
        "x",
        "a.b",
        "a.b.c",
        &"x".repeat(5000),
        "eyJhbGciOiJub25lIn0.e30.",
        refresh.split('.').next().unwrap(),
    ] {
        let response = post(
            &app,
            "/api/oauth/revoke",
            Some(basic(&rp.client_id, &rp.secret)),
            &[("token", junk)],
        )
        .await;
        response.assert_status(StatusCode::OK);
        assert_eq!(
            introspect(&app, &rp, junk).await,
            json!({ "active": false })
        );
    }
    let missing = post(
        &app,
        "/api/oauth/revoke",
        Some(basic(&rp.client_id, &rp.secret)),
        &[("token", "")],
    )
    .await;
    missing.assert_status(StatusCode::BAD_REQUEST);
    // A wrong client secret is invalid_client; a repeated parameter is invalid_request.
    let wrong = post(
        &app,
        "/api/oauth/revoke",
        Some(basic(&rp.client_id, "wrong")),
        &[("token", access)],
    )
    .await;
    wrong.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "invalid_client");
    let repeated = post(
        &app,
        "/api/oauth/revoke",
        Some(basic(&rp.client_id, &rp.secret)),
        &[("token", access), ("token", refresh)],
    )
    .await;
    repeated.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(repeated.json()["error"], "invalid_request");
    // So at introspection: a repeated token is refused, not read as either one.
    let repeated = post(
        &app,
        "/api/oauth/introspect",
        Some(basic(&rp.client_id, &rp.secret)),
        &[("token", access), ("token", refresh)],
    )
    .await;
    repeated.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(repeated.json()["error"], "invalid_request");
    let about_refresh = introspect(&app, &rp, refresh).await;
    assert_eq!(about_refresh["active"], true);
    assert_eq!(about_refresh["client_id"], rp.client_id.as_str());
    assert!(
        about_refresh.get("token_type").is_none(),
        "token_type names access token types (RFC 6749 §7.1): none for a refresh token"
    );
    // Revoking the access token ends its grant: the refresh token dies with it.
    post(
        &app,
        "/api/oauth/revoke",
        Some(basic(&rp.client_id, &rp.secret)),
        &[("token", access), ("token_type_hint", "access_token")],
    )
    .await
    .assert_status(StatusCode::OK);
    assert_eq!(
        introspect(&app, &rp, access).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect(&app, &rp, refresh).await,
        json!({ "active": false })
    );
    let refreshed = refresh_grant(&app, &rp, refresh).await;
    refreshed.assert_status(StatusCode::BAD_REQUEST);
}

/// A refresh token whose app may no longer refresh (`refresh_token` taken out of its grant
/// types, or `offline_access` out of its scope ceiling) would be refused at the token endpoint:
/// introspection calls it inactive from that moment, not only once it has been tried.
async fn a_refresh_token_the_app_may_no_longer_use_is_inactive(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    let seed = json!({ "name": "RP", "url": "https://rp.example", "redirect_uri": REDIRECT });
    for narrowing in [
        json!({ "grant_types": ["authorization_code"] }),
        json!({ "scope": "openid profile email" }),
    ] {
        let mut restore = seed.clone();
        restore["grant_types"] = json!(["authorization_code", "refresh_token"]);
        restore["scope"] = json!("");
        app.rest(Method::PUT, &path, Some(&admin), Some(restore))
            .await
            .assert_status(StatusCode::NO_CONTENT);
        let code = consent(&app, &rp, json!({ "scope": "openid offline_access" })).await;
        let refresh = redeem_for(&app, &rp, &code).await["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(introspect(&app, &rp, &refresh).await["active"], true);
        let mut narrowed = seed.clone();
        for (key, value) in narrowing.as_object().unwrap() {
            narrowed[key] = value.clone();
        }
        app.rest(Method::PUT, &path, Some(&admin), Some(narrowed))
            .await
            .assert_status(StatusCode::NO_CONTENT);
        assert_eq!(
            introspect(&app, &rp, &refresh).await,
            json!({ "active": false }),
            "{narrowing}"
        );
    }
}

/// A public app, which has no secret, revokes with its `client_id` alone, and its refresh token
/// dies; a confidential app's expired access token is answered 200 like any other and ends
/// nothing: the grant it named refreshes on.
async fn a_public_app_revokes_with_its_client_id_and_an_expired_token_ends_nothing(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let public = rp.for_app(
        &app.register_app_with(&admin, json!({ "name": "SPA", "redirect_uri": REDIRECT, "token_endpoint_auth_method": "none" }))
            .await,
    );
    let code = consent(
        &app,
        &public,
        json!({ "scope": "openid offline_access", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256" }),
    )
    .await;
    let redeemed = token_with(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &public.client_id),
        ],
    )
    .await;
    redeemed.assert_status(StatusCode::OK);
    let refresh = redeemed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        &app,
        "/api/oauth/revoke",
        None,
        &[("token", &refresh), ("client_id", &public.client_id)],
    )
    .await
    .assert_status(StatusCode::OK);
    let refreshed = token_with(
        &app,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &public.client_id),
        ],
    )
    .await;
    refreshed.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(refreshed.json()["error"], "invalid_grant");

    let tokens = consented_tokens(&app, &rp, json!({ "scope": "openid offline_access" })).await;
    app.advance(app.state.config.access_token_ttl + Duration::from_secs(60));
    revoke(&app, &rp, tokens["access_token"].as_str().unwrap()).await;
    refresh_grant(&app, &rp, tokens["refresh_token"].as_str().unwrap())
        .await
        .assert_status(StatusCode::OK);
}

async fn introspection_is_for_confidential_apps_and_tells_no_more_than_active_false(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let public = app
        .register_app_with(&admin, json!({ "name": "SPA", "redirect_uri": REDIRECT, "token_endpoint_auth_method": "none" }))
        .await;
    let access = consented_tokens(&app, &rp, json!({ "scope": "openid" })).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = post(
        &app,
        "/api/oauth/introspect",
        None,
        &[("token", &access), ("client_id", &public.client_id)],
    )
    .await;
    refused.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json()["error"], "invalid_client");
    let anonymous = post(&app, "/api/oauth/introspect", None, &[("token", &access)]).await;
    anonymous.assert_status(StatusCode::UNAUTHORIZED);
    let info = introspect(&app, &rp, &access).await;
    let issued = app.now();
    assert_eq!(
        info,
        json!({
            "active": true,
            "scope": "openid",
            "client_id": rp.client_id,
            "sub": rp.user_id,
            "exp": issued + 15 * 60,
            "iat": issued,
            "aud": "http://idgraph.test",
            "iss": "http://idgraph.test",
            "jti": info["jti"],
            "token_type": "Bearer",
        })
    );
    assert!(info["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
    // A first-party session token is not an app's access token: inactive.
    assert_eq!(
        introspect(&app, &rp, &rp.user_token).await,
        json!({ "active": false })
    );
    // Active to the last second of its life, inactive from its `exp` on (no leeway).
    app.advance(Duration::from_secs(15 * 60 - 1));
    assert_eq!(introspect(&app, &rp, &access).await["active"], true);
    app.advance(Duration::from_secs(1));
    assert_eq!(
        introspect(&app, &rp, &access).await,
        json!({ "active": false })
    );
}

async fn client_credentials_grants_api_scopes_within_the_ceiling_for_allowed_resources(
    app: TestApp,
) {
    let admin = app.oauth_admin("ops").await;
    let service = service_app(&app, &admin).await;
    let caller = Rp {
        client_id: service.client_id.clone(),
        secret: service.secret.clone(),
        user_token: String::new(),
        user_id: String::new(),
    };
    let grant = |extra: &'static [(&'static str, &'static str)]| {
        let (app, caller) = (&app, &caller);
        async move {
            let mut pairs = vec![("grant_type", "client_credentials")];
            pairs.extend_from_slice(extra);
            token(app, caller, &pairs).await
        }
    };
    let all = grant(&[]).await;
    all.assert_status(StatusCode::OK);
    let body = all.json();
    assert_eq!(
        body["scope"], "orders:read orders:write",
        "every API scope when none is asked"
    );
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                body["access_token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .nth(1)
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["aud"], ORDERS,
        "the app's first resource when it names none"
    );
    let asked = grant(&[("scope", "orders:read"), ("resource", ORDERS)]).await;
    asked.assert_status(StatusCode::OK);
    assert_eq!(asked.json()["scope"], "orders:read");
    for (extra, error) in [
        (&[("scope", "openid")][..], "invalid_scope"),
        (&[("scope", "orders:delete")][..], "invalid_scope"),
        (&[("scope", "Not A Scope")][..], "invalid_scope"),
        (
            &[("resource", "https://api.example/other")][..],
            "invalid_target",
        ),
    ] {
        let refused = grant(extra).await;
        refused.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(refused.json()["error"], error, "{extra:?}");
    }
    // Its own token introspects active; revoked, inactive.
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &caller, access).await["sub"],
        service.client_id.as_str()
    );
    revoke(&app, &caller, access).await;
    assert_eq!(
        introspect(&app, &caller, access).await,
        json!({ "active": false })
    );
    // Never at userinfo: it names no user.
    assert_eq!(
        app.get(
            "/api/oauth/userinfo",
            Some(asked.json()["access_token"].as_str().unwrap())
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    // Public apps cannot be given the grant at all.
    let refused = app
        .rest(Method::POST, "/api/oauth/app", Some(&admin), Some(json!({ "name": "X", "redirect_uri": REDIRECT, "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"] })))
        .await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    // And an app without it gets unauthorized_client.
    let plain = app.register_app(&admin, "Plain", "", REDIRECT).await;
    let plain_rp = Rp {
        client_id: plain.client_id.clone(),
        secret: plain.secret.clone(),
        user_token: String::new(),
        user_id: String::new(),
    };
    let response = token_with(
        &app,
        Some(basic(&plain_rp.client_id, &plain_rp.secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(response.json()["error"], "unauthorized_client");
    // A repeated `scope` is refused before any policy is read.
    let repeated = token_with(
        &app,
        Some(basic(&plain_rp.client_id, &plain_rp.secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
            ("scope", "orders:write"),
        ],
    )
    .await;
    repeated.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(repeated.json()["error"], "invalid_request");
}

/// A user-facing app that asks for API scopes gets them within its ceiling, and the consent
/// page shows them as they are written.
async fn the_consent_page_shows_api_scopes_verbatim(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let service = service_app(&app, &admin).await;
    let orders = Rp {
        client_id: service.client_id.clone(),
        secret: service.secret.clone(),
        user_token: rp.user_token.clone(),
        user_id: rp.user_id.clone(),
    };
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&authorize_path(
            &orders,
            &[("scope", "openid orders:read billing:read")],
        ))
        .await;
    let consent_page = browser.sign_in(&page, "ada", PASSWORD).await;
    let html = text(&consent_page);
    assert!(html.contains("<li>orders:read</li>"), "{html}");
    assert!(
        !html.contains("billing:read"),
        "beyond the ceiling: dropped, not shown"
    );
}

/// `resource` names an API; the issuer is not one. An app may not list the issuer among its
/// `resources` (it would see every user's token at introspection), and a user's grant
/// authorized for no resource, whose access tokens are for the issuer, refuses `resource`
/// without spending the code or the refresh token.
async fn the_issuer_is_never_a_resource_and_a_grant_without_one_refuses_it(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let issuer = app.state.config.issuer.clone();
    let listed = || async { app.get("/api/oauth/app", Some(&admin)).await.json() };
    let before = listed().await;
    for (resources, field) in [
        (json!([issuer]), "resources[0]"),
        (json!([ORDERS, format!("{issuer}/")]), "resources[1]"),
    ] {
        let refused = app
            .rest(
                Method::POST,
                "/api/oauth/app",
                Some(&admin),
                Some(json!({ "name": "Greedy", "redirect_uri": REDIRECT, "resources": resources })),
            )
            .await;
        refused.assert_status(StatusCode::BAD_REQUEST);
        assert!(
            refused.json()["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{}",
            refused.json()
        );
        let path = format!("/api/oauth/app/id/{}", rp.client_id);
        let refused = app
            .rest(
                Method::PUT,
                &path,
                Some(&admin),
                Some(json!({ "name": "RP", "url": "", "redirect_uri": REDIRECT, "resources": resources })),
            )
            .await;
        refused.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(app.get(&path, None).await.json()["resources"], json!([]));
    }
    assert_eq!(listed().await, before, "nothing was registered");

    let code = consent(&app, &rp, json!({ "scope": "openid offline_access" })).await;
    let exchange = |extra: Option<(&'static str, &'static str)>| {
        let (app, rp, code) = (&app, &rp, &code);
        async move {
            let mut pairs = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ];
            pairs.extend(extra);
            token(app, rp, &pairs).await
        }
    };
    let refused = exchange(Some(("resource", ORDERS))).await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"], "invalid_target");
    let tokens = exchange(None).await;
    tokens.assert_status(StatusCode::OK);
    let refresh_token = tokens.json()["refresh_token"].as_str().unwrap().to_string();
    let refresh = |extra: Option<(&'static str, &'static str)>| {
        let (app, rp, refresh_token) = (&app, &rp, &refresh_token);
        async move {
            let mut pairs = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
            ];
            pairs.extend(extra);
            token(app, rp, &pairs).await
        }
    };
    let refused = refresh(Some(("resource", ORDERS))).await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"], "invalid_target");
    refresh(None).await.assert_status(StatusCode::OK);

    // An app stored before the rule (or an issuer changed since) still sees no user's token.
    let greedy = service_app(&app, &admin).await;
    {
        use sea_orm::ConnectionTrait;
        app.state
            .db
            .execute_unprepared(&format!(
                "UPDATE apps SET resources = '[\"{issuer}\"]' WHERE client_id = '{}'",
                greedy.client_id
            ))
            .await
            .unwrap();
    }
    let greedy = Rp {
        client_id: greedy.client_id,
        secret: greedy.secret,
        user_token: String::new(),
        user_id: String::new(),
    };
    let access = tokens.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&app, &rp, &access).await["active"], true);
    assert_eq!(
        introspect(&app, &greedy, &access).await,
        json!({ "active": false })
    );
}

crate::on_every_database!(
    revocation_ends_only_what_the_caller_owns,
    a_public_app_revokes_with_its_client_id_and_an_expired_token_ends_nothing,
    introspection_is_for_confidential_apps_and_tells_no_more_than_active_false,
    a_refresh_token_the_app_may_no_longer_use_is_inactive,
    client_credentials_grants_api_scopes_within_the_ceiling_for_allowed_resources,
    the_consent_page_shows_api_scopes_verbatim,
    the_issuer_is_never_a_resource_and_a_grant_without_one_refuses_it,
);
