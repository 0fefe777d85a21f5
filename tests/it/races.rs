//! Requests that race each other: a request that loses gets the answer it would get a moment
//! later (404, 409), never a 500; the sign-in back-off counts concurrent attempts before it
//! checks any password; parallel sign-ins of one person to one app each get working tokens.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::common::browser::{Browser, authorize_path, redirect_query};
use crate::common::rp::{REDIRECT, VERIFIER, basic, s256, setup, token};
use crate::common::{PASSWORD, TestApp, TestResponse, error_code, json_request};
use crate::fixtures::{BOUNDARY, image, multipart_file};

const TRIALS: usize = 10;

fn assert_no_server_error(responses: &[TestResponse], allowed: &[StatusCode]) {
    for response in responses {
        assert!(
            allowed.contains(&response.status),
            "{}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
}

/// An app deleted while it is updated, rotated, given a logo or consented to: each request
/// either happened before the delete or finds the app gone.
async fn deleting_an_app_while_it_is_changed_never_answers_500(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let logo = image(image::ImageFormat::Png, 32, 32);
    for trial in 0..TRIALS {
        let created = app
            .register_app(&admin, &format!("Doomed {trial}"), "", REDIRECT)
            .await;
        let id = created.client_id;
        let path = format!("/api/oauth/app/id/{id}");
        let logo_request = Request::builder()
            .method(Method::PUT)
            .uri(format!("{path}/image"))
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(multipart_file(
                "image",
                "l.png",
                "image/png",
                &logo,
            )))
            .unwrap();
        let answers = app
            .send_all(vec![
                json_request(Method::DELETE, &path, Some(&admin), None),
                json_request(
                    Method::PUT,
                    &path,
                    Some(&admin),
                    Some(json!({ "name": "Renamed", "redirect_uri": REDIRECT })),
                ),
                json_request(Method::PUT, &format!("{path}/rotate"), Some(&admin), None),
                logo_request,
                json_request(
                    Method::POST,
                    "/api/oauth/auth/code",
                    Some(&rp.user_token),
                    Some(json!({ "client_id": id, "scope": "openid" })),
                ),
            ])
            .await;
        answers[0].assert_status(StatusCode::NO_CONTENT);
        assert_no_server_error(
            &answers[1..],
            &[
                StatusCode::OK,
                StatusCode::NO_CONTENT,
                StatusCode::NOT_FOUND,
                StatusCode::CONFLICT,
            ],
        );
        // Whatever won, nothing of the app is left behind.
        assert_eq!(app.get(&path, None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.get(&format!("{path}/image"), None).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

/// A user withdrawing their connection while the app is deleted: the two delete the same
/// connection and grants, and take them in one order (the connection, then its grants), so
/// neither waits on the other; the withdrawal that loses finds the connection gone (404).
async fn withdrawing_a_connection_while_its_app_is_deleted_never_answers_500(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    for trial in 0..TRIALS {
        let created = app
            .register_app(&admin, &format!("Doomed {trial}"), "", REDIRECT)
            .await;
        let id = created.client_id;
        for _ in 0..3 {
            let consented = app
                .rest(
                    Method::POST,
                    "/api/oauth/auth/code",
                    Some(&rp.user_token),
                    Some(json!({ "client_id": id, "scope": "openid" })),
                )
                .await;
            consented.assert_status(StatusCode::OK);
        }
        let answers = app
            .send_all(vec![
                json_request(
                    Method::DELETE,
                    &format!("/api/oauth/connection/id/{id}"),
                    Some(&rp.user_token),
                    None,
                ),
                json_request(
                    Method::DELETE,
                    &format!("/api/oauth/app/id/{id}"),
                    Some(&admin),
                    None,
                ),
            ])
            .await;
        answers[1].assert_status(StatusCode::NO_CONTENT);
        assert_no_server_error(
            &answers[..1],
            &[StatusCode::NO_CONTENT, StatusCode::NOT_FOUND],
        );
    }
}

/// An app deleted while its tokens are revoked (RFC 7009): a revocation that comes first ends
/// its grant (and, each grant being a hosted sign-in's, remembers the app for the browser
/// session, a row the deletion then cascades into); one that comes after finds the app gone
/// and its client unknown. 200 or 401, never a 500, and nothing of the app is left.
async fn revoking_tokens_while_their_app_is_deleted_never_answers_500(app: TestApp) {
    use idgraph::db::entities::{grants, session_apps};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let rp = setup(&app, "ops", "ada").await;
    let admin = app.token("ops", None).await;
    let mut browser = Browser::new(&app);
    let first = browser.get(&authorize_path(&rp, &[])).await;
    browser.sign_in(&first, "ada", PASSWORD).await;
    let scope = [("scope", "openid offline_access")];
    for trial in 0..TRIALS {
        let created = app
            .register_app(&admin, &format!("Doomed {trial}"), "", REDIRECT)
            .await;
        let doomed = rp.for_app(&created);
        let mut revocations = Vec::new();
        for _ in 0..2 {
            let page = browser.get(&authorize_path(&doomed, &scope)).await;
            // The first flow asks for consent; the second finds it remembered.
            let answered = if page.status == StatusCode::SEE_OTHER {
                page
            } else {
                browser.press(&page, "approve").await
            };
            let code = redirect_query(&answered)["code"].clone();
            let redeemed = token(
                &app,
                &doomed,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
            redeemed.assert_status(StatusCode::OK);
            let tokens = redeemed.json();
            for kind in ["refresh_token", "access_token"] {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("token", tokens[kind].as_str().unwrap())
                    .finish();
                revocations.push(
                    Request::builder()
                        .method(Method::POST)
                        .uri("/api/oauth/revoke")
                        .header(
                            header::AUTHORIZATION,
                            basic(&doomed.client_id, &doomed.secret),
                        )
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from(form))
                        .unwrap(),
                );
            }
        }
        let path = format!("/api/oauth/app/id/{}", doomed.client_id);
        let mut requests = vec![json_request(Method::DELETE, &path, Some(&admin), None)];
        requests.extend(revocations);
        let answers = app.send_all(requests).await;
        answers[0].assert_status(StatusCode::NO_CONTENT);
        assert_no_server_error(&answers[1..], &[StatusCode::OK, StatusCode::UNAUTHORIZED]);
        let left = grants::Entity::find()
            .filter(grants::Column::ClientId.eq(doomed.client_id.as_str()))
            .count(&app.state.db)
            .await
            .unwrap()
            + session_apps::Entity::find()
                .filter(session_apps::Column::ClientId.eq(doomed.client_id.as_str()))
                .count(&app.state.db)
                .await
                .unwrap();
        assert_eq!(left, 0, "rows of the deleted app are left");
    }
}

/// 100 logins for one username at once: each attempt is counted before its password is
/// checked, so at most the username's allowance of passwords is checked at all (an answer of
/// `INVALID_CREDENTIALS` means a password was checked; `TOO_MANY_ATTEMPTS`, that none was).
async fn concurrent_logins_for_one_username_check_at_most_the_allowance(app: TestApp) {
    app.create_user("ada", &[]).await;
    let login = |password: &str| {
        let body = json!({
            "query": "mutation L($input: LoginInput!) { login(input: $input) { accessToken } }",
            "variables": { "input": { "username": "ada", "password": password } },
        });
        Request::builder()
            .method(Method::POST)
            .uri("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let answers = app
        .send_all((0..100).map(|_| login("guess")).collect())
        .await;
    let codes: Vec<String> = answers
        .iter()
        .map(|a| error_code(&a.json()).to_string())
        .collect();
    let checked = codes.iter().filter(|c| *c == "INVALID_CREDENTIALS").count();
    let throttled = codes.iter().filter(|c| *c == "TOO_MANY_ATTEMPTS").count();
    assert_eq!(checked + throttled, 100, "{codes:?}");
    assert!(
        checked <= idgraph::service::throttle::USER_FREE as usize,
        "{checked} passwords checked"
    );
}

/// The same for 50 posts of the hosted sign-in form at once.
async fn concurrent_hosted_sign_ins_check_at_most_the_allowance(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_path(&rp, &[])).await;
    let html = crate::common::browser::text(&page);
    let (csrf, request) = (
        crate::common::browser::hidden(&html, "csrf"),
        crate::common::browser::hidden(&html, "request"),
    );
    let cookie = browser.cookie.clone().unwrap();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("action", "signin"),
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("username", "ada"),
            ("password", "guess"),
        ])
        .finish();
    let posts = (0..50)
        .map(|_| {
            Request::builder()
                .method(Method::POST)
                .uri("/oauth/authorize")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("idgraph_session={cookie}"))
                .body(Body::from(form.clone()))
                .unwrap()
        })
        .collect();
    let answers = app.send_all(posts).await;
    let checked = answers
        .iter()
        .filter(|a| a.status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + throttled, 50);
    assert!(
        checked <= idgraph::service::throttle::USER_FREE as usize,
        "{checked}"
    );
}

/// One person signs in to one app from two tabs at once: both flows end with working tokens
/// (each consent is a code of its own, each redemption a family of its own).
async fn two_parallel_flows_of_one_user_for_one_app_both_work(app: TestApp) {
    let rp = setup(&app, "ops", "ada").await;
    let mut browser = Browser::new(&app);
    let scope = [("scope", "openid profile offline_access")];
    let first_tab = browser.get(&authorize_path(&rp, &scope)).await;
    let consent_one = browser.sign_in(&first_tab, "ada", PASSWORD).await;
    let consent_two = browser.get(&authorize_path(&rp, &scope)).await;
    consent_two.assert_status(StatusCode::OK);
    let code_one = redirect_query(&browser.press(&consent_one, "approve").await)["code"].clone();
    let code_two = redirect_query(&browser.press(&consent_two, "approve").await)["code"].clone();
    let redeem = |code: String| {
        let app = &app;
        let rp = &rp;
        async move {
            let response = token(
                app,
                rp,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
            response.assert_status(StatusCode::OK);
            response.json()
        }
    };
    let (one, two) = tokio::join!(redeem(code_one), redeem(code_two));
    for tokens in [&one, &two] {
        let access = tokens["access_token"].as_str().unwrap();
        let info = app.get("/api/oauth/userinfo", Some(access)).await;
        info.assert_status(StatusCode::OK);
        let refreshed = token(
            &app,
            &rp,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        refreshed.assert_status(StatusCode::OK);
    }
    // Fifty parallel consents through the API: every code redeems.
    let body = json!({ "client_id": rp.client_id, "scope": "openid", "code_challenge": s256(VERIFIER), "code_challenge_method": "S256" });
    let answers = app
        .send_all(
            (0..50)
                .map(|_| {
                    json_request(
                        Method::POST,
                        "/api/oauth/auth/code",
                        Some(&rp.user_token),
                        Some(body.clone()),
                    )
                })
                .collect(),
        )
        .await;
    for answer in answers {
        answer.assert_status(StatusCode::OK);
        let code = answer.json()["code"].as_str().unwrap().to_string();
        redeem(code).await;
    }
}

crate::on_every_database!(
    deleting_an_app_while_it_is_changed_never_answers_500,
    withdrawing_a_connection_while_its_app_is_deleted_never_answers_500,
    revoking_tokens_while_their_app_is_deleted_never_answers_500,
    concurrent_logins_for_one_username_check_at_most_the_allowance,
    concurrent_hosted_sign_ins_check_at_most_the_allowance,
    two_parallel_flows_of_one_user_for_one_app_both_work,
);
