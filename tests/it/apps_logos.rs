//! App logos: formats judged by their bytes, limits, the stored PNG, ETags, deletion.

use axum::http::{Method, StatusCode};
use image::ImageFormat;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::common::{TestApp, TestResponse, error_code};
use crate::fixtures::{
    BOUNDARY, graphql_upload, image, jpeg_with_thumbnail, multipart_file, png_declaring,
};

async fn new_app(app: &TestApp) -> (String, String) {
    let token = app.oauth_admin("ops").await;
    let body = json!({ "name": "Logo", "url": "", "redirect_uri": "https://l.example/cb" });
    let created = app
        .rest(Method::POST, "/api/oauth/app", Some(&token), Some(body))
        .await
        .json();
    (created["client_id"].as_str().unwrap().to_string(), token)
}

async fn upload(
    app: &TestApp,
    client_id: &str,
    token: &str,
    filename: &str,
    bytes: &[u8],
) -> TestResponse {
    let body = multipart_file("image", filename, "image/png", bytes);
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    app.send_bytes(
        Method::PUT,
        &format!("/api/oauth/app/id/{client_id}/image"),
        Some(token),
        &content_type,
        &[],
        body,
    )
    .await
}

async fn png_jpeg_and_gif_become_a_256_pixel_png_with_a_tiny_preview(app: TestApp) {
    let (client_id, token) = new_app(&app).await;
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif] {
        let response = upload(
            &app,
            &client_id,
            &token,
            "logo.bin",
            &image(format, 640, 300),
        )
        .await;
        assert_eq!(
            response.status,
            StatusCode::NO_CONTENT,
            "{format:?}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let served = app
            .get(&format!("/api/oauth/app/id/{client_id}/image"), None)
            .await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.header("content-type"), Some("image/png"));
        assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
        assert!(served.header("cache-control").is_some());
        let decoded = image::load_from_memory_with_format(&served.body, ImageFormat::Png).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (256, 256),
            "{format:?}"
        );
    }
    let app_json = app
        .get(&format!("/api/oauth/app/id/{client_id}"), None)
        .await
        .json();
    let preview = app_json["logo"].as_str().unwrap();
    assert!(preview.starts_with("data:image/png;base64,"), "{preview}");
    assert!(preview.len() < 1000, "preview is {} bytes", preview.len());
    let gql = app
        .graphql(
            "query($id: ID!) { app(clientId: $id) { logoUrl } }",
            json!({ "id": client_id }),
            None,
        )
        .await;
    assert_eq!(
        gql["data"]["app"]["logoUrl"],
        format!("http://idgraph.test/api/oauth/app/id/{client_id}/image")
    );
}

async fn bad_images_are_400_and_change_nothing(app: TestApp) {
    let (client_id, token) = new_app(&app).await;
    let png = image(ImageFormat::Png, 64, 64);
    let jpeg = image(ImageFormat::Jpeg, 64, 64);
    let gif = image(ImageFormat::Gif, 64, 64);
    // Cut in the middle of the main image: the thumbnail's markers are all there.
    let (camera, main_starts) = jpeg_with_thumbnail(128, 128);
    let cut = main_starts + (camera.len() - main_starts) / 2;
    let cases: [(&str, Vec<u8>); 7] = [
        ("truncated png", png[..png.len() / 2].to_vec()),
        ("truncated jpeg", jpeg[..jpeg.len() / 2].to_vec()),
        ("truncated jpeg with a thumbnail", camera[..cut].to_vec()),
        ("truncated gif", gif[..gif.len() - 2].to_vec()),
        ("text named .png", b"this is not an image at all".to_vec()),
        ("bomb", png_declaring(50_000)),
        ("bmp", image(ImageFormat::Bmp, 8, 8)),
    ];
    for (what, bytes) in cases {
        let response = upload(&app, &client_id, &token, "logo.png", &bytes).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{what}");
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("image:"), "{what}: {message}");
    }
    let missing_field = multipart_file("picture", "a.png", "image/png", &png);
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let response = app
        .send_bytes(
            Method::PUT,
            &format!("/api/oauth/app/id/{client_id}/image"),
            Some(&token),
            &content_type,
            &[],
            missing_field,
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get(&format!("/api/oauth/app/id/{client_id}/image"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/oauth/app/id/{client_id}"), None)
            .await
            .json()["logo"],
        ""
    );
}

async fn oversized_uploads_are_413(app: TestApp) {
    let (client_id, token) = new_app(&app).await;
    let big = vec![0u8; 3 * 1024 * 1024];
    let response = upload(&app, &client_id, &token, "big.png", &big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json()["code"], "PAYLOAD_TOO_LARGE");
    let gql = app
        .send_bytes(
            Method::POST,
            "/graphql",
            Some(&token),
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            &[("apollo-require-preflight", "true")],
            graphql_upload("mutation($clientId: ID!, $image: Upload!) { uploadAppLogo(clientId: $clientId, image: $image) { logo } }", &client_id, &big),
        )
        .await;
    assert_eq!(gql.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn the_logo_etag_answers_304(app: TestApp) {
    let (client_id, token) = new_app(&app).await;
    let path = format!("/api/oauth/app/id/{client_id}/image");
    assert_eq!(
        app.get(&path, None).await.status,
        StatusCode::NOT_FOUND,
        "no logo yet"
    );
    upload(
        &app,
        &client_id,
        &token,
        "a.png",
        &image(ImageFormat::Png, 32, 32),
    )
    .await;
    let first = app.get(&path, None).await;
    let etag = first.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let request = axum::http::Request::builder()
        .uri(&path)
        .header("if-none-match", format!("\"other\", {etag}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let cached = app.send(request).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));

    upload(
        &app,
        &client_id,
        &token,
        "b.png",
        &image(ImageFormat::Png, 40, 10),
    )
    .await;
    let request = axum::http::Request::builder()
        .uri(&path)
        .header("if-none-match", etag.clone())
        .body(axum::body::Body::empty())
        .unwrap();
    let changed = app.send(request).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

async fn graphql_uploads_follow_the_multipart_request_spec(app: TestApp) {
    let (client_id, token) = new_app(&app).await;
    let query = "mutation UploadAppLogo($clientId: ID!, $image: Upload!) { uploadAppLogo(clientId: $clientId, image: $image) { logo logoUrl } }";
    let body = graphql_upload(query, &client_id, &image(ImageFormat::Jpeg, 300, 500));
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let refused = app
        .send_bytes(
            Method::POST,
            "/graphql",
            Some(&token),
            &content_type,
            &[],
            body.clone(),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "multipart without a preflight header is CSRF-refused"
    );
    let response = app
        .send_bytes(
            Method::POST,
            "/graphql",
            Some(&token),
            &content_type,
            &[("apollo-require-preflight", "true")],
            body,
        )
        .await;
    let json = response.json();
    assert!(json["errors"].is_null(), "{json}");
    assert!(
        json["data"]["uploadAppLogo"]["logo"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png")
    );
    let bad = graphql_upload(query, &client_id, &png_declaring(50_000));
    let response = app
        .send_bytes(
            Method::POST,
            "/graphql",
            Some(&token),
            &content_type,
            &[("apollo-require-preflight", "true")],
            bad,
        )
        .await;
    assert_eq!(error_code(&response.json()), "INVALID_INPUT");
}

async fn deleting_an_app_deletes_its_logo(app: TestApp) {
    let (client_id, token) = new_app(&app).await;
    upload(
        &app,
        &client_id,
        &token,
        "a.png",
        &image(ImageFormat::Png, 32, 32),
    )
    .await;
    let logos = idgraph::db::entities::app_logos::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(logos.len(), 1);
    app.rest(
        Method::DELETE,
        &format!("/api/oauth/app/id/{client_id}"),
        Some(&token),
        None,
    )
    .await;
    let logos = idgraph::db::entities::app_logos::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(logos.is_empty());
    assert_eq!(
        app.get(&format!("/api/oauth/app/id/{client_id}/image"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

crate::on_every_database!(
    png_jpeg_and_gif_become_a_256_pixel_png_with_a_tiny_preview,
    bad_images_are_400_and_change_nothing,
    oversized_uploads_are_413,
    the_logo_etag_answers_304,
    graphql_uploads_follow_the_multipart_request_spec,
    deleting_an_app_deletes_its_logo,
);
