//! Housekeeping: one sweep deletes every row nothing can use any more, and keeps every row a
//! request could still use, which still works after it. Rows are made through the real flows;
//! the clock is moved past each lifetime, never slept through.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use idgraph::auth::jwt::LEEWAY_SECS;
use idgraph::config::RawConfig;
use idgraph::db::entities::{
    app_secrets, browser_sessions, grants, revoked_tokens, sessions, sign_in_attempts,
};
use idgraph::domain::Role;
use idgraph::service::consent::CODE_TTL_SECS;
use idgraph::service::housekeeping::{self, Swept};
use idgraph::service::throttle::FORGET_AFTER;
use sea_orm::{EntityTrait, PaginatorTrait, QuerySelect, TransactionTrait};
use serde_json::{Value, json};

use crate::common::api::{ORDERS, introspect, revoke, service_app};
use crate::common::browser::{Browser, authorize_path, text};
use crate::common::rp::{REDIRECT, Rp, consent, redeem_for, refresh_grant, setup, token};
use crate::common::{PASSWORD, TestApp, TestResponse, error_code};

const REFRESH_SESSION: &str = "mutation Refresh($token: String!) { refreshSession(refreshToken: $token) { accessToken refreshToken } }";
const VIEWER: &str = "{ viewer { username } }";

fn seconds(secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(secs).expect("a positive number of seconds"))
}

/// The clock leeway every deadline is kept past.
fn leeway() -> Duration {
    seconds(LEEWAY_SECS)
}

async fn sweep(app: &TestApp) -> Swept {
    housekeeping::sweep(&app.state, 100).await.expect("sweep")
}

async fn rows<E: EntityTrait<Model: Sync>>(app: &TestApp) -> u64 {
    E::find().count(&app.state.db).await.unwrap()
}

/// The new refresh token of a successful refresh.
fn refreshed(response: &TestResponse) -> String {
    response.assert_status(StatusCode::OK);
    response.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The username the first-party access token `access` reads as the viewer, if it works.
async fn viewer(app: &TestApp, access: &str) -> Value {
    app.graphql(VIEWER, json!({}), Some(access)).await["data"]["viewer"]["username"].clone()
}

async fn userinfo(app: &TestApp, access: &str) -> StatusCode {
    app.get("/api/oauth/userinfo", Some(access)).await.status
}

async fn expired_codes_go_only_once_past_the_leeway_and_a_fresh_code_still_redeems(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    app.advance(seconds(CODE_TTL_SECS + 1));
    assert_eq!(
        sweep(&app).await,
        Swept::default(),
        "expired here, but a node whose clock lags may still redeem it"
    );
    app.advance(leeway());
    let fresh = consent(&app, &rp, json!({ "scope": "openid" })).await;
    assert_eq!(
        sweep(&app).await,
        Swept {
            codes: 1,
            ..Swept::default()
        }
    );
    assert_eq!(
        rows::<grants::Entity>(&app).await,
        1,
        "the fresh code stays"
    );
    let tokens = redeem_for(&app, &rp, &fresh).await;
    assert_eq!(
        userinfo(&app, tokens["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
}

async fn dead_token_families_go_and_a_live_one_still_refreshes(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let offline = json!({ "scope": "openid offline_access" });
    // A family rotated once (so a rotated-out token of it exists), one that never had a
    // refresh token, and one kept alive by refreshing.
    let rotated = redeem_for(&app, &rp, &consent(&app, &rp, offline.clone()).await).await;
    let rotated =
        refreshed(&refresh_grant(&app, &rp, rotated["refresh_token"].as_str().unwrap()).await);
    redeem_for(
        &app,
        &rp,
        &consent(&app, &rp, json!({ "scope": "openid" })).await,
    )
    .await;
    let live = redeem_for(&app, &rp, &consent(&app, &rp, offline).await).await;
    let config = app.state.config.clone();
    app.advance(config.refresh_token_ttl - Duration::from_secs(60));
    let live = refreshed(&refresh_grant(&app, &rp, live["refresh_token"].as_str().unwrap()).await);
    // Every token of the first two has expired, a leeway ago.
    app.advance(Duration::from_secs(60) + config.access_token_ttl + leeway());
    let swept = sweep(&app).await;
    assert_eq!((swept.codes, swept.grants), (0, 2), "{swept:?}");
    assert_eq!(
        rows::<grants::Entity>(&app).await,
        1,
        "the live family stays"
    );
    refreshed(&refresh_grant(&app, &rp, &live).await);
    let gone = refresh_grant(&app, &rp, &rotated).await;
    gone.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(gone.json()["error"], "invalid_grant");
}

async fn revoked_and_expired_sessions_go_and_a_live_one_still_refreshes(app: TestApp) {
    app.create_user("ada", &[]).await;
    app.create_user("bob", &[]).await;
    let signed_out = app.login("ada", None).await;
    let out = app
        .graphql(
            "mutation { logout }",
            json!({}),
            signed_out["accessToken"].as_str(),
        )
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    let expiring = app.login("bob", None).await;
    assert_eq!(
        sweep(&app).await,
        Swept {
            sessions: 1,
            ..Swept::default()
        },
        "a revoked session goes at once"
    );
    assert_eq!(rows::<sessions::Entity>(&app).await, 1);
    assert_eq!(
        viewer(&app, expiring["accessToken"].as_str().unwrap()).await,
        "bob",
        "the live session stays"
    );

    let config = app.state.config.clone();
    app.advance(config.refresh_token_ttl + config.access_token_ttl + leeway());
    let live = app.login("ada", None).await;
    assert_eq!(
        sweep(&app).await,
        Swept {
            sessions: 1,
            ..Swept::default()
        }
    );
    assert_eq!(rows::<sessions::Entity>(&app).await, 1);
    let body = app
        .graphql(
            REFRESH_SESSION,
            json!({ "token": live["refreshToken"] }),
            None,
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let access = body["data"]["refreshSession"]["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(viewer(&app, access).await, "ada");
}

async fn expired_browser_sessions_go_and_a_live_one_stays_signed_in(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    app.create_user("bob", &[Role::Oauth]).await;
    let sign_in = |username: &'static str| {
        let (app, rp) = (&app, &rp);
        async move {
            let mut browser = Browser::new(app);
            let page = browser.get(&authorize_path(rp, &[])).await;
            let consent = browser.sign_in(&page, username, PASSWORD).await;
            consent.assert_status(StatusCode::OK);
            browser
        }
    };
    sign_in("ada").await;
    app.advance(app.state.config.browser_session_ttl + Duration::from_secs(1));
    assert_eq!(
        sweep(&app).await,
        Swept::default(),
        "expired here, but a node whose clock lags may still accept it"
    );
    app.advance(leeway());
    // Another user: signing in drops the same user's expired sessions itself.
    let mut live = sign_in("bob").await;
    assert_eq!(
        sweep(&app).await,
        Swept {
            browser_sessions: 1,
            ..Swept::default()
        }
    );
    assert_eq!(rows::<browser_sessions::Entity>(&app).await, 1);
    let page = text(&live.get(&authorize_path(&rp, &[])).await);
    assert!(
        page.contains("Approve") && !page.contains("name=\"password\""),
        "bob is still signed in: {page}"
    );
}

async fn rotate(app: &TestApp, admin: &str, client_id: &str, grace: i64) -> String {
    let response = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{client_id}/rotate"),
            Some(admin),
            Some(json!({ "grace_seconds": grace })),
        )
        .await;
    response.assert_status(StatusCode::OK);
    response.json()["key"].as_str().unwrap().to_string()
}

async fn expired_app_secrets_go_and_the_live_ones_still_authenticate(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let created = app.register_app(&admin, "Rotating", "", REDIRECT).await;
    let id = created.client_id.clone();
    // The first secret ends in an hour, the second in two; the third has no end.
    let second = rotate(&app, &admin, &id, 3600).await;
    let third = rotate(&app, &admin, &id, 7200).await;
    app.advance(Duration::from_secs(3600) + leeway());
    assert_eq!(
        sweep(&app).await,
        Swept {
            app_secrets: 1,
            ..Swept::default()
        }
    );
    assert_eq!(rows::<app_secrets::Entity>(&app).await, 2);
    assert!(!app.secret_works(&id, &created.secret).await);
    assert!(
        app.secret_works(&id, &second).await,
        "still within its grace"
    );
    assert!(app.secret_works(&id, &third).await);
}

async fn lapsed_revocations_go_and_an_unexpired_revoked_token_stays_revoked(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let registered = service_app(&app, &admin).await;
    let service = Rp {
        client_id: registered.client_id,
        secret: registered.secret,
        ..rp
    };
    let issue_and_revoke = || async {
        let grant = [("grant_type", "client_credentials"), ("resource", ORDERS)];
        let issued = token(&app, &service, &grant).await;
        issued.assert_status(StatusCode::OK);
        let access = issued.json()["access_token"].as_str().unwrap().to_string();
        assert_eq!(introspect(&app, &service, &access).await["active"], true);
        revoke(&app, &service, &access).await;
        access
    };
    issue_and_revoke().await;
    // The second is revoked before the first has lapsed (revoking purges lapsed entries).
    app.advance(Duration::from_secs(600));
    let unexpired = issue_and_revoke().await;
    app.advance(app.state.config.access_token_ttl - Duration::from_secs(600) + leeway());
    assert_eq!(
        sweep(&app).await,
        Swept {
            revoked_tokens: 1,
            ..Swept::default()
        }
    );
    assert_eq!(rows::<revoked_tokens::Entity>(&app).await, 1);
    assert_eq!(
        introspect(&app, &service, &unexpired).await,
        json!({ "active": false }),
        "a revoked token that has not expired stays revoked"
    );
}

async fn idle_sign_in_counts_go_and_a_recent_one_is_kept(app: TestApp) {
    app.create_user("ada", &[]).await;
    app.create_user("bob", &[]).await;
    let fail = |username: &'static str| {
        let app = &app;
        async move {
            let body = app
                .graphql(
                    "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
                    json!({ "input": { "username": username, "password": "not the password" } }),
                    None,
                )
                .await;
            assert_eq!(error_code(&body), "INVALID_CREDENTIALS");
        }
    };
    fail("ada").await;
    app.advance(FORGET_AFTER - Duration::from_secs(10));
    fail("bob").await;
    app.advance(Duration::from_secs(11));
    assert_eq!(
        sweep(&app).await,
        Swept {
            sign_in_attempts: 1,
            ..Swept::default()
        }
    );
    let kept: Vec<String> = sign_in_attempts::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.key)
        .collect();
    assert_eq!(kept, ["user:bob"], "bob's failure still counts");
}

/// `count` codes for `rp`, expired a leeway ago.
async fn expired_codes(app: &TestApp, rp: &Rp, count: usize) {
    for _ in 0..count {
        consent(app, rp, json!({ "scope": "openid" })).await;
    }
    app.advance(seconds(CODE_TTL_SECS + 1) + leeway());
}

async fn one_sweep_goes_on_batch_after_batch_until_one_comes_back_short(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    expired_codes(&app, &rp, 7).await;
    let swept = housekeeping::sweep(&app.state, 2).await.unwrap();
    assert_eq!(swept.codes, 7, "batches of 2, 2, 2 and 1");
    assert_eq!(rows::<grants::Entity>(&app).await, 0);
}

async fn two_nodes_sweeping_at_once_remove_every_dead_row_between_them(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    expired_codes(&app, &rp, 9).await;
    let other = app.another_node().await;
    let (here, there) = tokio::join!(
        housekeeping::sweep(&app.state, 2),
        housekeeping::sweep(&other.state, 2)
    );
    let (here, there) = (here.unwrap(), there.unwrap());
    assert_eq!(here.codes + there.codes, 9, "{here:?} {there:?}");
    assert_eq!(here.total() + there.total(), 9, "{here:?} {there:?}");
    assert_eq!(rows::<grants::Entity>(&app).await, 0);
}

/// On PostgreSQL a sweep passes over rows another node is deleting (`SKIP LOCKED`) instead of
/// waiting for them, and a later sweep takes them if they are still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn on_postgresql_a_sweep_skips_the_rows_another_node_holds() {
    let app = TestApp::postgres()
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    let rp = setup(&app, "ops", "ada").await;
    expired_codes(&app, &rp, 3).await;
    // Another transaction holds one dead row, as a node in the middle of its own sweep would.
    let other = app.state.db.begin().await.unwrap();
    grants::Entity::find()
        .lock_exclusive()
        .one(&other)
        .await
        .unwrap()
        .expect("a dead code");
    // Without SKIP LOCKED the sweep would wait for that transaction, which is still open.
    let swept = tokio::time::timeout(Duration::from_secs(30), housekeeping::sweep(&app.state, 10))
        .await
        .expect("the sweep passes over the held row instead of waiting for it")
        .unwrap();
    assert_eq!(swept.codes, 2);
    other.rollback().await.unwrap();
    assert_eq!(rows::<grants::Entity>(&app).await, 1);
    assert_eq!(housekeeping::sweep(&app.state, 10).await.unwrap().codes, 1);
}

crate::on_every_database!(
    expired_codes_go_only_once_past_the_leeway_and_a_fresh_code_still_redeems,
    dead_token_families_go_and_a_live_one_still_refreshes,
    revoked_and_expired_sessions_go_and_a_live_one_still_refreshes,
    expired_browser_sessions_go_and_a_live_one_stays_signed_in,
    expired_app_secrets_go_and_the_live_ones_still_authenticate,
    lapsed_revocations_go_and_an_unexpired_revoked_token_stays_revoked,
    idle_sign_in_counts_go_and_a_recent_one_is_kept,
    one_sweep_goes_on_batch_after_batch_until_one_comes_back_short,
    two_nodes_sweeping_at_once_remove_every_dead_row_between_them,
);

/// Access tokens that outlive refresh tokens (a 5-minute refresh token, an hour's access
/// token): a family and a session whose refresh token has expired stay while an access token
/// of theirs still works, and go once it has expired.
async fn rows_stay_while_an_access_token_outlives_its_refresh_token(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let tokens = redeem_for(
        &app,
        &rp,
        &consent(&app, &rp, json!({ "scope": "openid offline_access" })).await,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let config = app.state.config.clone();
    app.advance(config.refresh_token_ttl + leeway() + Duration::from_secs(1));
    let expired = refresh_grant(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        expired.json()["error"],
        "invalid_grant",
        "the refresh token expired"
    );
    assert_eq!(sweep(&app).await, Swept::default());
    assert_eq!(
        userinfo(&app, access).await,
        StatusCode::OK,
        "the grant stays"
    );
    assert_eq!(
        viewer(&app, &rp.user_token).await,
        "ada",
        "the session stays"
    );

    // From the issue: the refresh token's life, then the access token's, then the leeway.
    app.advance(config.access_token_ttl - Duration::from_secs(1));
    assert_eq!(
        sweep(&app).await,
        Swept {
            grants: 1,
            sessions: 2,
            ..Swept::default()
        },
        "the family, and the sessions of ops and ada"
    );
    assert_eq!(rows::<grants::Entity>(&app).await, 0);
    assert_eq!(rows::<sessions::Entity>(&app).await, 0);
}

fn long_access_tokens(config: &mut RawConfig) {
    config.refresh_token_ttl_secs = 300;
    config.access_token_ttl_secs = 3600;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_and_a_session_stay_while_an_access_token_outlives_their_refresh_token_on_sqlite()
{
    rows_stay_while_an_access_token_outlives_its_refresh_token(
        TestApp::sqlite_with(long_access_tokens).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn a_family_and_a_session_stay_while_an_access_token_outlives_their_refresh_token_on_postgres()
 {
    let app = TestApp::postgres_with(long_access_tokens)
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    rows_stay_while_an_access_token_outlives_its_refresh_token(app).await;
}
