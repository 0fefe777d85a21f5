//! User administration: changing, disabling, enabling, deleting and ending sessions
//! (`gov.user.admin.user:write`; reading is in `read`), all for the role
//! `admin`, and two operator escape hatches through the command line ([`Principal::System`]).
//!
//! Guard rails, decided here for every transport: the last enabled administrator cannot be
//! disabled, demoted or deleted (`CONFLICT`), and an administrator cannot remove their own
//! `admin` role, nor disable or delete their own account (`FORBIDDEN`; another administrator,
//! or the operator, can). The acting administrator is read again inside each change's
//! transaction ([`confirm_actor`]): one disabled or demoted while their request ran changes
//! nothing. Each change writes
//! its target first and counts the administrators left afterwards in the same transaction; on
//! PostgreSQL a transaction-scoped advisory lock makes every administrator's change take turns,
//! so that two administrators disabling each other at once cannot leave none, and two acting on
//! each other never wait for each other's row.

use std::collections::HashMap;

use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait,
};
use secrecy::SecretString;

use super::read::row;
use crate::auth::{Principal, SessionRef};
use crate::db::entities::{browser_sessions, connections, grants, sessions, users};
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::ids::UserId;
use crate::domain::users::{User, UserChanges, check_password};
use crate::domain::{Role, Scope};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self, Actor, Entry, Recorded};
use crate::service::browser::{self, Ended};
use crate::service::changes::{self, Change};
use crate::service::{AppState, backchannel};

/// An administrator's change.
const ADMIN: Acting = Acting::Administrator;

/// Key of the PostgreSQL advisory lock that changes to administrators take turns on.
const ADMINS_LOCK: i64 = 7_234_002;

/// Administrators: changes a user's email, name and roles (what is not given keeps its value).
/// Their own `admin` role is not theirs to remove, nor the last enabled administrator's.
pub async fn update_user(
    state: &AppState,
    principal: &Principal,
    id: &UserId,
    changes: UserChanges,
) -> AppResult<User> {
    let actor = principal.require_admin(Scope::UserWrite)?;
    let changes = changes.validate()?;
    if let (Some(me), Some(roles)) = (actor, &changes.roles)
        && me.user_id == *id
        && !roles.contains(&Role::Admin)
    {
        return Err(AppError::forbidden(
            "an administrator cannot remove their own admin role",
        ));
    }
    let now = state.clock.now();
    let (txn, before) = begin_change(state, id, now).await?;
    let mut update = users::Entity::update_many().filter(users::Column::Id.eq(id.as_str()));
    let mut entries = Vec::new();
    let mut profile = Entry::new(AuditAction::UserUpdate, AuditTarget::User, id.as_str());
    let mut profile_changed = false;
    if let Some(email) = &changes.email
        && *email != before.email
    {
        update = update.col_expr(users::Column::Email, Expr::value(email.as_str()));
        profile = profile.with("email_changed", true);
        profile_changed = true;
    }
    if let Some(name) = &changes.name
        && *name != before.name
    {
        update = update.col_expr(users::Column::Name, Expr::value(name.as_str()));
        profile = profile.with("name_changed", true);
        profile_changed = true;
    }
    if profile_changed {
        entries.push(profile);
    }
    if let Some(roles) = &changes.roles {
        let roles = Role::format_list(roles);
        if roles != before.roles {
            update = update.col_expr(users::Column::Roles, Expr::value(roles.as_str()));
            entries.push(
                Entry::new(AuditAction::UserRolesChange, AuditTarget::User, id.as_str())
                    .with("from", before.roles.as_str())
                    .with("to", roles),
            );
        }
    }
    if entries.is_empty() {
        drop(txn);
        return row(&state.db, id).await?.try_into();
    }
    let after = update
        .exec_with_returning(&txn)
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("user"))?;
    keep_an_admin(&txn).await?;
    commit(state, txn, now, (principal, ADMIN), id, entries, None).await?;
    after.try_into()
}

/// The operator: replaces a user's roles (an escape hatch for a locked-out administrator).
pub async fn set_roles(
    state: &AppState,
    principal: &Principal,
    id: &UserId,
    roles: Vec<Role>,
) -> AppResult<User> {
    update_user(
        state,
        principal,
        id,
        UserChanges {
            roles: Some(roles),
            ..UserChanges::default()
        },
    )
    .await
}

/// Administrators and the operator: sets a user's password (8 to 1024 characters). Their
/// sessions stay; end them with [`end_sessions`] when the password was compromised.
pub async fn set_password(
    state: &AppState,
    principal: &Principal,
    id: &UserId,
    password: SecretString,
) -> AppResult<User> {
    principal.require_admin(Scope::UserWrite)?;
    check_password("password", &password)?;
    let hash = state.passwords.hash(password).await?;
    let now = state.clock.now();
    let txn = begin_admin_change(state).await?;
    let after = set_column(&txn, id, users::Column::PasswordHash, hash, now).await?;
    let entry = Entry::new(AuditAction::UserPasswordSet, AuditTarget::User, id.as_str());
    commit(state, txn, now, (principal, ADMIN), id, vec![entry], None).await?;
    after.try_into()
}

/// Administrators: disables a user. They cannot sign in any more, and every session, browser
/// session and app grant of theirs ends at once, in the same transaction (apps that asked are
/// owed a back-channel logout). Disabling a disabled user changes nothing.
pub async fn disable_user(state: &AppState, principal: &Principal, id: &UserId) -> AppResult<User> {
    principal.require_admin(Scope::UserWrite)?;
    not_themselves(principal, id, "disable")?;
    let now = state.clock.now();
    let (txn, before) = begin_change(state, id, now).await?;
    if before.disabled_at.is_some() {
        drop(txn);
        return row(&state.db, id).await?.try_into();
    }
    let after = set_column(&txn, id, users::Column::DisabledAt, now, now).await?;
    keep_an_admin(&txn).await?;
    let ended = end_sessions_in(state, &txn, id, now, true, None).await?;
    commit(
        state,
        txn,
        now,
        (principal, ADMIN),
        id,
        vec![
            Entry::new(AuditAction::UserDisable, AuditTarget::User, id.as_str())
                .with("sessions_ended", ended.sessions),
        ],
        Some(ended.ended),
    )
    .await?;
    after.try_into()
}

/// Administrators: enables a disabled user again (they sign in anew; nothing that ended comes
/// back). Enabling an enabled user changes nothing.
pub async fn enable_user(state: &AppState, principal: &Principal, id: &UserId) -> AppResult<User> {
    principal.require_admin(Scope::UserWrite)?;
    let now = state.clock.now();
    let (txn, before) = begin_change(state, id, now).await?;
    if before.disabled_at.is_none() {
        drop(txn);
        return row(&state.db, id).await?.try_into();
    }
    let after = set_column(&txn, id, users::Column::DisabledAt, None::<i64>, now).await?;
    let entry = Entry::new(AuditAction::UserEnable, AuditTarget::User, id.as_str());
    commit(state, txn, now, (principal, ADMIN), id, vec![entry], None).await?;
    after.try_into()
}

/// Administrators: deletes a user with their connections, sessions and grants, in one
/// transaction. Apps they created stay, with no creator.
pub async fn delete_user(state: &AppState, principal: &Principal, id: &UserId) -> AppResult<()> {
    principal.require_admin(Scope::UserWrite)?;
    not_themselves(principal, id, "delete")?;
    let now = state.clock.now();
    let (txn, before) = begin_change(state, id, now).await?;
    let ended = end_sessions_in(state, &txn, id, now, true, None).await?;
    connections::Entity::delete_many()
        .filter(connections::Column::UserId.eq(id.as_str()))
        .exec(&txn)
        .await?;
    sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(id.as_str()))
        .exec(&txn)
        .await?;
    users::Entity::delete_by_id(id.as_str()).exec(&txn).await?;
    keep_an_admin(&txn).await?;
    commit(
        state,
        txn,
        now,
        (principal, ADMIN),
        id,
        vec![
            Entry::new(AuditAction::UserDelete, AuditTarget::User, id.as_str())
                .with("username", before.username.as_str()),
        ],
        Some(ended.ended),
    )
    .await?;
    Ok(())
}

/// Administrators: ends every first-party and browser session of a user without disabling
/// them (app grants given with `offline_access` stay, as at sign-out). Answers how many ended.
pub async fn end_sessions(state: &AppState, principal: &Principal, id: &UserId) -> AppResult<u64> {
    principal.require_admin(Scope::UserWrite)?;
    let now = state.clock.now();
    let txn = begin_admin_change(state).await?;
    // Writes first (see `begin_change`), without touching the user: their profile is unchanged.
    let ended = end_sessions_in(state, &txn, id, now, false, None).await?;
    row(&txn, id).await?;
    commit(
        state,
        txn,
        now,
        (principal, ADMIN),
        id,
        vec![
            Entry::new(AuditAction::UserSessionsEnd, AuditTarget::User, id.as_str())
                .with("sessions_ended", ended.sessions),
        ],
        Some(ended.ended),
    )
    .await?;
    Ok(ended.sessions)
}

/// What [`end_sessions_in`] ended.
pub(super) struct EndedAll {
    /// First-party and browser sessions.
    pub sessions: u64,
    /// The browser sessions' part, with the grants that ended, to announce after the commit.
    pub ended: Ended,
}

/// Ends a user's sessions inside `txn`: first-party sessions are revoked (their access tokens
/// fail at the next request), browser sessions end as at sign-out, and with `all_grants` every
/// app grant goes too (the apps that took part are owed a back-channel logout). `except`
/// spares the session the caller acts through.
pub(super) async fn end_sessions_in(
    state: &AppState,
    txn: &DatabaseTransaction,
    id: &UserId,
    now: i64,
    all_grants: bool,
    except: Option<&SessionRef>,
) -> AppResult<EndedAll> {
    let mut api = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .filter(sessions::Column::UserId.eq(id.as_str()))
        .filter(sessions::Column::RevokedAt.is_null());
    if let Some(SessionRef::Api(current)) = except {
        api = api.filter(sessions::Column::Id.ne(current.as_str()));
    }
    let api = api.exec(txn).await?.rows_affected;
    // The grants go first, so that the apps are told once: ending the browser sessions below
    // then finds no grant left to tell them about. The user's browser sessions are locked
    // before the grants (on PostgreSQL), in the order a sign-out takes them (its session, then
    // its grants), so that the two never wait for each other.
    let mut grants_ended = Vec::new();
    if all_grants {
        browser_sessions::Entity::find()
            .filter(browser_sessions::Column::UserId.eq(id.as_str()))
            .lock_exclusive()
            .all(txn)
            .await?;
        // And their connections before the grants, as deleting an app takes them.
        connections::Entity::find()
            .filter(connections::Column::UserId.eq(id.as_str()))
            .lock_exclusive()
            .all(txn)
            .await?;
        let grants = grants::Entity::delete_many()
            .filter(grants::Column::UserId.eq(id.as_str()))
            .exec_with_returning(txn)
            .await?;
        let mut by_app: HashMap<String, Vec<grants::Model>> = HashMap::new();
        for grant in grants {
            by_app
                .entry(grant.client_id.clone())
                .or_default()
                .push(grant);
        }
        for (client_id, ended_grants) in &by_app {
            backchannel::connection_withdrawn(state, txn, id.as_str(), client_id, ended_grants)
                .await?;
            grants_ended.extend(ended_grants.iter().map(|grant| grant.id.clone()));
        }
    }
    let mut which = Condition::all().add(browser_sessions::Column::UserId.eq(id.as_str()));
    if let Some(SessionRef::Browser(current)) = except {
        match current {
            Some(sid) => {
                which = which.add(
                    Condition::any()
                        .add(browser_sessions::Column::Sid.is_null())
                        .add(browser_sessions::Column::Sid.ne(sid.as_str())),
                );
            }
            // The caller's session has no public id and cannot be told apart: all stay (a
            // row's key is never NULL, so this selects none).
            None => which = which.add(browser_sessions::Column::Id.is_null()),
        }
    }
    let mut ended = browser::end_in(state, txn, which).await?;
    ended.grants.extend(grants_ended);
    Ok(EndedAll {
        sessions: api + ended.sessions as u64,
        ended,
    })
}

/// Opens the transaction of an administrator's change. On PostgreSQL it first takes turns with
/// every other one (a transaction-scoped advisory lock): such a change writes its target's row
/// and then reads its actor's with a share lock ([`confirm_actor`]), so two administrators
/// acting on each other at once would otherwise each wait for the other's row. SQLite runs one
/// writer at a time.
pub(super) async fn begin_admin_change(state: &AppState) -> AppResult<DatabaseTransaction> {
    let txn = state.db.begin().await?;
    if state.db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({ADMINS_LOCK})"))
            .await?;
    }
    Ok(txn)
}

/// Opens the transaction of a change to user `id` and takes the user's row for it: its first
/// statement writes the row (`updated_at`), so that on SQLite the transaction holds the write
/// lock before it reads anything, and concurrent changes queue instead of failing; on
/// PostgreSQL administrators' changes take turns ([`begin_admin_change`]). Answers the row as it was, but for `updated_at`; a caller that then
/// changes nothing drops the transaction, which undoes the touch.
async fn begin_change(
    state: &AppState,
    id: &UserId,
    now: i64,
) -> AppResult<(DatabaseTransaction, users::Model)> {
    let txn = begin_admin_change(state).await?;
    let before = users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id.as_str()))
        .exec_with_returning(&txn)
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("user"))?;
    Ok((txn, before))
}

/// Sets one column of user `id` (and `updated_at`) in `txn`; answers the row as changed.
async fn set_column(
    txn: &DatabaseTransaction,
    id: &UserId,
    column: users::Column,
    value: impl Into<sea_orm::Value>,
    now: i64,
) -> AppResult<users::Model> {
    users::Entity::update_many()
        .col_expr(column, Expr::value(value))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id.as_str()))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("user"))
}

/// Refuses the change when no enabled administrator would be left.
async fn keep_an_admin(txn: &DatabaseTransaction) -> AppResult<()> {
    let candidates = users::Entity::find()
        .filter(users::Column::DisabledAt.is_null())
        .filter(users::Column::Roles.contains("admin"))
        .all(txn)
        .await?;
    let left = candidates
        .iter()
        .filter(|row| Role::parse_list(&row.roles).is_ok_and(|roles| roles.contains(&Role::Admin)))
        .count();
    if left == 0 {
        return Err(AppError::Conflict(
            "this would leave no enabled administrator: make another user an administrator first"
                .into(),
        ));
    }
    Ok(())
}

/// What a change needs its acting user to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acting {
    /// An enabled administrator.
    Administrator,
    /// Any enabled user, changing what is their own.
    Themselves,
}

/// The acting user as the change's transaction sees them: still there and enabled, and for an
/// administrator's change still an administrator. The bearer token was checked when the
/// request began; a disabling or a demotion that committed since (a password hash may queue
/// for seconds) stops the change instead of being followed by it. Read with a share lock on
/// PostgreSQL, so that a concurrent disabling either is seen or waits for this change. The
/// operator (the CLI) has no row to check.
pub(crate) async fn confirm_actor(
    txn: &DatabaseTransaction,
    principal: &Principal,
    acting: Acting,
) -> AppResult<()> {
    let Principal::User(me) = principal else {
        return Ok(());
    };
    let row = users::Entity::find_by_id(me.user_id.as_str())
        .lock_shared()
        .one(txn)
        .await?
        .filter(|row| row.disabled_at.is_none())
        .ok_or(AppError::InvalidToken)?;
    // Its roles read as every caller's are (`principal_of`): unreadable ones are our fault.
    if acting == Acting::Administrator && !super::stored_roles(&row)?.contains(&Role::Admin) {
        return Err(AppError::forbidden("this operation needs the admin role"));
    }
    Ok(())
}

/// Refuses an administrator's change that would shut themselves out: disabling or deleting
/// their own account is removing their own administration, as dropping their `admin` role is.
fn not_themselves(principal: &Principal, id: &UserId, what: &str) -> AppResult<()> {
    match principal {
        Principal::User(me) if me.user_id == *id => Err(AppError::forbidden(format!(
            "an administrator cannot {what} their own account: another administrator can"
        ))),
        _ => Ok(()),
    }
}

/// Ends a change to `user`: records `entries` as the principal's in `txn`, commits, then writes
/// the audit lines, announces what ended and (since claims userinfo serves may have changed)
/// drops every node's cached live grants of that user.
pub(super) async fn commit(
    state: &AppState,
    txn: DatabaseTransaction,
    now: i64,
    (principal, acting): (&Principal, Acting),
    user: &UserId,
    entries: Vec<Entry>,
    ended: Option<Ended>,
) -> AppResult<()> {
    confirm_actor(&txn, principal, acting).await?;
    let actor = Actor::of(principal);
    let mut recorded: Vec<Recorded> = Vec::with_capacity(entries.len());
    for entry in entries {
        recorded.push(audit::record(&txn, now, &actor, entry).await?);
    }
    txn.commit().await?;
    recorded.into_iter().for_each(Recorded::log);
    if let Some(ended) = ended {
        // Each grant by id: forgetting the user's claims alone would leave an ended grant
        // cached, live again as soon as another grant of theirs put the claims back.
        ended.announce(state).await;
        // Logouts may have been queued for grants alone, with no browser session ending.
        state.logouts.queued();
    }
    changes::announce(state, Change::User(user.as_str())).await;
    Ok(())
}
