//! The admin console (`/admin`) over the real router: who gets in, the form token, errors next
//! to their fields, and that its pages change things only through GraphQL's rules. The
//! headless-Chromium walk through every page is in `browser.rs`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use idgraph::db::entities::{apps, signing_keys};
use idgraph::domain::Role;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::common::browser::{Browser, hidden, text};
use crate::common::{PASSWORD, TestApp};

async fn app_count(app: &TestApp) -> u64 {
    apps::Entity::find().count(&app.state.db).await.unwrap()
}

/// Signs `username` (created with `roles`) in on the console.
async fn signed_in<'a>(app: &'a TestApp, username: &str, roles: &[Role]) -> Browser<'a> {
    app.create_user(username, roles).await;
    let mut browser = Browser::new(app);
    let answer = browser.console_sign_in(username, PASSWORD).await;
    answer.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(answer.header("location"), Some("/admin"));
    browser
}

/// The console token of the page at `path`.
async fn token_of(browser: &mut Browser<'_>, path: &str) -> String {
    let page = browser.get(path).await;
    page.assert_status(StatusCode::OK);
    hidden(&text(&page), "token")
}

const APP_FORM: [(&str, &str); 5] = [
    ("name", "Billing"),
    ("url", "https://billing.example"),
    ("redirect_uris", "https://billing.example/cb"),
    ("token_endpoint_auth_method", "CLIENT_SECRET_BASIC"),
    ("grant_types", "AUTHORIZATION_CODE"),
];

/// The value of the input with id `id` in `html`.
fn value_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    crate::common::browser::unescape(&html[start..end])
}

fn with_token<'a>(token: &'a str, form: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("token", token)];
    fields.extend_from_slice(form);
    fields
}

#[tokio::test]
async fn a_browser_without_a_session_is_sent_to_sign_in() {
    let app = TestApp::sqlite().await;
    let mut browser = Browser::new(&app);
    let answer = browser.get("/admin/apps?search=x").await;
    answer.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some("/admin/signin?next=%2Fadmin%2Fapps%3Fsearch%3Dx")
    );
    // After signing in, only a console path is followed.
    app.create_user("root", &[Role::Admin]).await;
    let page = browser.get("/admin/signin?next=//evil.example/").await;
    let html = text(&page);
    assert_eq!(hidden(&html, "next"), "/admin");
    let answer = browser
        .post(
            "/admin/signin",
            &[
                ("token", &hidden(&html, "token")),
                ("next", "https://evil.example/admin"),
                ("username", "root"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(answer.header("location"), Some("/admin"));
    for next in [
        "/admin//evil.example",
        "/admin\\evil",
        "/admin/ü",
        "/administrator",
    ] {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        let page = browser.get(&format!("/admin/signin?{query}")).await;
        assert_eq!(hidden(&text(&page), "next"), "/admin", "{next}");
    }
    let page = browser
        .get("/admin/signin?next=%2Fadmin%2Fusers%3Fsearch%3Dx")
        .await;
    assert_eq!(hidden(&text(&page), "next"), "/admin/users?search=x");
}

#[tokio::test]
async fn an_htmx_request_without_a_session_is_told_to_load_the_sign_in_page() {
    let app = TestApp::sqlite().await;
    let mut browser = Browser::new(&app);
    let answer = browser
        .send_request(
            Request::builder()
                .uri("/admin/users?search=a")
                .header("hx-request", "true"),
            Body::empty(),
        )
        .await;
    answer.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        answer.header("hx-redirect"),
        Some("/admin/signin?next=%2Fadmin%2Fusers%3Fsearch%3Da")
    );
}

#[tokio::test]
async fn a_person_without_admin_or_oauth_is_refused_every_page() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "plain", &[]).await;
    for path in ["/admin/apps", "/admin/users", "/admin/keys", "/admin/audit"] {
        let page = browser.get(path).await;
        page.assert_status(StatusCode::FORBIDDEN);
        assert!(text(&page).contains("Not for this account"), "{path}");
    }
    // They cannot post a form either, token or not.
    let token = hidden(&text(&browser.get("/admin/apps").await), "token");
    let answer = browser
        .post("/admin/apps", &with_token(&token, &APP_FORM))
        .await;
    answer.assert_status(StatusCode::FORBIDDEN);
    assert_eq!(app_count(&app).await, 0);
}

#[tokio::test]
async fn an_app_manager_sees_apps_but_no_user_pages() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "ops", &[Role::Oauth]).await;
    let page = browser.get("/admin").await;
    assert_eq!(page.header("location"), Some("/admin/apps"));
    let page = browser.get("/admin/apps").await;
    page.assert_status(StatusCode::OK);
    let html = text(&page);
    assert!(!html.contains("href=\"/admin/users\""), "{html}");
    // An app's page leads an app manager to no audit trail.
    let token = app.token("ops", None).await;
    let registered = app
        .register_app(
            &token,
            "Billing",
            "https://billing.example",
            "https://billing.example/cb",
        )
        .await;
    let html = text(
        &browser
            .get(&format!("/admin/apps/{}", registered.client_id))
            .await,
    );
    assert!(html.contains("Client id"), "{html}");
    assert!(!html.contains("/admin/audit"), "{html}");
    // The schema refuses what the navigation hides.
    let page = browser.get("/admin/users").await;
    page.assert_status(StatusCode::FORBIDDEN);
    assert!(text(&page).contains("admin role"), "{}", text(&page));
}

#[tokio::test]
async fn a_form_without_its_token_changes_nothing() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let token = token_of(&mut browser, "/admin/apps/new").await;

    let missing = browser.post("/admin/apps", &APP_FORM).await;
    missing.assert_status(StatusCode::FORBIDDEN);
    // Another browser's token does not fit this cookie.
    let mut other = signed_in(&app, "root2", &[Role::Admin]).await;
    let foreign = token_of(&mut other, "/admin/apps/new").await;
    assert_ne!(foreign, token);
    let wrong = browser
        .post("/admin/apps", &with_token(&foreign, &APP_FORM))
        .await;
    wrong.assert_status(StatusCode::FORBIDDEN);
    assert_eq!(app_count(&app).await, 0);

    // The very same form with its token registers the app and shows the secret once.
    let created = browser
        .post("/admin/apps", &with_token(&token, &APP_FORM))
        .await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(app_count(&app).await, 1);
    let html = text(&created);
    let (client_id, secret) = (
        value_of(&html, "client-id"),
        value_of(&html, "client-secret"),
    );
    assert!(app.secret_works(&client_id, &secret).await);
}

#[tokio::test]
async fn signing_in_needs_the_pages_token() {
    let app = TestApp::sqlite().await;
    app.create_user("root", &[Role::Admin]).await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/admin/signin").await;
    let token = hidden(&text(&page), "token");
    // Posted from elsewhere: the anchor cookie is there, the token is not.
    let forged = browser
        .post(
            "/admin/signin",
            &[("username", "root"), ("password", PASSWORD)],
        )
        .await;
    forged.assert_status(StatusCode::FORBIDDEN);
    assert!(browser.get("/admin/apps").await.status == StatusCode::SEE_OTHER);
    let good = browser
        .post(
            "/admin/signin",
            &[
                ("token", token.as_str()),
                ("username", "root"),
                ("password", PASSWORD),
            ],
        )
        .await;
    good.assert_status(StatusCode::SEE_OTHER);
    browser
        .get("/admin/apps")
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again() {
    let app = TestApp::sqlite().await;
    app.create_user("root", &[Role::Admin]).await;
    let mut browser = Browser::new(&app);
    let answer = browser.console_sign_in("root", "not the password").await;
    answer.assert_status(StatusCode::UNAUTHORIZED);
    assert!(text(&answer).contains("The username or password is not right."));
    browser
        .get("/admin/apps")
        .await
        .assert_status(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn errors_from_graphql_appear_next_to_their_field() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let token = token_of(&mut browser, "/admin/apps/new").await;
    let mut form = with_token(&token, &APP_FORM);
    form[3] = ("redirect_uris", "https://billing.example/cb#fragment");
    let answer = browser.post("/admin/apps", &form).await;
    answer.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let html = text(&answer);
    let at = html
        .find("id=\"redirect_uris-error\"")
        .unwrap_or_else(|| panic!("no error beside redirect_uris: {html}"));
    assert!(html[at..].contains("fragment"), "{html}");
    // What was typed is kept.
    assert!(html.contains("https://billing.example/cb#fragment"));
    assert_eq!(app_count(&app).await, 0);

    let token = token_of(&mut browser, "/admin/users/new").await;
    let answer = browser
        .post(
            "/admin/users",
            &[
                ("token", token.as_str()),
                ("username", "Not Valid"),
                ("email", "x@example.com"),
            ],
        )
        .await;
    answer.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let html = text(&answer);
    assert!(html.contains("id=\"username-error\""), "{html}");

    // A conflict about one field is shown beside it too: `root` is taken (by the admin).
    let token = token_of(&mut browser, "/admin/users/new").await;
    let answer = browser
        .post(
            "/admin/users",
            &[
                ("token", token.as_str()),
                ("username", "root"),
                ("email", "x@example.com"),
            ],
        )
        .await;
    let html = text(&answer);
    let at = html
        .find("id=\"username-error\"")
        .unwrap_or_else(|| panic!("no error beside username: {html}"));
    assert!(html[at..].contains("already taken"), "{html}");
}

/// Every console page, and what the framework answers by itself on a console path, carries the
/// strict policy: scripts and styles from this origin only, never framed; the templates hold no
/// inline script, style or event handler that such a policy would block.
#[tokio::test]
async fn every_console_page_runs_under_a_strict_content_security_policy() {
    const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
        img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
        base-uri 'none'";
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin, Role::Oauth]).await;
    for path in [
        "/admin/apps",
        "/admin/apps/new",
        "/admin/users",
        "/admin/users/new",
        "/admin/keys",
        "/admin/audit",
    ] {
        let page = browser.get(path).await;
        page.assert_status(StatusCode::OK);
        assert_eq!(
            page.header("content-security-policy"),
            Some(POLICY),
            "{path}"
        );
    }
    let refused = browser.get("/admin/signout").await;
    refused.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    let policy = refused
        .header("content-security-policy")
        .unwrap_or_default();
    // The hosted pages' policy, which runs no script at all.
    assert!(
        policy.starts_with("default-src 'none';")
            && !policy.contains("script-src")
            && policy.contains("frame-ancestors 'none'"),
        "{policy:?}"
    );
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));

    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let mut checked = 0;
    for entry in walk(std::path::Path::new(templates)) {
        let html = std::fs::read_to_string(&entry)
            .unwrap()
            .to_ascii_lowercase();
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            assert!(
                tag.contains(" src="),
                "inline script in {}",
                entry.display()
            );
        }
        for inline in [
            " style=",
            " onclick=",
            " onload=",
            " onsubmit=",
            " onchange=",
            "<style",
        ] {
            assert!(!html.contains(inline), "{inline} in {}", entry.display());
        }
        checked += 1;
    }
    assert!(checked > 10, "the templates were found ({checked})");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn rotating_a_signing_key_from_the_console_is_audited_as_the_admin() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let root = idgraph::db::entities::users::Entity::find()
        .filter(idgraph::db::entities::users::Column::Username.eq("root"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let before = signing_keys::Entity::find()
        .filter(signing_keys::Column::Algorithm.eq("ES256"))
        .count(&app.state.db)
        .await
        .unwrap();
    let token = token_of(&mut browser, "/admin/keys").await;
    let answer = browser
        .post(
            "/admin/keys/rotate",
            &[("token", token.as_str()), ("algorithm", "ES256")],
        )
        .await;
    answer.assert_status(StatusCode::SEE_OTHER);
    let page = browser.get(answer.header("location").unwrap()).await;
    let html = text(&page);
    assert!(html.contains("A new ES256 key is published"), "{html}");
    // Only an algorithm of ours is echoed back from the address.
    let forged = text(&browser.get("/admin/keys?rotated=RS256%20forged").await);
    assert!(!forged.contains("A new"), "{forged}");
    assert!(
        html.contains("badge next"),
        "the new key waits to sign: {html}"
    );
    let after = signing_keys::Entity::find()
        .filter(signing_keys::Column::Algorithm.eq("ES256"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(after, before + 1);
    let event = app.audit_event("signing_key.rotate").await;
    assert_eq!(event.actor_kind, "user");
    assert_eq!(event.actor_id.as_deref(), Some(root.id.as_str()));
    // The trail names the administrator and leads to their page.
    let trail = text(&browser.get("/admin/audit?action=signing_key.rotate").await);
    let link = format!(r#"<a href="/admin/users/{}">user root</a>"#, root.id);
    assert!(trail.contains(&link), "{trail}");
}

/// Revoking a key from the console: the keys page links each published key to a confirmation
/// naming it; the confirmation's form without its token changes nothing, with it the key is
/// revoked (audited as the administrator) and the page says so.
#[tokio::test]
async fn revoking_a_signing_key_from_the_console_asks_first() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let key = signing_keys::Entity::find()
        .filter(signing_keys::Column::Algorithm.eq("RS256"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let path = format!("/admin/keys/{}/revoke", key.kid);
    let listing = text(&browser.get("/admin/keys").await);
    assert!(listing.contains(&format!(r#"href="{path}""#)), "{listing}");
    let confirm = browser.get(&path).await;
    confirm.assert_status(StatusCode::OK);
    let html = text(&confirm);
    assert!(
        html.contains(&format!("Revoke the RS256 key {}?", key.kid)),
        "{html}"
    );
    let state = || async {
        signing_keys::Entity::find_by_id(key.kid.clone())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .state
    };
    browser
        .post(&path, &[])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(state().await, "active", "nothing changed without the token");
    let token = hidden(&html, "token");
    let answer = browser.post(&path, &[("token", token.as_str())]).await;
    answer.assert_status(StatusCode::SEE_OTHER);
    let page = text(&browser.get(answer.header("location").unwrap()).await);
    assert!(page.contains("The key is revoked"), "{page}");
    assert!(page.contains("badge revoked"), "{page}");
    assert!(
        !page.contains(&format!(r#"href="{path}""#)),
        "a revoked key has nothing left to revoke"
    );
    assert_eq!(state().await, "revoked");
    let event = app.audit_event("signing_key.revoke").await;
    assert_eq!(event.actor_kind, "user");
}

/// The audit page narrows the trail to a time range, as a `datetime-local` field sends it
/// (UTC), and its next-page link keeps the range.
#[tokio::test]
async fn the_audit_page_filters_by_time() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    app.create_user("ada", &[]).await;
    app.advance(std::time::Duration::from_secs(2 * 3600));
    let middle = app.now() - 3600;
    app.create_user("bob", &[]).await;
    let field = chrono::DateTime::from_timestamp(middle, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let trail = |html: &str, name: &str| html.contains(&format!(">user {name}</a>"));
    let since = text(&browser.get(&format!("/admin/audit?since={field}")).await);
    assert!(trail(&since, "bob") && !trail(&since, "ada"), "{since}");
    assert!(
        since.contains(&format!("value=\"{field}\"")),
        "the field keeps its value"
    );
    let until = text(&browser.get(&format!("/admin/audit?until={field}")).await);
    assert!(trail(&until, "ada") && !trail(&until, "bob"), "{until}");
}

#[tokio::test]
async fn the_audit_page_names_a_user_until_the_account_is_deleted() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let ada = app.create_user("ada", &[]).await;
    let path = format!("/admin/audit?about_user={}", ada.id);
    let trail = text(&browser.get(&path).await);
    let link = format!(r#"<a href="/admin/users/{}">user ada</a>"#, ada.id);
    assert!(trail.contains(&link), "{trail}");
    assert!(
        trail.contains("<td>cli</td>"),
        "created by the operator: {trail}"
    );
    // Her page leads to her history.
    let page = text(&browser.get(&format!("/admin/users/{}", ada.id)).await);
    assert!(
        page.contains(&format!(r#"href="{path}">their history"#)),
        "{page}"
    );
    // An app's page leads an administrator to its history.
    let root = app.token("root", None).await;
    let registered = app
        .register_app(
            &root,
            "Billing",
            "https://billing.example",
            "https://billing.example/cb",
        )
        .await;
    let client_id = &registered.client_id;
    let page = text(&browser.get(&format!("/admin/apps/{client_id}")).await);
    let history = format!(r#"href="/admin/audit?target_id={client_id}">its history"#);
    assert!(page.contains(&history), "{page}");

    let token = token_of(&mut browser, &format!("/admin/users/{}/delete", ada.id)).await;
    let answer = browser
        .post(
            &format!("/admin/users/{}/delete", ada.id),
            &[("token", token.as_str())],
        )
        .await;
    answer.assert_status(StatusCode::SEE_OTHER);
    let trail = text(&browser.get(&path).await);
    assert!(!trail.contains(&link), "{trail}");
    assert!(trail.contains(&format!("user {}", ada.id)), "{trail}");
}

#[tokio::test]
async fn graphql_accepts_the_console_session_only_without_cross_site_forms() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let body = json!({ "query": "{ viewer { username } users(first: 5) { edges { node { username } } } }" });
    let answer = browser
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/graphql")
                .header(header::CONTENT_TYPE, "application/json"),
            Body::from(body.to_string()),
        )
        .await;
    answer.assert_status(StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["data"]["viewer"]["username"], "root", "{json}");
    // The same request as a form a page of another site could post: refused before it runs.
    let answer = browser
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/graphql")
                .header(header::CONTENT_TYPE, "text/plain"),
            Body::from(body.to_string()),
        )
        .await;
    answer.assert_status(StatusCode::BAD_REQUEST);
    // Mutations never run over GET, cookie or not.
    let answer = browser
        .get("/graphql?query=mutation%20%7B%20endOtherSessions%20%7D")
        .await;
    answer.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    // The REST paths never take the cookie.
    let answer = browser.get("/api/oauth/app").await;
    answer.assert_status(StatusCode::UNAUTHORIZED);

    // A session of someone the console is not for counts for nothing on /graphql.
    let mut plain = signed_in(&app, "plain", &[]).await;
    let answer = plain
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/graphql")
                .header(header::CONTENT_TYPE, "application/json"),
            Body::from(json!({ "query": "{ viewer { username } }" }).to_string()),
        )
        .await;
    let json = answer.json();
    assert_eq!(
        crate::common::error_code(&json),
        "UNAUTHENTICATED",
        "{json}"
    );
}

#[tokio::test]
async fn an_administrator_manages_a_user_through_the_pages() {
    let app = TestApp::sqlite().await;
    let rp = crate::common::rp::setup(&app, "ops", "ada").await;
    crate::common::rp::consent(&app, &rp, json!({ "scope": "openid" })).await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let ada = format!("/admin/users/{}", rp.user_id);
    let token = token_of(&mut browser, &ada).await;
    let page = text(&browser.get(&ada).await);
    assert!(page.contains("RP"), "her connected app is listed: {page}");

    // Profile and roles.
    let answer = browser
        .post(
            &ada,
            &[
                ("token", token.as_str()),
                ("email", "ada@lovelace.example"),
                ("name", "Ada Lovelace"),
            ],
        )
        .await;
    assert_eq!(
        answer.header("location"),
        Some(&*format!("{ada}?saved=profile"))
    );
    let row = idgraph::db::entities::users::Entity::find_by_id(rp.user_id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.email.as_str(), row.name.as_str(), row.roles.as_str()),
        ("ada@lovelace.example", "Ada Lovelace", ""),
        "no role box ticked: the oauth role is gone"
    );

    // A password too short is shown beside its field and changes nothing.
    let short = browser
        .post(
            &format!("{ada}/password"),
            &[("token", token.as_str()), ("password", "short")],
        )
        .await;
    short.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(&short).contains("id=\"password-error\""));
    assert!(app.login_error("ada", PASSWORD).await.is_none());
    let set = browser
        .post(
            &format!("{ada}/password"),
            &[
                ("token", token.as_str()),
                ("password", "a brand new password"),
            ],
        )
        .await;
    set.assert_status(StatusCode::SEE_OTHER);
    assert!(
        app.login_error("ada", "a brand new password")
            .await
            .is_none()
    );
    assert!(app.login_error("ada", PASSWORD).await.is_some());

    // Her app connection is revoked, her sessions end; she is disabled, then enabled.
    let revoke = format!("{ada}/connections/{}/revoke", rp.client_id);
    browser
        .post(&revoke, &[("token", token.as_str())])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let page = text(&browser.get(&ada).await);
    assert!(page.contains("No connected app."), "{page}");
    browser
        .post(&format!("{ada}/sessions/end"), &[("token", token.as_str())])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let live = idgraph::db::entities::sessions::Entity::find()
        .filter(idgraph::db::entities::sessions::Column::UserId.eq(rp.user_id.as_str()))
        .filter(idgraph::db::entities::sessions::Column::RevokedAt.is_null())
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(live, 0, "her sessions ended");
    // Disabling asks first, naming her; asking changes nothing.
    let confirm = text(&browser.get(&format!("{ada}/disable")).await);
    assert!(confirm.contains("Disable ada?"), "{confirm}");
    assert!(
        app.login_error("ada", "a brand new password")
            .await
            .is_none()
    );
    browser
        .post(&format!("{ada}/disable"), &[("token", token.as_str())])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert!(
        app.login_error("ada", "a brand new password")
            .await
            .is_some()
    );
    browser
        .post(&format!("{ada}/enable"), &[("token", token.as_str())])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert!(
        app.login_error("ada", "a brand new password")
            .await
            .is_none()
    );

    // Deleting asks first, naming her.
    let confirm = text(&browser.get(&format!("{ada}/delete")).await);
    assert!(confirm.contains("Delete ada?"), "{confirm}");
    let gone = browser
        .post(&format!("{ada}/delete"), &[("token", token.as_str())])
        .await;
    assert_eq!(gone.header("location"), Some("/admin/users"));
    assert!(
        idgraph::db::entities::users::Entity::find_by_id(rp.user_id.clone())
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
    browser.get(&ada).await.assert_status(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_app_is_edited_its_secret_revoked_and_deleted_through_the_pages() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "ops", &[Role::Oauth]).await;
    let token = token_of(&mut browser, "/admin/apps/new").await;
    let created = text(
        &browser
            .post("/admin/apps", &with_token(&token, &APP_FORM))
            .await,
    );
    let (client_id, secret) = (
        value_of(&created, "client-id"),
        value_of(&created, "client-secret"),
    );
    let path = format!("/admin/apps/{client_id}");

    // Every field is saved; a public client has no secret to rotate.
    let answer = browser
        .post(
            &path,
            &[
                ("token", token.as_str()),
                ("name", "Billing SPA"),
                ("url", "https://billing.example"),
                (
                    "redirect_uris",
                    "https://billing.example/cb\nhttp://127.0.0.1:8000/cb",
                ),
                ("post_logout_redirect_uris", "https://billing.example/bye"),
                ("token_endpoint_auth_method", "NONE"),
                ("grant_types", "AUTHORIZATION_CODE"),
                ("grant_types", "REFRESH_TOKEN"),
                ("scope", "openid profile"),
                ("id_token_signed_response_alg", "ES256"),
                ("resources", ""),
                ("backchannel_logout_uri", "https://billing.example/logout"),
                ("backchannel_logout_session_required", "on"),
            ],
        )
        .await;
    assert_eq!(
        answer.header("location"),
        Some(&*format!("{path}?saved=app"))
    );
    let stored = apps::Entity::find_by_id(client_id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Billing SPA");
    let page = text(&browser.get(&path).await);
    for shown in [
        "http://127.0.0.1:8000/cb",
        "https://billing.example/bye",
        "value=\"NONE\" selected",
        "value=\"ES256\" selected",
        "value=\"openid profile\"",
        "A public client has no secret",
    ] {
        assert!(page.contains(shown), "{shown} missing from {page}");
    }

    // Back to confidential: rotate with no grace, then revoke the newest; the old secret
    // stopped at the rotation.
    let answer = browser
        .post(
            &path,
            &[
                ("token", token.as_str()),
                ("name", "Billing"),
                ("redirect_uris", "https://billing.example/cb"),
                ("token_endpoint_auth_method", "CLIENT_SECRET_BASIC"),
                ("grant_types", "AUTHORIZATION_CODE"),
            ],
        )
        .await;
    answer.assert_status(StatusCode::SEE_OTHER);
    let rotated = text(
        &browser
            .post(
                &format!("{path}/secrets"),
                &[("token", token.as_str()), ("grace_seconds", "0")],
            )
            .await,
    );
    let newest = value_of(&rotated, "client-secret");
    assert!(app.secret_works(&client_id, &newest).await);
    assert!(!app.secret_works(&client_id, &secret).await);
    let page = text(&browser.get(&path).await);
    let marker = format!("{path}/secrets/");
    let at = page.find(&marker).expect("a revoke form") + marker.len();
    let secret_id = &page[at..at + page[at..].find('/').unwrap()];
    // Revoking asks first, naming the app; asking changes nothing.
    let confirm = text(
        &browser
            .get(&format!("{path}/secrets/{secret_id}/revoke"))
            .await,
    );
    assert!(confirm.contains("Revoke a secret of Billing?"), "{confirm}");
    assert!(app.secret_works(&client_id, &newest).await);
    let missing = browser.get(&format!("{path}/secrets/nosuch/revoke")).await;
    missing.assert_status(StatusCode::NOT_FOUND);
    browser
        .post(
            &format!("{path}/secrets/{secret_id}/revoke"),
            &[("token", token.as_str())],
        )
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert!(!app.secret_works(&client_id, &newest).await);

    // Deleting asks first, naming the app.
    let confirm = text(&browser.get(&format!("{path}/delete")).await);
    assert!(confirm.contains("Delete Billing?"), "{confirm}");
    let gone = browser
        .post(&format!("{path}/delete"), &[("token", token.as_str())])
        .await;
    assert_eq!(gone.header("location"), Some("/admin/apps"));
    assert_eq!(app_count(&app).await, 0);
}

#[tokio::test]
async fn the_app_list_searches_and_pages() {
    let app = TestApp::sqlite().await;
    let admin = app.oauth_admin("ops").await;
    for n in 0..27 {
        app.register_app(
            &admin,
            &format!("App {n:02}"),
            "https://app.example",
            "https://app.example/cb",
        )
        .await;
    }
    let mut browser = Browser::new(&app);
    let answer = browser.console_sign_in("ops", PASSWORD).await;
    answer.assert_status(StatusCode::SEE_OTHER);
    let rows = |html: &str| html.matches("<td><a href=\"/admin/apps/").count();

    let first = text(&browser.get("/admin/apps").await);
    assert_eq!(rows(&first), 25);
    let marker = "<a href=\"";
    let next_at = first.find("rel=\"next\"").expect("a next-page link");
    let start = first[..next_at].rfind(marker).unwrap() + marker.len();
    let next =
        crate::common::browser::unescape(&first[start..start + first[start..].find('"').unwrap()]);
    let second = text(&browser.get(&next).await);
    assert_eq!(rows(&second), 2, "{next}");
    assert!(second.contains("App 26") && !second.contains("rel=\"next\""));

    let found = text(&browser.get("/admin/apps?search=app%201").await);
    assert_eq!(rows(&found), 10, "App 10 to App 19");
    assert!(
        found.contains("value=\"app 1\""),
        "the search stays in its box"
    );
    let none = text(&browser.get("/admin/apps?search=nothing").await);
    assert!(none.contains("No app matches"), "{none}");
}

#[tokio::test]
async fn a_logo_upload_or_a_non_form_post_without_the_token_changes_nothing() {
    let app = TestApp::sqlite().await;
    let mut browser = signed_in(&app, "root", &[Role::Admin]).await;
    let token = token_of(&mut browser, "/admin/apps/new").await;
    let created = text(
        &browser
            .post("/admin/apps", &with_token(&token, &APP_FORM))
            .await,
    );
    let client_id = value_of(&created, "client-id");
    let logo = |token: Option<&str>| {
        let boundary = crate::fixtures::BOUNDARY;
        let mut body = Vec::new();
        if let Some(token) = token {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n{token}\r\n"
                )
                .as_bytes(),
            );
        }
        let file = crate::fixtures::multipart_file(
            "image",
            "logo.png",
            "image/png",
            &crate::fixtures::image(image::ImageFormat::Png, 64, 64),
        );
        body.extend_from_slice(&file);
        (
            Request::builder()
                .method(Method::POST)
                .uri(format!("/admin/apps/{client_id}/logo"))
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                ),
            Body::from(body),
        )
    };
    let has_logo = || async {
        !apps::Entity::find_by_id(client_id.clone())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .logo
            .is_empty()
    };

    let (request, body) = logo(None);
    browser
        .send_request(request, body)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let (request, body) = logo(Some("forged"));
    browser
        .send_request(request, body)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert!(!has_logo().await);
    let (request, body) = logo(Some(&token));
    let answer = browser.send_request(request, body).await;
    answer.assert_status(StatusCode::SEE_OTHER);
    assert!(has_logo().await, "the same upload with its token is stored");

    // JSON to a form route carries no token: refused, nothing renamed.
    let answer = browser
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri(format!("/admin/apps/{client_id}"))
                .header(header::CONTENT_TYPE, "application/json"),
            Body::from(json!({ "token": token, "name": "Renamed" }).to_string()),
        )
        .await;
    answer.assert_status(StatusCode::FORBIDDEN);
    let stored = apps::Entity::find_by_id(client_id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Billing");
}
