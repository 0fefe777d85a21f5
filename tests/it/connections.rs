//! A user's connected apps over REST and GraphQL: listing, owner scoping, revocation, batching.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::rp::{REDIRECT, consent, redeem_for, refresh_grant, setup};
use crate::common::{TestApp, error_code};

async fn a_user_lists_reads_and_revokes_only_their_own_connections(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(
        &app,
        &rp,
        json!({ "scope": "openid profile offline_access" }),
    )
    .await;
    let tokens = redeem_for(&app, &rp, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();

    let list = app
        .rest(
            Method::GET,
            "/api/oauth/connection",
            Some(&rp.user_token),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let connections = list.json()["connections"].clone();
    assert_eq!(connections.as_array().unwrap().len(), 1);
    let connection = &connections[0];
    assert_eq!(connection["client_id"], rp.client_id.as_str());
    assert_eq!(connection["scope"], "offline_access openid profile");
    let fields: Vec<&str> = connection
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "access_time",
            "auth_time",
            "client_id",
            "creation_time",
            "scope"
        ]
    );

    let one = app
        .rest(
            Method::GET,
            &format!("/api/oauth/connection/id/{}", rp.client_id),
            Some(&rp.user_token),
            None,
        )
        .await;
    assert_eq!(one.json(), *connection);

    // Another user sees a 404, never the row, and cannot delete it.
    app.create_user("eve", &[]).await;
    let eve = app.token("eve", None).await;
    let peek = app
        .rest(
            Method::GET,
            &format!("/api/oauth/connection/id/{}", rp.client_id),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    let wipe = app
        .rest(
            Method::DELETE,
            &format!("/api/oauth/connection/id/{}", rp.client_id),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(wipe.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.rest(Method::GET, "/api/oauth/connection", Some(&eve), None)
            .await
            .json(),
        json!({ "connections": [] })
    );

    // Revoking ends the app's tokens at once.
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(&access)).await.status,
        StatusCode::OK
    );
    let deleted = app
        .rest(
            Method::DELETE,
            &format!("/api/oauth/connection/id/{}", rp.client_id),
            Some(&rp.user_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/oauth/userinfo", Some(&access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = refresh_grant(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh.json()["error"], "invalid_grant");
    let gone = app
        .rest(
            Method::GET,
            &format!("/api/oauth/connection/id/{}", rp.client_id),
            Some(&rp.user_token),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn connection_guards_need_their_scopes(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    let read_only = app
        .token("ada", Some("gov.user.oauth.connection:read"))
        .await;
    let authorize_only = app.token("ada", Some("gov.user.oauth.authorize")).await;
    let path = format!("/api/oauth/connection/id/{}", rp.client_id);
    assert_eq!(
        app.rest(Method::GET, "/api/oauth/connection", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.rest(
            Method::GET,
            "/api/oauth/connection",
            Some(&authorize_only),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.rest(Method::DELETE, &path, Some(&read_only), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let consent_denied = app
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(&read_only),
            Some(json!({ "client_id": rp.client_id, "scope": "openid" })),
        )
        .await;
    assert_eq!(consent_denied.status, StatusCode::FORBIDDEN);
    let gql = app
        .graphql(
            "{ viewer { connections { edges { cursor } } } }",
            json!({}),
            Some(&authorize_only),
        )
        .await;
    assert_eq!(error_code(&gql), "FORBIDDEN");
}

async fn consent_validation_errors_are_400_and_write_nothing(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let cases = [
        json!({ "client_id": rp.client_id, "scope": "profile email" }),
        json!({ "client_id": rp.client_id, "scope": "openid", "code_challenge": "short", "code_challenge_method": "S256" }),
        json!({ "client_id": rp.client_id, "scope": "openid", "code_challenge": "a".repeat(43) }),
        json!({ "client_id": rp.client_id, "scope": "openid", "code_challenge": "a".repeat(43), "code_challenge_method": "S512" }),
        json!({ "client_id": rp.client_id, "scope": "openid", "nonce": "x".repeat(256) }),
    ];
    for body in cases {
        let response = app
            .rest(
                Method::POST,
                "/api/oauth/auth/code",
                Some(&rp.user_token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let unknown = app
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(&rp.user_token),
            Some(json!({ "client_id": "nope", "scope": "openid" })),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let list = app
        .rest(
            Method::GET,
            "/api/oauth/connection",
            Some(&rp.user_token),
            None,
        )
        .await
        .json();
    assert_eq!(list, json!({ "connections": [] }));
}

async fn graphql_consent_and_connections_match_rest_and_batch_their_apps(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let mut client_ids = vec![rp.client_id.clone()];
    for i in 0..5 {
        let created = app
            .register_app(&admin, &format!("App {i}"), "", REDIRECT)
            .await;
        client_ids.push(created.client_id);
    }
    for client_id in &client_ids {
        let body = app
            .graphql(
                "mutation Authorize($input: AuthorizeInput!) { authorize(input: $input) { code } }",
                json!({ "input": { "clientId": client_id, "scope": "openid email" } }),
                Some(&rp.user_token),
            )
            .await;
        assert!(
            body["data"]["authorize"]["code"].as_str().unwrap().len() >= 43,
            "{body}"
        );
    }
    let query = "query($n: Int) { viewer { connections(first: $n) { edges { node { clientId scope app { name } } } pageInfo { hasNextPage } } } }";
    let mut counts = Vec::new();
    for n in [1, 6] {
        let (body, statements) = app
            .count_statements(app.graphql(query, json!({ "n": n }), Some(&rp.user_token)))
            .await;
        let edges = body["data"]["viewer"]["connections"]["edges"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(edges.len(), n as usize, "{body}");
        assert!(edges.iter().all(|e| e["node"]["app"]["name"].is_string()));
        counts.push(statements);
    }
    // One statement authenticates the token (its session and user together), then: the viewer,
    // the connections, their apps.
    assert_eq!(counts, [4, 4]);

    let rest = app
        .rest(
            Method::GET,
            "/api/oauth/connection?amount=100",
            Some(&rp.user_token),
            None,
        )
        .await
        .json();
    let gql = app
        .graphql(query, json!({ "n": 100 }), Some(&rp.user_token))
        .await;
    let rest_ids: Vec<&str> = rest["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    let gql_ids: Vec<&str> = gql["data"]["viewer"]["connections"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(rest_ids, gql_ids);

    let paged = "query($after: String) { viewer { connections(first: 4, after: $after) { edges { node { clientId } } pageInfo { hasNextPage endCursor } } } }";
    let first = app
        .graphql(paged, json!({ "after": null }), Some(&rp.user_token))
        .await;
    let page = &first["data"]["viewer"]["connections"];
    assert_eq!(page["edges"].as_array().unwrap().len(), 4);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let second = app
        .graphql(
            paged,
            json!({ "after": page["pageInfo"]["endCursor"] }),
            Some(&rp.user_token),
        )
        .await;
    let rest_of = &second["data"]["viewer"]["connections"];
    assert_eq!(rest_of["edges"].as_array().unwrap().len(), 2);
    assert_eq!(rest_of["pageInfo"]["hasNextPage"], false);
    let walked: Vec<&str> = page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest_of["edges"].as_array().unwrap())
        .map(|e| e["node"]["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(walked, rest_ids);
    let bad = app
        .graphql(paged, json!({ "after": "nope" }), Some(&rp.user_token))
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");

    let deleted = app
        .graphql(
            "mutation($id: ID!) { deleteConnection(clientId: $id) }",
            json!({ "id": client_ids[0] }),
            Some(&rp.user_token),
        )
        .await;
    assert_eq!(deleted["data"]["deleteConnection"], client_ids[0].as_str());
    let again = app
        .graphql(
            "mutation($id: ID!) { deleteConnection(clientId: $id) }",
            json!({ "id": client_ids[0] }),
            Some(&rp.user_token),
        )
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
    let one = app
        .graphql(
            "query($id: ID!) { viewer { connection(clientId: $id) { clientId } } }",
            json!({ "id": client_ids[0] }),
            Some(&rp.user_token),
        )
        .await;
    assert_eq!(one["data"]["viewer"]["connection"], serde_json::Value::Null);
}

async fn deleting_an_app_removes_every_connection_to_it(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = consent(&app, &rp, json!({ "scope": "openid" })).await;
    let tokens = redeem_for(&app, &rp, &code).await;
    let admin = app.token("ops", None).await;
    app.rest(
        Method::DELETE,
        &format!("/api/oauth/app/id/{}", rp.client_id),
        Some(&admin),
        None,
    )
    .await;
    let list = app
        .rest(
            Method::GET,
            "/api/oauth/connection",
            Some(&rp.user_token),
            None,
        )
        .await
        .json();
    assert_eq!(list, json!({ "connections": [] }));
    let info = app
        .get(
            "/api/oauth/userinfo",
            Some(tokens["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED);
}

/// The app is deleted between the consent's read of it (served from the app cache, which the
/// delete below bypasses) and its write: the foreign key refuses the write, and the answer is
/// the 404 a moment later would give, not a 500.
async fn a_consent_to_an_app_deleted_meanwhile_is_not_found(app: TestApp) {
    use idgraph::db::entities::apps;
    use sea_orm::{DbBackend, EntityTrait};
    let rp = setup(&app, "ops", "ada").await;
    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    assert_eq!(app.get(&path, None).await.status, StatusCode::OK);
    apps::Entity::delete_by_id(rp.client_id.as_str())
        .exec(&app.state.db)
        .await
        .unwrap();
    let written = app.state.writer.statements();
    let refused = app
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(&rp.user_token),
            Some(json!({ "client_id": rp.client_id, "scope": "openid" })),
        )
        .await;
    refused.assert_status(StatusCode::NOT_FOUND);
    if app.state.db.get_database_backend() == DbBackend::Sqlite {
        // The write was tried (on the writer thread), not refused by a read of the app.
        assert_eq!(app.state.writer.statements(), written + 1);
    }
}

crate::on_every_database!(
    a_user_lists_reads_and_revokes_only_their_own_connections,
    a_consent_to_an_app_deleted_meanwhile_is_not_found,
    connection_guards_need_their_scopes,
    consent_validation_errors_are_400_and_write_nothing,
    graphql_consent_and_connections_match_rest_and_batch_their_apps,
    deleting_an_app_removes_every_connection_to_it,
);
