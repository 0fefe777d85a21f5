//! Users: creation (CLI and bootstrap), look-up, and password authentication.

use std::net::IpAddr;
use std::time::Instant;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set,
};

use crate::auth::{Principal, Role};
use crate::db::entities::users;
use crate::domain::ids::UserId;
use crate::domain::now_unix;
use crate::domain::secret::random_token;
use crate::domain::users::{NewUser, User};
use crate::error::{AppError, AppResult};
use crate::service::throttle;
use crate::state::AppState;

impl TryFrom<users::Model> for User {
    type Error = AppError;

    fn try_from(row: users::Model) -> Result<Self, Self::Error> {
        Ok(User {
            id: UserId::from_trusted(row.id),
            username: row.username,
            email: row.email,
            name: row.name,
            roles: Role::parse_list(&row.roles)
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored roles: {e}")))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Creates a user. Only an admin (or the local operator) may.
pub async fn create_user(
    state: &AppState,
    principal: &Principal,
    request: NewUser,
) -> AppResult<User> {
    principal.require_admin()?;
    let request = request.validate()?;
    let taken = users::Entity::find()
        .filter(users::Column::Username.eq(&request.username))
        .count(&state.db)
        .await?;
    if taken > 0 {
        return Err(AppError::Conflict(format!(
            "username {:?} is already taken",
            request.username
        )));
    }
    let password_hash = state.passwords.hash(request.password).await?;
    let now = now_unix();
    let row = users::ActiveModel {
        id: Set(UserId::generate().as_str().to_string()),
        username: Set(request.username),
        email: Set(request.email),
        name: Set(request.name),
        password_hash: Set(password_hash),
        roles: Set(Role::format_list(&request.roles)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    tracing::info!(user.id = %row.id, "user created");
    row.try_into()
}

/// Looks a user up by id.
pub async fn find_user(db: &DatabaseConnection, id: &UserId) -> AppResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id.as_str()).one(db).await?)
}

/// The signed-in user's own record.
pub async fn viewer(state: &AppState, principal: &Principal) -> AppResult<User> {
    let me = principal.require_signed_in()?;
    find_user(&state.db, &me.user_id)
        .await?
        .ok_or(AppError::InvalidToken)?
        .try_into()
}

/// Checks a username and password. An unknown user and a wrong password give the same error
/// after the same amount of work. Repeated failures for the username or from `addr` are slowed
/// down (see [`crate::service::throttle`]): while a delay is owed the password is not even
/// checked and the answer is [`AppError::TooManyAttempts`].
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: String,
    addr: Option<IpAddr>,
) -> AppResult<users::Model> {
    // No username is empty or longer than 64 bytes; a huge password is not worth hashing.
    if username.is_empty() || username.len() > 64 || password.len() > 4096 {
        return Err(AppError::InvalidCredentials);
    }
    let keys = throttle::keys(username, addr);
    if let Some(wait) = state.sign_ins.wait(&keys, Instant::now()) {
        return Err(AppError::TooManyAttempts {
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        });
    }
    let row = users::Entity::find()
        .filter(users::Column::Username.eq(username))
        .one(&state.db)
        .await?;
    let stored = row.as_ref().map(|r| r.password_hash.clone());
    // Verified even for an unknown user (against a decoy hash), so both take as long.
    let verified = state.passwords.verify(password, stored).await?;
    match row {
        Some(row) if verified => {
            state.sign_ins.succeeded(username);
            Ok(row)
        }
        _ => {
            state.sign_ins.failed(&keys, Instant::now());
            tracing::info!("sign-in refused: wrong username or password");
            Err(AppError::InvalidCredentials)
        }
    }
}

/// When the database has no user at all, creates `admin` (roles admin and oauth) with the given
/// password or a random one. Returns the generated password so the caller can show it once.
pub async fn bootstrap_admin(
    state: &AppState,
    password: Option<String>,
) -> AppResult<Option<String>> {
    if users::Entity::find().count(&state.db).await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(|| random_token(18));
    create_user(
        state,
        &Principal::System,
        NewUser {
            username: "admin".into(),
            email: "admin@localhost.localdomain".into(),
            name: "Administrator".into(),
            password: password.clone(),
            roles: vec![Role::Admin, Role::Oauth],
        },
    )
    .await?;
    Ok(generated.then_some(password))
}

/// Oauth admins: the users who created apps, by id, in one query.
pub async fn creators_by_ids(
    state: &AppState,
    principal: &Principal,
    ids: &[String],
) -> AppResult<std::collections::HashMap<String, User>> {
    principal.require_oauth_admin(crate::auth::Scope::AppRead)?;
    let rows = users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(&state.db)
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.id.clone(), User::try_from(row)?)))
        .collect()
}
