//! Signing keys: the JWKS, tokens verified against it by an independent decoder, rotation that
//! keeps old tokens valid until their key retires, and every supported algorithm.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use idgraph::auth::SigningAlgorithm;
use idgraph::auth::jwt::AccessClaims;
use idgraph::service::keys;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::common::TestApp;

/// A rotation whose key signs at once, the previous keys kept `overlap`.
fn at_once(overlap: Duration) -> keys::Rotation {
    keys::Rotation {
        publish_ahead: Duration::ZERO,
        overlap,
    }
}

/// Rotates the configured algorithm's key at once, retiring the one that signed until now, and
/// reloads this node's key ring.
async fn retire_the_signing_key(app: &TestApp) {
    keys::rotate(
        &app.state.db,
        app.state.config.signing_algorithm,
        at_once(Duration::ZERO),
        app.now(),
    )
    .await
    .unwrap();
    app.state.keys.reload().await.unwrap();
}

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
        at_once(Duration::from_secs(960)),
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
    retire_the_signing_key(&app).await;
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

/// An app's access token that userinfo has verified (and remembers as verified) stops at once
/// when its key retires: what a node remembers lives with the key ring that verified it.
async fn a_retired_keys_app_token_fails_at_userinfo_though_verified_before(app: TestApp) {
    use crate::common::rp::{consented_tokens, setup};
    let rp = setup(&app, "ops", "ada").await;
    let access = consented_tokens(&app, &rp, json!({ "scope": "openid" })).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let userinfo = async || app.get("/api/oauth/userinfo", Some(&access)).await.status;
    assert_eq!(userinfo().await, StatusCode::OK);
    assert_eq!(userinfo().await, StatusCode::OK);
    // Access tokens are signed with the server's default algorithm: its key retires.
    retire_the_signing_key(&app).await;
    assert_eq!(userinfo().await, StatusCode::UNAUTHORIZED);
}

async fn a_node_picks_up_a_key_rotated_elsewhere_when_it_meets_its_kid(app: TestApp) {
    app.create_user("ada", &[]).await;
    // Another node (another KeyStore over the same database) rotates and signs.
    keys::rotate(
        &app.state.db,
        SigningAlgorithm::EdDsa,
        at_once(Duration::from_secs(960)),
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

const ALGORITHMS: [(&str, &str); 3] = [("EdDSA", "OKP"), ("ES256", "EC"), ("RS256", "RSA")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_signing_algorithm_signs_tokens_that_verify_against_the_jwks_on_sqlite() {
    for (algorithm, kty) in ALGORITHMS {
        let app = TestApp::sqlite_with(|c| c.signing_algorithm = algorithm.into()).await;
        tokens_verify_against_the_jwks_with(app, algorithm, kty).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn each_signing_algorithm_signs_tokens_that_verify_against_the_jwks_on_postgres() {
    for (algorithm, kty) in ALGORITHMS {
        let app = TestApp::postgres_with(|c| c.signing_algorithm = algorithm.into())
            .await
            .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
        tokens_verify_against_the_jwks_with(app, algorithm, kty).await;
    }
}

/// The key ids of the JWKS and how long it may be cached, as a relying party reads them.
async fn cached_jwks(app: &TestApp) -> (HashSet<String>, i64) {
    let response = app.get("/api/oauth/jwks", None).await;
    assert_eq!(response.status, StatusCode::OK);
    let max_age = response
        .header("cache-control")
        .and_then(|value| value.split("max-age=").nth(1))
        .and_then(|age| age.split(',').next()?.trim().parse().ok())
        .expect("Cache-Control: max-age");
    let kids = response.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_string())
        .collect();
    (kids, max_age)
}

/// A first-party token signed by the node now.
async fn signed_now(app: &TestApp) -> String {
    let claims: AccessClaims = serde_json::from_value(json!({
        "iss": app.state.config.issuer, "sub": "nobody", "aud": app.state.config.issuer,
        "exp": app.now() + 60, "iat": app.now(),
        "jti": "j", "scope": "all", "kind": "session"
    }))
    .unwrap();
    app.state.keys.sign(&claims).await.unwrap()
}

/// A node signs with the ring it read until it reads it again, up to a minute after the new key
/// starts signing; the superseded key stays published a whole token lifetime after that last
/// signature, and a minute more, so that a resource server allowing a minute of leeway on `exp`
/// still finds it. Then it goes.
async fn a_superseded_key_outlives_the_last_token_a_stale_ring_signs_with_it(app: TestApp) {
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let old = kid(&signed_now(&app).await);
    let rotation = keys::Rotation::of(&app.state.config);
    let new = keys::rotate(
        &app.state.db,
        app.state.config.signing_algorithm,
        rotation,
        app.now(),
    )
    .await
    .unwrap();
    // The ring read a second before the new key signs is kept for a minute.
    app.advance(rotation.publish_ahead - Duration::from_secs(1));
    app.state.keys.reload().await.unwrap();
    app.advance(keys::KeyStore::REFRESH - Duration::from_secs(1));
    let ttl = app.state.config.access_token_ttl;
    let claims: AccessClaims = serde_json::from_value(json!({
        "iss": app.state.config.issuer, "sub": "nobody", "aud": app.state.config.issuer,
        "exp": app.now() + ttl.as_secs() as i64, "iat": app.now(),
        "jti": "j", "scope": "all", "kind": "session"
    }))
    .unwrap();
    let last = app.state.keys.sign(&claims).await.unwrap();
    assert_eq!(
        kid(&last),
        old,
        "the stale ring still signs with the old key"
    );
    // At the token's expiry and a minute of leeway, its key is published.
    app.advance(ttl + Duration::from_secs(60));
    let (published, _) = cached_jwks(&app).await;
    assert!(published.contains(&old), "{published:?}");
    assert_eq!(kid(&signed_now(&app).await), new);
    app.advance(Duration::from_secs(3));
    app.state.keys.reload().await.unwrap();
    let (published, _) = cached_jwks(&app).await;
    assert!(!published.contains(&old), "retired: {published:?}");
}

/// Three days and two hours of a daily schedule, seven minutes at a time (so that the relying
/// party's fetches do not line up with the rotations): a relying party that keeps the JWKS
/// for the advertised max-age, and fetches it again only then, has the key of every token the
/// node signs, before and after each rotation; retired keys leave the set.
async fn scheduled_rotations_never_show_a_cached_jwks_an_unknown_key(app: TestApp) {
    let (mut cached, max_age) = cached_jwks(&app).await;
    assert_eq!(max_age, 3600, "a daily schedule advertises an hour");
    let mut fetched_at = app.now();
    let mut signers = HashSet::new();
    let mut rotations = 0;
    let step = Duration::from_secs(420);
    for _ in 0..((3 * 24 + 2) * 3600 / 420) {
        app.advance(step);
        rotations += keys::rotate_if_due(&app.state).await.unwrap().len();
        if app.now() - fetched_at >= max_age {
            (cached, _) = cached_jwks(&app).await;
            fetched_at = app.now();
        }
        // What the node's ring signs with now: for access tokens (EdDSA, the default) and
        // for ID tokens (RS256, apps' default).
        let ring = app
            .state
            .keys
            .ring_signing(SigningAlgorithm::Rs256)
            .await
            .unwrap();
        let id_token = ring
            .sign_with(SigningAlgorithm::Rs256, &json!({ "sub": "nobody" }))
            .unwrap();
        for token in [signed_now(&app).await, id_token] {
            let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
            assert!(
                cached.contains(&kid),
                "at {} the node signed with {kid}, which the relying party's JWKS (fetched at {fetched_at}) lacks: {cached:?}",
                app.now()
            );
            signers.insert(kid);
        }
    }
    // RS256 and EdDSA, rotated on each of three days.
    assert_eq!(rotations, 6, "one rotation per algorithm per day");
    assert_eq!(
        signers.len(),
        8,
        "the first key of each algorithm and three successors each: {signers:?}"
    );
    let (published, _) = cached_jwks(&app).await;
    assert!(
        published.len() <= 4,
        "retired keys are unpublished: {published:?}"
    );
}

/// Nodes that check the schedule at the same moment rotate once between them (PostgreSQL: the
/// store of several nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn nodes_checking_the_schedule_together_rotate_once() {
    let a = TestApp::postgres_with(|c| c.key_rotation_days = Some(1))
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    let b = a.another_node().await;
    a.advance(Duration::from_secs(24 * 3600));
    b.advance(Duration::from_secs(24 * 3600));
    let (on_a, on_b) = tokio::join!(keys::rotate_if_due(&a.state), keys::rotate_if_due(&b.state));
    let rotated = on_a.unwrap().len() + on_b.unwrap().len();
    assert_eq!(rotated, 2, "RS256 and EdDSA, each once");
    assert!(keys::rotate_if_due(&a.state).await.unwrap().is_empty());
}

fn daily(c: &mut idgraph::config::RawConfig) {
    c.key_rotation_days = Some(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_on_sqlite() {
    scheduled_rotations_never_show_a_cached_jwks_an_unknown_key(TestApp::sqlite_with(daily).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn scheduled_rotation_on_postgres() {
    let app = TestApp::postgres_with(daily)
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    scheduled_rotations_never_show_a_cached_jwks_an_unknown_key(app).await;
}

/// On SQLite the scheduled rotation reads the keys and then writes a new one while the token
/// path's writer commits consents and redemptions: a transaction that read first could not
/// write after such a commit (`SQLITE_BUSY_SNAPSHOT`), so it takes the write lock before it
/// reads, and every due rotation lands however the writes interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotations_on_sqlite_land_amid_token_writes() {
    let app = TestApp::sqlite_with(daily).await;
    let mut rp = crate::common::rp::setup(&app, "ops", "ada").await;
    for day in 1..=10 {
        app.advance(Duration::from_secs(24 * 3600));
        rp.user_token = app.token("ada", None).await;
        let consents =
            (0..8).map(|_| crate::common::rp::consent(&app, &rp, json!({ "scope": "openid" })));
        let (rotated, _) = tokio::join!(
            keys::rotate_if_due(&app.state),
            futures_util::future::join_all(consents)
        );
        let rotated = rotated.unwrap_or_else(|err| panic!("day {day}: {err}"));
        assert_eq!(rotated.len(), 2, "day {day}: RS256 and EdDSA");
    }
}

const SIGNING_KEYS: &str = "{ signingKeys { kid algorithm state activatesAt retiresAt } }";
const ROTATE: &str =
    "mutation($a: SigningAlgorithm!) { rotateSigningKey(algorithm: $a) { kid algorithm state } }";

/// Administrators list the keys and rotate one; the new key waits as `NEXT` while the one it
/// replaces keeps signing, then takes over once its time has come. Everyone else is refused.
async fn administrators_read_and_rotate_the_signing_keys(app: TestApp) {
    app.create_user("root", &[idgraph::domain::Role::Admin])
        .await;
    app.create_user("ops", &[idgraph::domain::Role::Oauth])
        .await;
    let root = app.token("root", None).await;
    let before = app.graphql(SIGNING_KEYS, json!({}), Some(&root)).await;
    let before = before["data"]["signingKeys"].as_array().unwrap().clone();
    let rs256: Vec<&Value> = before
        .iter()
        .filter(|k| k["algorithm"] == "RS256")
        .collect();
    assert_eq!(rs256.len(), 1, "{before:?}");
    assert_eq!(rs256[0]["state"], "ACTIVE");
    // No field of a signing key can reveal its private part.
    let fields = app
        .graphql(
            r#"{ __type(name: "SigningKey") { fields { name } } }"#,
            json!({}),
            Some(&root),
        )
        .await;
    let fields = fields["data"]["__type"]["fields"]
        .as_array()
        .unwrap()
        .clone();
    assert!(fields.len() >= 6, "{fields:?}");
    assert!(
        fields.iter().all(|f| {
            let name = f["name"].as_str().unwrap().to_ascii_lowercase();
            !name.contains("private") && !name.contains("pkcs") && !name.contains("secret")
        }),
        "{fields:?}"
    );

    let rotated = app
        .graphql(ROTATE, json!({ "a": "RS256" }), Some(&root))
        .await;
    let new_kid = rotated["data"]["rotateSigningKey"]["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        rotated["data"]["rotateSigningKey"]["state"], "NEXT",
        "{rotated}"
    );
    // By key id: both keys were made in the same second of the test's clock.
    let states = |keys: &Value| -> std::collections::BTreeMap<String, String> {
        keys["data"]["signingKeys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["algorithm"] == "RS256")
            .map(|k| {
                (
                    k["kid"].as_str().unwrap().into(),
                    k["state"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let old_kid = rs256[0]["kid"].as_str().unwrap().to_string();
    let now = app.graphql(SIGNING_KEYS, json!({}), Some(&root)).await;
    assert_eq!(
        states(&now),
        [
            (new_kid.clone(), "NEXT".into()),
            (old_kid.clone(), "ACTIVE".into())
        ]
        .into()
    );
    app.advance(keys::Rotation::of(&app.state.config).publish_ahead);
    let later = app.graphql(SIGNING_KEYS, json!({}), Some(&root)).await;
    assert_eq!(
        states(&later),
        [(new_kid, "ACTIVE".into()), (old_kid, "RETIRING".into())].into()
    );

    // An app manager, and an administrator's token without the key scopes, are refused.
    let ops = app.token("ops", None).await;
    let narrow = app.token("root", Some("gov.user.admin.user:read")).await;
    for token in [&ops, &narrow] {
        let answer = app.graphql(SIGNING_KEYS, json!({}), Some(token)).await;
        assert_eq!(crate::common::error_code(&answer), "FORBIDDEN", "{answer}");
        let answer = app
            .graphql(ROTATE, json!({ "a": "ES256" }), Some(token))
            .await;
        assert_eq!(crate::common::error_code(&answer), "FORBIDDEN", "{answer}");
    }
    let reader = app.token("root", Some("gov.user.admin.key:read")).await;
    let answer = app
        .graphql(ROTATE, json!({ "a": "ES256" }), Some(&reader))
        .await;
    assert_eq!(crate::common::error_code(&answer), "FORBIDDEN", "{answer}");
    let listed = app.graphql(SIGNING_KEYS, json!({}), Some(&reader)).await;
    assert!(listed["errors"].is_null(), "{listed}");
}

const REVOKE: &str = "mutation($kid: ID!) { revokeSigningKey(kid: $kid) { \
    key { kid algorithm state retiresAt } successor { kid algorithm state activatesAt } } }";

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn published_kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// A key that leaked is revoked: it leaves the JWKS at once, every token it signed fails at
/// once on this node (a session token, and an app's access token userinfo verified before),
/// another key of its algorithm signs at once, and the revocation is audited. Revoking it
/// again is a conflict, an unknown key is not found, and only a key administrator may.
async fn a_revoked_key_leaves_the_jwks_its_tokens_fail_and_another_key_signs(app: TestApp) {
    use crate::common::rp::{consented_tokens, setup};
    let rp = setup(&app, "ops", "ada").await;
    app.create_user("root", &[idgraph::domain::Role::Admin])
        .await;
    let access = consented_tokens(&app, &rp, json!({ "scope": "openid" })).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let userinfo = async || app.get("/api/oauth/userinfo", Some(&access)).await.status;
    assert_eq!(userinfo().await, StatusCode::OK, "verified, and remembered");
    let root = app.token("root", None).await;
    // The access token, ada's and root's session tokens: the server's default algorithm.
    let leaked = kid_of(&access);
    assert_eq!(kid_of(&root), leaked);

    let answer = app
        .graphql(REVOKE, json!({ "kid": leaked }), Some(&root))
        .await;
    let revocation = &answer["data"]["revokeSigningKey"];
    assert_eq!(revocation["key"]["state"], "REVOKED", "{answer}");
    let successor = revocation["successor"]["kid"].as_str().unwrap().to_string();
    assert_eq!(revocation["successor"]["state"], "ACTIVE", "signs at once");
    assert_eq!(
        revocation["successor"]["algorithm"],
        revocation["key"]["algorithm"]
    );
    let kids = published_kids(&jwks(&app).await);
    assert!(!kids.contains(&leaked), "{kids:?}");
    assert!(kids.contains(&successor), "{kids:?}");
    assert_eq!(userinfo().await, StatusCode::UNAUTHORIZED);
    let viewer = app
        .graphql("{ viewer { username } }", json!({}), Some(&root))
        .await;
    assert_eq!(crate::common::error_code(&viewer), "INVALID_TOKEN");
    let fresh = app.token("root", None).await;
    assert_eq!(kid_of(&fresh), successor);
    let event = app.audit_event("signing_key.revoke").await;
    assert_eq!(event.target_id.as_deref(), Some(leaked.as_str()));
    assert_eq!(event.actor_kind, "user");
    assert!(event.detail.contains(&successor), "{}", event.detail);

    let again = app
        .graphql(REVOKE, json!({ "kid": leaked }), Some(&fresh))
        .await;
    assert_eq!(crate::common::error_code(&again), "CONFLICT", "{again}");
    let unknown = app
        .graphql(REVOKE, json!({ "kid": "no-such-key" }), Some(&fresh))
        .await;
    assert_eq!(
        crate::common::error_code(&unknown),
        "NOT_FOUND",
        "{unknown}"
    );
    let ops = app.token("ops", None).await;
    let reader = app.token("root", Some("gov.user.admin.key:read")).await;
    for token in [&ops, &reader] {
        let refused = app
            .graphql(REVOKE, json!({ "kid": successor }), Some(token))
            .await;
        assert_eq!(
            crate::common::error_code(&refused),
            "FORBIDDEN",
            "{refused}"
        );
    }
    assert!(published_kids(&jwks(&app).await).contains(&successor));
}

/// Revocation never leaves an algorithm without a signer, and keeps a rotation's schedule: the
/// key published to sign next, once revoked, is replaced by a key that signs when it would
/// have; the signing key, once revoked, gives way at once to the key published next. An ID
/// token of a revoked key is not even accepted as a logout hint, as a merely retired key's is.
async fn revoking_keeps_a_signer_and_the_rotation_schedule(app: TestApp) {
    use crate::common::rp::{consented_tokens, setup};
    use sea_orm::EntityTrait;
    let rp = setup(&app, "ops", "ada").await;
    let id_token = consented_tokens(&app, &rp, json!({ "scope": "openid" })).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    let issuer = app.state.config.issuer.clone();
    let hint = async || {
        app.state
            .keys
            .verify_id_token_hint(&id_token, &issuer, 0)
            .await
            .unwrap()
    };
    assert!(hint().await.is_some());
    let signing = kid_of(&id_token);
    let rotation = keys::Rotation::of(&app.state.config);
    let next = keys::rotate(&app.state.db, SigningAlgorithm::Rs256, rotation, app.now())
        .await
        .unwrap();
    let activates = |kid: &str| {
        let kid = kid.to_string();
        async {
            idgraph::db::entities::signing_keys::Entity::find_by_id(kid)
                .one(&app.state.db)
                .await
                .unwrap()
                .unwrap()
                .activates_at
        }
    };
    let scheduled = activates(&next).await;
    assert!(scheduled.is_some_and(|at| at > app.now()));

    let revoked = keys::revoke(&app.state.db, &next, app.now()).await.unwrap();
    assert_eq!(revoked.key.state, keys::KeyState::Revoked);
    let replacement = revoked.successor.expect("a key takes the next one's place");
    assert_eq!(replacement.state, keys::KeyState::Next);
    assert_eq!(replacement.activates_at, scheduled, "on the same schedule");

    let revoked = keys::revoke(&app.state.db, &signing, app.now())
        .await
        .unwrap();
    let successor = revoked.successor.expect("the next key signs instead");
    assert_eq!(successor.kid, replacement.kid);
    assert_eq!(successor.state, keys::KeyState::Active);
    app.state.keys.reload().await.unwrap();
    assert!(hint().await.is_none(), "a revoked key verifies no hint");
    let unknown = keys::revoke(&app.state.db, "no-such-key", app.now()).await;
    assert!(matches!(
        unknown,
        Err(idgraph::error::AppError::NotFound(_))
    ));
}

/// Three rotations in a row publish three keys ahead (each signing 100 s after the one before,
/// the key signing now retiring 60 s after the first takes over). Revoking the first of them
/// before it signs must leave no gap between the key signing now and the second, and its
/// stand-in must sign exactly when the first would have: from its activation until the second
/// takes over, not after.
async fn revoking_a_key_published_ahead_leaves_no_moment_without_a_signer(app: TestApp) {
    app.create_user("ada", &[]).await;
    let algorithm = app.state.config.signing_algorithm;
    let rotation = keys::Rotation {
        publish_ahead: Duration::from_secs(600),
        overlap: Duration::from_secs(60),
    };
    let mut ahead = Vec::new();
    for _ in 0..3 {
        let kid = keys::rotate(&app.state.db, algorithm, rotation, app.now())
            .await
            .unwrap();
        ahead.push(kid);
        app.advance(Duration::from_secs(100));
    }
    // Now 300 s after the first rotation: its key signs from 600 s, the second's from 700 s,
    // the third's from 800 s; the key signing now retires at 660 s.
    let revoked = keys::revoke(&app.state.db, &ahead[0], app.now())
        .await
        .unwrap();
    let stand_in = revoked
        .successor
        .expect("a key takes the first one's place");
    assert_eq!(stand_in.state, keys::KeyState::Next);
    // Who signs after the clock moves on by `secs`.
    let signed_after = async |secs: u64| {
        app.advance(Duration::from_secs(secs));
        app.state.keys.reload().await.unwrap();
        kid_of(&app.token("ada", None).await)
    };
    assert_eq!(signed_after(380).await, stand_in.kid, "at 680 s");
    assert_eq!(signed_after(40).await, ahead[1], "at 720 s");
    assert_eq!(signed_after(100).await, ahead[2], "at 820 s");
}

crate::on_every_database!(
    revoking_a_key_published_ahead_leaves_no_moment_without_a_signer,
    a_revoked_key_leaves_the_jwks_its_tokens_fail_and_another_key_signs,
    revoking_keeps_a_signer_and_the_rotation_schedule,
    administrators_read_and_rotate_the_signing_keys,
    the_jwks_publishes_the_signing_keys_and_tokens_verify_against_them,
    rotation_publishes_both_keys_and_old_tokens_stay_valid,
    a_retired_key_is_unpublished_and_its_tokens_fail,
    a_retired_keys_app_token_fails_at_userinfo_though_verified_before,
    a_node_picks_up_a_key_rotated_elsewhere_when_it_meets_its_kid,
    a_superseded_key_outlives_the_last_token_a_stale_ring_signs_with_it,
    nodes_starting_together_create_one_key_per_algorithm,
);

/// Nodes (or commands) started together on a database without a key of an algorithm create
/// exactly one: they take turns (on PostgreSQL an advisory lock, on SQLite the write lock taken
/// first), and the later ones find the key the first made.
async fn nodes_starting_together_create_one_key_per_algorithm(app: TestApp) {
    let db = &app.state.db;
    let now = app.now();
    let ensure = || {
        keys::ensure_active_key(
            db,
            SigningAlgorithm::Es256,
            now,
            &idgraph::service::audit::Actor::System,
        )
    };
    let created = futures_util::future::join_all((0..6).map(|_| ensure())).await;
    let created: Vec<bool> = created.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        created.iter().filter(|made| **made).count(),
        1,
        "{created:?}"
    );
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let rows = idgraph::db::entities::signing_keys::Entity::find()
        .filter(idgraph::db::entities::signing_keys::Column::Algorithm.eq("ES256"))
        .count(db)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one ES256 key in all");
}
