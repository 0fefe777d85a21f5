//! Generated contracts: `schema.graphql` is byte-equal to the server's SDL, and every operation
//! the admin UI uses (`frontend-queries/*.graphql`) is named and valid against it.

use std::path::{Path, PathBuf};

use apollo_compiler::{ExecutableDocument, Schema};
use idgraph::graphql::{Limits, build_schema};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn schema_graphql_matches_the_server_schema() {
    let path = root().join("schema.graphql");
    let sdl = build_schema(Limits::default()).sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &sdl).expect("write schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql differs from the server's schema; regenerate it with `UPDATE_SCHEMA=1 cargo test` and commit it"
    );
}

fn frontend_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("frontend-queries"))
        .expect("frontend-queries/ exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "graphql"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_frontend_operation_is_named_and_valid_against_schema_graphql() {
    let sdl = std::fs::read_to_string(root().join("schema.graphql")).expect("schema.graphql");
    let schema = Schema::parse_and_validate(sdl, "schema.graphql")
        .unwrap_or_else(|e| panic!("schema.graphql is not a valid schema:\n{}", e.errors));
    let files = frontend_files();
    assert!(!files.is_empty(), "no frontend operations found");
    let mut names = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read operation file");
        let document = ExecutableDocument::parse_and_validate(&schema, source, &file)
            .unwrap_or_else(|e| panic!("{} is invalid:\n{}", file.display(), e.errors));
        assert!(
            document.operations.anonymous.is_none(),
            "{} has an anonymous operation; the UI's operations must be named",
            file.display()
        );
        names.extend(
            document
                .operations
                .named
                .keys()
                .map(|name| name.to_string()),
        );
    }
    for required in [
        "Login",
        "Viewer",
        "Logout",
        "RefreshSession",
        "AppsPage",
        "App",
        "CreateApp",
        "UpdateApp",
        "UploadAppLogo",
        "RotateAppSecret",
        "DeleteApp",
        "MyConnections",
        "MyConnection",
        "DeleteConnection",
        "ConsentApp",
        "Authorize",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} missing from {names:?}"
        );
    }
}

/// The source files under `src/<dir>`.
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("UTF-8 source");
                found.push((path, text));
            }
        }
    }
    let mut found = Vec::new();
    walk(&root().join("src").join(dir), &mut found);
    found
}

/// Every route under `/api/oauth` and the probes is declared through utoipa-axum's `routes!`,
/// which writes it into the document: the REST and protocol modules hold no plain axum route,
/// and no other module mounts a path under `/api/oauth`.
#[test]
fn every_rest_and_protocol_route_is_declared_into_the_document() {
    let mut found = Vec::new();
    for dir in ["rest", "oidc"] {
        for (path, text) in sources(dir) {
            if text.contains(".route(") || text.contains("axum::Router") {
                found.push(format!(
                    "{} declares a route outside the document",
                    path.display()
                ));
            }
        }
    }
    for dir in ["web", "graphql", "edge"] {
        for (path, text) in sources(dir) {
            if text.contains("route(\"/api/oauth") || text.contains("nest(\"/api/oauth") {
                found.push(format!("{} mounts a path under /api/oauth", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The OpenAPI document as the server serves it equals the committed `openapi.json`.
#[tokio::test]
async fn openapi_json_matches_the_served_document() {
    let app = crate::common::TestApp::sqlite().await;
    let response = app.get("/api/oauth/openapi.json", None).await;
    response.assert_status(axum::http::StatusCode::OK);
    let served = String::from_utf8(response.body.to_vec()).expect("UTF-8");
    let document: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "not OpenAPI 3.1: {}",
        document["openapi"]
    );
    let path = root().join("openapi.json");
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &served).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "openapi.json differs from the served document; regenerate it with `UPDATE_SCHEMA=1 cargo test --test it contracts` and commit it"
    );
}
