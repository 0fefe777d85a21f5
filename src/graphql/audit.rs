//! GraphQL resolvers for the audit trail (administrators, `gov.user.admin.audit:read`).

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::guards::Require;
use super::loaders::{CachedLoader, UserLoader};
use super::types::{User, timestamp};
use crate::domain::Scope;
use crate::domain::audit::{
    ActorKind, AuditAction, AuditCursor, AuditEvent as DomainEvent, AuditFilter, AuditTarget,
};
use crate::domain::ids::UserId;
use crate::domain::page::{Page, decode_cursor, encode_cursor};
use crate::error::AppError;
use crate::service::audit;

/// A recorded change.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuditEvent {
    /// Position in the trail; higher is newer.
    pub id: ID,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// `user`, `cli` (the operator's command line), `system` (a schedule) or `anonymous`.
    pub actor_kind: String,
    /// The acting user's id, when a user acted.
    pub actor_id: Option<ID>,
    /// What was done, e.g. `user.disable` (see the README for the list).
    pub action: String,
    /// `app`, `user`, `connection` or `signing_key`.
    pub target_type: String,
    /// The target's id (for a connection, `userId/clientId`).
    pub target_id: Option<String>,
    /// The `x-request-id` of the request that made it.
    pub request_id: Option<String>,
    /// The client's address.
    pub address: Option<String>,
    /// A small JSON object of details (never a secret).
    pub detail: Json<serde_json::Value>,
    #[graphql(skip)]
    actor_user: Option<UserId>,
    #[graphql(skip)]
    target_user: Option<UserId>,
}

impl AuditEvent {
    /// Every user a page of events names, as actor or as target.
    fn users(&self) -> impl Iterator<Item = &UserId> {
        self.actor_user.iter().chain(&self.target_user)
    }
}

#[ComplexObject]
impl AuditEvent {
    /// The acting user, when a user acted and still exists (`gov.user.admin.user:read`);
    /// `actorId` stays when the account has since been deleted.
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load_user(ctx, self.actor_user.as_ref()).await
    }

    /// The user the change was made to, when the target is a user who still exists
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn target_user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load_user(ctx, self.target_user.as_ref()).await
    }
}

async fn load_user(ctx: &Context<'_>, id: Option<&UserId>) -> Result<Option<User>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let loader = ctx.data::<CachedLoader<UserLoader>>()?;
    Ok(loader.load_one(id.clone()).await?.flatten().map(User::from))
}

impl From<DomainEvent> for AuditEvent {
    fn from(event: DomainEvent) -> Self {
        let actor_user = event.actor_id.as_deref().and_then(UserId::parse);
        let target_user = match event.target_type.as_str() {
            kind if kind == AuditTarget::User.as_str() => {
                event.target_id.as_deref().and_then(UserId::parse)
            }
            _ => None,
        };
        Self {
            id: ID(event.id.to_string()),
            at: timestamp(event.at),
            actor_kind: event.actor_kind,
            actor_id: event.actor_id.map(ID),
            action: event.action,
            target_type: event.target_type,
            target_id: event.target_id,
            request_id: event.request_id,
            address: event.address,
            detail: Json(event.detail),
            actor_user,
            target_user,
        }
    }
}

/// Which events to list; the filters combine.
#[derive(InputObject, Default)]
pub struct AuditFilterInput {
    /// Only what this user did.
    pub actor_id: Option<ID>,
    /// Only actors of this kind: `user`, `cli`, `system` or `anonymous`.
    pub actor_kind: Option<String>,
    /// Only events on this kind of target: `app`, `user`, `connection` or `signing_key`.
    pub target_type: Option<String>,
    /// Only events on the target with this id.
    pub target_id: Option<String>,
    /// Only events about this user: done to their account (target `user`) or to one of their
    /// connections (target `connection`, id `<user id>/<client id>`).
    pub about_user: Option<ID>,
    /// Only this action, e.g. `app.secret.rotate`.
    pub action: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
}

impl TryFrom<AuditFilterInput> for AuditFilter {
    type Error = AppError;

    fn try_from(input: AuditFilterInput) -> Result<Self, AppError> {
        Ok(AuditFilter {
            actor_id: input.actor_id.map(|id| id.0),
            actor_kind: input
                .actor_kind
                .map(|text| ActorKind::parse("actorKind", &text))
                .transpose()?,
            target_type: input
                .target_type
                .map(|text| AuditTarget::parse("targetType", &text))
                .transpose()?,
            target_id: input.target_id,
            about_user: input.about_user.map(|id| id.0),
            action: input
                .action
                .map(|text| AuditAction::parse("action", &text))
                .transpose()?,
            since: input.since.map(|at| at.timestamp()),
            until: input.until.map(|at| at.timestamp()),
        })
    }
}

/// Audit queries.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, newest first, `first` (1..1024, default 50) at a time after `after`
    /// (administrators, `gov.user.admin.audit:read`).
    #[graphql(guard = "Require::Admin(Scope::AuditRead)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditFilterInput>,
    ) -> Result<Connection<String, AuditEvent, EmptyFields, EmptyFields>> {
        let after = after
            .as_deref()
            .map(decode_cursor::<AuditCursor>)
            .transpose()?;
        let has_previous = after.is_some();
        let page = Page::after(first, after)?;
        let filter = AuditFilter::try_from(filter.unwrap_or_default())?;
        let (found, more) =
            audit::list(super::state(ctx)?, super::principal(ctx)?, filter, page).await?;
        let events: Vec<(i64, AuditEvent)> = found
            .into_iter()
            .map(|event| (event.id, AuditEvent::from(event)))
            .collect();
        let node = ctx.look_ahead().field("edges").field("node");
        if node.field("actor").exists() || node.field("targetUser").exists() {
            // One batch for the whole page; each field then reads the loader's cache. A batch
            // the loader refuses (a token without `user:read`) is not cached: the fields meet
            // their own guard, and the page is answered.
            let ids: Vec<UserId> = events
                .iter()
                .flat_map(|(_, event)| event.users().cloned())
                .collect();
            let _ = ctx.data::<CachedLoader<UserLoader>>()?.load_many(ids).await;
        }
        let mut connection = Connection::new(has_previous, more);
        connection.edges.extend(
            events
                .into_iter()
                .map(|(id, event)| Edge::new(encode_cursor(&AuditCursor(id)), event)),
        );
        Ok(connection)
    }
}
