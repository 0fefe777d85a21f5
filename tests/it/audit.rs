//! The stored audit trail: every security-relevant change is recorded with its actor, request
//! and address in the transaction of the change; administrators query it with filters and
//! keyset pages; refused sign-ins are recorded without what was typed; the sweep enforces the
//! retention.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use idgraph::db::entities::audit_events;
use idgraph::domain::Role;
use idgraph::service::{housekeeping, keys};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::rp::{REDIRECT, consent, setup};
use crate::common::{PASSWORD, TestApp, error_code};

const EVENTS: &str = "query($first: Int, $after: String, $filter: AuditFilterInput) {
    auditEvents(first: $first, after: $after, filter: $filter) {
        edges { cursor node { id at actorKind actorId action targetType targetId requestId address detail } }
        pageInfo { hasNextPage } } }";

async fn events(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let body = app
        .graphql(
            EVENTS,
            json!({ "first": 1024, "filter": filter }),
            Some(token),
        )
        .await;
    body["data"]["auditEvents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect()
}

async fn auditor(app: &TestApp) -> (String, String) {
    let user = app.create_user("auditor", &[Role::Admin]).await;
    (app.token("auditor", None).await, user.id.to_string())
}

async fn a_change_is_recorded_with_its_actor_request_and_address(app: TestApp) {
    let (token, auditor_id) = auditor(&app).await;
    let body = json!({
        "query": r#"mutation { createUser(input: { username: "ada", email: "ada@example.com", password: "a long enough password" }) { id } }"#,
    });
    let request = Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("x-request-id", "req-audit-1")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.send_from("203.0.113.7".parse().unwrap(), request).await;
    response.assert_status(StatusCode::OK);
    let created = response.json()["data"]["createUser"]["id"].clone();
    let found = events(
        &app,
        &token,
        json!({ "action": "user.create", "targetId": created }),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    let event = &found[0];
    assert_eq!(event["actorKind"], "user");
    assert_eq!(event["actorId"], json!(auditor_id));
    assert_eq!(event["targetType"], "user");
    assert_eq!(event["requestId"], "req-audit-1");
    assert_eq!(event["address"], "203.0.113.7");
    assert_eq!(event["detail"]["username"], "ada");
    assert_eq!(event["detail"]["password_set"], true);
    assert!(!event.to_string().contains("a long enough password"));
}

async fn every_security_relevant_change_is_recorded_and_can_be_filtered(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, auditor_id) = auditor(&app).await;
    app.advance(std::time::Duration::from_secs(10));
    let started = app.now();
    let ops = app.token("ops", None).await;
    let path = format!("/api/oauth/app/id/{}", rp.client_id);
    let renamed = json!({ "name": "RP 2", "url": "https://rp.example", "redirect_uri": REDIRECT });
    app.rest(Method::PUT, &path, Some(&ops), Some(renamed))
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let rotated = app
        .rest(
            Method::PUT,
            &format!("{path}/rotate"),
            Some(&ops),
            Some(json!({})),
        )
        .await;
    rotated.assert_status(StatusCode::OK);
    let new_secret = rotated.json()["key"].as_str().unwrap().to_string();
    let listed = app
        .rest(Method::GET, &format!("{path}/secrets"), Some(&ops), None)
        .await
        .json();
    let oldest = listed["secrets"][1]["id"].as_str().unwrap().to_string();
    app.rest(
        Method::DELETE,
        &format!("{path}/secrets/{oldest}"),
        Some(&ops),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    consent(&app, &rp, json!({ "scope": "openid" })).await;
    app.rest(
        Method::DELETE,
        &format!("/api/oauth/connection/id/{}", rp.client_id),
        Some(&rp.user_token),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    let user_mutations = [
        "mutation($id: ID!) { updateUser(id: $id, input: { name: \"Ada\" }) { id } }",
        "mutation($id: ID!) { updateUser(id: $id, input: { roles: [] }) { id } }",
        "mutation($id: ID!) { setUserPassword(id: $id, password: \"another long password\") { id } }",
        "mutation($id: ID!) { endUserSessions(id: $id) }",
        "mutation($id: ID!) { disableUser(id: $id) { id } }",
        "mutation($id: ID!) { enableUser(id: $id) { id } }",
        "mutation($id: ID!) { deleteUser(id: $id) }",
    ];
    for mutation in user_mutations {
        let body = app
            .graphql(mutation, json!({ "id": rp.user_id }), Some(&token))
            .await;
        assert!(body["errors"].is_null(), "{mutation}: {body}");
    }
    app.rest(Method::DELETE, &path, Some(&ops), None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let algorithm = app.state.config.signing_algorithm;
    let kid = keys::rotate(
        &app.state.db,
        algorithm,
        keys::Rotation::of(&app.state.config),
        app.now(),
    )
    .await
    .unwrap();

    let all = events(&app, &token, json!({ "since": null })).await;
    let all_actions = actions(&all);
    for expected in [
        "app.create",
        "app.update",
        "app.secret.rotate",
        "app.secret.revoke",
        "connection.delete",
        "user.update",
        "user.roles.change",
        "user.password.set",
        "user.sessions.end",
        "user.disable",
        "user.enable",
        "user.delete",
        "app.delete",
        "signing_key.rotate",
    ] {
        assert!(
            all_actions.contains(&expected),
            "{expected} in {all_actions:?}"
        );
    }
    // Newest first, and nothing secret anywhere.
    assert_eq!(all_actions[0], "signing_key.rotate");
    let text = Value::Array(all.clone()).to_string();
    for secret in [
        new_secret.as_str(),
        rp.secret.as_str(),
        PASSWORD,
        "another long password",
    ] {
        assert!(!text.contains(secret), "a secret reached the trail");
    }
    let key_event = &all[0];
    assert_eq!(key_event["actorKind"], "cli");
    assert_eq!(key_event["targetId"], json!(kid));

    // Filters: by target, by actor, by action, by time; they combine.
    let on_app = events(
        &app,
        &token,
        json!({ "targetType": "app", "targetId": rp.client_id }),
    )
    .await;
    assert_eq!(
        actions(&on_app),
        [
            "app.delete",
            "app.secret.revoke",
            "app.secret.rotate",
            "app.update",
            "app.create"
        ]
    );
    let by_auditor = events(&app, &token, json!({ "actorId": auditor_id })).await;
    assert_eq!(by_auditor.len(), user_mutations.len());
    assert!(by_auditor.iter().all(|e| e["actorId"] == json!(auditor_id)));
    let by_connection = events(&app, &token, json!({ "action": "connection.delete" })).await;
    assert_eq!(
        by_connection[0]["targetId"],
        json!(format!("{}/{}", rp.user_id, rp.client_id))
    );
    assert_eq!(by_connection[0]["actorId"], json!(rp.user_id));
    // About the user: her account and her connections, nothing else.
    let about = events(&app, &token, json!({ "aboutUser": rp.user_id })).await;
    let about_actions = actions(&about);
    for expected in ["connection.delete", "user.update", "user.create"] {
        assert!(
            about_actions.contains(&expected),
            "{expected} in {about_actions:?}"
        );
    }
    let connection = format!("{}/", rp.user_id);
    for event in &about {
        let target = event["targetId"].as_str().unwrap();
        assert!(
            (event["targetType"] == "user" && target == rp.user_id)
                || (event["targetType"] == "connection" && target.starts_with(&connection)),
            "{event}"
        );
    }
    let until = chrono::DateTime::from_timestamp(started, 0)
        .unwrap()
        .to_rfc3339();
    let before = events(&app, &token, json!({ "until": until })).await;
    assert_eq!(
        actions(&before),
        [
            "user.create",
            "user.create",
            "app.create",
            "user.create",
            // The start-up's two keys (EdDSA and RS256), idgraph's own doing.
            "signing_key.create",
            "signing_key.create"
        ]
    );
    let since = events(&app, &token, json!({ "since": until })).await;
    assert_eq!(since.len() + before.len(), all.len());
    let none = events(
        &app,
        &token,
        json!({ "action": "app.create", "actorKind": "cli" }),
    )
    .await;
    assert!(none.is_empty());

    // Keyset pages walk the same trail.
    let mut walked = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app
            .graphql(EVENTS, json!({ "first": 4, "after": after }), Some(&token))
            .await;
        let page = &body["data"]["auditEvents"];
        for edge in page["edges"].as_array().unwrap() {
            walked.push(edge["node"]["id"].clone());
            after = edge["cursor"].clone();
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
    }
    let ids: Vec<Value> = all.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(walked, ids);

    for filter in [
        json!({ "action": "app.explode" }),
        json!({ "targetType": "planet" }),
        json!({ "since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z" }),
    ] {
        let body = app
            .graphql(EVENTS, json!({ "filter": filter }), Some(&token))
            .await;
        assert_eq!(error_code(&body), "INVALID_INPUT", "{filter}");
    }
}

/// What people do to their own accounts is recorded with them as the actor (a profile change,
/// ending their other sessions, a new password), and so is an app's new logo.
async fn self_service_and_a_new_logo_are_recorded(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let (token, _) = auditor(&app).await;
    let own = [
        (
            "mutation { updateViewer(input: { name: \"Ada L.\" }) { id } }".to_string(),
            "user.update",
        ),
        (
            "mutation { endOtherSessions }".to_string(),
            "user.sessions.end",
        ),
        (
            format!(
                "mutation {{ changePassword(input: {{ currentPassword: \"{PASSWORD}\", newPassword: \"a brand new password\" }}) }}"
            ),
            "user.password.change",
        ),
    ];
    for (mutation, action) in &own {
        let body = app.graphql(mutation, json!({}), Some(&rp.user_token)).await;
        assert!(body["errors"].is_null(), "{mutation}: {body}");
        let recorded = events(&app, &token, json!({ "action": action })).await;
        assert_eq!(recorded.len(), 1, "{action}: {recorded:?}");
        assert_eq!(recorded[0]["actorKind"], "user");
        assert_eq!(recorded[0]["actorId"], json!(rp.user_id));
        assert_eq!(recorded[0]["targetId"], json!(rp.user_id));
    }
    let ops = app.token("ops", None).await;
    let logo = crate::fixtures::image(image::ImageFormat::Png, 32, 32);
    let upload = Request::builder()
        .method(Method::PUT)
        .uri(format!("/api/oauth/app/id/{}/image", rp.client_id))
        .header(header::AUTHORIZATION, format!("Bearer {ops}"))
        .header(
            header::CONTENT_TYPE,
            format!(
                "multipart/form-data; boundary={}",
                crate::fixtures::BOUNDARY
            ),
        )
        .body(Body::from(crate::fixtures::multipart_file(
            "image",
            "logo.png",
            "image/png",
            &logo,
        )))
        .unwrap();
    let uploaded = app.send(upload).await;
    assert!(uploaded.status.is_success(), "{}", uploaded.status);
    let recorded = events(&app, &token, json!({ "action": "app.logo.change" })).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["targetId"], json!(rp.client_id));
    assert_eq!(recorded[0]["actorKind"], "user");
}

/// Makes every insert into `table` fail, by a trigger.
async fn break_inserts(app: &TestApp, table: &str, on: &str) {
    let db = &app.state.db;
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER forced_failure BEFORE {on} ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'forced failure'); END"
            ))
            .await
            .unwrap();
        }
        _ => {
            db.execute_unprepared(
                "CREATE OR REPLACE FUNCTION forced_failure() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'forced failure'; END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
            db.execute_unprepared(&format!(
                "CREATE TRIGGER forced_failure BEFORE {on} ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION forced_failure()"
            ))
            .await
            .unwrap();
        }
    }
}

async fn fix_inserts(app: &TestApp, table: &str) {
    let db = &app.state.db;
    let drop = match db.get_database_backend() {
        DbBackend::Sqlite => "DROP TRIGGER forced_failure".to_string(),
        _ => format!("DROP TRIGGER forced_failure ON {table}"),
    };
    db.execute_unprepared(&drop).await.unwrap();
}

async fn disabled(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app
        .graphql(
            "query($id: ID!) { user(id: $id) { disabled } }",
            json!({ "id": id }),
            Some(token),
        )
        .await;
    body["data"]["user"]["disabled"].clone()
}

async fn a_change_and_its_audit_event_commit_together_or_not_at_all(app: TestApp) {
    let (token, _) = auditor(&app).await;
    let ada = app.create_user("ada", &[]).await.id.to_string();
    let disable = "mutation($id: ID!) { disableUser(id: $id) { disabled } }";
    let count = || async {
        audit_events::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap()
    };
    let before = count().await;

    // The event cannot be stored: the change, made earlier in the transaction, is undone.
    break_inserts(&app, "audit_events", "INSERT").await;
    let body = app
        .graphql(disable, json!({ "id": ada }), Some(&token))
        .await;
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    fix_inserts(&app, "audit_events").await;
    assert_eq!(count().await, before);
    assert_eq!(
        disabled(&app, &token, &ada).await,
        json!(false),
        "the change was undone"
    );

    // The change fails midway (ending the user's sessions): no event is left behind.
    app.token("ada", None).await;
    break_inserts(&app, "sessions", "UPDATE").await;
    let body = app
        .graphql(disable, json!({ "id": ada }), Some(&token))
        .await;
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    fix_inserts(&app, "sessions").await;
    assert_eq!(count().await, before, "no event for a change that failed");
    assert_eq!(
        disabled(&app, &token, &ada).await,
        json!(false),
        "the change was undone"
    );

    // PostgreSQL only: a check deferred to the commit fails once both rows are written; both
    // go. (SQLite has no deferred triggers; the two cases above hold there.)
    if app.state.db.get_database_backend() == DbBackend::Postgres {
        let db = &app.state.db;
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION forced_failure() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'forced failure'; END $$ LANGUAGE plpgsql",
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "CREATE CONSTRAINT TRIGGER forced_failure AFTER INSERT ON audit_events \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION forced_failure()",
        )
        .await
        .unwrap();
        let body = app
            .graphql(disable, json!({ "id": ada }), Some(&token))
            .await;
        assert_eq!(error_code(&body), "INTERNAL", "{body}");
        fix_inserts(&app, "audit_events").await;
        assert_eq!(
            count().await,
            before,
            "the event went with the commit that failed"
        );
        assert_eq!(
            disabled(&app, &token, &ada).await,
            json!(false),
            "and so did the change"
        );
    }

    // With nothing broken, both are stored.
    let body = app
        .graphql(disable, json!({ "id": ada }), Some(&token))
        .await;
    assert_eq!(body["data"]["disableUser"]["disabled"], true, "{body}");
    assert_eq!(count().await, before + 1);
}

async fn refused_sign_ins_are_recorded_without_what_was_typed(app: TestApp) {
    let (token, _) = auditor(&app).await;
    let ada = app.create_user("ada", &[]).await.id.to_string();
    let login = "mutation($u: String!, $p: String!) { login(input: { username: $u, password: $p }) { accessToken } }";
    let typed = "typed-my-password-here";
    let body = app
        .graphql(login, json!({ "u": typed, "p": "x" }), None)
        .await;
    assert_eq!(error_code(&body), "INVALID_CREDENTIALS");
    let mut throttled = false;
    for _ in 0..10 {
        let body = app
            .graphql(login, json!({ "u": "ada", "p": "wrong" }), None)
            .await;
        if error_code(&body) == "TOO_MANY_ATTEMPTS" {
            throttled = true;
            break;
        }
    }
    assert!(throttled);
    let failures = events(&app, &token, json!({ "action": "sign_in.failure" })).await;
    assert!(failures.len() >= 2, "{failures:?}");
    let unknown = failures.last().unwrap();
    assert_eq!(unknown["actorKind"], "anonymous");
    assert_eq!(unknown["targetId"], Value::Null);
    assert_eq!(unknown["detail"]["unknown_username"], true);
    assert!(
        failures[..failures.len() - 1]
            .iter()
            .all(|e| e["targetId"] == json!(ada))
    );
    let throttles = events(&app, &token, json!({ "action": "sign_in.throttle" })).await;
    assert_eq!(throttles.len(), 1);
    let all = events(&app, &token, json!({})).await;
    assert!(!Value::Array(all).to_string().contains(typed));
}

/// A flood of refused sign-ins is recorded up to the node's budget per minute; the first event
/// recorded after the flood says how many were left out.
async fn a_flood_of_refused_sign_ins_is_recorded_within_the_budget(app: TestApp) {
    use idgraph::service::audit::SIGN_IN_EVENTS_PER_MINUTE;
    let (token, _) = auditor(&app).await;
    // Align to the start of a clock minute, so that the flood falls within one.
    app.advance(std::time::Duration::from_secs(
        (60 - app.now().rem_euclid(60)) as u64,
    ));
    let login = "mutation($u: String!) { login(input: { username: $u, password: \"wrong\" }) { accessToken } }";
    let flood = SIGN_IN_EVENTS_PER_MINUTE + 10;
    for attempt in 0..flood {
        let body = app
            .graphql(login, json!({ "u": format!("nobody{attempt}") }), None)
            .await;
        let code = error_code(&body);
        assert!(
            code == "INVALID_CREDENTIALS" || code == "TOO_MANY_ATTEMPTS",
            "{body}"
        );
    }
    let anonymous = json!({ "actorKind": "anonymous" });
    let recorded = events(&app, &token, anonymous.clone()).await;
    assert_eq!(recorded.len(), SIGN_IN_EVENTS_PER_MINUTE as usize);
    assert!(
        recorded
            .iter()
            .all(|e| e["detail"].get("left_out_before").is_none())
    );
    app.advance(std::time::Duration::from_secs(60));
    app.graphql(login, json!({ "u": "nobody-after" }), None)
        .await;
    let recorded = events(&app, &token, anonymous).await;
    assert_eq!(recorded.len(), SIGN_IN_EVENTS_PER_MINUTE as usize + 1);
    assert_eq!(recorded[0]["detail"]["left_out_before"], json!(10));
}

async fn the_sweep_deletes_events_past_their_retention(app: TestApp) {
    auditor(&app).await;
    app.create_user("old", &[]).await;
    app.advance(std::time::Duration::from_secs(366 * 24 * 3600));
    let token_now = app.token("auditor", None).await;
    app.create_user("new", &[]).await;
    let swept = housekeeping::sweep(&app.state, housekeeping::BATCH)
        .await
        .unwrap();
    assert_eq!(
        swept.audit_events, 4,
        "the start-up's two keys, the auditor's and old's creation"
    );
    let left = events(&app, &token_now, json!({})).await;
    assert_eq!(actions(&left), ["user.create"]);
    assert_eq!(left[0]["detail"]["username"], "new");
}

const NAMED: &str = "query($first: Int, $filter: AuditFilterInput) {
    auditEvents(first: $first, filter: $filter) {
        edges { node { action actorId actor { username } targetId targetUser { username } } } } }";

/// The acting and the affected user are named while their accounts exist; once deleted, only
/// their ids remain. The page's users are read in one statement whatever its length.
async fn an_event_names_its_actor_and_target_users_while_they_exist(app: TestApp) {
    let (token, auditor_id) = auditor(&app).await;
    let mut made = Vec::new();
    for i in 0..20 {
        let body = app
            .graphql(
                "mutation($u: String!, $e: String!) { createUser(input: { username: $u, email: $e }) { id } }",
                json!({ "u": format!("u{i:02}"), "e": format!("u{i:02}@example.com") }),
                Some(&token),
            )
            .await;
        made.push(
            body["data"]["createUser"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let filter = json!({ "action": "user.create", "actorId": auditor_id });
    let mut counts = Vec::new();
    for n in [2, 20] {
        let (body, statements) = app
            .count_statements(app.graphql(
                NAMED,
                json!({ "first": n, "filter": filter }),
                Some(&token),
            ))
            .await;
        let edges = body["data"]["auditEvents"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(edges.len(), n, "{body}");
        let newest = &edges[0]["node"];
        assert_eq!(newest["actor"]["username"], "auditor", "{body}");
        assert_eq!(newest["targetId"], json!(made[19]));
        assert_eq!(newest["targetUser"]["username"], "u19", "{body}");
        counts.push(statements);
    }
    // One statement authenticates the token, one reads the events, one the users they name.
    assert_eq!(counts, [3, 3]);

    let deleted = app
        .graphql(
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({ "id": made[19] }),
            Some(&token),
        )
        .await;
    assert_eq!(deleted["data"]["deleteUser"], json!(made[19]), "{deleted}");
    let (body, statements) = app
        .count_statements(app.graphql(
            NAMED,
            json!({ "first": 50, "filter": { "targetId": made[19] } }),
            Some(&token),
        ))
        .await;
    let edges = body["data"]["auditEvents"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2, "created and deleted: {body}");
    assert_eq!(statements, 3, "a user who is gone is looked for once too");
    for edge in edges {
        assert_eq!(edge["node"]["targetId"], json!(made[19]));
        assert_eq!(edge["node"]["targetUser"], Value::Null, "{body}");
        assert_eq!(edge["node"]["actor"]["username"], "auditor", "{body}");
    }

    // A token narrowed to the trail reads the events; the users they name need `user:read`.
    let narrowed = app
        .token("auditor", Some("gov.user.admin.audit:read"))
        .await;
    let body = app
        .graphql(
            NAMED,
            json!({ "first": 5, "filter": filter }),
            Some(&narrowed),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(body["errors"][0]["path"][4], "actor", "{body}");
    let edges = body["data"]["auditEvents"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 5, "the page itself is answered: {body}");
}

/// A key created because nothing could sign an algorithm changes what the JWKS publishes, so it
/// is recorded: the start-up's keys as idgraph's own, a key for an app's ID-token algorithm as
/// the administrator's who registered the app.
async fn every_signing_key_created_is_recorded_with_who_caused_it(app: TestApp) {
    use idgraph::db::entities::signing_keys;
    let at_start: Vec<_> = audit_events::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.action == "signing_key.create")
        .collect();
    let keys_at_start = signing_keys::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(at_start.len() as u64, keys_at_start, "{at_start:?}");
    assert!(at_start.iter().all(|event| event.actor_kind == "system"));

    let admin = app.create_user("ops", &[Role::Oauth]).await;
    let token = app.token("ops", None).await;
    app.advance(std::time::Duration::from_secs(1));
    app.register_app_with(
        &token,
        json!({ "name": "P-256 app", "redirect_uri": REDIRECT, "id_token_signed_response_alg": "ES256" }),
    )
    .await;
    let created = app.audit_event("signing_key.create").await;
    assert_eq!(created.actor_kind, "user");
    assert_eq!(created.actor_id.as_deref(), Some(admin.id.as_str()));
    let key = signing_keys::Entity::find_by_id(created.target_id.unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the event names the new key");
    assert_eq!(key.algorithm, "ES256");
    assert!(created.detail.contains("ES256"), "{}", created.detail);
}

crate::on_every_database!(
    every_signing_key_created_is_recorded_with_who_caused_it,
    an_event_names_its_actor_and_target_users_while_they_exist,
    a_change_is_recorded_with_its_actor_request_and_address,
    every_security_relevant_change_is_recorded_and_can_be_filtered,
    self_service_and_a_new_logo_are_recorded,
    a_flood_of_refused_sign_ins_is_recorded_within_the_budget,
    a_change_and_its_audit_event_commit_together_or_not_at_all,
    refused_sign_ins_are_recorded_without_what_was_typed,
    the_sweep_deletes_events_past_their_retention,
);
