//! The console's user pages (role `admin`): the list (search, paging), creation, and one
//! user's page: profile and roles, disable or enable, a new password, their sessions (end
//! them), their connected apps (revoke one) and deletion. Every read and change is an
//! operation of `frontend-queries/users.graphql`.

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
use super::{
    Chrome, Console, Errors, Listing, Posted, SearchQuery, encode, problem_page, render, see_other,
    when,
};
use crate::service::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/new", get(new))
        .route("/admin/users/{id}", get(show).post(update))
        .route("/admin/users/{id}/password", post(set_password))
        .route(
            "/admin/users/{id}/disable",
            get(confirm_disable).post(disable),
        )
        .route("/admin/users/{id}/enable", post(enable))
        .route("/admin/users/{id}/sessions/end", post(end_sessions))
        .route(
            "/admin/users/{id}/connections/{client_id}/revoke",
            post(revoke_connection),
        )
        .route("/admin/users/{id}/delete", get(confirm_delete).post(delete))
}

/// How many users a page lists.
const PAGE: i64 = 25;

/// The fields of `UserFields`, with the detail's extras.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    username: String,
    email: String,
    name: String,
    roles: Vec<String>,
    disabled: bool,
    disabled_at: Option<String>,
    has_password: bool,
    created_at: String,
    #[serde(default)]
    connection_count: i64,
    #[serde(default)]
    connections: Vec<Connected>,
    #[serde(default)]
    sessions: Vec<Session>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connected {
    client_id: String,
    scope: String,
    access_time: Option<String>,
    app: Option<ConnectedApp>,
}

#[derive(Deserialize)]
struct ConnectedApp {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    kind: String,
    signed_in_at: String,
    expires_at: String,
    current: bool,
}

fn roles_text(roles: &[String]) -> String {
    roles
        .iter()
        .map(|role| role.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Row {
    id: String,
    username: String,
    name: String,
    email: String,
    roles: String,
    status: &'static str,
    connections: i64,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    chrome: Chrome,
    search: String,
    rows: Vec<Row>,
    next: String,
}

/// `GET /admin/users`.
async fn list(console: Console, Query(query): Query<SearchQuery>) -> Response {
    let chrome = console.chrome("users");
    let search = query.search();
    let answer = console
        .gql
        .run(Doc::Users, "UsersPage", query.variables(PAGE))
        .await;
    let page: Listing<User> = match answer.take("users") {
        Ok(page) => page,
        Err(problems) => return problem_page(&chrome, "Users", &problems),
    };
    let next = page.next_link("/admin/users", &[("search", &search)]);
    let rows = page
        .nodes()
        .map(|node| Row {
            roles: roles_text(&node.roles),
            status: if node.disabled { "disabled" } else { "enabled" },
            id: node.id,
            username: node.username,
            name: node.name,
            email: node.email,
            connections: node.connection_count,
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            chrome,
            search,
            rows,
            next,
        },
    )
}

/// The new-user form.
#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage {
    chrome: Chrome,
    username: String,
    email: String,
    name: String,
    admin: bool,
    oauth: bool,
    errors: Errors,
    general: Vec<String>,
}

const NEW_FIELDS: [&str; 5] = ["username", "email", "name", "password", "roles"];

/// `GET /admin/users/new`.
async fn new(console: Console) -> Response {
    render(
        StatusCode::OK,
        &NewPage {
            chrome: console.chrome("users"),
            username: String::new(),
            email: String::new(),
            name: String::new(),
            admin: false,
            oauth: false,
            errors: Errors::none(),
            general: Vec::new(),
        },
    )
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// `POST /admin/users`.
async fn create(Posted { console, fields }: Posted) -> Response {
    let roles = fields.all("roles");
    let password = fields.get("password");
    let input = json!({
        "username": fields.get("username"),
        "email": fields.get("email"),
        "name": fields.get("name"),
        "password": (!password.is_empty()).then_some(password),
        "roles": roles,
    });
    let answer = console
        .gql
        .run(Doc::Users, "CreateUser", json!({ "input": input }))
        .await;
    match answer.take::<Created>("createUser") {
        Ok(created) => see_other(&format!(
            "/admin/users/{}?saved=created",
            encode(&created.id)
        )),
        Err(problems) => {
            let errors = Errors(problems);
            render(
                errors.status(),
                &NewPage {
                    chrome: console.chrome("users"),
                    username: fields.get("username").to_string(),
                    email: fields.get("email").to_string(),
                    name: fields.get("name").to_string(),
                    admin: roles.iter().any(|r| r == "ADMIN"),
                    oauth: roles.iter().any(|r| r == "OAUTH"),
                    general: errors.general(&NEW_FIELDS),
                    errors,
                },
            )
        }
    }
}

struct ConnectionRow {
    client_id: String,
    app_name: String,
    scope: String,
    last_used: String,
}

struct SessionRow {
    kind: &'static str,
    signed_in: String,
    expires: String,
    current: bool,
}

/// One user's page.
#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    chrome: Chrome,
    id: String,
    username: String,
    /// The profile form's values (as posted, after a refused change).
    email: String,
    name: String,
    admin: bool,
    oauth: bool,
    errors: Errors,
    general: Vec<String>,
    disabled: bool,
    disabled_at: String,
    has_password: bool,
    created: String,
    password_error: String,
    action_error: String,
    connections: Vec<ConnectionRow>,
    sessions: Vec<SessionRow>,
    saved: String,
}

const PROFILE_FIELDS: [&str; 3] = ["email", "name", "roles"];

/// Reads the user into a page.
async fn user_page(console: &Console, id: &str) -> Result<UserPage, Response> {
    let chrome = console.chrome("users");
    let answer = console
        .gql
        .run(Doc::Users, "UserDetail", json!({ "id": id }))
        .await;
    let user = match answer.take::<Option<User>>("user") {
        Ok(Some(user)) => user,
        Ok(None) => {
            let missing = [Problem::general(
                "NOT_FOUND",
                "There is no such user.".into(),
            )];
            return Err(problem_page(&chrome, "No such user", &missing));
        }
        Err(problems) => return Err(problem_page(&chrome, "User", &problems)),
    };
    Ok(UserPage {
        chrome,
        admin: user.roles.iter().any(|r| r == "ADMIN"),
        oauth: user.roles.iter().any(|r| r == "OAUTH"),
        id: user.id,
        username: user.username,
        email: user.email,
        name: user.name,
        errors: Errors::none(),
        general: Vec::new(),
        disabled: user.disabled,
        disabled_at: user.disabled_at.map(|at| when(&at)).unwrap_or_default(),
        has_password: user.has_password,
        created: when(&user.created_at),
        password_error: String::new(),
        action_error: String::new(),
        connections: user
            .connections
            .into_iter()
            .map(|c| ConnectionRow {
                app_name: c.app.map_or_else(|| c.client_id.clone(), |app| app.name),
                client_id: c.client_id,
                scope: c.scope,
                last_used: c.access_time.map(|at| when(&at)).unwrap_or_default(),
            })
            .collect(),
        sessions: user
            .sessions
            .into_iter()
            .map(|s| SessionRow {
                kind: if s.kind == "BROWSER" {
                    "browser"
                } else {
                    "API"
                },
                signed_in: when(&s.signed_in_at),
                expires: when(&s.expires_at),
                current: s.current,
            })
            .collect(),
        saved: String::new(),
    })
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    #[serde(default)]
    saved: String,
}

/// `GET /admin/users/{id}`.
async fn show(
    console: Console,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    match user_page(&console, &id).await {
        Ok(mut page) => {
            page.saved = match query.saved.as_str() {
                "created" => "User created.",
                "profile" => "Saved.",
                "password" => "Password set.",
                "disabled" => {
                    "Disabled: they cannot sign in, and their sessions and app grants ended."
                }
                "enabled" => "Enabled.",
                "sessions" => "Their sessions ended.",
                "revoked" => "Connection revoked.",
                _ => "",
            }
            .into();
            render(StatusCode::OK, &page)
        }
        Err(response) => response,
    }
}

/// `POST /admin/users/{id}`: email, name and roles.
async fn update(Path(id): Path<String>, Posted { console, fields }: Posted) -> Response {
    let roles = fields.all("roles");
    let input = json!({
        "email": fields.get("email"),
        "name": fields.get("name"),
        "roles": roles,
    });
    let answer = console
        .gql
        .run(
            Doc::Users,
            "UpdateUser",
            json!({ "id": id, "input": input }),
        )
        .await;
    match answer.take::<Value>("updateUser") {
        Ok(_) => see_other(&format!("/admin/users/{}?saved=profile", encode(&id))),
        Err(problems) => match user_page(&console, &id).await {
            Ok(mut page) => {
                let errors = Errors(problems);
                page.email = fields.get("email").to_string();
                page.name = fields.get("name").to_string();
                page.admin = roles.iter().any(|r| r == "ADMIN");
                page.oauth = roles.iter().any(|r| r == "OAUTH");
                page.general = errors.general(&PROFILE_FIELDS);
                let status = errors.status();
                page.errors = errors;
                render(status, &page)
            }
            Err(response) => response,
        },
    }
}

/// Runs a one-button change on user `id` and goes back to their page, or shows why not.
async fn act(
    console: &Console,
    id: &str,
    operation: &str,
    variables: Value,
    saved: &str,
) -> Response {
    let answer = console.gql.run(Doc::Users, operation, variables).await;
    let root = {
        let mut name = operation.to_string();
        name[..1].make_ascii_lowercase();
        name
    };
    match answer.take::<Value>(&root) {
        Ok(_) => see_other(&format!("/admin/users/{}?saved={saved}", encode(id))),
        Err(problems) => match user_page(console, id).await {
            Ok(mut page) => {
                let status = problems
                    .first()
                    .map_or(StatusCode::INTERNAL_SERVER_ERROR, Problem::status);
                let text: Vec<String> = problems.into_iter().map(|p| p.full).collect();
                if operation == "SetUserPassword" {
                    page.password_error = text.join(" ");
                } else {
                    page.action_error = text.join(" ");
                }
                render(status, &page)
            }
            Err(response) => response,
        },
    }
}

/// `POST /admin/users/{id}/password`.
async fn set_password(Path(id): Path<String>, Posted { console, fields }: Posted) -> Response {
    let vars = json!({ "id": id, "password": fields.get("password") });
    act(&console, &id, "SetUserPassword", vars, "password").await
}

/// `GET /admin/users/{id}/disable`: "Disable USERNAME?"
async fn confirm_disable(console: Console, Path(id): Path<String>) -> Response {
    confirm(&console, &id, "disable", |page| {
        (
            format!("Disable {}?", page.username),
            format!(
                "{} ({}) will no longer be able to sign in; their sessions end and the tokens of \
                 every app they use stop working at once. Enabling the account later lets them \
                 sign in again, and each app asks them to sign in anew.",
                page.username, page.email
            ),
            format!("Disable {}", page.username),
        )
    })
    .await
}

/// A page asking to confirm `change` (the path's last segment) of user `id`; `words` gives its
/// title, what will happen, and the button.
async fn confirm(
    console: &Console,
    id: &str,
    change: &str,
    words: impl FnOnce(&UserPage) -> (String, String, String),
) -> Response {
    let page = match user_page(console, id).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    let (title, text, button) = words(&page);
    let path = format!("/admin/users/{}", encode(id));
    render(
        StatusCode::OK,
        &ConfirmPage {
            title,
            text,
            action: format!("{path}/{change}"),
            button,
            back: path,
            chrome: page.chrome,
        },
    )
}

/// `POST /admin/users/{id}/disable`.
async fn disable(Path(id): Path<String>, Posted { console, .. }: Posted) -> Response {
    let vars = json!({ "id": id });
    act(&console, &id, "DisableUser", vars, "disabled").await
}

/// `POST /admin/users/{id}/enable`.
async fn enable(Path(id): Path<String>, Posted { console, .. }: Posted) -> Response {
    let vars = json!({ "id": id });
    act(&console, &id, "EnableUser", vars, "enabled").await
}

/// `POST /admin/users/{id}/sessions/end`.
async fn end_sessions(Path(id): Path<String>, Posted { console, .. }: Posted) -> Response {
    let vars = json!({ "id": id });
    act(&console, &id, "EndUserSessions", vars, "sessions").await
}

/// `POST /admin/users/{id}/connections/{client_id}/revoke`.
async fn revoke_connection(
    Path((id, client_id)): Path<(String, String)>,
    Posted { console, .. }: Posted,
) -> Response {
    let vars = json!({ "userId": id, "clientId": client_id });
    act(&console, &id, "RevokeUserConnection", vars, "revoked").await
}

/// `GET /admin/users/{id}/delete`: "Delete USERNAME?"
async fn confirm_delete(console: Console, Path(id): Path<String>) -> Response {
    confirm(&console, &id, "delete", |page| {
        (
            format!("Delete {}?", page.username),
            format!(
                "The user {} ({}) will be deleted with their connections, sessions and grants; \
                 apps they registered stay, without a creator. This cannot be undone.",
                page.username, page.email
            ),
            format!("Delete {}", page.username),
        )
    })
    .await
}

/// `POST /admin/users/{id}/delete`.
async fn delete(Path(id): Path<String>, Posted { console, .. }: Posted) -> Response {
    let answer = console
        .gql
        .run(Doc::Users, "DeleteUser", json!({ "id": id }))
        .await;
    match answer.take::<Value>("deleteUser") {
        Ok(_) => see_other("/admin/users"),
        Err(problems) => problem_page(&console.chrome("users"), "Delete user", &problems),
    }
}
