//! First-party sessions: login, viewer, refresh rotation and reuse, logout.

use idgraph::domain::Role;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, error_code};

const VIEWER: &str = "query Viewer { viewer { id username email name roles createdAt updatedAt } }";
const REFRESH: &str = "mutation Refresh($token: String!) { refreshSession(refreshToken: $token) { accessToken refreshToken scope } }";

async fn refresh(app: &TestApp, token: &str) -> Value {
    app.graphql(REFRESH, json!({ "token": token }), None).await
}

async fn login_opens_a_session_whose_token_reads_the_viewer(app: TestApp) {
    let user = app.create_user("ada", &[Role::Oauth]).await;
    let login = app.login("ada", None).await;
    assert_eq!(login["tokenType"], "Bearer");
    assert_eq!(login["scope"], "all");
    assert_eq!(login["expiresIn"], 900);
    let token = login["accessToken"].as_str().unwrap();

    let body = app.graphql(VIEWER, json!({}), Some(token)).await;
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["id"], user.id.as_str());
    assert_eq!(viewer["username"], "ada");
    assert_eq!(viewer["email"], "ada@example.com");
    assert_eq!(viewer["roles"], json!(["OAUTH"]));
}

async fn wrong_password_and_unknown_user_fail_the_same_way(app: TestApp) {
    app.create_user("ada", &[]).await;
    let query = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    let wrong = app
        .graphql(
            query,
            json!({ "input": { "username": "ada", "password": "not the password" } }),
            None,
        )
        .await;
    let unknown = app
        .graphql(
            query,
            json!({ "input": { "username": "nobody", "password": PASSWORD } }),
            None,
        )
        .await;
    assert_eq!(error_code(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(error_code(&unknown), "INVALID_CREDENTIALS");
    assert!(wrong["data"].is_null());
}

async fn repeated_failed_logins_are_slowed_down_for_that_username(app: TestApp) {
    app.create_user("ada", &[]).await;
    let query = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    let attempt = |username: &'static str, password: &'static str| {
        app.graphql(
            query,
            json!({ "input": { "username": username, "password": password } }),
            None,
        )
    };
    for _ in 0..idgraph::service::throttle::USER_FREE {
        assert_eq!(
            error_code(&attempt("ada", "guess").await),
            "INVALID_CREDENTIALS"
        );
    }
    let slowed = attempt("ada", PASSWORD).await;
    assert_eq!(error_code(&slowed), "TOO_MANY_ATTEMPTS");
    assert!(slowed["data"].is_null());
    // Other usernames are not held up by ada's failures.
    app.create_user("bob", &[]).await;
    assert!(attempt("bob", PASSWORD).await["errors"].is_null());
}

/// The back-off's counts are in the database: a node that never saw the failures (another node
/// behind the load balancer, or this one restarted) owes the same wait, and counts from there.
async fn the_back_off_is_shared_by_every_node_and_kept_across_a_restart(app: TestApp) {
    app.create_user("ada", &[]).await;
    async fn attempt(node: &TestApp, password: &str) -> serde_json::Value {
        let query = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
        let variables = json!({ "input": { "username": "ada", "password": password } });
        node.graphql(query, variables, None).await
    }
    for _ in 0..idgraph::service::throttle::USER_FREE {
        assert_eq!(
            error_code(&attempt(&app, "guess").await),
            "INVALID_CREDENTIALS"
        );
    }
    let restarted = app.another_node().await;
    assert_eq!(
        error_code(&attempt(&restarted, PASSWORD).await),
        "TOO_MANY_ATTEMPTS",
        "the other node sees the failures"
    );
    restarted.advance(idgraph::service::throttle::BASE_DELAY);
    assert!(attempt(&restarted, PASSWORD).await["errors"].is_null());
    // The success cleared the username for every node.
    assert!(attempt(&app, PASSWORD).await["errors"].is_null());
}

async fn login_with_an_unknown_scope_is_refused(app: TestApp) {
    app.create_user("ada", &[]).await;
    let body = app
        .graphql(
            "mutation { login(input: {username: \"ada\", password: \"correct horse battery staple\", scope: \"gov.user.oauth.app:read openid\"}) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(error_code(&body), "INVALID_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("openid")
    );
}

async fn login_grants_exactly_the_scopes_asked_for(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = app
        .login(
            "ada",
            Some("gov.user.oauth.connection:read gov.user.oauth.app:read"),
        )
        .await;
    assert_eq!(
        login["scope"],
        "gov.user.oauth.app:read gov.user.oauth.connection:read"
    );
}

async fn refresh_rotates_the_refresh_token(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = app.login("ada", Some("gov.user.oauth.authorize")).await;
    let first = login["refreshToken"].as_str().unwrap();

    let body = refresh(&app, first).await;
    let rotated = &body["data"]["refreshSession"];
    let second = rotated["refreshToken"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(rotated["scope"], "gov.user.oauth.authorize");
    let token = rotated["accessToken"].as_str().unwrap();
    let viewer = app.graphql(VIEWER, json!({}), Some(token)).await;
    assert_eq!(viewer["data"]["viewer"]["username"], "ada");

    let again = refresh(&app, second).await;
    assert!(again["errors"].is_null(), "{again}");
}

async fn reusing_a_rotated_refresh_token_revokes_the_session(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = app.login("ada", None).await;
    let first = login["refreshToken"].as_str().unwrap();
    let body = refresh(&app, first).await;
    let second = body["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let access = body["data"]["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    let reuse = refresh(&app, first).await;
    assert_eq!(error_code(&reuse), "INVALID_REFRESH_TOKEN");
    // The whole family is gone: the newest refresh token and the access tokens too.
    let after = refresh(&app, &second).await;
    assert_eq!(error_code(&after), "INVALID_REFRESH_TOKEN");
    let viewer = app.graphql(VIEWER, json!({}), Some(&access)).await;
    assert_eq!(error_code(&viewer), "INVALID_TOKEN");
}

/// A session's id is no secret (any token of the user lists it, however narrow): a refresh
/// token made up from it is refused and ends nothing, while the session's real tokens work on.
async fn a_refresh_token_made_up_from_a_listed_session_id_ends_nothing(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = app.login("ada", None).await;
    let first = login["refreshToken"].as_str().unwrap();
    let access = login["accessToken"].as_str().unwrap();
    let narrow = app
        .token("ada", Some("gov.user.oauth.connection:read"))
        .await;
    let listed = app
        .graphql(
            "{ viewer { sessions { id current } } }",
            json!({}),
            Some(&narrow),
        )
        .await;
    let sessions = listed["data"]["viewer"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"));
    let id = first.split_once('.').unwrap().0;
    assert!(sessions.iter().any(|s| s["id"] == id), "{listed}");

    let forged = format!("{id}.{}", "A".repeat(43));
    let body = refresh(&app, &forged).await;
    assert_eq!(error_code(&body), "INVALID_REFRESH_TOKEN");
    let viewer = app.graphql(VIEWER, json!({}), Some(access)).await;
    assert_eq!(viewer["data"]["viewer"]["username"], "ada", "{viewer}");
    let body = refresh(&app, first).await;
    assert!(
        body["errors"].is_null(),
        "the real token still works: {body}"
    );
}

/// A family remembers its last 32 rotated-out secrets: one of them coming back ends the
/// session, an older one is only refused.
async fn a_session_remembers_its_last_32_rotated_out_refresh_tokens(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = app.login("ada", None).await;
    let mut tokens = vec![login["refreshToken"].as_str().unwrap().to_string()];
    for _ in 0..33 {
        let body = refresh(&app, tokens.last().unwrap()).await;
        let next = body["data"]["refreshSession"]["refreshToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"));
        tokens.push(next.to_string());
    }
    // tokens[0] was rotated out 33 rotations ago: forgotten, refused, and the session lives on.
    assert_eq!(
        error_code(&refresh(&app, &tokens[0]).await),
        "INVALID_REFRESH_TOKEN"
    );
    let body = refresh(&app, &tokens[33]).await;
    let session = &body["data"]["refreshSession"];
    let (newest, access) = (
        session["refreshToken"].as_str(),
        session["accessToken"].as_str(),
    );
    let (newest, access) = newest
        .zip(access)
        .unwrap_or_else(|| panic!("the session lives on: {body}"));
    // Now tokens[1] is forgotten too, while tokens[2] is the oldest remembered.
    assert_eq!(
        error_code(&refresh(&app, &tokens[1]).await),
        "INVALID_REFRESH_TOKEN"
    );
    let viewer = app.graphql(VIEWER, json!({}), Some(access)).await;
    assert_eq!(viewer["data"]["viewer"]["username"], "ada", "{viewer}");
    assert_eq!(
        error_code(&refresh(&app, &tokens[2]).await),
        "INVALID_REFRESH_TOKEN"
    );
    let viewer = app.graphql(VIEWER, json!({}), Some(access)).await;
    assert_eq!(error_code(&viewer), "INVALID_TOKEN", "the session ended");
    assert_eq!(
        error_code(&refresh(&app, newest).await),
        "INVALID_REFRESH_TOKEN"
    );
}

async fn garbage_refresh_tokens_are_refused(app: TestApp) {
    for token in ["", "nodot", "unknown.session", &"x".repeat(5000)] {
        let body = refresh(&app, token).await;
        assert_eq!(error_code(&body), "INVALID_REFRESH_TOKEN", "{token}");
    }
}

async fn logout_ends_the_access_and_refresh_tokens(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = app.login("ada", None).await;
    let access = login["accessToken"].as_str().unwrap();
    let body = app
        .graphql("mutation Logout { logout }", json!({}), Some(access))
        .await;
    assert_eq!(body["data"]["logout"], true);

    let viewer = app.graphql_response(VIEWER, json!({}), Some(access)).await;
    assert_eq!(error_code(&viewer.json()), "INVALID_TOKEN");
    assert!(
        viewer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let again = refresh(&app, login["refreshToken"].as_str().unwrap()).await;
    assert_eq!(error_code(&again), "INVALID_REFRESH_TOKEN");
}

async fn a_second_session_survives_the_first_ones_logout(app: TestApp) {
    app.create_user("ada", &[]).await;
    let phone = app.token("ada", None).await;
    let laptop = app.token("ada", None).await;
    let logout = app
        .graphql("mutation { logout }", json!({}), Some(&phone))
        .await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    let ended = app.graphql(VIEWER, json!({}), Some(&phone)).await;
    assert_eq!(
        error_code(&ended),
        "INVALID_TOKEN",
        "the phone's session ended"
    );
    let viewer = app.graphql(VIEWER, json!({}), Some(&laptop)).await;
    assert_eq!(viewer["data"]["viewer"]["username"], "ada");
}

async fn a_token_of_a_deleted_user_is_invalid(app: TestApp) {
    use sea_orm::EntityTrait;
    let user = app.create_user("ada", &[]).await;
    let token = app.token("ada", None).await;
    idgraph::db::entities::users::Entity::delete_by_id(user.id.as_str())
        .exec(&app.state.db)
        .await
        .unwrap();
    let viewer = app.graphql(VIEWER, json!({}), Some(&token)).await;
    assert_eq!(error_code(&viewer), "INVALID_TOKEN");
}

async fn the_bootstrap_admin_is_created_once_with_both_roles(app: TestApp) {
    use idgraph::service::users::bootstrap_admin;
    let password = bootstrap_admin(&app.state, None)
        .await
        .unwrap()
        .expect("a generated password");
    let password = secrecy::ExposeSecret::expose_secret(&password).to_string();
    assert!(password.len() >= 20);
    assert!(bootstrap_admin(&app.state, None).await.unwrap().is_none());

    let body = app
        .graphql(
            "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            json!({ "input": { "username": "admin", "password": password } }),
            None,
        )
        .await;
    let token = body["data"]["login"]["accessToken"].as_str().unwrap();
    let viewer = app.graphql(VIEWER, json!({}), Some(token)).await;
    assert_eq!(viewer["data"]["viewer"]["roles"], json!(["ADMIN", "OAUTH"]));
}

/// Two nodes started together on an empty database: one creates `admin`, the other finds it made
/// and starts too (neither stops on the other's insert).
async fn nodes_started_together_create_one_bootstrap_admin(app: TestApp) {
    use idgraph::service::users::bootstrap_admin;
    let other = app.another_node().await;
    let (first, second) = tokio::join!(
        bootstrap_admin(&app.state, None),
        bootstrap_admin(&other.state, None)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        usize::from(first.is_some()) + usize::from(second.is_some()),
        1,
        "exactly one node shows a password"
    );
    use sea_orm::{EntityTrait, PaginatorTrait};
    let users = idgraph::db::entities::users::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

async fn a_taken_username_is_a_conflict(app: TestApp) {
    use idgraph::auth::Principal;
    use idgraph::domain::users::NewUser;
    use idgraph::error::AppError;
    app.create_user("ada", &[]).await;
    let again = idgraph::service::users::create_user(
        &app.state,
        &Principal::System,
        NewUser {
            username: "ada".into(),
            email: "other@example.com".into(),
            name: String::new(),
            password: Some(PASSWORD.into()),
            roles: vec![],
        },
    )
    .await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
}

crate::on_every_database!(
    login_opens_a_session_whose_token_reads_the_viewer,
    wrong_password_and_unknown_user_fail_the_same_way,
    repeated_failed_logins_are_slowed_down_for_that_username,
    the_back_off_is_shared_by_every_node_and_kept_across_a_restart,
    login_with_an_unknown_scope_is_refused,
    login_grants_exactly_the_scopes_asked_for,
    refresh_rotates_the_refresh_token,
    reusing_a_rotated_refresh_token_revokes_the_session,
    a_refresh_token_made_up_from_a_listed_session_id_ends_nothing,
    a_session_remembers_its_last_32_rotated_out_refresh_tokens,
    garbage_refresh_tokens_are_refused,
    logout_ends_the_access_and_refresh_tokens,
    a_second_session_survives_the_first_ones_logout,
    a_token_of_a_deleted_user_is_invalid,
    the_bootstrap_admin_is_created_once_with_both_roles,
    nodes_started_together_create_one_bootstrap_admin,
    a_taken_username_is_a_conflict,
);
