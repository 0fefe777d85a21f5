//! Users: creation, look-up, password authentication, and the one place a caller
//! ([`Principal`]) is built from a user row. Administration (listing, changes, disabling,
//! deletion, ending sessions) is in [`admin`]; what a user does to their own account in [`own`].
//!
//! A user without a password has an empty `password_hash`, which no password verifies; a
//! disabled user (`disabled_at` set) is refused at sign-in with the answer and the work of a
//! wrong password, and is no caller at all with any token or cookie they still hold.

mod admin;
mod own;
mod read;

pub use admin::{
    delete_user, disable_user, enable_user, end_sessions, set_password, set_roles, update_user,
};
pub use own::{change_password, end_other_sessions, own_sessions, update_viewer};
pub use read::{
    connection_counts, connections_of, find_by_username, get_user, list_users, sessions_of,
};

use std::collections::HashMap;
use std::net::IpAddr;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set,
};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::{Principal, SessionRef, UserPrincipal};
use crate::db::entities::users;
use crate::domain::audit::{AuditAction, AuditTarget};
use crate::domain::ids::UserId;
use crate::domain::secret::random_token;
use crate::domain::users::{NewUser, User};
use crate::domain::{Role, Scope, ScopeSet};
use crate::error::{AppError, AppResult};
use crate::metrics::SecurityEvent;
use crate::service::AppState;
use crate::service::audit::{self, Actor, Entry};
use crate::service::throttle;

/// A user's stored roles. A value that does not parse is a fault of ours, never the caller's.
fn stored_roles(row: &users::Model) -> AppResult<Vec<Role>> {
    Role::parse_list(&row.roles).map_err(|_| {
        AppError::internal(anyhow::anyhow!(
            "user {} has unreadable stored roles",
            row.id
        ))
    })
}

/// The caller acting as `row` through `session`, with `scopes`: the one way a principal is
/// built, for bearer tokens and browser sessions alike. Roles are read from the row, so they
/// are always the current ones; a disabled user is no caller ([`AppError::InvalidToken`]).
pub(crate) fn principal_of(
    row: &users::Model,
    scopes: ScopeSet,
    session: SessionRef,
    auth_time: i64,
) -> AppResult<Principal> {
    if row.disabled_at.is_some() {
        return Err(AppError::InvalidToken);
    }
    Ok(Principal::User(UserPrincipal {
        user_id: UserId::from_trusted(row.id.clone()),
        roles: stored_roles(row)?,
        scopes,
        session,
        auth_time,
    }))
}

impl TryFrom<users::Model> for User {
    type Error = AppError;

    fn try_from(row: users::Model) -> Result<Self, Self::Error> {
        Ok(User {
            roles: stored_roles(&row)?,
            id: UserId::from_trusted(row.id),
            username: row.username,
            email: row.email,
            name: row.name,
            created_at: row.created_at,
            updated_at: row.updated_at,
            disabled_at: row.disabled_at,
            has_password: !row.password_hash.is_empty(),
        })
    }
}

/// Administrators (`gov.user.admin.user:write`) and the operator: creates a user, with a
/// password or without one (then the account cannot sign in until one is set).
pub async fn create_user(
    state: &AppState,
    principal: &Principal,
    request: NewUser,
) -> AppResult<User> {
    principal.require_admin(Scope::UserWrite)?;
    let request = request.validate()?;
    let taken = users::Entity::find()
        .filter(users::Column::Username.eq(&request.username))
        .count(&state.db)
        .await?;
    if taken > 0 {
        return Err(username_taken(&request.username));
    }
    let password_hash = match request.password {
        Some(password) => state.passwords.hash(password).await?,
        None => String::new(),
    };
    let now = state.clock.now();
    let txn = admin::begin_admin_change(state).await?;
    let row = users::ActiveModel {
        id: Set(UserId::generate().as_str().to_string()),
        username: Set(request.username.clone()),
        email: Set(request.email),
        name: Set(request.name),
        password_hash: Set(password_hash),
        roles: Set(Role::format_list(&request.roles)),
        created_at: Set(now),
        updated_at: Set(now),
        disabled_at: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|err| match AppError::from(err) {
        AppError::Conflict(_) => username_taken(&request.username),
        other => other,
    })?;
    admin::confirm_actor(&txn, principal, admin::Acting::Administrator).await?;
    let recorded = audit::record(
        &txn,
        now,
        &Actor::of(principal),
        Entry::new(AuditAction::UserCreate, AuditTarget::User, &row.id)
            .with("username", row.username.as_str())
            .with("roles", row.roles.as_str())
            .with("password_set", !row.password_hash.is_empty()),
    )
    .await?;
    txn.commit().await?;
    recorded.log();
    row.try_into()
}

fn username_taken(username: &str) -> AppError {
    AppError::Conflict(format!("username: {username:?} is already taken"))
}

/// Whether the user is still there and enabled, read inside `txn` after the caller's own write
/// and with a share lock on PostgreSQL: a sign-in or a consent that commits a session or a grant
/// either sees a concurrent `disableUser` (and undoes itself) or makes it wait, so that
/// disabling ends what it races with too (see `admin::begin_change`, which writes the row).
pub(crate) async fn still_enabled(txn: &DatabaseTransaction, user_id: &str) -> AppResult<bool> {
    let row = users::Entity::find_by_id(user_id)
        .lock_shared()
        .one(txn)
        .await?;
    Ok(row.is_some_and(|row| row.disabled_at.is_none()))
}

/// Looks a user up by id.
pub(crate) async fn find_user(state: &AppState, id: &str) -> AppResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(&state.db).await?)
}

/// The signed-in user's own record.
pub async fn viewer(state: &AppState, principal: &Principal) -> AppResult<User> {
    let me = principal.require_signed_in()?;
    find_user(state, me.user_id.as_str())
        .await?
        .ok_or(AppError::InvalidToken)?
        .try_into()
}

/// No username is empty or longer than this; a longer one is not looked up.
const MAX_USERNAME_LEN: usize = 64;
/// A longer password is not worth hashing.
const MAX_PASSWORD_LEN: usize = 4096;

/// Checks a username and password. An unknown user and a wrong password give the same error
/// after the same amount of work. Every attempt is counted before the password is checked
/// (see [`crate::service::throttle`]): while a delay is owed the password is not even checked
/// and the answer is [`AppError::TooManyAttempts`].
/// `actor` is who is signing in as far as the audit trail knows: nobody yet
/// ([`Actor::Anonymous`]), or the signed-in user proving their password again.
pub(crate) async fn authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
    addr: Option<IpAddr>,
    actor: &Actor,
) -> AppResult<users::Model> {
    if username.is_empty()
        || username.len() > MAX_USERNAME_LEN
        || password.expose_secret().len() > MAX_PASSWORD_LEN
    {
        state.metrics.security(SecurityEvent::SignInFailure);
        return Err(AppError::InvalidCredentials);
    }
    let reservation =
        match throttle::reserve(&state.db, username, addr, state.clock.now_millis()).await? {
            Ok(reservation) => reservation,
            Err(wait) => {
                tracing::info!("sign-in throttled");
                state.metrics.security(SecurityEvent::SignInThrottled);
                audit::sign_in_refused(state, actor, AuditAction::SignInThrottle, None).await;
                return Err(AppError::TooManyAttempts {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
        };
    let row = users::Entity::find()
        .filter(users::Column::Username.eq(username))
        .one(&state.db)
        .await?;
    // Verified even for an unknown user or one without a password (against a decoy hash),
    // so that every refusal takes as long.
    let stored = row
        .as_ref()
        .map(|r| r.password_hash.clone())
        .filter(|hash| !hash.is_empty());
    let verified = state.passwords.verify(password, stored).await?;
    match row {
        // A disabled account gets the answer a wrong password gets, after the same work.
        Some(row) if verified && row.disabled_at.is_none() => {
            // Clearing the counts is housekeeping: the password was right either way.
            if let Err(err) = throttle::succeeded(&state.db, reservation).await {
                tracing::warn!(error = %err, "sign-in counts could not be cleared");
            }
            Ok(row)
        }
        _ => {
            tracing::info!("sign-in refused: wrong username or password");
            state.metrics.security(SecurityEvent::SignInFailure);
            let user = row.as_ref().map(|r| r.id.as_str());
            audit::sign_in_refused(state, actor, AuditAction::SignInFailure, user).await;
            Err(AppError::InvalidCredentials)
        }
    }
}

/// When the database has no user at all, creates `admin` (roles admin and oauth) with the given
/// password or a random one. Returns the generated password so the caller can show it once.
pub async fn bootstrap_admin(
    state: &AppState,
    password: Option<SecretString>,
) -> AppResult<Option<SecretString>> {
    if users::Entity::find().count(&state.db).await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(|| SecretString::from(random_token(18)));
    let created = create_user(
        state,
        &Principal::System,
        NewUser {
            username: "admin".into(),
            email: "admin@localhost.localdomain".into(),
            name: "Administrator".into(),
            password: Some(password.clone()),
            roles: vec![Role::Admin, Role::Oauth],
        },
    )
    .await;
    match created {
        Ok(_) => Ok(generated.then_some(password)),
        // Another node started at the same moment created `admin` between the count above and
        // this insert: the database has its first user, which is all this asks.
        Err(AppError::Conflict(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Oauth admins: the users who created apps, by id, in one query.
pub async fn creators_by_ids(
    state: &AppState,
    principal: &Principal,
    ids: &[UserId],
) -> AppResult<HashMap<UserId, User>> {
    principal.require_oauth_admin(Scope::AppRead)?;
    by_ids(state, ids).await
}

/// Administrators: users by id, in one query (the actors and targets of a page of the audit
/// trail). Ids of users who no longer exist are left out.
pub async fn users_by_ids(
    state: &AppState,
    principal: &Principal,
    ids: &[UserId],
) -> AppResult<HashMap<UserId, User>> {
    principal.require_admin(Scope::UserRead)?;
    by_ids(state, ids).await
}

async fn by_ids(state: &AppState, ids: &[UserId]) -> AppResult<HashMap<UserId, User>> {
    let rows = users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().map(UserId::as_str)))
        .all(&state.db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let user = User::try_from(row)?;
            Ok((user.id.clone(), user))
        })
        .collect()
}
