//! The console's audit trail (role `admin`): newest first, filtered by actor kind, target,
//! action, actor, the user an event is about and time (UTC), paged by cursor. The operation
//! `AuditTrail` of `frontend-queries/audit.graphql`.

use askama::Template;
use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::gql::Doc;
use super::{Chrome, Console, Errors, Listing, render, when};
use crate::domain::audit::{ActorKind, AuditAction, AuditTarget};
use crate::service::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/audit", get(list))
}

/// How many events a page lists.
const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
struct Filters {
    #[serde(default)]
    actor_kind: String,
    #[serde(default)]
    actor_id: String,
    #[serde(default)]
    target_type: String,
    #[serde(default)]
    target_id: String,
    #[serde(default)]
    action: String,
    /// A user id: events about their account and their connections.
    #[serde(default)]
    about_user: String,
    /// From this moment on, as a `datetime-local` field sends it (`2026-12-01T08:30`, UTC).
    #[serde(default)]
    since: String,
    /// Before this moment, likewise.
    #[serde(default)]
    until: String,
    #[serde(default)]
    after: String,
}

/// A `datetime-local` value read as UTC, in RFC 3339 (`2026-12-01T08:30` →
/// `2026-12-01T08:30:00Z`); anything else is passed on as it is, for GraphQL to refuse by name.
fn utc(value: &str) -> String {
    match value.len() {
        16 => format!("{value}:00Z"),
        19 => format!("{value}Z"),
        _ => value.to_string(),
    }
}

impl Filters {
    /// The `AuditFilterInput`: only the filters given.
    fn input(&self) -> Value {
        let mut input = Map::new();
        for (name, value) in [
            ("actorKind", &self.actor_kind),
            ("actorId", &self.actor_id),
            ("targetType", &self.target_type),
            ("targetId", &self.target_id),
            ("aboutUser", &self.about_user),
            ("action", &self.action),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                input.insert(name.into(), value.into());
            }
        }
        for (name, value) in [("since", &self.since), ("until", &self.until)] {
            let value = value.trim();
            if !value.is_empty() {
                input.insert(name.into(), utc(value).into());
            }
        }
        Value::Object(input)
    }

    /// The filters, as the next page's query carries them.
    fn query(&self) -> [(&'static str, &str); 8] {
        [
            ("actor_kind", &self.actor_kind),
            ("actor_id", &self.actor_id),
            ("target_type", &self.target_type),
            ("target_id", &self.target_id),
            ("about_user", &self.about_user),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
        ]
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    at: String,
    actor_kind: String,
    actor_id: Option<String>,
    actor: Option<Named>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    target_user: Option<Named>,
    address: Option<String>,
    detail: Value,
}

#[derive(Deserialize)]
struct Named {
    username: String,
}

struct Row {
    at: String,
    actor: Cell,
    action: String,
    target: Cell,
    address: String,
    detail: String,
}

/// What a column shows, and the console page it leads to (`section` empty: none).
struct Cell {
    text: String,
    section: &'static str,
    id: String,
}

impl Cell {
    /// A user by name, linked to their page; by kind and id when the account is gone.
    fn user(kind: &str, id: Option<String>, named: Option<Named>) -> Self {
        match (id, named) {
            (Some(id), Some(named)) => Cell {
                text: format!("{kind} {}", named.username),
                section: "users",
                id,
            },
            (Some(id), None) => Cell::plain(format!("{kind} {id}")),
            (None, _) => Cell::plain(kind.to_string()),
        }
    }

    /// A target: a user as [`Cell::user`], an app linked to its page, anything else by id.
    fn target(kind: &str, id: Option<String>, named: Option<Named>) -> Self {
        match id {
            _ if kind == AuditTarget::User.as_str() => Cell::user(kind, id, named),
            Some(id) if kind == AuditTarget::App.as_str() => Cell {
                text: format!("{kind} {id}"),
                section: "apps",
                id,
            },
            Some(id) => Cell::plain(format!("{kind} {id}")),
            None => Cell::plain(kind.to_string()),
        }
    }

    fn plain(text: String) -> Self {
        Cell {
            text,
            section: "",
            id: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    filters: Filters,
    actor_kinds: Vec<&'static str>,
    target_types: Vec<&'static str>,
    actions: Vec<&'static str>,
    rows: Vec<Row>,
    next: String,
    general: Vec<String>,
}

/// `GET /admin/audit`.
async fn list(console: Console, Query(filters): Query<Filters>) -> Response {
    let chrome = console.chrome("audit");
    let variables = json!({
        "first": PAGE,
        "after": (!filters.after.is_empty()).then_some(&filters.after),
        "filter": filters.input(),
    });
    let answer = console.gql.run(Doc::Audit, "AuditTrail", variables).await;
    let (rows, next, errors) = match answer.take::<Listing<Event>>("auditEvents") {
        Ok(events) => {
            let next = events.next_link("/admin/audit", &filters.query());
            let rows = events
                .nodes()
                .map(|node| Row {
                    at: when(&node.at),
                    actor: Cell::user(&node.actor_kind, node.actor_id, node.actor),
                    action: node.action,
                    target: Cell::target(&node.target_type, node.target_id, node.target_user),
                    address: node.address.unwrap_or_default(),
                    detail: match &node.detail {
                        Value::Object(map) if map.is_empty() => String::new(),
                        other => other.to_string(),
                    },
                })
                .collect();
            (rows, next, Errors::none())
        }
        Err(problems) => (Vec::new(), String::new(), Errors(problems)),
    };
    let status = errors.status();
    // The filters are few and small: every problem is shown above the results.
    let general = errors.general(&[]);
    render(
        status,
        &AuditPage {
            chrome,
            filters,
            actor_kinds: ActorKind::EVERY.iter().map(|v| v.as_str()).collect(),
            target_types: AuditTarget::EVERY.iter().map(|v| v.as_str()).collect(),
            actions: AuditAction::EVERY.iter().map(|v| v.as_str()).collect(),
            rows,
            next,
            general,
        },
    )
}
