//! The console's signing-key page (role `admin`): every key's state, algorithm and dates,
//! rotation per algorithm, and revocation of a published key (after a confirmation naming it).
//! Operations of `frontend-queries/keys.graphql`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::ConfirmPage;
use super::gql::{Doc, Problem};
use super::{Chrome, Console, Posted, encode, problem_page, render, see_other, when};
use crate::domain::capabilities::SigningAlgorithm;
use crate::service::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list))
        .route("/admin/keys/rotate", post(rotate))
        .route("/admin/keys/{kid}/revoke", get(confirm_revoke).post(revoke))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Key {
    kid: String,
    algorithm: String,
    state: String,
    published: bool,
    created_at: String,
    activates_at: Option<String>,
    retires_at: Option<String>,
}

struct Row {
    kid: String,
    /// Still published: it may be revoked.
    published: bool,
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
    #[serde(default)]
    revoked: String,
}

/// The keys, or the problem page to show instead.
async fn signing_keys(console: &Console, chrome: &Chrome) -> Result<Vec<Key>, Response> {
    let answer = console.gql.run(Doc::Keys, "SigningKeys", json!({})).await;
    answer
        .take("signingKeys")
        .map_err(|problems| problem_page(chrome, "Signing keys", &problems))
}

async fn page(console: &Console, problems: Vec<Problem>, saved: String) -> Response {
    let chrome = console.chrome("keys");
    let keys = match signing_keys(console, &chrome).await {
        Ok(keys) => keys,
        Err(response) => return response,
    };
    let rows = keys
        .into_iter()
        .map(|key| Row {
            published: key.published,
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
        Err(_) if query.revoked == "1" => "The key is revoked: it is no longer published and \
             nothing it signed is accepted."
            .into(),
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

/// `GET /admin/keys/{kid}/revoke`: "Revoke the key …?"
async fn confirm_revoke(console: Console, Path(kid): Path<String>) -> Response {
    let chrome = console.chrome("keys");
    let keys = match signing_keys(&console, &chrome).await {
        Ok(keys) => keys,
        Err(response) => return response,
    };
    let Some(key) = keys.into_iter().find(|key| key.kid == kid) else {
        let missing = [Problem::general(
            "NOT_FOUND",
            format!("There is no signing key {kid}."),
        )];
        return problem_page(&chrome, "No such key", &missing);
    };
    render(
        StatusCode::OK,
        &ConfirmPage {
            title: format!("Revoke the {} key {}?", key.algorithm, key.kid),
            text: format!(
                "Do this when the key has leaked. It leaves the published key set at once and \
                 nothing it signed is accepted any more: access, session and ID tokens it \
                 signed stop working (clients holding refresh tokens get new ones). Another {} \
                 key signs in its place. This cannot be undone.",
                key.algorithm
            ),
            action: format!("/admin/keys/{}/revoke", encode(&key.kid)),
            button: format!("Revoke {}", key.kid),
            back: "/admin/keys".into(),
            chrome,
        },
    )
}

/// `POST /admin/keys/{kid}/revoke`.
async fn revoke(Path(kid): Path<String>, Posted { console, .. }: Posted) -> Response {
    let answer = console
        .gql
        .run(Doc::Keys, "RevokeSigningKey", json!({ "kid": kid }))
        .await;
    match answer.take::<Value>("revokeSigningKey") {
        Ok(_) => see_other("/admin/keys?revoked=1"),
        Err(problems) => page(&console, problems, String::new()).await,
    }
}
