//! The gate: 401 for a missing or invalid token, 403 for a wrong role, scope or token kind,
//! through both the REST extractors and the GraphQL guards.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idgraph::auth::jwt::{AccessClaims, TokenKind};
use idgraph::domain::Role;
use idgraph::edge::auth::{AppRead, AppWrite, OauthAdminGuard, UserGuard};
use serde_json::json;
use tower::ServiceExt;

use crate::common::{TestApp, error_code};

/// A router with one route per guard extractor, over the app's real state.
fn guarded_routes(app: &TestApp) -> Router {
    Router::new()
        .route(
            "/user-app-read",
            get(|_: UserGuard<AppRead>| async { "ok" }),
        )
        .route(
            "/admin-app-write",
            get(|_: OauthAdminGuard<AppWrite>| async { "ok" }),
        )
        .with_state(app.state.clone())
}

async fn call(
    router: &Router,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::builder().uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn claims(app: &TestApp, sub: &str, kind: TokenKind, exp: i64) -> AccessClaims {
    AccessClaims {
        iss: app.state.config.issuer.clone(),
        sub: sub.into(),
        aud: app.state.config.issuer.clone(),
        exp,
        iat: app.now(),
        jti: "test".into(),
        scope: "all".into(),
        kind,
        sid: None,
        client_id: None,
        gid: None,
    }
}

async fn missing_token_is_401_with_a_bare_bearer_challenge(app: TestApp) {
    let router = guarded_routes(&app);
    let (status, challenge, body) = call(&router, "/user-app-read", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="idgraph""#));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
        "UNAUTHENTICATED"
    );
}

async fn invalid_tokens_are_401_invalid_token(app: TestApp) {
    let router = guarded_routes(&app);
    app.create_user("ada", &[Role::Oauth]).await;
    let valid = app.token("ada", None).await;
    // The valid token's own claims (its live session included), re-signed with only the expiry
    // moved: from its second on the token fails, a second before it the same claims pass.
    let payload = valid.split('.').nth(1).unwrap();
    let mut claims: AccessClaims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(claims.sid.is_some());
    claims.exp = app.now();
    let expired = app.state.keys.sign(&claims).await.unwrap();
    claims.exp = app.now() + 1;
    let unexpired = app.state.keys.sign(&claims).await.unwrap();
    let (header_b64, payload_b64, _) = {
        let mut parts = valid.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };
    // Same claims, `alg: none` and no signature: the header's algorithm must never be trusted.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{payload_b64}.");
    let tampered_payload = URL_SAFE_NO_PAD.encode(
        String::from_utf8(URL_SAFE_NO_PAD.decode(payload_b64).unwrap())
            .unwrap()
            .replace(r#""scope":"all""#, r#""scope":"gov.user.oauth.app:read""#),
    );
    let signature = valid.rsplit('.').next().unwrap();
    let tampered = format!("{header_b64}.{tampered_payload}.{signature}");
    for authorization in [
        "Bearer not-a-jwt".to_string(),
        format!("Bearer {expired}"),
        format!("Bearer {unsigned}"),
        format!("Bearer {tampered}"),
        format!("Basic {valid}"),
        "Bearer ".to_string(),
    ] {
        let (status, challenge, _) = call(&router, "/user-app-read", Some(&authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization}");
        assert!(
            challenge.unwrap().contains(r#"error="invalid_token""#),
            "{authorization}"
        );
    }
    for good in [&valid, &unexpired] {
        let (status, _, _) = call(&router, "/user-app-read", Some(&format!("Bearer {good}"))).await;
        assert_eq!(status, StatusCode::OK);
    }
}

async fn a_user_without_the_oauth_role_is_403(app: TestApp) {
    let router = guarded_routes(&app);
    app.create_user("plain", &[]).await;
    let token = app.token("plain", None).await;
    let (status, challenge, body) = call(
        &router,
        "/admin-app-write",
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.is_none());
    assert!(
        body.contains("FORBIDDEN") && body.contains("role"),
        "{body}"
    );
    // The same user passes a user guard.
    let (status, _, _) = call(&router, "/user-app-read", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
}

async fn an_oauth_admin_without_the_scope_is_403_and_with_it_or_all_passes(app: TestApp) {
    let router = guarded_routes(&app);
    app.create_user("ops", &[Role::Oauth]).await;
    let read_only = app.token("ops", Some("gov.user.oauth.app:read")).await;
    let (status, _, body) = call(
        &router,
        "/admin-app-write",
        Some(&format!("Bearer {read_only}")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("gov.user.oauth.app:write"), "{body}");
    let write = app.token("ops", Some("gov.user.oauth.app:write")).await;
    let all = app.token("ops", Some("all")).await;
    for token in [write, all] {
        let (status, _, _) = call(
            &router,
            "/admin-app-write",
            Some(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    app.create_user("root", &[Role::Admin]).await;
    let admin = app.token("root", None).await;
    let (status, _, _) = call(
        &router,
        "/admin-app-write",
        Some(&format!("Bearer {admin}")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the admin role counts as oauth admin"
    );
}

async fn an_app_access_token_never_passes_a_management_guard(app: TestApp) {
    let router = guarded_routes(&app);
    let user = app.create_user("ops", &[Role::Admin, Role::Oauth]).await;
    // An app's access token (RFC 9068: `typ` at+jwt) for this very admin.
    let mut app_claims = claims(&app, user.id.as_str(), TokenKind::Oauth, app.now() + 600);
    app_claims.client_id = Some("some-app".into());
    let oauth = app
        .state
        .keys
        .ring()
        .await
        .unwrap()
        .sign_access(&app_claims)
        .unwrap();
    for path in ["/user-app-read", "/admin-app-write"] {
        let (status, _, body) = call(&router, path, Some(&format!("Bearer {oauth}"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let viewer = app
        .graphql("{ viewer { id } }", json!({}), Some(&oauth))
        .await;
    assert_eq!(error_code(&viewer), "FORBIDDEN");
}

async fn graphql_guards_answer_with_codes_and_challenges(app: TestApp) {
    let anonymous = app
        .graphql_response("{ viewer { id } }", json!({}), None)
        .await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(error_code(&anonymous.json()), "UNAUTHENTICATED");
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some(r#"Bearer realm="idgraph""#)
    );
    assert!(anonymous.json()["data"].is_null());

    let invalid = app
        .graphql_response("{ viewer { id } }", json!({}), Some("garbage"))
        .await;
    assert_eq!(error_code(&invalid.json()), "INVALID_TOKEN");
    assert!(
        invalid
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    // A stale token does not stand in the way of signing in again.
    app.create_user("ada", &[]).await;
    let login = app
        .graphql_response(
            "mutation { login(input: {username: \"ada\", password: \"correct horse battery staple\"}) { scope } }",
            json!({}),
            Some("garbage"),
        )
        .await;
    assert_eq!(login.json()["data"]["login"]["scope"], "all");
}

crate::on_every_database!(
    missing_token_is_401_with_a_bare_bearer_challenge,
    invalid_tokens_are_401_invalid_token,
    a_user_without_the_oauth_role_is_403,
    an_oauth_admin_without_the_scope_is_403_and_with_it_or_all_passes,
    an_app_access_token_never_passes_a_management_guard,
    graphql_guards_answer_with_codes_and_challenges,
);
