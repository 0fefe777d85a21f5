//! User management over GraphQL: administrators list, read, create, change, disable, enable and
//! delete users and end their sessions; every refusal (role, scope, the last administrator, a
//! self-demotion); and what a signed-in user does to their own account.

use axum::http::StatusCode;
use idgraph::auth::Principal;
use idgraph::db::entities::{connections, grants, sessions as session_rows};
use idgraph::domain::Role;
use idgraph::domain::ids::{ClientId, UserId};
use idgraph::domain::oauth::ConsentRequest;
use idgraph::domain::users::NewUser;
use idgraph::error::AppError;
use idgraph::service::{consent, sessions, users};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::common::browser::{Browser, authorize_path, text};
use crate::common::rp::{Rp, consent, redeem_for, refresh_grant, setup};
use crate::common::{PASSWORD, TestApp, error_code};

const USER_FIELDS: &str = "id username email name roles disabled disabledAt hasPassword";

/// Creates the administrator `username` (role `admin`) and signs them in with `scope`.
async fn admin(app: &TestApp, username: &str, scope: Option<&str>) -> (String, String) {
    let user = app.create_user(username, &[Role::Admin]).await;
    (app.token(username, scope).await, user.id.to_string())
}

async fn run(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.graphql(query, variables, Some(token)).await
}

async fn disable(app: &TestApp, token: &str, id: &str) -> Value {
    run(
        app,
        token,
        "mutation($id: ID!) { disableUser(id: $id) { disabled } }",
        json!({ "id": id }),
    )
    .await
}

/// Whether `username` can sign in with `password` over GraphQL, and the error code if not.
async fn viewer_code(app: &TestApp, token: &str) -> Option<String> {
    let body = run(app, token, "{ viewer { id } }", json!({})).await;
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_string)
}

async fn administrators_list_users_by_username_with_search_and_keyset_pages(app: TestApp) {
    let (token, _) = admin(&app, "root", None).await;
    for name in ["carol", "alice", "dave", "bob"] {
        app.create_user(name, &[]).await;
    }
    let query = "query($first: Int, $after: String, $search: String) {
        users(first: $first, after: $after, search: $search) {
            edges { cursor node { username } } pageInfo { hasNextPage } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = run(&app, &token, query, json!({ "first": 2, "after": after })).await;
        let page = &body["data"]["users"];
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["username"].as_str().unwrap().to_string());
            after = edge["cursor"].clone();
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
    }
    assert_eq!(seen, ["alice", "bob", "carol", "dave", "root"]);

    // Any case, over username, email and name.
    let found = |body: &Value| -> Vec<String> {
        body["data"]["users"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|edge| edge["node"]["username"].as_str().unwrap().to_string())
            .collect()
    };
    let body = run(&app, &token, query, json!({ "search": "USER CAR" })).await;
    assert_eq!(found(&body), ["carol"], "by name, in any case");
    let body = run(&app, &token, query, json!({ "search": "dave@EXAMPLE" })).await;
    assert_eq!(found(&body), ["dave"], "by email");
    // A LIKE wildcard is a character like any other.
    let body = run(&app, &token, query, json!({ "search": "a%e" })).await;
    assert_eq!(found(&body), Vec::<String>::new());
    let body = run(&app, &token, query, json!({ "search": "x".repeat(129) })).await;
    assert_eq!(error_code(&body), "INVALID_INPUT");
}

async fn an_administrator_reads_a_user_with_connections_and_sessions(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    let (token, _) = admin(&app, "root", None).await;
    let body = run(
        &app,
        &token,
        &format!(
            "query($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} connectionCount
                connections {{ clientId app {{ name }} }} sessions {{ kind current }} }} }}"
        ),
        json!({ "id": rp.user_id }),
    )
    .await;
    let user = &body["data"]["user"];
    assert_eq!(user["username"], "ada", "{body}");
    assert_eq!(user["hasPassword"], true);
    assert_eq!(user["disabled"], false);
    assert_eq!(user["connectionCount"], 1);
    assert_eq!(user["connections"][0]["clientId"], json!(rp.client_id));
    assert_eq!(user["connections"][0]["app"]["name"], "RP");
    assert_eq!(
        user["sessions"],
        json!([{ "kind": "API", "current": false }])
    );
    let none = run(
        &app,
        &token,
        "query($id: ID!) { user(id: $id) { id } }",
        json!({ "id": "nobody" }),
    )
    .await;
    assert_eq!(none["data"]["user"], Value::Null);
}

async fn user_operations_need_the_admin_role_and_the_scope(app: TestApp) {
    let target = app.create_user("target", &[]).await.id.to_string();
    let oauth = app.oauth_admin("ops").await;
    let (reader, _) = admin(&app, "reader", Some("gov.user.admin.user:read")).await;
    let (apps_only, _) = admin(&app, "appsonly", Some("gov.user.oauth.app:read")).await;
    let list = "{ users { edges { node { id } } } }";
    let create =
        r#"mutation { createUser(input: { username: "x", email: "x@example.com" }) { id } }"#;
    let audit = "{ auditEvents { edges { node { id } } } }";
    for (token, query, code) in [
        (&oauth, list, "FORBIDDEN"),
        (&apps_only, list, "FORBIDDEN"),
        (&reader, create, "FORBIDDEN"),
        (&reader, audit, "FORBIDDEN"),
        (&oauth, audit, "FORBIDDEN"),
    ] {
        let body = run(&app, token, query, json!({})).await;
        assert_eq!(error_code(&body), code, "{query}: {body}");
    }
    let body = app.graphql(list, json!({}), None).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = run(&app, &reader, list, json!({})).await;
    assert!(body["errors"].is_null(), "the read scope reads: {body}");
    // A narrowed token cannot disable, and nothing changed.
    let body = disable(&app, &reader, &target).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(app.login_error("target", PASSWORD).await, None);
    // Every other change is refused to an app manager and to the read scope alike, and
    // changes nothing: the user still signs in with her password, name and roles as they were.
    let before = app.user_row("target").await;
    for mutation in [
        r#"mutation($id: ID!) { updateUser(id: $id, input: { name: "Changed", roles: [ADMIN] }) { id } }"#,
        r#"mutation($id: ID!) { setUserPassword(id: $id, password: "a new long password") { id } }"#,
        "mutation($id: ID!) { enableUser(id: $id) { id } }",
        "mutation($id: ID!) { endUserSessions(id: $id) }",
        "mutation($id: ID!) { deleteUser(id: $id) }",
        r#"mutation($id: ID!) { revokeUserConnection(userId: $id, clientId: "nobody") }"#,
    ] {
        for token in [&oauth, &reader] {
            let body = run(&app, token, mutation, json!({ "id": target })).await;
            assert_eq!(error_code(&body), "FORBIDDEN", "{mutation}: {body}");
        }
    }
    assert_eq!(app.user_row("target").await, before);
    assert_eq!(app.login_error("target", PASSWORD).await, None);
    // Nor does an app manager read a user's connections or sessions.
    for field in ["connections { clientId }", "sessions { kind }"] {
        let query = format!("query($id: ID!) {{ user(id: $id) {{ {field} }} }}");
        let body = run(&app, &oauth, &query, json!({ "id": target })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{field}: {body}");
    }
    // An oauth admin reads no user directly, and sees an app's creator without the
    // administrators' fields.
    let body = run(
        &app,
        &oauth,
        "query($id: ID!) { user(id: $id) { id } }",
        json!({ "id": target }),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let created = app
        .register_app(
            &oauth,
            "Mine",
            "https://mine.example",
            "https://mine.example/cb",
        )
        .await;
    let creator = |field: &str| {
        format!("query($id: ID!) {{ app(clientId: $id) {{ creator {{ username {field} }} }} }}")
    };
    let body = run(
        &app,
        &oauth,
        &creator(""),
        json!({ "id": created.client_id }),
    )
    .await;
    assert_eq!(body["data"]["app"]["creator"]["username"], "ops", "{body}");
    for field in [
        "disabled",
        "disabledAt",
        "hasPassword",
        "connectionCount",
        "sessions { kind }",
    ] {
        let body = run(
            &app,
            &oauth,
            &creator(field),
            json!({ "id": created.client_id }),
        )
        .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{field}: {body}");
    }
}

async fn administrators_create_change_and_set_passwords(app: TestApp) {
    let (token, _) = admin(&app, "root", None).await;
    let create = format!(
        "mutation($input: CreateUserInput!) {{ createUser(input: $input) {{ {USER_FIELDS} }} }}"
    );
    let body = run(
        &app,
        &token,
        &create,
        json!({ "input": { "username": "nopass", "email": "n@example.com", "roles": ["OAUTH"] } }),
    )
    .await;
    let created = &body["data"]["createUser"];
    assert_eq!(created["hasPassword"], false, "{body}");
    assert_eq!(created["roles"], json!(["OAUTH"]));
    let id = created["id"].as_str().unwrap().to_string();
    // No password: no sign-in, with the answer a wrong password gets.
    assert_eq!(
        app.login_error("nopass", "").await.as_deref(),
        Some("INVALID_CREDENTIALS")
    );
    assert_eq!(
        app.login_error("nopass", "anything at all")
            .await
            .as_deref(),
        Some("INVALID_CREDENTIALS")
    );
    let body = run(
        &app,
        &token,
        &create,
        json!({ "input": { "username": "nopass", "email": "o@example.com" } }),
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT");
    let body = run(
        &app,
        &token,
        &create,
        json!({ "input": { "username": "short", "email": "s@example.com", "password": "short" } }),
    )
    .await;
    assert_eq!(error_code(&body), "INVALID_INPUT");

    let set = "mutation($id: ID!, $password: String!) { setUserPassword(id: $id, password: $password) { hasPassword } }";
    let body = run(&app, &token, set, json!({ "id": id, "password": "tiny" })).await;
    assert_eq!(error_code(&body), "INVALID_INPUT");
    let body = run(&app, &token, set, json!({ "id": id, "password": PASSWORD })).await;
    assert_eq!(
        body["data"]["setUserPassword"]["hasPassword"], true,
        "{body}"
    );
    assert_eq!(app.login_error("nopass", PASSWORD).await, None);

    let update = format!(
        "mutation($id: ID!, $input: UpdateUserInput!) {{ updateUser(id: $id, input: $input) {{ {USER_FIELDS} }} }}"
    );
    let body = run(
        &app,
        &token,
        &update,
        json!({ "id": id, "input": { "email": "not an address", "name": "Renamed" } }),
    )
    .await;
    assert_eq!(error_code(&body), "INVALID_INPUT");
    let body = run(
        &app,
        &token,
        &update,
        json!({ "id": id, "input": { "name": "Renamed", "roles": ["ADMIN", "OAUTH"] } }),
    )
    .await;
    let updated = &body["data"]["updateUser"];
    assert_eq!(updated["name"], "Renamed", "{body}");
    assert_eq!(
        updated["email"], "n@example.com",
        "a bad input changed nothing"
    );
    assert_eq!(updated["roles"], json!(["ADMIN", "OAUTH"]));
    let body = run(
        &app,
        &token,
        &update,
        json!({ "id": "nobody", "input": { "name": "x" } }),
    )
    .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

async fn a_disabled_user_cannot_sign_in_and_every_token_they_hold_dies_at_once(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, _) = admin(&app, "root", None).await;
    let code = consent(
        &app,
        &rp,
        json!({ "scope": "openid profile offline_access" }),
    )
    .await;
    let tokens = redeem_for(&app, &rp, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(access)).await.status,
        StatusCode::OK
    );
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let consent_page = browser.sign_in(&page, "ada", PASSWORD).await;
    assert!(text(&consent_page).contains("Approve"));

    let body = disable(&app, &token, &rp.user_id).await;
    assert_eq!(body["data"]["disableUser"]["disabled"], true, "{body}");

    assert_eq!(
        viewer_code(&app, &rp.user_token).await.as_deref(),
        Some("INVALID_TOKEN")
    );
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(access)).await.status,
        StatusCode::UNAUTHORIZED,
        "the app's token died with the grant"
    );
    let refreshed = refresh_grant(&app, &rp, refresh).await;
    assert_eq!(refreshed.status, StatusCode::BAD_REQUEST);
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    let grants_left = grants::Entity::find()
        .filter(grants::Column::UserId.eq(rp.user_id.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(grants_left, 0, "offline_access grants end too");
    // The browser's session ended: the page asks for a password again.
    let again = browser.get(&authorize_path(&rp, &[])).await;
    assert!(text(&again).contains("password"), "{}", text(&again));
    // Sign-in: the answer of a wrong password, on GraphQL and on the hosted page.
    assert_eq!(
        app.login_error("ada", PASSWORD).await.as_deref(),
        Some("INVALID_CREDENTIALS")
    );
    let mut fresh = Browser::new(&app);
    let page = fresh.get(&authorize_path(&rp, &[])).await;
    let refused = fresh.sign_in(&page, "ada", PASSWORD).await;
    let mut wrong = Browser::new(&app);
    let page = wrong.get(&authorize_path(&rp, &[])).await;
    let wrong_password = wrong.sign_in(&page, "ada", "not the password").await;
    assert_eq!(refused.status, wrong_password.status);
    assert!(!text(&refused).contains("Approve"));
    assert!(
        text(&refused).contains("The username or password is not right."),
        "{}",
        text(&refused)
    );

    let body = run(
        &app,
        &token,
        "mutation($id: ID!) { enableUser(id: $id) { disabled disabledAt } }",
        json!({ "id": rp.user_id }),
    )
    .await;
    assert_eq!(
        body["data"]["enableUser"],
        json!({ "disabled": false, "disabledAt": null })
    );
    assert_eq!(
        viewer_code(&app, &rp.user_token).await.as_deref(),
        Some("INVALID_TOKEN"),
        "nothing that ended comes back"
    );
    // The refused sign-ins above owe a back-off; once it has passed, ada signs in again.
    app.advance(std::time::Duration::from_secs(3600));
    assert_eq!(app.login_error("ada", PASSWORD).await, None);
}

async fn the_last_enabled_administrator_cannot_be_disabled_demoted_or_deleted(app: TestApp) {
    let (root, root_id) = admin(&app, "root", None).await;
    let (_, other_id) = admin(&app, "other", None).await;
    // Two administrators: one may disable the other.
    let body = disable(&app, &root, &other_id).await;
    assert_eq!(body["data"]["disableUser"]["disabled"], true, "{body}");
    // Now root is the last enabled administrator. No administrator may disable or delete
    // their own account, so it is the operator who tries.
    let root_user = UserId::from_trusted(root_id.clone());
    let disabled = users::disable_user(&app.state, &Principal::System, &root_user).await;
    assert!(
        matches!(disabled, Err(AppError::Conflict(_))),
        "{disabled:?}"
    );
    let deleted = users::delete_user(&app.state, &Principal::System, &root_user).await;
    assert!(matches!(deleted, Err(AppError::Conflict(_))), "{deleted:?}");
    // The operator's escape hatch keeps the rule too.
    let demoted = users::set_roles(
        &app.state,
        &Principal::System,
        &UserId::from_trusted(root_id.clone()),
        vec![Role::Oauth],
    )
    .await;
    assert!(matches!(demoted, Err(AppError::Conflict(_))), "{demoted:?}");
    // Nothing changed: root still signs in and administers.
    assert_eq!(viewer_code(&app, &root).await, None);
    let body = run(&app, &root, "{ viewer { roles } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["roles"], json!(["ADMIN"]));
    // Enabling the other makes disabling root possible again.
    run(
        &app,
        &root,
        "mutation($id: ID!) { enableUser(id: $id) { id } }",
        json!({ "id": other_id }),
    )
    .await;
    let disabled = users::disable_user(&app.state, &Principal::System, &root_user).await;
    assert!(
        disabled.is_ok_and(|user| user.disabled_at.is_some()),
        "root is disabled"
    );
}

/// An administrator may not disable or delete their own account (another one may): that would
/// remove their own administration, as dropping their `admin` role would.
async fn an_administrator_cannot_disable_or_delete_their_own_account(app: TestApp) {
    let (root, root_id) = admin(&app, "root", None).await;
    let (other, _) = admin(&app, "other", None).await;
    let body = disable(&app, &root, &root_id).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(
        &app,
        &root,
        "mutation($id: ID!) { deleteUser(id: $id) }",
        json!({ "id": root_id }),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(viewer_code(&app, &root).await, None, "root is untouched");
    let body = disable(&app, &other, &root_id).await;
    assert_eq!(body["data"]["disableUser"]["disabled"], true, "{body}");
}

/// An administrator disabled, or demoted, while their request runs changes nothing: the caller
/// is read again inside the change's transaction. The callers are established first (as a
/// request does before its change begins); there are enough administrators left that the
/// last-administrator rule stops nothing.
async fn an_administrator_disabled_or_demoted_mid_request_changes_nothing(app: TestApp) {
    let (anna, _) = admin(&app, "anna", None).await;
    let (bert, bert_id) = admin(&app, "bert", None).await;
    let (carl, carl_id) = admin(&app, "carl", None).await;
    let (_, dora_id) = admin(&app, "dora", None).await;
    let bert_caller = established(&app, &bert).await;
    let carl_caller = established(&app, &carl).await;
    let dora = UserId::from_trusted(dora_id);
    // Bert is disabled, Carl demoted, each after their request began.
    let body = disable(&app, &anna, &bert_id).await;
    assert_eq!(body["data"]["disableUser"]["disabled"], true, "{body}");
    let body = run(
        &app,
        &anna,
        "mutation($id: ID!) { updateUser(id: $id, input: { roles: [OAUTH] }) { roles } }",
        json!({ "id": carl_id }),
    )
    .await;
    assert_eq!(
        body["data"]["updateUser"]["roles"],
        json!(["OAUTH"]),
        "{body}"
    );
    let by_bert = users::disable_user(&app.state, &bert_caller, &dora).await;
    assert!(
        matches!(by_bert, Err(AppError::InvalidToken)),
        "{by_bert:?}"
    );
    let by_carl = users::disable_user(&app.state, &carl_caller, &dora).await;
    assert!(
        matches!(by_carl, Err(AppError::Forbidden(_))),
        "{by_carl:?}"
    );
    let by_carl = users::set_password(
        &app.state,
        &carl_caller,
        &dora,
        secrecy::SecretString::from("a new password"),
    )
    .await;
    assert!(
        matches!(by_carl, Err(AppError::Forbidden(_))),
        "{by_carl:?}"
    );
    // Dora is as she was: enabled, with her password.
    assert_eq!(app.login_error("dora", PASSWORD).await, None);
}

async fn two_administrators_disabling_each_other_at_once_leave_one(app: TestApp) {
    let (a, a_id) = admin(&app, "anna", None).await;
    let (b, b_id) = admin(&app, "bert", None).await;
    // Both callers are established before either change starts, so only the rule (and the
    // turns changes to administrators take) can stop the second.
    let anna = established(&app, &a).await;
    let bert = established(&app, &b).await;
    let (a_id, b_id) = (UserId::from_trusted(a_id), UserId::from_trusted(b_id));
    let (first, second) = tokio::join!(
        users::disable_user(&app.state, &anna, &b_id),
        users::disable_user(&app.state, &bert, &a_id),
    );
    let outcomes = [first.is_ok(), second.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "{first:?} {second:?}"
    );
    let refused = if first.is_ok() { second } else { first };
    assert!(matches!(refused, Err(AppError::Conflict(_))), "{refused:?}");
}

/// Two administrators changing each other at once: each change writes its target's row and
/// then reads its actor's, so without turns each would wait for the other's row (PostgreSQL
/// would abort one as a deadlock). Both succeed, every time.
async fn two_administrators_changing_each_other_at_once_both_succeed(app: TestApp) {
    let (a, a_id) = admin(&app, "anna", None).await;
    let (b, b_id) = admin(&app, "bert", None).await;
    let anna = established(&app, &a).await;
    let bert = established(&app, &b).await;
    let (a_id, b_id) = (UserId::from_trusted(a_id), UserId::from_trusted(b_id));
    let renamed = |name: String| idgraph::domain::users::UserChanges {
        name: Some(name),
        ..Default::default()
    };
    for round in 0..5 {
        let (first, second) = tokio::join!(
            users::update_user(&app.state, &anna, &b_id, renamed(format!("Bert {round}"))),
            users::update_user(&app.state, &bert, &a_id, renamed(format!("Anna {round}"))),
        );
        assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    }
}

async fn an_administrator_cannot_remove_their_own_admin_role(app: TestApp) {
    let (root, root_id) = admin(&app, "root", None).await;
    admin(&app, "other", None).await;
    let body = run(
        &app,
        &root,
        "mutation($id: ID!) { updateUser(id: $id, input: { roles: [OAUTH] }) { roles } }",
        json!({ "id": root_id }),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(&app, &root, "{ viewer { roles } }", json!({})).await;
    assert_eq!(body["data"]["viewer"]["roles"], json!(["ADMIN"]));
}

async fn deleting_a_user_takes_their_connections_sessions_and_grants_and_keeps_their_apps(
    app: TestApp,
) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, _) = admin(&app, "root", None).await;
    let code = consent(&app, &rp, json!({ "scope": "openid offline_access" })).await;
    redeem_for(&app, &rp, &code).await;
    let ops_id = users::find_by_username(&app.state, &Principal::System, "ops")
        .await
        .unwrap()
        .id;
    for id in [rp.user_id.clone(), ops_id.to_string()] {
        let body = run(
            &app,
            &token,
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(body["data"]["deleteUser"], json!(id), "{body}");
    }
    let db = &app.state.db;
    assert_eq!(
        session_rows::Entity::find()
            .filter(session_rows::Column::UserId.eq(rp.user_id.as_str()))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        connections::Entity::find()
            .filter(connections::Column::UserId.eq(rp.user_id.as_str()))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        grants::Entity::find()
            .filter(grants::Column::UserId.eq(rp.user_id.as_str()))
            .count(db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        viewer_code(&app, &rp.user_token).await.as_deref(),
        Some("INVALID_TOKEN")
    );
    // The app ops created stays, without a creator.
    let body = run(
        &app,
        &token,
        "query($id: ID!) { app(clientId: $id) { name creator { id } } }",
        json!({ "id": rp.client_id }),
    )
    .await;
    assert_eq!(
        body["data"]["app"],
        json!({ "name": "RP", "creator": null }),
        "{body}"
    );
    let body = run(
        &app,
        &token,
        "mutation($id: ID!) { deleteUser(id: $id) }",
        json!({ "id": rp.user_id }),
    )
    .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

async fn ending_a_users_sessions_keeps_the_account(app: TestApp) {
    let (token, _) = admin(&app, "root", None).await;
    let ada = app.create_user("ada", &[]).await.id.to_string();
    let first = app.token("ada", None).await;
    let second = app.token("ada", None).await;
    let body = run(
        &app,
        &token,
        "mutation($id: ID!) { endUserSessions(id: $id) }",
        json!({ "id": ada }),
    )
    .await;
    assert_eq!(body["data"]["endUserSessions"], 2, "{body}");
    for token in [&first, &second] {
        assert_eq!(
            viewer_code(&app, token).await.as_deref(),
            Some("INVALID_TOKEN")
        );
    }
    assert_eq!(app.login_error("ada", PASSWORD).await, None);
}

async fn a_user_changes_their_own_profile_and_password_and_ends_other_sessions(app: TestApp) {
    app.create_user("ada", &[]).await;
    let narrow = app
        .token("ada", Some("gov.user.oauth.connection:read"))
        .await;
    for mutation in [
        r#"mutation { updateViewer(input: { name: "x" }) { name } }"#,
        r#"mutation { changePassword(input: { currentPassword: "a", newPassword: "b" }) }"#,
        "mutation { endOtherSessions }",
    ] {
        let body = run(&app, &narrow, mutation, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "a narrowed token: {body}");
    }
    let body = run(
        &app,
        &narrow,
        "{ viewer { sessions { current } } }",
        json!({}),
    )
    .await;
    assert!(
        body["errors"].is_null(),
        "any token reads its sessions: {body}"
    );
    let token = app.token("ada", None).await;
    let body = run(
        &app,
        &token,
        r#"mutation { updateViewer(input: { name: "Ada L.", email: "ada@lovelace.example" }) { name email } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["updateViewer"],
        json!({ "name": "Ada L.", "email": "ada@lovelace.example" }),
        "{body}"
    );
    let body = run(
        &app,
        &token,
        r#"mutation { updateViewer(input: { email: "nope" }) { email } }"#,
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "INVALID_INPUT");

    let change = "mutation($current: String!, $new: String!) {
        changePassword(input: { currentPassword: $current, newPassword: $new }) }";
    let new_password = "a brand new passphrase";
    let body = run(
        &app,
        &token,
        change,
        json!({ "current": "not my password", "new": new_password }),
    )
    .await;
    assert_eq!(error_code(&body), "INVALID_INPUT", "{body}");
    // Wrong current passwords count toward the sign-in back-off.
    let mut throttled = false;
    for _ in 0..10 {
        let body = run(
            &app,
            &token,
            change,
            json!({ "current": "still not it", "new": new_password }),
        )
        .await;
        if error_code(&body) == "TOO_MANY_ATTEMPTS" {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "failures count toward the back-off");
    app.advance(std::time::Duration::from_secs(3600));
    let token = app.token("ada", None).await;
    let other = app.token("ada", None).await;
    let body = run(
        &app,
        &token,
        change,
        json!({ "current": PASSWORD, "new": new_password }),
    )
    .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");
    assert_eq!(
        app.login_error("ada", PASSWORD).await.as_deref(),
        Some("INVALID_CREDENTIALS")
    );
    assert_eq!(app.login_error("ada", new_password).await, None);

    let body = run(
        &app,
        &token,
        "{ viewer { sessions { kind current } } }",
        json!({}),
    )
    .await;
    let sessions = body["data"]["viewer"]["sessions"]
        .as_array()
        .unwrap()
        .clone();
    // The narrowed token's, the first full one's, this one's, the other's, and the sign-in
    // with the new password's.
    assert_eq!(sessions.len(), 5, "{body}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let body = run(&app, &token, "mutation { endOtherSessions }", json!({})).await;
    assert_eq!(body["data"]["endOtherSessions"], 4, "{body}");
    assert_eq!(
        viewer_code(&app, &token).await,
        None,
        "the current session stays"
    );
    assert_eq!(
        viewer_code(&app, &other).await.as_deref(),
        Some("INVALID_TOKEN")
    );
}

async fn listing_users_with_connection_counts_is_a_fixed_number_of_statements(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, _) = admin(&app, "root", None).await;
    for i in 0..100 {
        // Without a password: nothing to hash.
        users::create_user(
            &app.state,
            &Principal::System,
            NewUser {
                username: format!("u{i:03}"),
                email: format!("u{i:03}@example.com"),
                name: String::new(),
                password: None,
                roles: Vec::new(),
            },
        )
        .await
        .unwrap();
    }
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    let query =
        "query($n: Int) { users(first: $n) { edges { node { username connectionCount } } } }";
    let mut counts = Vec::new();
    for n in [2, 100] {
        let (body, statements) = app
            .count_statements(app.graphql(query, json!({ "n": n }), Some(&token)))
            .await;
        let edges = body["data"]["users"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n as usize, "{body}");
        assert!(
            edges
                .iter()
                .any(|e| e["node"]["username"] == "ada" && e["node"]["connectionCount"] == 1)
        );
        counts.push(statements);
    }
    // One statement authenticates the token, one lists users, one counts their connections.
    assert_eq!(counts, [3, 3]);
}

/// The caller behind `token`, established now (as a request does before its change begins).
async fn established(app: &TestApp, token: &str) -> Principal {
    sessions::principal_from_bearer(&app.state, token)
        .await
        .unwrap()
}

/// The caller behind `rp`'s user token, established now, and a valid consent request of theirs
/// for `rp`'s app: what a consent that loses a race to a change of the account holds.
async fn a_consent_of(app: &TestApp, rp: &Rp) -> (Principal, ConsentRequest) {
    let caller = established(app, &rp.user_token).await;
    let request = ConsentRequest::validate(
        ClientId::parse(&rp.client_id).unwrap(),
        "openid",
        None,
        None,
        None,
        consent::pkce_policy(&app.state),
    )
    .unwrap();
    (caller, request)
}

/// A consent whose caller was established before the account was disabled (the request that
/// loses the race) gets no grant and leaves the connection as it was: the check is inside the
/// consent's own transaction.
async fn a_consent_racing_the_disabling_of_its_user_records_nothing(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, _) = admin(&app, "root", None).await;
    let (ada, request) = a_consent_of(&app, &rp).await;
    assert!(
        consent::record(&app.state, &ada, &request, None)
            .await
            .is_ok()
    );
    let body = disable(&app, &token, &rp.user_id).await;
    assert_eq!(body["data"]["disableUser"]["disabled"], true, "{body}");
    let connections_of_ada = || {
        connections::Entity::find()
            .filter(connections::Column::UserId.eq(rp.user_id.as_str()))
            .all(&app.state.db)
    };
    let connections_before = connections_of_ada().await.unwrap();
    // Later: a connection the consent wrote would say so.
    app.advance(std::time::Duration::from_secs(30));
    let late = consent::record(&app.state, &ada, &request, None).await;
    assert!(matches!(late, Err(AppError::InvalidToken)), "{late:?}");
    let grants_left = grants::Entity::find()
        .filter(grants::Column::UserId.eq(rp.user_id.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(grants_left, 0);
    assert_eq!(connections_of_ada().await.unwrap(), connections_before);
}

/// A consent given through a browser session that ended meanwhile (a sign-out in another tab)
/// records nothing: redeemed, its code would give an ID token naming a session that is gone,
/// and no logout token would ever follow it. The same consent through a live session works.
async fn a_consent_through_a_browser_session_that_ended_records_nothing(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (api_caller, request) = a_consent_of(&app, &rp).await;
    let Principal::User(mut caller) = api_caller else {
        panic!("ada is a user");
    };
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    browser.sign_in(&page, "ada", PASSWORD).await;
    let sid = idgraph::db::entities::browser_sessions::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .and_then(|row| row.sid)
        .expect("ada's browser session");
    caller.session = idgraph::auth::SessionRef::Browser(Some(
        idgraph::domain::ids::BrowserSessionId::from_trusted(sid),
    ));
    let through_browser = Principal::User(caller);
    assert!(
        consent::record(&app.state, &through_browser, &request, None)
            .await
            .is_ok()
    );
    let grants_before = grants::Entity::find().count(&app.state.db).await.unwrap();
    idgraph::db::entities::browser_sessions::Entity::delete_many()
        .exec(&app.state.db)
        .await
        .unwrap();
    let late = consent::record(&app.state, &through_browser, &request, None).await;
    assert!(matches!(late, Err(AppError::InvalidToken)), "{late:?}");
    assert_eq!(
        grants::Entity::find().count(&app.state.db).await.unwrap(),
        grants_before,
        "no grant was added"
    );
}

/// A consent whose caller was established before the account was deleted is refused as a
/// token that names nobody (401), not as a missing app, and writes nothing.
async fn a_consent_racing_the_deletion_of_its_user_is_an_invalid_token(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, _) = admin(&app, "root", None).await;
    let (ada, request) = a_consent_of(&app, &rp).await;
    let body = app
        .graphql(
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({ "id": rp.user_id }),
            Some(&token),
        )
        .await;
    assert_eq!(body["data"]["deleteUser"], json!(rp.user_id), "{body}");
    let late = consent::record(&app.state, &ada, &request, None).await;
    assert!(matches!(late, Err(AppError::InvalidToken)), "{late:?}");
    let left = connections::Entity::find()
        .filter(connections::Column::UserId.eq(rp.user_id.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// An administrator revokes one of a user's connections: its tokens die at once, the user keeps
/// their account and other connections, and the trail names the administrator. An app manager
/// cannot; a connection that does not exist is NOT_FOUND.
async fn an_administrator_revokes_a_users_connection(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, root_id) = admin(&app, "root", None).await;
    // Ada is connected to a second app too, which stays.
    let ops = app.token("ops", None).await;
    let other = app
        .register_app(
            &ops,
            "Other",
            "https://other.example",
            crate::common::rp::REDIRECT,
        )
        .await;
    let other = crate::common::rp::Rp {
        client_id: other.client_id,
        secret: other.secret,
        user_token: rp.user_token.clone(),
        user_id: rp.user_id.clone(),
    };
    consent(&app, &other, json!({ "scope": "openid" })).await;
    let code = consent(&app, &rp, json!({ "scope": "openid offline_access" })).await;
    let tokens = redeem_for(&app, &rp, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let revoke = "mutation($u: ID!, $c: ID!) { revokeUserConnection(userId: $u, clientId: $c) }";
    let vars = json!({ "u": rp.user_id, "c": rp.client_id });

    let refused = run(&app, &ops, revoke, vars.clone()).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(access)).await.status,
        StatusCode::OK
    );

    let body = run(&app, &token, revoke, vars.clone()).await;
    assert_eq!(
        body["data"]["revokeUserConnection"],
        rp.client_id.as_str(),
        "{body}"
    );
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(access)).await.status,
        StatusCode::UNAUTHORIZED,
        "the app's token died with the connection"
    );
    let left: Vec<String> = connections::Entity::find()
        .filter(connections::Column::UserId.eq(rp.user_id.as_str()))
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(left, [other.client_id], "only that connection went");
    assert_eq!(
        viewer_code(&app, &rp.user_token).await,
        None,
        "the user's own session lives on"
    );
    let event = app.audit_event("connection.delete").await;
    assert_eq!(event.actor_id.as_deref(), Some(root_id.as_str()));
    assert_eq!(
        event.target_id.as_deref(),
        Some(format!("{}/{}", rp.user_id, rp.client_id).as_str())
    );

    let again = run(&app, &token, revoke, vars).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
}

crate::on_every_database!(
    an_administrator_revokes_a_users_connection,
    a_consent_racing_the_disabling_of_its_user_records_nothing,
    a_consent_through_a_browser_session_that_ended_records_nothing,
    a_consent_racing_the_deletion_of_its_user_is_an_invalid_token,
    administrators_list_users_by_username_with_search_and_keyset_pages,
    an_administrator_reads_a_user_with_connections_and_sessions,
    user_operations_need_the_admin_role_and_the_scope,
    administrators_create_change_and_set_passwords,
    a_disabled_user_cannot_sign_in_and_every_token_they_hold_dies_at_once,
    the_last_enabled_administrator_cannot_be_disabled_demoted_or_deleted,
    an_administrator_cannot_disable_or_delete_their_own_account,
    an_administrator_disabled_or_demoted_mid_request_changes_nothing,
    two_administrators_disabling_each_other_at_once_leave_one,
    two_administrators_changing_each_other_at_once_both_succeed,
    an_administrator_cannot_remove_their_own_admin_role,
    deleting_a_user_takes_their_connections_sessions_and_grants_and_keeps_their_apps,
    ending_a_users_sessions_keeps_the_account,
    a_user_changes_their_own_profile_and_password_and_ends_other_sessions,
    listing_users_with_connection_counts_is_a_fixed_number_of_statements,
);
