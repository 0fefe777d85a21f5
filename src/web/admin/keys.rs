//! The console's signing-key page (role `admin`): every key's state, algorithm and dates, and
//! rotation per algorithm. Operations of `frontend-queries/keys.graphql`.

use askama::Template;
use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::gql::{Doc, Problem};
use super::{Chrome, Console, Posted, problem_page, render, see_other, when};
use crate::domain::capabilities::SigningAlgorithm;
use crate::service::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list))
        .route("/admin/keys/rotate", post(rotate))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Key {
    kid: String,
    algorithm: String,
    state: String,
    created_at: String,
    activates_at: Option<String>,
    retires_at: Option<String>,
}

struct Row {
    kid: String,
    algorithm: String,
    state: String,
    created: String,
    activates: String,
    retires: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    rows: Vec<Row>,
    error: String,
    saved: String,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    rotated: String,
}

async fn page(console: &Console, problems: Vec<Problem>, saved: String) -> Response {
    let chrome = console.chrome("keys");
    let answer = console.gql.run(Doc::Keys, "SigningKeys", json!({})).await;
    let keys: Vec<Key> = match answer.take("signingKeys") {
        Ok(keys) => keys,
        Err(problems) => return problem_page(&chrome, "Signing keys", &problems),
    };
    let rows = keys
        .into_iter()
        .map(|key| Row {
            kid: key.kid,
            algorithm: key.algorithm,
            state: key.state.to_ascii_lowercase(),
            created: when(&key.created_at),
            activates: key
                .activates_at
                .map_or_else(|| "on creation".into(), |at| when(&at)),
            retires: key.retires_at.map(|at| when(&at)).unwrap_or_default(),
        })
        .collect();
    let status = problems.first().map_or(StatusCode::OK, Problem::status);
    let error = problems
        .iter()
        .map(|p| p.full.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    render(
        status,
        &KeysPage {
            chrome,
            rows,
            error,
            saved,
        },
    )
}

/// `GET /admin/keys`.
async fn list(console: Console, Query(query): Query<ListQuery>) -> Response {
    // Only a name of ours is echoed.
    let saved = match query.rotated.parse::<SigningAlgorithm>() {
        Ok(algorithm) => format!(
            "A new {algorithm} key is published; it starts signing once relying parties have \
             had time to fetch it."
        ),
        Err(_) => String::new(),
    };
    page(&console, Vec::new(), saved).await
}

/// `POST /admin/keys/rotate` (`algorithm`).
async fn rotate(Posted { console, fields }: Posted) -> Response {
    let algorithm = fields.get("algorithm");
    let answer = console
        .gql
        .run(
            Doc::Keys,
            "RotateSigningKey",
            json!({ "algorithm": algorithm }),
        )
        .await;
    match answer.take::<Value>("rotateSigningKey") {
        Ok(key) => {
            let algorithm = key["algorithm"].as_str().unwrap_or_default();
            see_other(&format!("/admin/keys?rotated={}", super::encode(algorithm)))
        }
        Err(problems) => page(&console, problems, String::new()).await,
    }
}
