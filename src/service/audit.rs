//! The audit trail: every security-relevant change is stored in `audit_events` in the
//! transaction of the change itself (so a change that fails leaves no event, and an event never
//! goes missing for a change that committed), then written to the log with target `audit` once
//! the change has committed. Administrators read it with [`list`]; the housekeeping sweep deletes
//! events older than `audit_retention_days`.
//!
//! The request a change came from (its `x-request-id` and the client's address) is ambient, like
//! a tracing span: the HTTP stack runs every request inside [`within`], and [`record`] reads it.
//! Outside a request (the command line, a schedule) both are empty.
//!
//! Failed sign-ins are recorded too, at most [`SIGN_IN_EVENTS_PER_MINUTE`] per node and minute,
//! so that a flood of bad passwords cannot fill the disk; the next event recorded says how many
//! were left out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::{Map, Value};

use crate::auth::Principal;
use crate::db::entities::audit_events;
use crate::domain::Scope;
use crate::domain::audit::{
    ActorKind, AuditAction, AuditCursor, AuditEvent, AuditFilter, AuditTarget,
};
use crate::domain::ids::UserId;
use crate::domain::page::{Page, split_page};
use crate::error::AppResult;
use crate::service::AppState;

/// The request a change is made in.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
    /// The client's address.
    pub address: Option<IpAddr>,
}

tokio::task_local! {
    static REQUEST: RequestMeta;
}

/// Runs `work` (a request's handling) with `meta` as the request every event it records names.
pub async fn within<F: Future>(meta: RequestMeta, work: F) -> F::Output {
    REQUEST.scope(meta, work).await
}

fn current_request() -> RequestMeta {
    REQUEST.try_with(Clone::clone).unwrap_or_default()
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User(UserId),
    /// The operator at the command line.
    Cli,
    /// idgraph itself, on a schedule.
    System,
    /// Nobody signed in.
    Anonymous,
}

impl Actor {
    /// The actor behind a principal: the user, or the operator for [`Principal::System`] (only
    /// the command line and the start-up bootstrap act as it).
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::User(user) => Actor::User(user.user_id.clone()),
            Principal::System => Actor::Cli,
            _ => Actor::Anonymous,
        }
    }

    fn kind(&self) -> ActorKind {
        match self {
            Actor::User(_) => ActorKind::User,
            Actor::Cli => ActorKind::Cli,
            Actor::System => ActorKind::System,
            Actor::Anonymous => ActorKind::Anonymous,
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id.as_str()),
            _ => None,
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Entry {
    action: AuditAction,
    target: AuditTarget,
    target_id: Option<String>,
    detail: Map<String, Value>,
}

impl Entry {
    /// `action` done to the `target` with id `target_id`.
    pub fn new(action: AuditAction, target: AuditTarget, target_id: impl Into<String>) -> Self {
        Self {
            action,
            target,
            target_id: Some(target_id.into()),
            detail: Map::new(),
        }
    }

    /// `action` done to a `target` whose id is not known (a sign-in for an unknown username).
    pub fn unnamed(action: AuditAction, target: AuditTarget) -> Self {
        Self {
            action,
            target,
            target_id: None,
            detail: Map::new(),
        }
    }

    /// Adds a detail. Never pass a secret, a password or a token.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }
}

/// A recorded event whose log line is still to be written: call [`Recorded::log`] once the
/// transaction that recorded it has committed, so the log never tells of a change undone.
#[must_use = "log the event once its transaction has committed"]
pub struct Recorded {
    actor: Actor,
    entry: Entry,
    request: RequestMeta,
}

impl Recorded {
    /// Writes the audit log line (target `audit`).
    pub fn log(self) {
        let detail = Value::Object(self.entry.detail).to_string();
        tracing::info!(
            target: "audit",
            action = self.entry.action.as_str(),
            actor.kind = self.actor.kind().as_str(),
            actor.id = self.actor.id().unwrap_or("-"),
            target.kind = self.entry.target.as_str(),
            target.id = self.entry.target_id.as_deref().unwrap_or("-"),
            request_id = self.request.request_id.as_deref().unwrap_or("-"),
            detail = %detail,
            "audit event"
        );
    }
}

/// Stores `entry` as done by `actor` at `now`, through `db` (the transaction of the change).
pub async fn record(
    db: &impl ConnectionTrait,
    now: i64,
    actor: &Actor,
    entry: Entry,
) -> AppResult<Recorded> {
    let request = current_request();
    audit_events::Entity::insert(audit_events::ActiveModel {
        id: NotSet,
        at: Set(now),
        actor_kind: Set(actor.kind().as_str().to_string()),
        actor_id: Set(actor.id().map(str::to_string)),
        action: Set(entry.action.as_str().to_string()),
        target_type: Set(entry.target.as_str().to_string()),
        target_id: Set(entry.target_id.clone()),
        request_id: Set(request.request_id.clone()),
        address: Set(request.address.map(|addr| addr.to_string())),
        detail: Set(Value::Object(entry.detail.clone()).to_string()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(Recorded {
        actor: actor.clone(),
        entry,
        request,
    })
}

/// Most sign-in events (failures and back-off refusals) one node records per minute naming an
/// account, and as many again for usernames that name none.
pub const SIGN_IN_EVENTS_PER_MINUTE: u32 = 60;
/// Most of those one account may take per minute, so that a flood aimed at one account leaves
/// room to see the others.
pub const SIGN_IN_EVENTS_PER_ACCOUNT: u32 = 10;

/// This node's budget of sign-in events, per clock minute: [`SIGN_IN_EVENTS_PER_MINUTE`] for
/// unknown usernames, as many for accounts (at most [`SIGN_IN_EVENTS_PER_ACCOUNT`] each). A
/// flood of made-up usernames therefore never crowds out the failures against a real account.
#[derive(Debug, Default)]
pub struct SignInBudget {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    minute: i64,
    unknown: u32,
    known: u32,
    /// Events taken this minute per account (at most [`SIGN_IN_EVENTS_PER_MINUTE`] entries).
    per_account: HashMap<String, u32>,
    left_out: u64,
}

impl SignInBudget {
    /// Takes one event about `account` (`None`: the username named none) from the budget at
    /// `now`: `Some(n)` when it may be recorded, `n` being how many were left out since the
    /// last one recorded; `None` when the budget it draws on is spent.
    fn take(&self, now: i64, account: Option<&str>) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let minute = now.div_euclid(60);
        if window.minute != minute {
            *window = Window {
                minute,
                left_out: window.left_out,
                ..Window::default()
            };
        }
        let room = match account {
            None => window.unknown < SIGN_IN_EVENTS_PER_MINUTE,
            Some(id) => {
                window.known < SIGN_IN_EVENTS_PER_MINUTE
                    && window.per_account.get(id).copied().unwrap_or(0) < SIGN_IN_EVENTS_PER_ACCOUNT
            }
        };
        if !room {
            window.left_out += 1;
            return None;
        }
        match account {
            None => window.unknown += 1,
            Some(id) => {
                window.known += 1;
                *window.per_account.entry(id.to_string()).or_default() += 1;
            }
        }
        Some(std::mem::take(&mut window.left_out))
    }
}

/// Records a refused sign-in by `actor` (its own statement, outside any transaction), within
/// this node's budget. `user` is the account the username named, when there is one; the
/// username itself is not stored (people type passwords into it). A failure to record is
/// logged, never the caller's problem: the sign-in is refused either way.
pub async fn sign_in_refused(
    state: &AppState,
    actor: &Actor,
    action: AuditAction,
    user: Option<&str>,
) {
    let now = state.clock.now();
    let Some(left_out) = state.audit.take(now, user) else {
        return;
    };
    let mut entry = match user {
        Some(id) => Entry::new(action, AuditTarget::User, id),
        None if action == AuditAction::SignInFailure => {
            Entry::unnamed(action, AuditTarget::User).with("unknown_username", true)
        }
        None => Entry::unnamed(action, AuditTarget::User),
    };
    if left_out > 0 {
        entry = entry.with("left_out_before", left_out);
    }
    match record(&state.db, now, actor, entry).await {
        Ok(recorded) => recorded.log(),
        Err(err) => tracing::warn!(error = %err, "a refused sign-in could not be audited"),
    }
}

/// The events about `user`: on their account (target `user` with their id) or on one of their
/// connections (target `connection` with id `<user>/<client id>`). The prefix is compared
/// exactly (`substr(…) =`), not with `LIKE`, which SQLite matches without regard to case.
fn about_user(user: &str) -> Condition {
    use audit_events::Column as C;
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    let prefix = format!("{user}/");
    // `integer` arguments: PostgreSQL has no `substr` taking `bigint`. The filter's length is
    // bounded (`AuditFilter::validate`), so the count fits.
    let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    let leading = Func::cust("substr")
        .arg(Expr::col(C::TargetId))
        .arg(1i32)
        .arg(length);
    Condition::any()
        .add(
            Condition::all()
                .add(C::TargetType.eq(AuditTarget::User.as_str()))
                .add(C::TargetId.eq(user)),
        )
        .add(
            Condition::all()
                .add(C::TargetType.eq(AuditTarget::Connection.as_str()))
                .add(ExprTrait::eq(Expr::expr(leading), prefix)),
        )
}

/// Administrators (`gov.user.admin.audit:read`): the trail, newest first, filtered.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: AuditFilter,
    page: Page<AuditCursor>,
) -> AppResult<(Vec<AuditEvent>, bool)> {
    principal.require_admin(Scope::AuditRead)?;
    let filter = filter.validate()?;
    use audit_events::Column as C;
    let mut when = Condition::all();
    if let Some(actor) = &filter.actor_id {
        when = when.add(C::ActorId.eq(actor.as_str()));
    }
    if let Some(kind) = filter.actor_kind {
        when = when.add(C::ActorKind.eq(kind.as_str()));
    }
    if let Some(target) = filter.target_type {
        when = when.add(C::TargetType.eq(target.as_str()));
    }
    if let Some(id) = &filter.target_id {
        when = when.add(C::TargetId.eq(id.as_str()));
    }
    if let Some(user) = &filter.about_user {
        when = when.add(about_user(user));
    }
    if let Some(action) = filter.action {
        when = when.add(C::Action.eq(action.as_str()));
    }
    if let Some(since) = filter.since {
        when = when.add(C::At.gte(since));
    }
    if let Some(until) = filter.until {
        when = when.add(C::At.lt(until));
    }
    let size = page.size();
    let mut query = audit_events::Entity::find()
        .filter(when)
        .order_by_desc(C::Id);
    query = match page {
        Page::Offset { offset, .. } => query.offset(offset),
        Page::After { after, .. } => match after {
            Some(AuditCursor(id)) => query.filter(C::Id.lt(id)),
            None => query,
        },
    };
    let rows = query.limit(size + 1).all(&state.db).await?;
    let (rows, more) = split_page(rows, size);
    Ok((rows.into_iter().map(event_of).collect(), more))
}

fn event_of(row: audit_events::Model) -> AuditEvent {
    AuditEvent {
        id: row.id,
        at: row.at,
        actor_kind: row.actor_kind,
        actor_id: row.actor_id,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        request_id: row.request_id,
        address: row.address,
        detail: serde_json::from_str(&row.detail).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_budget_refills_each_minute_and_counts_what_it_left_out() {
        let budget = SignInBudget::default();
        for _ in 0..SIGN_IN_EVENTS_PER_MINUTE {
            assert_eq!(budget.take(120, None), Some(0));
        }
        assert_eq!(budget.take(130, None), None);
        assert_eq!(budget.take(179, None), None);
        assert_eq!(
            budget.take(180, None),
            Some(2),
            "a new minute, and two were left out"
        );
        assert_eq!(budget.take(181, None), Some(0));
    }

    #[test]
    fn unknown_usernames_never_crowd_out_an_account_nor_one_account_the_others() {
        let budget = SignInBudget::default();
        for _ in 0..SIGN_IN_EVENTS_PER_MINUTE * 10 {
            budget.take(120, None);
        }
        assert!(
            budget.take(121, Some("admin")).is_some(),
            "a real account still counts"
        );
        for _ in 1..SIGN_IN_EVENTS_PER_ACCOUNT {
            assert!(budget.take(122, Some("admin")).is_some());
        }
        assert_eq!(
            budget.take(123, Some("admin")),
            None,
            "admin's share is spent"
        );
        assert!(budget.take(124, Some("ada")).is_some(), "ada has hers");
        // Accounts share one ceiling.
        let budget = SignInBudget::default();
        let accounts: Vec<String> = (0..SIGN_IN_EVENTS_PER_MINUTE)
            .map(|i| format!("u{i}"))
            .collect();
        for account in &accounts {
            assert!(budget.take(60, Some(account)).is_some());
        }
        assert_eq!(budget.take(61, Some("one more")), None);
    }
}
