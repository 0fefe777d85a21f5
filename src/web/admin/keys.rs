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

use super::gql::Doc;
use super::{Chrome, Console, Fields, problem_page, render, see_other, when};
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

async fn page(console: &Console, error: String, saved: String) -> Response {
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
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
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
    let saved = if query.rotated.is_empty() {
        String::new()
    } else {
        format!(
            "A new {} key is published; it starts signing once relying parties have had time \
             to fetch it.",
            query.rotated
        )
    };
    page(&console, String::new(), saved).await
}

/// `POST /admin/keys/rotate` (`algorithm`).
async fn rotate(console: Console, axum::Form(form): axum::Form<Vec<(String, String)>>) -> Response {
    let fields = Fields(form);
    if let Some(refused) = console.refuse_forged(fields.get("token")) {
        return refused;
    }
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
        Err(problems) => {
            let text: Vec<String> = problems.into_iter().map(|p| p.full).collect();
            page(&console, text.join(" "), String::new()).await
        }
    }
}
