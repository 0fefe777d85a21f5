//! Userinfo and introspection answer from a per-node cache of live grants and unrevoked app
//! tokens. Every way a token can end must reach that cache at once on the node that ended it,
//! and, on PostgreSQL, the other nodes through the announcement; a change made behind every
//! node's back is seen within the cache's TTL.

use std::future::Future;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use idgraph::service::tokens::LiveTokens;
use serde_json::json;

use crate::common::TestApp;
use crate::common::api::{ORDERS, introspect, revoke, service_app};
use crate::common::rp::{REDIRECT, Rp, consent, redeem_for, refresh_grant, setup, token};

/// The tokens of one redeemed consent.
struct Family {
    code: String,
    access: String,
    refresh: String,
}

async fn family(app: &TestApp, rp: &Rp) -> Family {
    let code = consent(app, rp, json!({ "scope": "openid profile offline_access" })).await;
    let tokens = redeem_for(app, rp, &code).await;
    Family {
        code,
        access: tokens["access_token"].as_str().unwrap().into(),
        refresh: tokens["refresh_token"].as_str().unwrap().into(),
    }
}

async fn userinfo(app: &TestApp, access: &str) -> StatusCode {
    app.get("/api/oauth/userinfo", Some(access)).await.status
}

/// The token works at userinfo and introspects active, and the cache is warm: the next
/// userinfo and introspection calls run no statement at all.
async fn warm(app: &TestApp, rp: &Rp, access: &str) {
    assert_eq!(userinfo(app, access).await, StatusCode::OK);
    assert_eq!(introspect(app, rp, access).await["active"], true);
    let (status, statements) = app.count_statements(userinfo(app, access)).await;
    assert_eq!(
        (status, statements),
        (StatusCode::OK, 0),
        "userinfo answered from the cache"
    );
    let (answer, statements) = app.count_statements(introspect(app, rp, access)).await;
    assert_eq!(
        (&answer["active"], statements),
        (&json!(true), 0),
        "introspection answered from the caches"
    );
}

/// The very next requests see the token ended.
async fn ended(app: &TestApp, rp: &Rp, access: &str, how: &str) {
    assert_eq!(
        userinfo(app, access).await,
        StatusCode::UNAUTHORIZED,
        "{how}"
    );
    assert_eq!(
        introspect(app, rp, access).await,
        json!({ "active": false }),
        "{how}"
    );
}

async fn every_way_a_grant_ends_is_seen_by_the_next_request_with_the_cache_warm(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;

    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    revoke(&app, &rp, &tokens.refresh).await;
    ended(&app, &rp, &tokens.access, "refresh token revoked").await;

    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    revoke(&app, &rp, &tokens.access).await;
    ended(&app, &rp, &tokens.access, "access token revoked").await;

    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    let replay = [
        ("grant_type", "authorization_code"),
        ("code", tokens.code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    token(&app, &rp, &replay)
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    ended(&app, &rp, &tokens.access, "code replayed").await;

    let tokens = family(&app, &rp).await;
    let rotated = refresh_grant(&app, &rp, &tokens.refresh).await;
    rotated.assert_status(StatusCode::OK);
    let rotated = rotated.json()["access_token"].as_str().unwrap().to_string();
    warm(&app, &rp, &rotated).await;
    refresh_grant(&app, &rp, &tokens.refresh)
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    ended(&app, &rp, &rotated, "rotated-out refresh token reused").await;

    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    let path = format!("/api/oauth/connection/id/{}", rp.client_id);
    app.rest(Method::DELETE, &path, Some(&rp.user_token), None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    ended(&app, &rp, &tokens.access, "connection deleted").await;

    // Deleting the app: its own credentials die with it, so userinfo tells.
    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    let admin = app.token("ops", None).await;
    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    app.rest(Method::DELETE, &path, Some(&admin), None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        userinfo(&app, &tokens.access).await,
        StatusCode::UNAUTHORIZED,
        "app deleted"
    );
}

/// A change to the user is seen by the very next userinfo call although the grant's entry is
/// warm: a new name is served at once, and a disabled or deleted user's token is refused at
/// once (by introspection too).
async fn a_user_changed_or_deleted_is_seen_by_the_next_userinfo_with_the_cache_warm(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    app.create_user("root", &[idgraph::domain::Role::Admin])
        .await;
    let root = app.token("root", None).await;

    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    let renamed = app
        .graphql(
            "mutation($id: ID!) { updateUser(id: $id, input: { name: \"Ada King\" }) { name } }",
            json!({ "id": rp.user_id }),
            Some(&root),
        )
        .await;
    assert_eq!(
        renamed["data"]["updateUser"]["name"], "Ada King",
        "{renamed}"
    );
    let claims = app.get("/api/oauth/userinfo", Some(&tokens.access)).await;
    assert_eq!(claims.status, StatusCode::OK);
    assert_eq!(claims.json()["name"], "Ada King");

    // A change to one user leaves every other user's cached grants alone.
    let bob = app.create_user("bob", &[]).await;
    let other = Rp {
        user_token: app.token("bob", None).await,
        user_id: bob.id.to_string(),
        ..rp.clone()
    };
    let others = family(&app, &other).await;
    warm(&app, &other, &others.access).await;
    let renamed = app
        .graphql(
            "mutation($id: ID!) { updateUser(id: $id, input: { name: \"Ada L.\" }) { name } }",
            json!({ "id": rp.user_id }),
            Some(&root),
        )
        .await;
    assert_eq!(renamed["data"]["updateUser"]["name"], "Ada L.", "{renamed}");
    let (status, statements) = app.count_statements(userinfo(&app, &others.access)).await;
    assert_eq!(
        (status, statements),
        (StatusCode::OK, 0),
        "bob's grant stays cached"
    );

    warm(&app, &rp, &tokens.access).await;
    let disabled = app
        .graphql(
            "mutation($id: ID!) { disableUser(id: $id) { disabled } }",
            json!({ "id": rp.user_id }),
            Some(&root),
        )
        .await;
    assert_eq!(
        disabled["data"]["disableUser"]["disabled"], true,
        "{disabled}"
    );
    ended(&app, &rp, &tokens.access, "user disabled").await;
    let enabled = app
        .graphql(
            "mutation($id: ID!) { enableUser(id: $id) { disabled } }",
            json!({ "id": rp.user_id }),
            Some(&root),
        )
        .await;
    assert_eq!(
        enabled["data"]["enableUser"]["disabled"], false,
        "{enabled}"
    );
    // Disabling ended her first-party session too: she signs in again.
    let rp = Rp {
        user_token: app.token("ada", None).await,
        ..rp
    };

    let tokens = family(&app, &rp).await;
    warm(&app, &rp, &tokens.access).await;
    let deleted = app
        .graphql(
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({ "id": rp.user_id }),
            Some(&root),
        )
        .await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    ended(&app, &rp, &tokens.access, "user deleted").await;
}

/// An app's token for itself, seen by the resource server it names.
async fn an_apps_own_token_ends_when_revoked_when_the_app_loses_the_grant_or_is_deleted(
    app: TestApp,
) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let registered = service_app(&app, &admin).await;
    let service = Rp {
        client_id: registered.client_id,
        secret: registered.secret,
        user_token: rp.user_token.clone(),
        user_id: rp.user_id.clone(),
    };
    let api = app
        .register_app_with(
            &admin,
            json!({ "name": "Orders API", "redirect_uri": REDIRECT, "resources": [ORDERS] }),
        )
        .await;
    let api = Rp {
        client_id: api.client_id,
        secret: api.secret,
        ..rp
    };
    let grant = [("grant_type", "client_credentials"), ("resource", ORDERS)];
    let issue = || async {
        let response = token(&app, &service, &grant).await;
        response.assert_status(StatusCode::OK);
        response.json()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let access = issue().await;
    assert_eq!(introspect(&app, &api, &access).await["active"], true);
    let (answer, statements) = app.count_statements(introspect(&app, &api, &access)).await;
    assert_eq!(
        (&answer["active"], statements),
        (&json!(true), 0),
        "answered from the caches"
    );
    revoke(&app, &service, &access).await;
    assert_eq!(
        introspect(&app, &api, &access).await,
        json!({ "active": false }),
        "revoked"
    );

    let access = issue().await;
    assert_eq!(introspect(&app, &api, &access).await["active"], true);
    let path = format!("/api/oauth/app/id/{}", service.client_id);
    let grant_types = |grant_types: &[&str]| json!({ "name": "Orders", "url": "", "redirect_uri": REDIRECT, "grant_types": grant_types });
    app.rest(
        Method::PUT,
        &path,
        Some(&admin),
        Some(grant_types(&["authorization_code"])),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        introspect(&app, &api, &access).await,
        json!({ "active": false }),
        "its app may no longer get such a token"
    );
    app.rest(
        Method::PUT,
        &path,
        Some(&admin),
        Some(grant_types(&["authorization_code", "client_credentials"])),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(introspect(&app, &api, &access).await["active"], true);
    app.rest(Method::DELETE, &path, Some(&admin), None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        introspect(&app, &api, &access).await,
        json!({ "active": false }),
        "its app was deleted"
    );
}

/// A family whose access token is cached on this node, then its grant deleted with no
/// announcement (as another node, or an operator's SQL, would).
async fn warm_then_deleted_behind_the_nodes_back(app: &TestApp) -> (Rp, Family) {
    use sea_orm::ConnectionTrait;
    let rp = setup(app, "ops", "ada").await;
    let tokens = family(app, &rp).await;
    warm(app, &rp, &tokens.access).await;
    app.state
        .db
        .execute_unprepared("DELETE FROM grants")
        .await
        .unwrap();
    (rp, tokens)
}

/// The TTL is the bound: a grant deleted behind every node's back (no announcement) still
/// answers from the cache until the entry is older than the TTL, then no longer.
async fn a_change_behind_the_nodes_back_is_seen_within_the_ttl(app: TestApp) {
    let tokens = warm_then_deleted_behind_the_nodes_back(&app).await.1;
    assert_eq!(
        userinfo(&app, &tokens.access).await,
        StatusCode::OK,
        "unannounced, within the TTL"
    );
    app.advance(LiveTokens::TTL);
    assert_eq!(
        userinfo(&app, &tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
}

/// A revocation answered here ends the cached token here, even when the grant was already gone
/// from the database (deleted by another node whose announcement has not arrived): the
/// revocation finds nothing to delete, and the cache must forget the grant all the same. (The
/// signed access token names its grant and app; a refresh token whose grant is gone can no
/// longer be told from a guess, so it changes nothing, and the cache's TTL is the bound.)
async fn a_revocation_of_a_grant_already_deleted_elsewhere_ends_the_cached_token(app: TestApp) {
    let (rp, tokens) = warm_then_deleted_behind_the_nodes_back(&app).await;
    revoke(&app, &rp, &tokens.access).await;
    ended(&app, &rp, &tokens.access, "revoked after it was deleted").await;
}

/// Ending a user's sessions ends the grants given through them (those without
/// `offline_access`) at once, even while another grant of the same user stays live: reading
/// the live one first puts the user's claims back in the cache, and the ended one must still be
/// refused (each ended grant is forgotten by id, not only the user's claims).
async fn a_grant_ended_with_its_session_stays_ended_beside_a_live_grant_of_the_same_user(
    app: TestApp,
) {
    use crate::common::browser::{Browser, authorize_path, redirect_query};
    use crate::common::rp::VERIFIER;
    let rp = setup(&app, "ops", "ada").await;
    app.create_user("root", &[idgraph::domain::Role::Admin])
        .await;
    let root = app.token("root", None).await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let consent_page = browser.sign_in(&page, "ada", crate::common::PASSWORD).await;
    let answered = browser.press(&consent_page, "approve").await;
    let code = redirect_query(&answered)["code"].clone();
    let signed_in = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    signed_in.assert_status(StatusCode::OK);
    let ending = signed_in.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let lasting = family(&app, &rp).await;
    warm(&app, &rp, &ending).await;
    warm(&app, &rp, &lasting.access).await;
    let body = app
        .graphql(
            "mutation($id: ID!) { endUserSessions(id: $id) }",
            json!({ "id": rp.user_id }),
            Some(&root),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(userinfo(&app, &lasting.access).await, StatusCode::OK);
    ended(&app, &rp, &ending, "its browser session ended").await;
}

crate::on_every_database!(
    a_grant_ended_with_its_session_stays_ended_beside_a_live_grant_of_the_same_user,
    a_revocation_of_a_grant_already_deleted_elsewhere_ends_the_cached_token,
    every_way_a_grant_ends_is_seen_by_the_next_request_with_the_cache_warm,
    a_user_changed_or_deleted_is_seen_by_the_next_userinfo_with_the_cache_warm,
    an_apps_own_token_ends_when_revoked_when_the_app_loses_the_grant_or_is_deleted,
    a_change_behind_the_nodes_back_is_seen_within_the_ttl,
);

/// Two nodes over one fresh PostgreSQL database.
async fn two_nodes() -> (TestApp, TestApp) {
    let a = TestApp::postgres()
        .await
        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
    let b = a.another_node().await;
    (a, b)
}

/// Waits, announcement by announcement, until `done` holds on `node`; fails after 10 s.
async fn until_heard<F, Fut>(node: &TestApp, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut heard = node.state.listener.received();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            heard.borrow_and_update();
            if done().await {
                return;
            }
            heard.changed().await.expect("the listener is running");
        }
    })
    .await
    .expect("the other node heard the change within 10 s");
}

/// Two nodes over one PostgreSQL database: what one changes, the other's warm caches drop when
/// the announcement arrives (their TTL never passes here: the clocks stand still).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn a_change_on_one_node_reaches_the_other_nodes_caches() {
    let (a, b) = two_nodes().await;
    let rp = setup(&a, "ops", "ada").await;
    let admin = a.token("ops", None).await;

    let tokens = family(&a, &rp).await;
    caught_up(&b, &a).await;
    warm(&b, &rp, &tokens.access).await;
    revoke(&a, &rp, &tokens.refresh).await;
    until_heard(&b, || async {
        userinfo(&b, &tokens.access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(
        introspect(&b, &rp, &tokens.access).await,
        json!({ "active": false })
    );

    // A rotated-out refresh token reused on a ends the family, and b hears it.
    let tokens = family(&a, &rp).await;
    let rotated = refresh_grant(&a, &rp, &tokens.refresh).await;
    rotated.assert_status(StatusCode::OK);
    let rotated = rotated.json()["access_token"].as_str().unwrap().to_string();
    caught_up(&b, &a).await;
    warm(&b, &rp, &rotated).await;
    refresh_grant(&a, &rp, &tokens.refresh)
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    until_heard(&b, || async {
        userinfo(&b, &rotated).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // A user who renames herself on a is served by her new name at b.
    let tokens = family(&a, &rp).await;
    caught_up(&b, &a).await;
    warm(&b, &rp, &tokens.access).await;
    let renamed = a
        .graphql(
            "mutation { updateViewer(input: { name: \"Ada B.\" }) { name } }",
            json!({}),
            Some(&rp.user_token),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    until_heard(&b, || async {
        let claims = b.get("/api/oauth/userinfo", Some(&tokens.access)).await;
        claims.json()["name"] == "Ada B."
    })
    .await;

    // An app's token for itself, revoked on a, seen at b's introspection.
    let service = service_app(&a, &admin).await;
    let service = Rp {
        client_id: service.client_id,
        secret: service.secret,
        user_token: String::new(),
        user_id: String::new(),
    };
    let issued = token(&a, &service, &[("grant_type", "client_credentials")]).await;
    let access = issued.json()["access_token"].as_str().unwrap().to_string();
    caught_up(&b, &a).await;
    assert_eq!(introspect(&b, &service, &access).await["active"], true);
    let (answer, statements) = b.count_statements(introspect(&b, &service, &access)).await;
    assert_eq!((&answer["active"], statements), (&json!(true), 0));
    revoke(&a, &service, &access).await;
    until_heard(&b, || async {
        introspect(&b, &service, &access).await == json!({ "active": false })
    })
    .await;

    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    assert_eq!(b.get(&path, None).await.json()["name"], "RP");
    let (_, statements) = b.count_statements(b.get(&path, None)).await;
    assert_eq!(statements, 0, "the app is cached on b");
    a.rest(
        Method::PUT,
        &path,
        Some(&admin),
        Some(json!({ "name": "Renamed", "url": "", "redirect_uri": REDIRECT })),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    until_heard(&b, || async {
        b.get(&path, None).await.json()["name"] == "Renamed"
    })
    .await;
    drop(b);
}

/// A consent on one node right after the app was deleted elsewhere, while that node's cache
/// still holds the app (the announcement has not arrived; here it never does: the row is
/// deleted behind every node's back): the answer is the one a moment later would give (404),
/// never a 500 from the foreign key the insert meets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn a_consent_racing_a_delete_on_another_node_is_404() {
    use sea_orm::ConnectionTrait;
    let (a, b) = two_nodes().await;
    let rp = setup(&a, "ops", "ada").await;
    let admin = a.token("ops", None).await;
    let app = a.register_app(&admin, "Doomed", "", REDIRECT).await;
    let doomed = Rp {
        client_id: app.client_id.clone(),
        secret: app.secret,
        user_token: rp.user_token.clone(),
        user_id: rp.user_id.clone(),
    };
    // b has heard the app's registration (which would otherwise empty its cache later).
    caught_up(&b, &a).await;
    consent(&b, &doomed, json!({ "scope": "openid" })).await;
    let delete = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "DELETE FROM apps WHERE client_id = $1",
        [app.client_id.clone().into()],
    );
    a.state.db.execute_raw(delete).await.unwrap();
    let path = format!("/api/oauth/app/id/{}", app.client_id);
    let (cached, statements) = b.count_statements(b.get(&path, None)).await;
    assert_eq!(
        (cached.status, statements),
        (StatusCode::OK, 0),
        "b still serves the app from its cache"
    );
    let late = b
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(&rp.user_token),
            Some(json!({ "client_id": app.client_id, "scope": "openid" })),
        )
        .await;
    late.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(late.json()["code"], "NOT_FOUND");
    drop(b);
}

/// A listening connection that is cut (here by the server, as a failover or a restart would)
/// is listened again with the caches emptied, and later announcements still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn a_lost_listening_connection_is_listened_again_with_the_caches_emptied() {
    use sea_orm::ConnectionTrait;
    let (a, b) = two_nodes().await;
    let rp = setup(&a, "ops", "ada").await;
    let admin = a.token("ops", None).await;
    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    assert_eq!(b.get(&path, None).await.json()["name"], "RP");
    let (_, statements) = b.count_statements(b.get(&path, None)).await;
    assert_eq!(statements, 0, "the app is cached on b");

    // Both nodes' listening connections are cut (they go by one application name).
    let mut relistened = b.state.listener.relistened();
    relistened.borrow_and_update();
    let cut = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = '{}'",
        idgraph::service::changes::LISTENER_NAME
    );
    a.state.db.execute_unprepared(&cut).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), relistened.changed())
        .await
        .expect("b listened again within 10 s")
        .unwrap();
    let (_, statements) = b.count_statements(b.get(&path, None)).await;
    assert!(statements > 0, "b's caches were emptied");

    // Announcements reach b again.
    a.rest(
        Method::PUT,
        &path,
        Some(&admin),
        Some(json!({ "name": "Renamed", "url": "", "redirect_uri": REDIRECT })),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    until_heard(&b, || async {
        b.get(&path, None).await.json()["name"] == "Renamed"
    })
    .await;
    drop(b);
}

/// Waits until `node` has heard everything `from` announced so far (when only `from` announces).
async fn caught_up(node: &TestApp, from: &TestApp) {
    until_heard(node, || async { heard(node) == from.state.listener.sent() }).await;
}

/// What a node has heard from the others so far.
fn heard(node: &TestApp) -> u64 {
    *node.state.listener.received().borrow()
}

/// Announcements are sent only when something changed, and never reach the node that sent
/// them (it applied the change before announcing). Each node hears all the others sent, in
/// the order they were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn changes_are_announced_once_and_never_to_their_sender() {
    let (a, b) = two_nodes().await;
    let rp = setup(&a, "ops", "ada").await;
    let tokens = family(&a, &rp).await;
    caught_up(&b, &a).await;
    warm(&b, &rp, &tokens.access).await;
    let sent = || a.state.listener.sent();
    let before = sent();

    revoke(&a, &rp, &tokens.refresh).await;
    revoke(&a, &rp, &tokens.refresh).await;
    revoke(&a, &rp, &tokens.access).await;
    assert_eq!(
        sent() - before,
        1,
        "the grant ended once; revoking it again changed nothing"
    );
    caught_up(&b, &a).await;
    assert_eq!(userinfo(&b, &tokens.access).await, StatusCode::UNAUTHORIZED);

    // Disconnecting names the grants it ended (here the one left), not "every token": b keeps
    // its other entries warm.
    let admin = a.token("ops", None).await;
    let other = a
        .register_app(&admin, "Other", "https://other.example", REDIRECT)
        .await;
    let other = Rp {
        client_id: other.client_id,
        secret: other.secret,
        user_token: rp.user_token.clone(),
        user_id: rp.user_id.clone(),
    };
    let kept = family(&a, &other).await;
    let second = family(&a, &rp).await;
    caught_up(&b, &a).await;
    warm(&b, &other, &kept.access).await;
    warm(&b, &rp, &second.access).await;
    let before = sent();
    a.rest(
        Method::DELETE,
        &format!("/api/oauth/connection/id/{}", rp.client_id),
        Some(&rp.user_token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        sent() - before,
        1,
        "one announcement, for the one live grant"
    );
    caught_up(&b, &a).await;
    assert_eq!(userinfo(&b, &second.access).await, StatusCode::UNAUTHORIZED);
    let (status, statements) = b.count_statements(userinfo(&b, &kept.access)).await;
    assert_eq!(
        (status, statements),
        (StatusCode::OK, 0),
        "the other grant is still cached on b"
    );

    // b announces one change; a hears exactly that one. Had a heard its own announcements
    // (sent before b's, so delivered before it), it would count them too.
    b.rest(
        Method::PUT,
        &format!("/api/oauth/app/id/{}", rp.client_id),
        Some(&admin),
        Some(json!({ "name": "Renamed", "url": "", "redirect_uri": REDIRECT })),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(b.state.listener.sent(), 1);
    until_heard(&a, || async { heard(&a) >= 1 }).await;
    assert_eq!(heard(&a), 1, "a heard b's announcement and none of its own");
}

/// A key rotated by the command line (a process that is no node) is announced: every node
/// publishes it at once instead of after its key cache's lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(idgraph_postgres, idgraph_ci)),
    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
)]
async fn a_rotated_key_is_published_by_every_node_at_once() {
    use idgraph::service::changes::{Change, announce_from_outside};
    use idgraph::service::keys;
    let (a, b) = two_nodes().await;
    let published = |node: &TestApp| {
        let router = node.router.clone();
        async move {
            let request = axum::http::Request::get("/api/oauth/jwks")
                .body(axum::body::Body::empty())
                .unwrap();
            let jwks = crate::common::send_on(router, request).await.json();
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|key| key["kid"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(published(&b).await.len(), 2);
    let kid = keys::rotate(
        &a.state.db,
        a.state.config.signing_algorithm,
        keys::Rotation::of(&a.state.config),
        a.now(),
    )
    .await
    .unwrap();
    assert!(
        !published(&b).await.contains(&kid),
        "b serves its cached keys until told"
    );
    announce_from_outside(&a.state.db, Change::Keys)
        .await
        .unwrap();
    until_heard(&b, || async { published(&b).await.contains(&kid) }).await;
    until_heard(&a, || async { published(&a).await.contains(&kid) }).await;
}
