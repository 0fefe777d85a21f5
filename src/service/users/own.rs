//! What any signed-in user does to their own account: change their name and email, change
//! their password (with the current one; a wrong one counts toward the sign-in back-off like a
//! failed sign-in), and end their other sessions. Changing the account takes a token with the
//! scope `all` (what `login` gives by default): a token narrowed to, say, reading connections
//! cannot change the email apps receive. Reading one's own sessions takes any token.

use std::net::IpAddr;

use sea_orm::prelude::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use secrecy::SecretString;

use super::admin::{Acting, commit, confirm_actor, end_sessions_in};

/// A change a user makes to what is their own.
const OWN: Acting = Acting::Themselves;
use crate::auth::Principal;
use crate::db::entities::users;
use crate::domain::Scope;
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::users::{User, UserChanges, UserSession, check_password};
use crate::error::{AppError, AppResult};
use crate::service::AppState;
use crate::service::audit::{Actor, Entry};

/// The signed-in user: changes their own email and name (roles are not theirs to change).
pub async fn update_viewer(
    state: &AppState,
    principal: &Principal,
    changes: UserChanges,
) -> AppResult<User> {
    let me = principal.require_user(Scope::All)?;
    if changes.roles.is_some() {
        return Err(AppError::forbidden("roles are changed by an administrator"));
    }
    let changes = changes.validate()?;
    if changes.email.is_none() && changes.name.is_none() {
        return super::viewer(state, principal).await;
    }
    let now = state.clock.now();
    let mut update = users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(me.user_id.as_str()));
    let mut entry = Entry::new(
        AuditAction::UserUpdate,
        AuditTarget::User,
        me.user_id.as_str(),
    );
    if let Some(email) = &changes.email {
        update = update.col_expr(users::Column::Email, Expr::value(email.as_str()));
        entry = entry.with("email_changed", true);
    }
    if let Some(name) = &changes.name {
        update = update.col_expr(users::Column::Name, Expr::value(name.as_str()));
        entry = entry.with("name_changed", true);
    }
    let txn = state.db.begin().await?;
    let after = update
        .exec_with_returning(&txn)
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::InvalidToken)?;
    commit(
        state,
        txn,
        now,
        (principal, OWN),
        &me.user_id,
        vec![entry],
        None,
    )
    .await?;
    after.try_into()
}

/// The signed-in user: changes their password, proving the current one. A wrong current
/// password is a failed sign-in (it counts toward the back-off, and while a delay is owed the
/// answer is `TOO_MANY_ATTEMPTS`). Their sessions stay.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    current: SecretString,
    new: SecretString,
    addr: Option<IpAddr>,
) -> AppResult<()> {
    let me = principal.require_user(Scope::All)?;
    check_password("newPassword", &new)?;
    let username = users::Entity::find_by_id(me.user_id.as_str())
        .one(&state.db)
        .await?
        .ok_or(AppError::InvalidToken)?
        .username;
    let actor = Actor::of(principal);
    let row = match super::authenticate(state, &username, current, addr, &actor).await {
        Ok(row) => row,
        Err(AppError::InvalidCredentials) => {
            return Err(AppError::invalid("currentPassword is wrong"));
        }
        Err(other) => return Err(other),
    };
    let hash = state.passwords.hash(new).await?;
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let changed = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(row.id.as_str()))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        return Err(AppError::InvalidToken);
    }
    let entry = Entry::new(
        AuditAction::UserPasswordChange,
        AuditTarget::User,
        row.id.as_str(),
    );
    commit(
        state,
        txn,
        now,
        (principal, OWN),
        &me.user_id,
        vec![entry],
        None,
    )
    .await?;
    Ok(())
}

/// The signed-in user: ends every session of theirs but the one they act through. Answers how
/// many ended.
pub async fn end_other_sessions(state: &AppState, principal: &Principal) -> AppResult<u64> {
    let me = principal.require_user(Scope::All)?;
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    // On PostgreSQL the user's row is locked before their sessions, in the order an
    // administrator's change takes them (the other order could wait on each other). SQLite's
    // transaction must write first instead (a read first could not become a write after a
    // concurrent commit), and its one writer needs no order.
    if state.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        confirm_actor(&txn, principal, OWN).await?;
    }
    let ended = end_sessions_in(state, &txn, &me.user_id, now, false, Some(&me.session)).await?;
    let entry = Entry::new(
        AuditAction::UserSessionsEnd,
        AuditTarget::User,
        me.user_id.as_str(),
    )
    .with("sessions_ended", ended.sessions)
    .with("kept_current", true);
    commit(
        state,
        txn,
        now,
        (principal, OWN),
        &me.user_id,
        vec![entry],
        Some(ended.ended),
    )
    .await?;
    Ok(ended.sessions)
}

/// The signed-in user's live sessions, newest first, the current one marked.
pub async fn own_sessions(state: &AppState, principal: &Principal) -> AppResult<Vec<UserSession>> {
    let me = principal.require_signed_in()?;
    super::read::live_sessions(state, &me.user_id, Some(&me.session)).await
}
