//! Signing keys: the JWKS, tokens verified against it by an independent decoder, rotation that
//! keeps old tokens valid until their key retires, and every supported algorithm.

use std::time::Duration;

use axum::http::StatusCode;
use idgraph::auth::SigningAlgorithm;
use idgraph::auth::jwt::AccessClaims;
use idgraph::service::keys;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::common::TestApp;

async fn jwks(app: &TestApp) -> Value {
    let response = app.get("/api/oauth/jwks", None).await;
    assert_eq!(response.status, StatusCode::OK);
    response.json()
}

/// Verifies `token` against the published JWKS with jsonwebtoken's own JWK support.
fn verify_against(jwks: &Value, token: &str, issuer: &str) -> AccessClaims {
    let set: JwkSet = serde_json::from_value(jwks.clone()).expect("a JWK set");
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("kid in header");
    let jwk = set.find(&kid).expect("the token's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[issuer]);
    jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .unwrap()
        .claims
}

async fn the_jwks_publishes_the_signing_keys_and_tokens_verify_against_them(app: TestApp) {
    let set = jwks(&app).await;
    let published = set["keys"].as_array().unwrap();
    // The default algorithm (EdDSA) signs access tokens; RS256 is always there for ID tokens.
    let kinds: Vec<(&str, &str)> = published
        .iter()
        .map(|key| (key["kty"].as_str().unwrap(), key["alg"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("OKP", "EdDSA"), ("RSA", "RS256")]);
    for key in published {
        assert_eq!(key["use"], "sig");
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private parts: {key}"
        );
    }

    let user = app.create_user("ada", &[]).await;
    let token = app.token("ada", Some("gov.user.oauth.authorize")).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        jsonwebtoken::Algorithm::EdDSA
    );
    let claims = verify_against(&set, &token, &app.state.config.issuer);
    assert_eq!(claims.sub, user.id.as_str());
    assert_eq!(claims.scope, "gov.user.oauth.authorize");
    assert_eq!(claims.exp - claims.iat, 900);
    assert!(claims.jti.len() >= 16);
    assert_eq!(serde_json::to_value(claims.kind).unwrap(), json!("session"));
}

async fn rotation_publishes_both_keys_and_old_tokens_stay_valid(app: TestApp) {
    app.create_user("ada", &[]).await;
    let old_token = app.token("ada", None).await;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();

    let new_kid = keys::rotate(
        &app.state.db,
        app.state.config.signing_algorithm,
        Duration::from_secs(960),
        app.now(),
    )
    .await
    .unwrap();
    app.state.keys.reload().await.unwrap();

    let set = jwks(&app).await;
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    let new_token = app.token("ada", None).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap(),
        new_kid
    );
    for token in [&old_token, &new_token] {
        let viewer = app
            .graphql("{ viewer { username } }", json!({}), Some(token))
            .await;
        assert_eq!(viewer["data"]["viewer"]["username"], "ada");
        verify_against(&set, token, &app.state.config.issuer);
    }
}

async fn a_retired_key_is_unpublished_and_its_tokens_fail(app: TestApp) {
    app.create_user("ada", &[]).await;
    let old_token = app.token("ada", None).await;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    keys::rotate(
        &app.state.db,
        app.state.config.signing_algorithm,
        Duration::ZERO,
        app.now(),
    )
    .await
    .unwrap();
    app.state.keys.reload().await.unwrap();
    let set = jwks(&app).await;
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "the new key and the RS256 key: {kids:?}");
    assert!(!kids.contains(&old_kid.as_str()), "{kids:?}");
    let viewer = app
        .graphql("{ viewer { username } }", json!({}), Some(&old_token))
        .await;
    assert_eq!(viewer["errors"][0]["extensions"]["code"], "INVALID_TOKEN");
}

async fn a_node_picks_up_a_key_rotated_elsewhere_when_it_meets_its_kid(app: TestApp) {
    app.create_user("ada", &[]).await;
    // Another node (another KeyStore over the same database) rotates and signs.
    keys::rotate(
        &app.state.db,
        SigningAlgorithm::EdDsa,
        Duration::from_secs(960),
        app.now(),
    )
    .await
    .unwrap();
    let other_node = keys::KeyStore::load(
        app.state.db.clone(),
        app.state.clock.clone(),
        SigningAlgorithm::EdDsa,
    )
    .await
    .unwrap();
    let claims: AccessClaims = serde_json::from_value(json!({
        "iss": app.state.config.issuer, "sub": "nobody", "aud": app.state.config.issuer,
        "exp": app.now() + 60, "iat": app.now(),
        "jti": "j", "scope": "all", "kind": "session"
    }))
    .unwrap();
    let token = other_node.sign(&claims).await.unwrap();
    // This node has not reloaded yet; meeting the unknown kid makes it reload (at most once a
    // second, so let that much time pass first).
    app.advance(Duration::from_millis(1100));
    let verified = app
        .state
        .keys
        .verify_session_token(&token, &app.state.config.issuer)
        .await
        .unwrap();
    assert_eq!(verified.map(|c| c.sub), Some("nobody".to_string()));
}

async fn tokens_verify_against_the_jwks_with(app: TestApp, algorithm: &str, kty: &str) {
    app.create_user("ada", &[]).await;
    let token = app.token("ada", None).await;
    let set = jwks(&app).await;
    assert_eq!(set["keys"][0]["kty"], kty);
    assert_eq!(set["keys"][0]["alg"], algorithm);
    assert_eq!(
        format!("{:?}", jsonwebtoken::decode_header(&token).unwrap().alg),
        algorithm
    );
    verify_against(&set, &token, &app.state.config.issuer);
    let viewer = app
        .graphql("{ viewer { username } }", json!({}), Some(&token))
        .await;
    assert_eq!(viewer["data"]["viewer"]["username"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_signing_algorithm_signs_tokens_that_verify_against_the_jwks() {
    for (algorithm, kty) in [("EdDSA", "OKP"), ("ES256", "EC"), ("RS256", "RSA")] {
        let app = TestApp::sqlite_with(|c| c.signing_algorithm = algorithm.into()).await;
        tokens_verify_against_the_jwks_with(app, algorithm, kty).await;
        if let Some(app) = TestApp::postgres_with(|c| c.signing_algorithm = algorithm.into()).await
        {
            tokens_verify_against_the_jwks_with(app, algorithm, kty).await;
        }
    }
}

crate::on_every_database!(
    the_jwks_publishes_the_signing_keys_and_tokens_verify_against_them,
    rotation_publishes_both_keys_and_old_tokens_stay_valid,
    a_retired_key_is_unpublished_and_its_tokens_fail,
    a_node_picks_up_a_key_rotated_elsewhere_when_it_meets_its_kid,
);
