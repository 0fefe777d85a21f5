//! No request can take the service down: documents bounded before they are expanded, numbers
//! bounded where they are parsed, control characters refused where they enter, client mistakes
//! told as such, and the protocol endpoints' small promises (no-store, JSON errors, one token
//! method, response modes, CSP on redirects).

use std::net::IpAddr;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::common::browser::{Browser, authorize_path, hidden, text};
use crate::common::memory::peak_growth;
use crate::common::rp::{REDIRECT, setup};
use crate::common::{PASSWORD, TestApp, TestResponse, error_code};
use crate::fixtures::BOUNDARY;

/// CPU time this thread has used, in clock ticks (`/proc/thread-self/stat`, utime + stime).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux /proc");
    // Fields after the command's closing parenthesis; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// k fragments, each spreading the next twice, ending in `field`: 2^k selections once expanded.
fn fragment_bomb(k: usize, field: &str) -> String {
    let mut doc = String::from("query Bomb { ...F0 }\n");
    for i in 0..k {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    doc.push_str(&format!("fragment F{k} on Query {{ {field} }}\n"));
    doc
}

/// The k=30 document (2^30 selections, about 1.5 KB) is refused without being expanded. The
/// request runs on this thread (a current-thread runtime), so its CPU time and the memory it
/// holds at its peak are this thread's: the bounds hold however busy the machine is.
#[tokio::test(flavor = "current_thread")]
async fn fragment_bombs_and_argument_floods_are_refused_before_they_are_expanded() {
    let app = TestApp::sqlite().await;
    // Warm up: the first request builds lazy state that is not the document's doing.
    app.graphql("{ __typename }", json!({}), None).await;
    // Two fields of one name with 12,000 arguments each: compared pairwise, 72 million steps.
    let arguments: Vec<String> = (0..12_000).map(|i| format!("a{i}:0")).collect();
    let arguments = arguments.join(" ");
    let wide = format!("{{ app({arguments}) {{ name }} app({arguments}) {{ name }} }}");
    let documents = [
        ("__typename", fragment_bomb(30, "__typename")),
        (
            "a field",
            fragment_bomb(30, "appsByIds(clientIds: []) { name }"),
        ),
        ("arguments", wide),
    ];
    for (field, document) in documents {
        assert!(
            document.len() < 2048 || field == "arguments",
            "{}",
            document.len()
        );
        let cpu = thread_cpu_ticks();
        let (body, grown) = peak_growth(app.graphql(&document, json!({}), None)).await;
        let cpu_ms = (thread_cpu_ticks() - cpu) * 1000 / 100;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("fields and arguments once its fragments are expanded"),
            "{message}"
        );
        assert!(body["data"].is_null());
        assert!(cpu_ms <= 100, "{cpu_ms} ms of CPU for {field}");
        // The wide document is 190 KB; its parsed form, which any document of that size may
        // take, is the growth allowed for it.
        let allowed = if field == "arguments" {
            32 << 20
        } else {
            8 << 20
        };
        assert!(grown < allowed, "{field}: {grown} bytes held at the peak");
    }
    // The server still answers.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

async fn deep_nesting_and_fragment_cycles_are_refused_before_parsing(app: TestApp) {
    let deep = format!(
        "query {{ app(clientId: {}\"x\"{}) {{ name }} }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let body = app.graphql(&deep, json!({}), None).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nests deeper")
    );
    let cycle = "query Q { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    let body = app.graphql(cycle, json!({}), None).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
}

/// Documents that are linear in their size but long: a chain of 5,000 fragments (used, or
/// defined and never spread) is refused for its number of fragments before any walk, whose
/// recursion would otherwise go 5,000 deep; a document sent as a multipart request is held to
/// the JSON body limit, although the request may be as large as an upload.
async fn long_fragment_chains_and_long_multipart_documents_are_refused(app: TestApp) {
    for used in [true, false] {
        let mut document = String::from(if used {
            "query Chain { ...F0 }\n"
        } else {
            "query Chain { __typename }\n"
        });
        for i in 0..5_000 {
            document.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        document.push_str("fragment F5000 on Query { __typename }\n");
        let body = app.graphql(&document, json!({}), None).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("5001 fragments"), "used {used}: {message}");
    }
    // 300 KB of comment makes the document longer than the 256 KiB JSON limit, and nothing else
    // is wrong with it; the same document fits once the comment is shorter.
    let send = |padding: usize| {
        let query = format!("# {}\nquery Long {{ __typename }}", "x".repeat(padding));
        let operations = json!({ "query": query, "variables": {} });
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n"
        );
        let app = &app;
        async move {
            app.send_bytes(
                Method::POST,
                "/graphql",
                None,
                &format!("multipart/form-data; boundary={BOUNDARY}"),
                &[("apollo-require-preflight", "true")],
                body.into_bytes(),
            )
            .await
            .json()
        }
    };
    let body = send(300 * 1024).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 262144 bytes"),
        "{body}"
    );
    let body = send(1024).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

/// Scope lists longer than 255 characters are stored on both stores (PostgreSQL refused them
/// while its columns were `varchar(255)`): a session naming every management scope, and a
/// connection consented to three long API scopes.
async fn long_scope_lists_are_stored_on_both_stores(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let every = [
        "gov.user.oauth.app:read",
        "gov.user.oauth.app:write",
        "gov.user.oauth.authorize",
        "gov.user.oauth.connection:read",
        "gov.user.oauth.connection:write",
        "gov.user.admin.user:read",
        "gov.user.admin.user:write",
        "gov.user.admin.audit:read",
        "gov.user.admin.key:read",
        "gov.user.admin.key:write",
    ]
    .join(" ");
    assert!(every.len() > 255);
    let session = app.login("ada", Some(&every)).await;
    assert!(session["accessToken"].is_string(), "{session}");

    let api: Vec<String> = ["orders", "billing", "reports"]
        .iter()
        .map(|name| format!("{name}{}:read", "x".repeat(110)))
        .collect();
    let admin = app.token("ops", None).await;
    let registered = app
        .register_app_with(
            &admin,
            json!({
                "name": "Long scopes",
                "redirect_uri": REDIRECT,
                "scope": format!("openid {}", api.join(" ")),
            }),
        )
        .await;
    let long = crate::common::rp::Rp {
        client_id: registered.client_id,
        ..rp
    };
    let code = crate::common::rp::consent(
        &app,
        &long,
        json!({ "scope": format!("openid {}", api.join(" ")) }),
    )
    .await;
    assert!(!code.is_empty());
}

async fn numbers_beyond_their_bounds_are_400_naming_the_field(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    for (path, token, field) in [
        (
            "/api/oauth/app?offset=18446744073709551615",
            &admin,
            "offset",
        ),
        (
            "/api/oauth/app?offset=9223372036854775808",
            &admin,
            "offset",
        ),
        ("/api/oauth/app?amount=0", &admin, "amount"),
        (
            "/api/oauth/connection?offset=18446744073709551615",
            &rp.user_token,
            "offset",
        ),
        (
            "/api/oauth/connection?amount=1025",
            &rp.user_token,
            "amount",
        ),
    ] {
        let response = app.get(path, Some(token)).await;
        response.assert_status(StatusCode::BAD_REQUEST);
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(field), "{path}: {message}");
    }
    // The largest offset is still a valid (empty) page.
    let last = app
        .get("/api/oauth/app?offset=9223372036854775807", Some(&admin))
        .await;
    last.assert_status(StatusCode::OK);
    assert_eq!(last.json()["apps"], json!([]));
    // Beyond an Int, or beyond the field's own bounds: the field refuses it.
    for (first, expected) in [
        ("2147483648", "INVALID_INPUT"),
        ("-1", "INVALID_INPUT"),
        ("0", "INVALID_INPUT"),
        ("1025", "INVALID_INPUT"),
    ] {
        let body = app
            .graphql(
                &format!("{{ apps(first: {first}) {{ edges {{ cursor }} }} }}"),
                json!({}),
                Some(&admin),
            )
            .await;
        assert_eq!(error_code(&body), expected, "first: {first}: {body}");
    }
}

/// A client's mistake in the variables is never `INTERNAL`: a value of the wrong type refuses
/// the document before it runs (`GRAPHQL_VALIDATION_FAILED`); an Int beyond 32 bits, or a
/// required variable left out, is refused by the field that reads it (`INVALID_INPUT`).
async fn graphql_client_mistakes_are_never_internal(app: TestApp) {
    let admin = app.oauth_admin("ops").await;
    let query = "query Apps($n: Int) { apps(first: $n) { edges { cursor } } }";
    for (variables, expected) in [
        (json!({ "n": "ten" }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "n": 2147483648i64 }), "INVALID_INPUT"),
        (json!({ "n": 1.5 }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "n": [1] }), "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let body = app.graphql(query, variables.clone(), Some(&admin)).await;
        assert_eq!(error_code(&body), expected, "{variables}: {body}");
    }
    let required = "query One($id: ID!) { app(clientId: $id) { name } }";
    let body = app.graphql(required, json!({}), None).await;
    assert_eq!(
        error_code(&body),
        "INVALID_INPUT",
        "missing variable: {body}"
    );
    let login = "mutation L($input: LoginInput!) { login(input: $input) { accessToken } }";
    let body = app
        .graphql(login, json!({ "input": { "username": 7 } }), None)
        .await;
    assert_eq!(
        error_code(&body),
        "GRAPHQL_VALIDATION_FAILED",
        "wrong input: {body}"
    );
}

/// NUL reaches no store: every surface answers 400 naming the field, the same on SQLite and
/// PostgreSQL (which cannot store NUL at all).
async fn nul_is_refused_at_every_edge_naming_the_field(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let nul = "a\u{0}b";
    // Paths and query parameters of the REST routes.
    for (path, token, field) in [
        (
            "/api/oauth/connection/id/a%00",
            Some(&rp.user_token),
            "path",
        ),
        ("/api/oauth/app/id/a%00", None, "path"),
        ("/api/oauth/app?creatorid=%00", Some(&admin), "creatorid"),
        ("/api/oauth/app/ids?ids=a,%00", None, "ids"),
    ] {
        let response = app.get(path, token.map(|t| t.as_str())).await;
        response.assert_status(StatusCode::BAD_REQUEST);
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{path}: {message}"
        );
    }
    // JSON fields.
    for body in [
        json!({ "name": "N", "url": nul, "redirect_uri": REDIRECT }),
        json!({ "name": "N", "url": "", "redirect_uri": format!("{REDIRECT}{nul}") }),
    ] {
        let response = app
            .rest(Method::POST, "/api/oauth/app", Some(&admin), Some(body))
            .await;
        response.assert_status(StatusCode::BAD_REQUEST);
        // The edge's refusal, not the URL rules' (which would refuse these too).
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(
            message == "url: must not contain control characters"
                || message == "redirect_uri: must not contain control characters",
            "{message}"
        );
    }
    // The token endpoint's form.
    let response = app
        .send_bytes(
            Method::POST,
            "/api/oauth/token",
            None,
            "application/x-www-form-urlencoded",
            &[],
            b"grant_type=refresh_token&refresh_token=%00.x".to_vec(),
        )
        .await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(response.json()["error"], "invalid_request");
    assert!(
        response.json()["error_description"]
            .as_str()
            .unwrap()
            .starts_with("refresh_token:")
    );
    // GraphQL arguments, variables and cursors, including the token-free mutations.
    for (query, variables, field) in [
        (
            "mutation { login(input: {username: \"a\\u0000\", password: \"x\"}) { accessToken } }",
            json!({}),
            "input",
        ),
        (
            "mutation R($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({ "t": nul }),
            "$t",
        ),
        (
            "query A($id: ID!) { app(clientId: $id) { name } }",
            json!({ "id": nul }),
            "$id",
        ),
        (
            "query C($c: String) { apps(after: $c) { edges { cursor } } }",
            json!({ "c": nul }),
            "$c",
        ),
    ] {
        let body = app.graphql(query, variables, Some(&admin)).await;
        assert_eq!(
            error_code(&body),
            "GRAPHQL_VALIDATION_FAILED",
            "{query}: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{query}: {message}"
        );
    }
    // A variable the request leaves out takes its default, which no sent variable holds.
    let body = app
        .graphql(
            "mutation M($u: String! = \"a\\u0000\") { login(input: {username: $u, password: \"x\"}) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("$u:"), "{message}");
    // A cursor of the right shape whose id holds NUL (base64 hides it from the edge).
    let query = "query C($c: String) { apps(first: 1, after: $c) { edges { cursor } } }";
    let body = app.graphql(query, json!({ "c": null }), Some(&admin)).await;
    let cursor = body["data"]["apps"]["edges"][0]["cursor"].as_str().unwrap();
    let body = app
        .graphql(query, json!({ "c": with_nul(cursor) }), Some(&admin))
        .await;
    assert_eq!(error_code(&body), "INVALID_INPUT", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("after:"), "{message}");
    // The hosted sign-in form.
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let html = text(&page);
    let refused = browser
        .post(
            "/oauth/authorize",
            &[
                ("action", "signin"),
                ("csrf", &hidden(&html, "csrf")),
                ("request", &hidden(&html, "request")),
                ("username", nul),
                ("password", PASSWORD),
            ],
        )
        .await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    assert!(text(&refused).contains("username: must not contain control characters"));
    // The console's sign-in form.
    let refused = Browser::new(&app).console_sign_in(nul, PASSWORD).await;
    refused.assert_status(StatusCode::BAD_REQUEST);
    assert!(text(&refused).contains("username: must not contain control characters"));
    let refused = browser.get("/oauth/authorize?client_id=%00").await;
    refused.assert_status(StatusCode::BAD_REQUEST);
}

/// `cursor` with NUL added to each string of its position.
fn with_nul(cursor: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = URL_SAFE_NO_PAD.decode(cursor).unwrap();
    let mut position: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut strings = 0;
    for item in position.as_array_mut().unwrap() {
        if let Some(text) = item.as_str() {
            *item = json!(format!("{text}\u{0}"));
            strings += 1;
        }
    }
    assert!(strings > 0, "a position with no string: {position}");
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&position).unwrap())
}

fn assert_protocol_error(response: &TestResponse, status: StatusCode, error: &str) {
    response.assert_status(status);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    assert_eq!(response.json()["error"], error);
}

async fn the_protocol_endpoints_answer_every_failure_as_uncached_json(app: TestApp) {
    for (path, allowed) in [
        ("/api/oauth/token", "POST"),
        ("/api/oauth/revoke", "POST"),
        ("/api/oauth/introspect", "POST"),
        ("/api/oauth/userinfo", "GET, POST"),
    ] {
        let wrong = app.rest(Method::DELETE, path, None, None).await;
        assert_protocol_error(&wrong, StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
        assert_eq!(wrong.header("allow"), Some(allowed), "{path}");
        let big = app
            .send_bytes(
                Method::POST,
                path,
                None,
                "application/x-www-form-urlencoded",
                &[],
                vec![b'a'; 64 * 1024],
            )
            .await;
        assert_protocol_error(&big, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    }
    let get = app.get("/api/oauth/token", None).await;
    assert_protocol_error(&get, StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
}

async fn userinfo_takes_one_token_method_and_answers_rfc_6750(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let code = crate::common::rp::consent(&app, &rp, json!({ "scope": "openid profile" })).await;
    let tokens = crate::common::rp::redeem_for(&app, &rp, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    // In the form body alone, it works.
    let in_body = app
        .send_bytes(
            Method::POST,
            "/api/oauth/userinfo",
            None,
            "application/x-www-form-urlencoded",
            &[],
            format!("access_token={access}").into_bytes(),
        )
        .await;
    in_body.assert_status(StatusCode::OK);
    assert_eq!(in_body.json()["preferred_username"], "ada");
    // In the header and the body at once: invalid_request.
    let both = app
        .send_bytes(
            Method::POST,
            "/api/oauth/userinfo",
            Some(access),
            "application/x-www-form-urlencoded",
            &[],
            format!("access_token={access}").into_bytes(),
        )
        .await;
    assert_protocol_error(&both, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        both.header("www-authenticate")
            .unwrap()
            .contains("invalid_request")
    );
    // A bad token: RFC 6750's invalid_token, in the challenge and the body.
    let bad = app.get("/api/oauth/userinfo", Some("nonsense")).await;
    assert_protocol_error(&bad, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(
        bad.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // In the URL: refused, so that it never lands in a log.
    let in_url = app
        .get(&format!("/api/oauth/userinfo?access_token={access}"), None)
        .await;
    assert_protocol_error(&in_url, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn response_mode_fragment_puts_the_answer_in_the_fragment(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&authorize_path(&rp, &[("response_mode", "fragment")]))
        .await;
    let consent = browser.sign_in(&page, "ada", PASSWORD).await;
    let approved = browser.press(&consent, "approve").await;
    approved.assert_status(StatusCode::SEE_OTHER);
    let location = url::Url::parse(approved.header("location").unwrap()).unwrap();
    assert_eq!(location.query(), None, "{location}");
    let answer: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert!(
        answer.contains_key("code") && answer.contains_key("iss"),
        "{location}"
    );
    // Redirects carry the same policy as pages.
    let csp = approved.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    // A mode that is not offered goes back as invalid_request, in the query.
    let refused = browser
        .get(&authorize_path(&rp, &[("response_mode", "form_post")]))
        .await;
    let location = url::Url::parse(refused.header("location").unwrap()).unwrap();
    let error: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(error["error"], "invalid_request");
}

async fn a_form_posted_request_never_carries_other_fields_into_the_url(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let posted = browser
        .post(
            "/oauth/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &rp.client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("username", "ada"),
                ("password", PASSWORD),
            ],
        )
        .await;
    posted.assert_status(StatusCode::SEE_OTHER);
    let location = posted.header("location").unwrap();
    assert!(location.contains("client_id="), "{location}");
    assert!(
        !location.contains("password") && !location.contains("username"),
        "{location}"
    );
}

/// A throwaway address per test, so that address counts do not leak between tests.
fn addr(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

fn login_request(username: &str, password: &str) -> Request<Body> {
    let body = json!({
        "query": "mutation L($input: LoginInput!) { login(input: $input) { accessToken } }",
        "variables": { "input": { "username": username, "password": password } },
    });
    Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// One password sprayed over many usernames from one address: GraphQL `login` counts the
/// address as the hosted form does, so after the address's allowance the answers are
/// `TOO_MANY_ATTEMPTS`, with no password checked.
async fn spraying_usernames_from_one_address_is_throttled_on_graphql(app: TestApp) {
    let from = addr(10);
    let mut codes = Vec::new();
    for i in 0..idgraph::service::throttle::ADDRESS_FREE + 5 {
        let response = app
            .send_from(from, login_request(&format!("user{i}"), "Summer2026!"))
            .await;
        codes.push(error_code(&response.json()).to_string());
    }
    let free = idgraph::service::throttle::ADDRESS_FREE as usize;
    assert!(
        codes[..free].iter().all(|c| c == "INVALID_CREDENTIALS"),
        "{codes:?}"
    );
    assert!(
        codes[free..].iter().all(|c| c == "TOO_MANY_ATTEMPTS"),
        "{codes:?}"
    );
    // Another address is not held back.
    let elsewhere = app.send_from(addr(11), login_request("user0", "x")).await;
    assert_eq!(error_code(&elsewhere.json()), "INVALID_CREDENTIALS");
}

/// One password sprayed over many usernames from one address on the hosted sign-in form and on
/// the console's: each counts the address as GraphQL does, so after the address's allowance
/// the form answers 429 and checks no password.
async fn spraying_usernames_from_one_address_is_throttled_on_the_sign_in_pages(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let free = idgraph::service::throttle::ADDRESS_FREE as usize;
    let mut browser = Browser::at(&app, addr(12));
    let mut statuses = Vec::new();
    for i in 0..free + 3 {
        let page = browser.get(&authorize_path(&rp, &[])).await;
        let answer = browser
            .sign_in(&page, &format!("user{i}"), "Summer2026!")
            .await;
        statuses.push(answer.status.as_u16());
    }
    assert!(statuses[..free].iter().all(|s| *s != 429), "{statuses:?}");
    assert!(statuses[free..].iter().all(|s| *s == 429), "{statuses:?}");

    let mut console = Browser::at(&app, addr(13));
    let mut statuses = Vec::new();
    for i in 0..free + 3 {
        let answer = console
            .console_sign_in(&format!("user{i}"), "Summer2026!")
            .await;
        statuses.push(answer.status.as_u16());
    }
    assert!(statuses[..free].iter().all(|s| *s != 429), "{statuses:?}");
    assert!(statuses[free..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another address is not held back.
    let answer = Browser::at(&app, addr(14))
        .console_sign_in("user0", "Summer2026!")
        .await;
    assert_ne!(answer.status.as_u16(), 429);
}

fn forwarded(mut request: Request<Body>, client: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert("x-forwarded-for", client.parse().unwrap());
    request
}

/// Behind a trusted proxy, the back-off counts each client by the address the proxy forwards:
/// one client spraying passwords is held back, and the real user, through the same proxy, signs
/// in. A peer that is not a trusted proxy cannot pick its address with the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_has_its_own_back_off() {
    let app = TestApp::sqlite_with(|c| c.trusted_proxies = vec!["192.0.2.0/28".into()]).await;
    app.create_user("ada", &[]).await;
    let proxy = addr(1);
    let free = idgraph::service::throttle::ADDRESS_FREE as usize;
    let mut codes = Vec::new();
    for i in 0..free + 3 {
        let request = forwarded(
            login_request(&format!("user{i}"), "Summer2026!"),
            "198.51.100.66",
        );
        let response = app.send_from(proxy, request).await;
        codes.push(error_code(&response.json()).to_string());
    }
    assert!(
        codes[free..].iter().all(|c| c == "TOO_MANY_ATTEMPTS"),
        "{codes:?}"
    );
    let event = app.audit_event("sign_in.failure").await;
    assert_eq!(event.address.as_deref(), Some("198.51.100.66"));
    let real = forwarded(login_request("ada", PASSWORD), "203.0.113.7");
    let answer = app.send_from(proxy, real).await.json();
    assert!(
        answer["errors"].is_null(),
        "the real user signs in: {answer}"
    );

    // An untrusted peer's header is ignored: a new address per request escapes nothing.
    let mut codes = Vec::new();
    for i in 0..free + 3 {
        let request = forwarded(
            login_request(&format!("user{i}"), "x"),
            &format!("198.51.100.{i}"),
        );
        let response = app.send_from(addr(20), request).await;
        codes.push(error_code(&response.json()).to_string());
    }
    assert!(
        codes[free..].iter().all(|c| c == "TOO_MANY_ATTEMPTS"),
        "{codes:?}"
    );
}

crate::on_every_database!(
    deep_nesting_and_fragment_cycles_are_refused_before_parsing,
    long_fragment_chains_and_long_multipart_documents_are_refused,
    long_scope_lists_are_stored_on_both_stores,
    numbers_beyond_their_bounds_are_400_naming_the_field,
    graphql_client_mistakes_are_never_internal,
    nul_is_refused_at_every_edge_naming_the_field,
    the_protocol_endpoints_answer_every_failure_as_uncached_json,
    userinfo_takes_one_token_method_and_answers_rfc_6750,
    response_mode_fragment_puts_the_answer_in_the_fragment,
    a_form_posted_request_never_carries_other_fields_into_the_url,
    spraying_usernames_from_one_address_is_throttled_on_graphql,
    spraying_usernames_from_one_address_is_throttled_on_the_sign_in_pages,
);
