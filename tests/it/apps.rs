//! The app registry over REST and GraphQL: lifecycle, parity, authorization, validation, bulk
//! look-ups, paging, rotation, deletion, caching and batched creators.

use axum::http::{Method, StatusCode};
use idgraph::domain::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, error_code};

const APP_FIELDS: &str = "clientId name url redirectUri logo logoUrl createdAt updatedAt";

fn app_input(name: &str) -> Value {
    json!({ "name": name, "url": "https://example.com", "redirect_uri": "https://example.com/cb" })
}

/// Creates an app over REST and returns (client id, secret).
async fn create(app: &TestApp, token: &str, name: &str) -> (String, String) {
    let response = app
        .rest(
            Method::POST,
            "/api/oauth/app",
            Some(token),
            Some(app_input(name)),
        )
        .await;
    response.assert_status(StatusCode::CREATED);
    let body = response.json();
    (
        body["client_id"].as_str().unwrap().into(),
        body["key"].as_str().unwrap().into(),
    )
}

async fn the_rest_lifecycle_works_as_documented(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (client_id, key) = create(&app, &token, "Photos").await;
    assert!(client_id.len() <= 31 && key.len() == 43);

    let fetched = app
        .get(&format!("/api/oauth/app/id/{client_id}"), None)
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    let body = fetched.json();
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // The seed's fields, then the client metadata added since (RFC 7591 names; `openapi.json`).
    assert_eq!(
        fields,
        [
            "backchannel_logout_session_required",
            "backchannel_logout_uri",
            "client_id",
            "creation_time",
            "grant_types",
            "id_token_signed_response_alg",
            "logo",
            "name",
            "post_logout_redirect_uris",
            "redirect_uri",
            "redirect_uris",
            "resources",
            "scope",
            "time",
            "token_endpoint_auth_method",
            "url"
        ]
    );
    assert_eq!(body["name"], "Photos");
    assert_eq!(body["logo"], "");
    assert!(body["time"].as_i64().unwrap() >= body["creation_time"].as_i64().unwrap());

    let update =
        json!({ "name": "Photos 2", "url": "", "redirect_uri": "http://127.0.0.1:9000/cb" });
    let updated = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{client_id}"),
            Some(&token),
            Some(update),
        )
        .await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT);
    let body = app
        .get(&format!("/api/oauth/app/id/{client_id}"), None)
        .await
        .json();
    assert_eq!(
        (body["name"].as_str(), body["url"].as_str()),
        (Some("Photos 2"), Some(""))
    );
    assert_eq!(body["redirect_uri"], "http://127.0.0.1:9000/cb");

    let list = app
        .rest(Method::GET, "/api/oauth/app?amount=10", Some(&token), None)
        .await;
    assert_eq!(list.json()["apps"][0]["client_id"], client_id.as_str());

    let rotated = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{client_id}/rotate"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new_key = rotated.json()["key"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);

    let deleted = app
        .rest(
            Method::DELETE,
            &format!("/api/oauth/app/id/{client_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app
        .get(&format!("/api/oauth/app/id/{client_id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["code"], "NOT_FOUND");
    let again = app
        .rest(
            Method::DELETE,
            &format!("/api/oauth/app/id/{client_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

async fn the_graphql_lifecycle_works(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let created = app
        .graphql(
            &format!("mutation($input: AppInput!) {{ createApp(input: $input) {{ clientSecret app {{ {APP_FIELDS} creator {{ username }} }} }} }}"),
            json!({ "input": { "name": "Notes", "redirectUri": "com.example.notes:/cb" } }),
            Some(&token),
        )
        .await;
    let payload = &created["data"]["createApp"];
    assert_eq!(payload["app"]["creator"]["username"], "ops");
    assert_eq!(payload["app"]["url"], "");
    assert_eq!(payload["app"]["logoUrl"], Value::Null);
    assert_eq!(payload["clientSecret"].as_str().unwrap().len(), 43);
    let client_id = payload["app"]["clientId"].as_str().unwrap().to_string();

    let fetched = app
        .graphql(
            "query($id: ID!) { app(clientId: $id) { name redirectUri } }",
            json!({ "id": client_id }),
            None,
        )
        .await;
    assert_eq!(
        fetched["data"]["app"]["redirectUri"],
        "com.example.notes:/cb"
    );

    let updated = app
        .graphql(
            "mutation($id: ID!, $input: AppInput!) { updateApp(clientId: $id, input: $input) { name url } }",
            json!({ "id": client_id, "input": { "name": "Notes+", "url": "https://notes.example", "redirectUri": "https://notes.example/cb" } }),
            Some(&token),
        )
        .await;
    assert_eq!(
        updated["data"]["updateApp"],
        json!({ "name": "Notes+", "url": "https://notes.example" })
    );

    let rotated = app
        .graphql("mutation($id: ID!) { rotateAppSecret(clientId: $id) { clientSecret app { clientId } } }", json!({ "id": client_id }), Some(&token))
        .await;
    assert_ne!(
        rotated["data"]["rotateAppSecret"]["clientSecret"],
        payload["clientSecret"]
    );

    let deleted = app
        .graphql(
            "mutation($id: ID!) { deleteApp(clientId: $id) }",
            json!({ "id": client_id }),
            Some(&token),
        )
        .await;
    assert_eq!(deleted["data"]["deleteApp"], client_id.as_str());
    let gone = app
        .graphql(
            "query($id: ID!) { app(clientId: $id) { name } }",
            json!({ "id": client_id }),
            None,
        )
        .await;
    assert_eq!(gone["data"]["app"], Value::Null);
    let again = app
        .graphql(
            "mutation($id: ID!) { deleteApp(clientId: $id) }",
            json!({ "id": client_id }),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
}

/// The same scenario through both transports gives the same results and the same error codes.
async fn rest_and_graphql_agree(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (client_id, _) = create(&app, &token, "Parity").await;
    let rest = app
        .get(&format!("/api/oauth/app/id/{client_id}"), None)
        .await
        .json();
    let gql = app
        .graphql("query($id: ID!) { app(clientId: $id) { clientId name url redirectUri logo createdAt updatedAt } }", json!({ "id": client_id }), None)
        .await;
    let gql = &gql["data"]["app"];
    for (rest_key, gql_key) in [
        ("client_id", "clientId"),
        ("name", "name"),
        ("url", "url"),
        ("redirect_uri", "redirectUri"),
        ("logo", "logo"),
    ] {
        assert_eq!(rest[rest_key], gql[gql_key], "{rest_key}");
    }
    let created_at =
        chrono::DateTime::parse_from_rfc3339(gql["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!(
        created_at.timestamp(),
        rest["creation_time"].as_i64().unwrap()
    );

    // Errors: bad input, unknown app, no token, no role.
    let bad = json!({ "name": "", "url": "", "redirect_uri": "https://x.example/cb" });
    let rest_bad = app
        .rest(Method::POST, "/api/oauth/app", Some(&token), Some(bad))
        .await;
    let gql_bad = app
        .graphql("mutation { createApp(input: {name: \"\", redirectUri: \"https://x.example/cb\"}) { clientSecret } }", json!({}), Some(&token))
        .await;
    assert_eq!(
        (rest_bad.status, rest_bad.json()["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, error_code(&gql_bad))
    );
    assert_eq!(rest_bad.json()["message"], gql_bad["errors"][0]["message"]);

    let rest_missing = app
        .rest(
            Method::PUT,
            "/api/oauth/app/id/nope/rotate",
            Some(&token),
            None,
        )
        .await;
    let gql_missing = app
        .graphql(
            "mutation { rotateAppSecret(clientId: \"nope\") { clientSecret } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        rest_missing.json()["code"].as_str().unwrap(),
        error_code(&gql_missing)
    );

    let rest_anon = app
        .rest(Method::PUT, "/api/oauth/app/id/nope/rotate", None, None)
        .await;
    let gql_anon = app
        .graphql(
            "mutation { rotateAppSecret(clientId: \"nope\") { clientSecret } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        rest_anon.json()["code"].as_str().unwrap(),
        error_code(&gql_anon)
    );

    app.create_user("plain", &[]).await;
    let plain = app.token("plain", None).await;
    let rest_forbidden = app
        .rest(Method::GET, "/api/oauth/app", Some(&plain), None)
        .await;
    let gql_forbidden = app
        .graphql("{ apps { edges { cursor } } }", json!({}), Some(&plain))
        .await;
    assert_eq!(
        rest_forbidden.json()["code"].as_str().unwrap(),
        error_code(&gql_forbidden)
    );
    assert_eq!(rest_forbidden.status, StatusCode::FORBIDDEN);
}

/// Every guarded operation: no token → 401, no oauth role → 403, missing scope → 403, `all` → ok.
async fn the_authorization_matrix_holds_for_every_guarded_operation(app: TestApp) {
    app.create_user("plain", &[]).await;
    app.create_user("ops", &[Role::Oauth]).await;
    let all = app.token("ops", None).await;
    let (client_id, _) = create(&app, &all, "Target").await;
    let plain = app.token("plain", None).await;
    let read_only = app.token("ops", Some("gov.user.oauth.app:read")).await;
    let write_only = app.token("ops", Some("gov.user.oauth.app:write")).await;

    let logo = crate::fixtures::multipart_file(
        "image",
        "a.png",
        "image/png",
        &crate::fixtures::image(image::ImageFormat::Png, 8, 8),
    );
    // (method, path, body, scope needed)
    let operations: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::GET, "/api/oauth/app?amount=5".into(), None, "read"),
        (
            Method::POST,
            "/api/oauth/app".into(),
            Some(app_input("New")),
            "write",
        ),
        (
            Method::PUT,
            format!("/api/oauth/app/id/{client_id}"),
            Some(app_input("Renamed")),
            "write",
        ),
        (
            Method::PUT,
            format!("/api/oauth/app/id/{client_id}/image"),
            None,
            "write",
        ),
        (
            Method::PUT,
            format!("/api/oauth/app/id/{client_id}/rotate"),
            None,
            "write",
        ),
        (
            Method::DELETE,
            format!("/api/oauth/app/id/{client_id}"),
            None,
            "write",
        ),
    ];
    for (method, path, body, needs) in operations {
        let call = |token: Option<String>| {
            let (method, path, body, logo) =
                (method.clone(), path.clone(), body.clone(), logo.clone());
            let app = &app;
            async move {
                if path.ends_with("/image") {
                    let content_type = format!(
                        "multipart/form-data; boundary={}",
                        crate::fixtures::BOUNDARY
                    );
                    app.send_bytes(method, &path, token.as_deref(), &content_type, &[], logo)
                        .await
                        .status
                } else {
                    app.rest(method, &path, token.as_deref(), body).await.status
                }
            }
        };
        assert_eq!(
            call(None).await,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        assert_eq!(
            call(Some(plain.clone())).await,
            StatusCode::FORBIDDEN,
            "{method} {path} without the role"
        );
        let lacking = if needs == "read" {
            &write_only
        } else {
            &read_only
        };
        assert_eq!(
            call(Some(lacking.clone())).await,
            StatusCode::FORBIDDEN,
            "{method} {path} without the scope"
        );
        assert!(
            call(Some(all.clone())).await.is_success(),
            "{method} {path} with all"
        );
    }

    let (client_id, _) = create(&app, &all, "Target 2").await;
    let mutations = [
        ("mutation { createApp(input: {name: \"X\", redirectUri: \"https://x.example/cb\"}) { clientSecret } }".to_string(), "write"),
        (format!("mutation {{ updateApp(clientId: \"{client_id}\", input: {{name: \"Y\", redirectUri: \"https://x.example/cb\"}}) {{ name }} }}"), "write"),
        (format!("mutation {{ rotateAppSecret(clientId: \"{client_id}\") {{ clientSecret }} }}"), "write"),
        ("{ apps(first: 5) { edges { cursor } } }".to_string(), "read"),
        (format!("mutation {{ deleteApp(clientId: \"{client_id}\") }}"), "write"),
    ];
    for (query, needs) in mutations {
        assert_eq!(
            error_code(&app.graphql(&query, json!({}), None).await),
            "UNAUTHENTICATED",
            "{query}"
        );
        assert_eq!(
            error_code(&app.graphql(&query, json!({}), Some(&plain)).await),
            "FORBIDDEN",
            "{query}"
        );
        let lacking = if needs == "read" {
            &write_only
        } else {
            &read_only
        };
        assert_eq!(
            error_code(&app.graphql(&query, json!({}), Some(lacking)).await),
            "FORBIDDEN",
            "{query}"
        );
        let ok = app.graphql(&query, json!({}), Some(&all)).await;
        assert!(ok["errors"].is_null(), "{query}: {ok}");
    }
}

async fn invalid_input_is_400_naming_the_field_and_writes_nothing(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (client_id, _) = create(&app, &token, "Original").await;
    let cases = [
        (
            json!({ "name": "", "url": "", "redirect_uri": "https://a.example/cb" }),
            "name",
        ),
        (
            json!({ "name": "x".repeat(128), "url": "", "redirect_uri": "https://a.example/cb" }),
            "name",
        ),
        (
            json!({ "name": "ok", "url": "not a url", "redirect_uri": "https://a.example/cb" }),
            "url",
        ),
        (
            json!({ "name": "ok", "url": "javascript:alert(1)", "redirect_uri": "https://a.example/cb" }),
            "url",
        ),
        (
            json!({ "name": "ok", "url": format!("https://a.example/{}", "x".repeat(520)), "redirect_uri": "https://a.example/cb" }),
            "url",
        ),
        (
            json!({ "name": "ok", "url": "", "redirect_uri": "https://a.example/cb#x" }),
            "redirect_uri",
        ),
        (
            json!({ "name": "ok", "url": "", "redirect_uri": "http://a.example/cb" }),
            "redirect_uri",
        ),
        (
            json!({ "name": "ok", "url": "", "redirect_uri": "https://*.example/cb" }),
            "redirect_uri",
        ),
        (
            json!({ "name": "ok", "url": "", "redirect_uri": "/relative" }),
            "redirect_uri",
        ),
        (json!({ "name": "ok", "url": "" }), "redirect_uri"),
    ];
    for (body, field) in cases {
        for (method, path) in [
            (Method::POST, "/api/oauth/app".to_string()),
            (Method::PUT, format!("/api/oauth/app/id/{client_id}")),
        ] {
            let response = app
                .rest(method.clone(), &path, Some(&token), Some(body.clone()))
                .await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{method} {body}");
            let message = response.json()["message"].as_str().unwrap().to_string();
            assert!(message.contains(field), "{body}: {message}");
        }
    }
    let not_json = app
        .send_bytes(
            Method::POST,
            "/api/oauth/app",
            Some(&token),
            "application/json",
            &[],
            b"{oops".to_vec(),
        )
        .await;
    assert_eq!(
        (not_json.status, not_json.json()["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_INPUT"))
    );
    let listing = app
        .rest(Method::GET, "/api/oauth/app?amount=100", Some(&token), None)
        .await
        .json();
    assert_eq!(
        listing["apps"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );
    assert_eq!(listing["apps"][0]["name"], "Original");
}

async fn bulk_lookups_keep_the_request_order_and_are_capped(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (a, _) = create(&app, &token, "A").await;
    let (b, _) = create(&app, &token, "B").await;
    let response = app
        .get(&format!("/api/oauth/app/ids?ids={b},unknown,{a},{b}"), None)
        .await;
    let ids: Vec<String> = response.json()["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["client_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [b.clone(), a.clone()]);
    let gql = app
        .graphql(
            "query($ids: [ID!]!) { appsByIds(clientIds: $ids) { clientId } }",
            json!({ "ids": [a, "nope", b] }),
            None,
        )
        .await;
    assert_eq!(
        gql["data"]["appsByIds"],
        json!([{ "clientId": a }, { "clientId": b }])
    );
    let empty = app.get("/api/oauth/app/ids?ids=", None).await;
    assert_eq!(empty.json(), json!({ "apps": [] }));

    let too_many: Vec<String> = (0..257).map(|i| format!("id{i}")).collect();
    let response = app
        .get(
            &format!("/api/oauth/app/ids?ids={}", too_many.join(",")),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let gql = app
        .graphql(
            "query($ids: [ID!]!) { appsByIds(clientIds: $ids) { clientId } }",
            json!({ "ids": too_many }),
            None,
        )
        .await;
    assert_eq!(error_code(&gql), "INVALID_INPUT");
}

async fn rest_paging_orders_by_name_and_bounds_amount(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    for name in ["delta", "alpha", "charlie", "bravo", "alpha"] {
        create(&app, &token, name).await;
    }
    let page = |query: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.rest(
                Method::GET,
                &format!("/api/oauth/app?{query}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let names = |body: Value| -> Vec<String> {
        body["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(page("amount=10").await.json()),
        ["alpha", "alpha", "bravo", "charlie", "delta"]
    );
    assert_eq!(
        names(page("amount=2&offset=2").await.json()),
        ["bravo", "charlie"]
    );
    assert_eq!(names(page("amount=2&offset=4").await.json()), ["delta"]);
    assert!(names(page("amount=2&offset=10").await.json()).is_empty());
    for bad in ["amount=0", "amount=1025", "offset=-1", "amount=lots"] {
        let response = page(bad).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(response.json()["code"], "INVALID_INPUT");
    }
    app.create_user("other", &[Role::Oauth]).await;
    let other = app.token("other", None).await;
    create(&app, &other, "echo").await;
    let creator = app
        .graphql("{ viewer { id } }", json!({}), Some(&other))
        .await["data"]["viewer"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = app
        .rest(
            Method::GET,
            &format!("/api/oauth/app?creatorid={creator}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(names(mine.json()), ["echo"]);
}

async fn graphql_paging_walks_every_app_with_keyset_cursors(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    for i in 0..7 {
        create(&app, &token, &format!("app {}", i % 3)).await;
    }
    let query = "query($after: String) { apps(first: 3, after: $after) { edges { cursor node { name clientId } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let body = app
            .graphql(query, json!({ "after": after }), Some(&token))
            .await;
        let apps = &body["data"]["apps"];
        pages += 1;
        for edge in apps["edges"].as_array().unwrap() {
            seen.push(edge["node"]["name"].as_str().unwrap().to_string());
        }
        if !apps["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = apps["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        [
            "app 0", "app 0", "app 0", "app 1", "app 1", "app 2", "app 2"
        ]
    );

    let bad = app
        .graphql(query, json!({ "after": "garbage!" }), Some(&token))
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("after:")
    );
    let too_big = app
        .graphql(
            "{ apps(first: 1025) { edges { cursor } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&too_big), "INVALID_INPUT");
    let empty_db = TestApp::sqlite().await;
    let token = empty_db.oauth_admin("ops").await;
    let empty = empty_db
        .graphql(
            "{ apps { edges { cursor } pageInfo { hasNextPage endCursor } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        empty["data"]["apps"],
        json!({ "edges": [], "pageInfo": { "hasNextPage": false, "endCursor": null } })
    );
}

async fn rotation_with_no_grace_invalidates_the_old_secret_at_once(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (client_id, old) = create(&app, &token, "Rotating").await;
    assert!(app.secret_works(&client_id, &old).await);
    let rotated = app
        .rest(
            Method::PUT,
            &format!("/api/oauth/app/id/{client_id}/rotate"),
            Some(&token),
            Some(json!({ "grace_seconds": 0 })),
        )
        .await;
    let new = rotated.json()["key"].as_str().unwrap().to_string();
    assert!(!app.secret_works(&client_id, &old).await);
    assert!(app.secret_works(&client_id, &new).await);
    assert!(!app.secret_works("unknown", &new).await);
}

async fn no_api_returns_a_secret_or_its_hash_again(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (client_id, key) = create(&app, &token, "Secretive").await;
    let hash = idgraph::domain::secret::digest(&key);
    let everything = [
        app.get(&format!("/api/oauth/app/id/{client_id}"), None)
            .await
            .body,
        app.get(&format!("/api/oauth/app/ids?ids={client_id}"), None)
            .await
            .body,
        app.rest(Method::GET, "/api/oauth/app", Some(&token), None)
            .await
            .body,
        app.graphql_response(
            &format!("{{ apps {{ edges {{ node {{ {APP_FIELDS} }} }} }} }}"),
            json!({}),
            Some(&token),
        )
        .await
        .body,
    ];
    for body in everything {
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains(&key) && !text.contains(&hash), "{text}");
    }
    let sdl =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(!sdl.to_lowercase().contains("secrethash"));
}

async fn public_lookups_are_served_from_the_cache_until_a_change(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    let (client_id, _) = create(&app, &token, "Cached").await;
    let path = format!("/api/oauth/app/id/{client_id}");
    app.get(&path, None).await;
    let (response, statements) = app.count_statements(app.get(&path, None)).await;
    assert_eq!((response.status, statements), (StatusCode::OK, 0));
    app.rest(Method::PUT, &path, Some(&token), Some(app_input("Renamed")))
        .await;
    assert_eq!(
        app.get(&path, None).await.json()["name"],
        "Renamed",
        "a change invalidates the entry"
    );
}

async fn creators_load_in_one_batched_query_whatever_the_page_size(app: TestApp) {
    let token = app.oauth_admin("ops").await;
    for i in 0..4 {
        app.create_user(&format!("maker{i}"), &[Role::Oauth]).await;
        let maker = app.token(&format!("maker{i}"), None).await;
        for j in 0..10 {
            create(&app, &maker, &format!("app {i}-{j}")).await;
        }
    }
    let query =
        "query($n: Int) { apps(first: $n) { edges { node { name creator { username } } } } }";
    let mut counts = Vec::new();
    for n in [2, 40] {
        let (body, statements) = app
            .count_statements(app.graphql(query, json!({ "n": n }), Some(&token)))
            .await;
        assert_eq!(
            body["data"]["apps"]["edges"].as_array().unwrap().len(),
            n as usize
        );
        assert!(
            body["data"]["apps"]["edges"][0]["node"]["creator"]["username"]
                .as_str()
                .unwrap()
                .starts_with("maker")
        );
        counts.push(statements);
    }
    // One statement authenticates the token (its session and user together), one lists apps,
    // one loads creators.
    assert_eq!(counts, [3, 3]);

    app.create_user("plain", &[]).await;
    let plain = app.token("plain", None).await;
    let body = app
        .graphql(
            "query($ids: [ID!]!) { appsByIds(clientIds: $ids) { name creator { username } } }",
            json!({ "ids": ["x"] }),
            Some(&plain),
        )
        .await;
    assert!(
        body["errors"].is_null(),
        "no app, no creator to refuse: {body}"
    );
    let one = app
        .graphql(
            "{ apps(first: 1) { edges { node { clientId } } } }",
            json!({}),
            Some(&token),
        )
        .await;
    let id = one["data"]["apps"]["edges"][0]["node"]["clientId"].clone();
    let body = app
        .graphql(
            "query($ids: [ID!]!) { appsByIds(clientIds: $ids) { name creator { username } } }",
            json!({ "ids": [id] }),
            Some(&plain),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "creators are for oauth admins only: {body}"
    );
}

/// `apps(search:)` keeps the apps whose name, client id or URL contains the text in any case;
/// `%` and `_` are plain characters; a search too long is refused.
async fn apps_are_searched_by_name_client_id_and_url(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let billing = app
        .register_app(
            &admin,
            "Billing",
            "https://pay.example",
            "https://pay.example/cb",
        )
        .await;
    app.register_app(
        &admin,
        "Reports 100%",
        "https://r.example",
        "https://r.example/cb",
    )
    .await;
    app.register_app(
        &admin,
        "Reports 1000",
        "https://s.example",
        "https://s.example/cb",
    )
    .await;
    let query = "query($s: String) { apps(first: 10, search: $s) { edges { node { name } } } }";
    let names = |body: &Value| -> Vec<String> {
        assert!(body["errors"].is_null(), "{body}");
        body["data"]["apps"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let search = |text: &str| app.graphql(query, json!({ "s": text }), Some(&admin));
    assert_eq!(names(&search("BILL").await), ["Billing"]);
    assert_eq!(names(&search("pay.example").await), ["Billing"]);
    assert_eq!(
        names(&search(&billing.client_id.to_lowercase()).await),
        ["Billing"]
    );
    assert_eq!(names(&search("0%").await), ["Reports 100%"]);
    assert_eq!(
        names(&search("reports").await),
        ["Reports 100%", "Reports 1000"]
    );
    assert_eq!(names(&search("  ").await).len(), 3, "blank: no filter");
    let refused = search(&"x".repeat(129)).await;
    assert_eq!(error_code(&refused), "INVALID_INPUT", "{refused}");
}

crate::on_every_database!(
    apps_are_searched_by_name_client_id_and_url,
    the_rest_lifecycle_works_as_documented,
    the_graphql_lifecycle_works,
    rest_and_graphql_agree,
    the_authorization_matrix_holds_for_every_guarded_operation,
    invalid_input_is_400_naming_the_field_and_writes_nothing,
    bulk_lookups_keep_the_request_order_and_are_capped,
    rest_paging_orders_by_name_and_bounds_amount,
    graphql_paging_walks_every_app_with_keyset_cursors,
    rotation_with_no_grace_invalidates_the_old_secret_at_once,
    no_api_returns_a_secret_or_its_hash_again,
    public_lookups_are_served_from_the_cache_until_a_change,
    creators_load_in_one_batched_query_whatever_the_page_size,
);
