//! A user's access tokens for an API (RFC 8707 resource indicators on the code and refresh
//! grants): the authorization names the resource, every access token of the grant has it as
//! audience, and the token endpoint may only repeat it.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::common::api::{ORDERS, introspect, resource_server_accepts, service_app};
use crate::common::browser::{Browser, authorize_path, redirect_query, text};
use crate::common::oidc_rp::{CodeRequest, code_request, consent_to, discover};
use crate::common::rp::{REDIRECT, Rp, VERIFIER, consent, setup, token};
use crate::common::{PASSWORD, Served, TestApp, TestResponse};

const OTHER_API: &str = "https://api.example/billing";

/// The claims of a JWT, unverified (the tests that need the signature verify it separately).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn access_of(response: &TestResponse) -> String {
    response.assert_status(StatusCode::OK);
    response.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The user `ada` of [`setup`] consenting to the app "Orders" (which lists [`ORDERS`]).
async fn orders_app(app: &TestApp) -> Rp {
    let rp = setup(app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    rp.for_app(&service_app(app, &admin).await)
}

fn exchange<'a>(code: &'a str, resource: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    form.extend(resource.map(|r| ("resource", r)));
    form
}

fn refresh<'a>(refresh_token: &'a str, resource: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend(resource.map(|r| ("resource", r)));
    form
}

fn refused_target(response: &TestResponse) {
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json()["error"],
        "invalid_target",
        "{}",
        response.json()
    );
}

/// Consent names the API; the code's tokens are for it (a resource server accepts them with
/// the JWKS alone), not for userinfo; the token endpoint may repeat the resource but not name
/// another, and a refused request spends nothing.
async fn a_grant_for_an_api_gives_access_tokens_for_that_api(app: TestApp) {
    let rp = orders_app(&app).await;
    let issuer = app.state.config.issuer.clone();
    let scope = "openid offline_access orders:read";
    let code = consent(&app, &rp, json!({ "scope": scope, "resource": ORDERS })).await;

    refused_target(&token(&app, &rp, &exchange(&code, Some(OTHER_API))).await);
    let tokens = token(&app, &rp, &exchange(&code, Some(ORDERS))).await;
    let access = access_of(&tokens);
    let jwks = app.get("/api/oauth/jwks", None).await.json();
    let claims = resource_server_accepts(&jwks, &access, &issuer, ORDERS);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "offline_access openid orders:read");
    assert_eq!(claims["client_id"], rp.client_id.as_str());
    // The ID token is the app's, as always.
    let id_token = tokens.json()["id_token"].as_str().unwrap().to_string();
    assert_eq!(self::claims(&id_token)["aud"], rp.client_id.as_str());
    // A token for the API is not for userinfo.
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(&access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Its app and the API's other apps see it at introspection; an app without the API does not.
    assert_eq!(introspect(&app, &rp, &access).await["aud"], ORDERS);
    let admin = app.token("ops", None).await;
    let api = Rp::app_only(service_app(&app, &admin).await);
    assert_eq!(introspect(&app, &api, &access).await["active"], true);
    let plain = Rp::app_only(app.register_app(&admin, "Plain", "", REDIRECT).await);
    assert_eq!(
        introspect(&app, &plain, &access).await,
        json!({ "active": false })
    );

    // The refresh grant keeps the audience; naming another resource spends nothing.
    let first = tokens.json()["refresh_token"].as_str().unwrap().to_string();
    refused_target(&token(&app, &rp, &refresh(&first, Some(OTHER_API))).await);
    let refreshed = token(&app, &rp, &refresh(&first, Some(ORDERS))).await;
    assert_eq!(claims_of(&refreshed)["aud"], ORDERS);
    let second = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refreshed = token(&app, &rp, &refresh(&second, None)).await;
    assert_eq!(claims_of(&refreshed)["aud"], ORDERS);

    // A code without a resource refuses one at the token endpoint, unspent, and is for the
    // issuer.
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    refused_target(&token(&app, &rp, &exchange(&code, Some(ORDERS))).await);
    let plain_tokens = token(&app, &rp, &exchange(&code, None)).await;
    assert_eq!(claims_of(&plain_tokens)["aud"], issuer.as_str());
}

fn claims_of(response: &TestResponse) -> Value {
    claims(&access_of(response))
}

/// The consent calls refuse a resource the app may not name (REST and GraphQL alike) and
/// record nothing; GraphQL's consent carries a good one into the tokens as REST's does.
async fn consent_names_only_a_resource_of_the_app(app: TestApp) {
    let rp = orders_app(&app).await;
    let refused = app
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(&rp.user_token),
            Some(json!({ "client_id": rp.client_id, "scope": "openid", "resource": OTHER_API })),
        )
        .await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("resource"),
        "{}",
        refused.json()
    );
    let connections = app
        .get("/api/oauth/connection", Some(&rp.user_token))
        .await
        .json();
    assert_eq!(
        connections,
        json!({ "connections": [] }),
        "nothing was recorded"
    );

    let mutation = "mutation($input: AuthorizeInput!) { authorize(input: $input) { code } }";
    let input = |resource: &str| json!({ "input": { "clientId": rp.client_id, "scope": "openid", "resource": resource } });
    let refused = app
        .graphql(mutation, input(OTHER_API), Some(&rp.user_token))
        .await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("resource")
    );
    let answer = app
        .graphql(mutation, input(ORDERS), Some(&rp.user_token))
        .await;
    let code = answer["data"]["authorize"]["code"].as_str().unwrap();
    assert_eq!(
        claims_of(&token(&app, &rp, &exchange(code, None)).await)["aud"],
        ORDERS
    );
}

/// The app's list is read as it is now: a resource withdrawn from the app stops the grant's
/// refreshes and an unredeemed code's exchange (`invalid_target`) without spending either, and
/// its access tokens introspect as inactive; given back, all of them work again.
async fn a_withdrawn_resource_stops_the_grant_until_it_is_given_back(app: TestApp) {
    let rp = orders_app(&app).await;
    let admin = app.token("ops", None).await;
    let body = json!({ "scope": "openid offline_access", "resource": ORDERS });
    let code = consent(&app, &rp, body.clone()).await;
    let tokens = token(&app, &rp, &exchange(&code, None)).await;
    let access = access_of(&tokens);
    let refresh_token = tokens.json()["refresh_token"].as_str().unwrap().to_string();
    let unredeemed = consent(&app, &rp, body).await;
    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    let set_resources = |resources: Value| {
        let (app, admin, path) = (&app, &admin, &path);
        async move {
            app.rest(
                Method::PUT,
                path,
                Some(admin),
                Some(json!({ "name": "Orders", "url": "", "redirect_uri": REDIRECT, "resources": resources })),
            )
            .await
            .assert_status(StatusCode::NO_CONTENT);
        }
    };
    set_resources(json!([OTHER_API])).await;
    refused_target(&token(&app, &rp, &refresh(&refresh_token, None)).await);
    refused_target(&token(&app, &rp, &refresh(&refresh_token, Some(ORDERS))).await);
    refused_target(&token(&app, &rp, &exchange(&unredeemed, None)).await);
    assert_eq!(
        introspect(&app, &rp, &access).await,
        json!({ "active": false })
    );
    set_resources(json!([OTHER_API, ORDERS])).await;
    assert_eq!(introspect(&app, &rp, &access).await["active"], true);
    let refreshed = token(&app, &rp, &refresh(&refresh_token, None)).await;
    assert_eq!(claims_of(&refreshed)["aud"], ORDERS);
    let redeemed = token(&app, &rp, &exchange(&unredeemed, None)).await;
    assert_eq!(claims_of(&redeemed)["aud"], ORDERS);
}

/// The hosted flow: a resource the app may not name, or two, come back to the client as
/// `invalid_target`; a good one is shown on the consent page and becomes the tokens' audience.
async fn the_hosted_flow_carries_one_resource_of_the_app(app: TestApp) {
    let rp = orders_app(&app).await;
    let mut browser = Browser::new(&app);
    for resources in [&[OTHER_API][..], &[ORDERS, ORDERS]] {
        let mut path = authorize_path(&rp, &[("scope", "openid")]);
        for resource in resources {
            path.push_str("&resource=");
            path.extend(url::form_urlencoded::byte_serialize(resource.as_bytes()));
        }
        let answer = redirect_query(&browser.get(&path).await);
        assert_eq!(answer["error"], "invalid_target", "{answer:?}");
    }
    let page = browser
        .get(&authorize_path(
            &rp,
            &[("scope", "openid orders:read"), ("resource", ORDERS)],
        ))
        .await;
    let consent_page = browser.sign_in(&page, "ada", PASSWORD).await;
    let html = text(&consent_page);
    assert!(
        html.contains(&format!("It will use this access at <code>{ORDERS}</code>")),
        "{html}"
    );
    let answer = redirect_query(&browser.press(&consent_page, "approve").await);
    let mut form = exchange(&answer["code"], None);
    form.push(("code_verifier", VERIFIER));
    let tokens = token(&app, &rp, &form).await;
    assert_eq!(claims_of(&tokens)["aud"], ORDERS);
    assert_eq!(claims_of(&tokens)["scope"], "openid orders:read");
}

/// End to end with `openidconnect`: the authorization request names the API, the code
/// exchange and the refresh repeat it, the ID token verifies as always, and the access tokens
/// pass a resource server's RFC 9068 check for that API (and are refused at userinfo).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_gets_a_users_access_token_for_its_api() {
    use openidconnect::{AuthorizationCode, OAuth2TokenResponse, RefreshToken, TokenResponse};
    let served = Served::start(|_| {}).await;
    let (app, issuer) = (&served.app, &served.issuer);
    let admin = app.oauth_admin("ops").await;
    let registered = service_app(app, &admin).await;
    app.create_user("ada", &[]).await;
    let session = app.token("ada", Some("gov.user.oauth.authorize")).await;
    let (http, client) = discover(issuer, &registered, REDIRECT).await;
    let CodeRequest {
        url: auth_url,
        nonce,
        verifier,
        ..
    } = code_request(
        &client,
        &["offline_access", "orders:read"],
        &[("resource", ORDERS)],
    );
    // The sign-in UI reads the request and records the user's consent, for the API.
    let code = consent_to(app, &session, &auth_url).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", ORDERS)
        .request_async(&http)
        .await
        .expect("code exchange");
    tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token");
    let jwks = app.get("/api/oauth/jwks", None).await.json();
    let access = tokens.access_token().secret();
    let claims = resource_server_accepts(&jwks, access, issuer, ORDERS);
    assert_eq!(claims["scope"], "offline_access openid orders:read");
    let userinfo: Result<openidconnect::core::CoreUserInfoClaims, _> = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(userinfo.is_err(), "a token for the API is not for userinfo");
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(
            tokens.refresh_token().unwrap().secret().clone(),
        ))
        .unwrap()
        .add_extra_param("resource", ORDERS)
        .request_async(&http)
        .await
        .expect("refresh");
    resource_server_accepts(&jwks, refreshed.access_token().secret(), issuer, ORDERS);
}

crate::on_every_database!(
    a_grant_for_an_api_gives_access_tokens_for_that_api,
    consent_names_only_a_resource_of_the_app,
    a_withdrawn_resource_stops_the_grant_until_it_is_given_back,
    the_hosted_flow_carries_one_resource_of_the_app,
);
