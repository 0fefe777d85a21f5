//! GraphQL resolvers for users: administration (`gov.user.admin.user:read` and `:write`, role
//! `admin`) and what a signed-in user does to their own account. Thin: every rule is in
//! `service::users`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::connections::{ConnectedApp, Viewer};
use super::guards::Require;
use super::loaders::{CachedLoader, ConnectionCountLoader};
use super::types::{Role, User, UserSession, timestamp};
use crate::domain::Scope;
use crate::domain::ids::{ClientId, UserId};
use crate::domain::page::{Page, decode_cursor, encode_cursor};
use crate::domain::users::{NewUser, UserChanges, UserCursor};
use crate::edge::ClientAddr;
use crate::error::AppError;
use crate::service::{connections, users};

/// A user id argument; one that cannot be a user id names no user.
fn user_id(id: &ID) -> Result<UserId, AppError> {
    UserId::parse(id).ok_or(AppError::NotFound("user"))
}

#[ComplexObject]
impl User {
    /// Whether the account is disabled: it cannot sign in (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn disabled(&self) -> bool {
        self.user.disabled_at.is_some()
    }

    /// When an administrator disabled the account; null while it is enabled
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.user.disabled_at.map(timestamp)
    }

    /// Whether a password is set; without one the user cannot sign in
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn has_password(&self) -> bool {
        self.user.has_password
    }

    /// How many apps the user has connected; loaded for a whole page in one query
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn connection_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let loader = ctx.data::<CachedLoader<ConnectionCountLoader>>()?;
        Ok(loader.load_one(self.user.id.clone()).await?.unwrap_or(0))
    }

    /// The apps the user has connected, most recently used first, at most 1024
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn connections(&self, ctx: &Context<'_>) -> Result<Vec<ConnectedApp>> {
        let found =
            users::connections_of(super::state(ctx)?, super::principal(ctx)?, &self.user.id)
                .await?;
        Ok(found.into_iter().map(ConnectedApp).collect())
    }

    /// The user's live sessions (first-party and browser), newest first
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<UserSession>> {
        let found =
            users::sessions_of(super::state(ctx)?, super::principal(ctx)?, &self.user.id).await?;
        Ok(found.into_iter().map(UserSession::from).collect())
    }
}

/// User queries.
#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// Users ordered by username, `first` (1..1024, default 50) at a time after `after`;
    /// `search` keeps those whose username, email or name contains it, in any case
    /// (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> Result<Connection<String, User, EmptyFields, EmptyFields>> {
        let after = after
            .as_deref()
            .map(decode_cursor::<UserCursor>)
            .transpose()?;
        let has_previous = after.is_some();
        let page = Page::after(first, after)?;
        let (found, more) =
            users::list_users(super::state(ctx)?, super::principal(ctx)?, search, page).await?;
        let wants_counts = ctx
            .look_ahead()
            .field("edges")
            .field("node")
            .field("connectionCount")
            .exists();
        if wants_counts {
            // One batch for the whole page; each field then reads the loader's cache.
            let ids: Vec<UserId> = found.iter().map(|user| user.id.clone()).collect();
            ctx.data::<CachedLoader<ConnectionCountLoader>>()?
                .load_many(ids)
                .await?;
        }
        let mut connection = Connection::new(has_previous, more);
        connection.edges.extend(found.into_iter().map(|user| {
            let cursor = encode_cursor(&UserCursor(user.username.clone()));
            Edge::new(cursor, User::from(user))
        }));
        Ok(connection)
    }

    /// One user; null when there is none (`gov.user.admin.user:read`).
    #[graphql(guard = "Require::Admin(Scope::UserRead)")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let Some(id) = UserId::parse(&id) else {
            return Ok(None);
        };
        match users::get_user(super::state(ctx)?, super::principal(ctx)?, &id).await {
            Ok(user) => Ok(Some(user.into())),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

/// A user to create.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Unique login name: 1 to 64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Contact address.
    pub email: String,
    /// Display name, at most 128 characters.
    #[graphql(default)]
    pub name: String,
    /// 8 to 1024 characters; omitted, the user cannot sign in until one is set.
    pub password: Option<String>,
    /// Roles to grant.
    #[graphql(default)]
    pub roles: Vec<Role>,
}

/// Changes to a user; what is omitted keeps its value.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// A new contact address.
    pub email: Option<String>,
    /// A new display name.
    pub name: Option<String>,
    /// The new roles, replacing all of them.
    pub roles: Option<Vec<Role>>,
}

/// Changes to the signed-in user's own profile; what is omitted keeps its value.
#[derive(InputObject)]
pub struct UpdateViewerInput {
    /// A new contact address.
    pub email: Option<String>,
    /// A new display name.
    pub name: Option<String>,
}

/// A password change by the user themselves.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password now.
    pub current_password: String,
    /// The new one, 8 to 1024 characters.
    pub new_password: String,
}

/// User mutations.
#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates a user (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        let request = NewUser {
            username: input.username,
            email: input.email,
            name: input.name,
            password: input.password.map(SecretString::from),
            roles: input.roles.into_iter().map(Into::into).collect(),
        };
        let user = users::create_user(super::state(ctx)?, super::principal(ctx)?, request).await?;
        Ok(user.into())
    }

    /// Changes a user's email, name or roles. An administrator cannot remove their own
    /// `admin` role, nor anyone the last enabled administrator's (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let changes = UserChanges {
            email: input.email,
            name: input.name,
            roles: input
                .roles
                .map(|roles| roles.into_iter().map(Into::into).collect()),
        };
        let user = users::update_user(
            super::state(ctx)?,
            super::principal(ctx)?,
            &user_id(&id)?,
            changes,
        )
        .await?;
        Ok(user.into())
    }

    /// Sets a user's password, 8 to 1024 characters (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn set_user_password(&self, ctx: &Context<'_>, id: ID, password: String) -> Result<User> {
        let user = users::set_password(
            super::state(ctx)?,
            super::principal(ctx)?,
            &user_id(&id)?,
            SecretString::from(password),
        )
        .await?;
        Ok(user.into())
    }

    /// Disables a user: they cannot sign in, and their sessions, browser sessions and app
    /// grants end at once (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn disable_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let user =
            users::disable_user(super::state(ctx)?, super::principal(ctx)?, &user_id(&id)?).await?;
        Ok(user.into())
    }

    /// Enables a disabled user again (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn enable_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let user =
            users::enable_user(super::state(ctx)?, super::principal(ctx)?, &user_id(&id)?).await?;
        Ok(user.into())
    }

    /// Deletes a user with their connections, sessions and grants; apps they created stay,
    /// without a creator. Answers the id (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        users::delete_user(super::state(ctx)?, super::principal(ctx)?, &user_id(&id)?).await?;
        Ok(id)
    }

    /// Ends every session and browser session of a user, without disabling them. Answers how
    /// many ended (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn end_user_sessions(&self, ctx: &Context<'_>, id: ID) -> Result<u64> {
        Ok(users::end_sessions(super::state(ctx)?, super::principal(ctx)?, &user_id(&id)?).await?)
    }

    /// Revokes a user's connection to an app, as the user revoking it would: its tokens stop
    /// working at once and the app is owed a back-channel logout. Answers the client id
    /// (`gov.user.admin.user:write`).
    #[graphql(guard = "Require::Admin(Scope::UserWrite)")]
    async fn revoke_user_connection(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        client_id: ID,
    ) -> Result<ID> {
        let not_found = || AppError::NotFound("connection");
        let user = UserId::parse(&user_id).ok_or_else(not_found)?;
        let client = ClientId::parse(&client_id).ok_or_else(not_found)?;
        connections::delete_for_user(super::state(ctx)?, super::principal(ctx)?, &user, &client)
            .await?;
        Ok(client_id)
    }

    /// Changes the signed-in user's own email or name (a token with the scope `all`).
    #[graphql(guard = "Require::User(Scope::All)")]
    async fn update_viewer(&self, ctx: &Context<'_>, input: UpdateViewerInput) -> Result<Viewer> {
        let changes = UserChanges {
            email: input.email,
            name: input.name,
            roles: None,
        };
        let user =
            users::update_viewer(super::state(ctx)?, super::principal(ctx)?, changes).await?;
        Ok(Viewer(user))
    }

    /// Changes the signed-in user's password, proving the current one. A wrong current
    /// password counts toward the sign-in back-off (a token with the scope `all`).
    #[graphql(guard = "Require::User(Scope::All)")]
    async fn change_password(&self, ctx: &Context<'_>, input: ChangePasswordInput) -> Result<bool> {
        let ClientAddr(addr) = ctx.data_opt::<ClientAddr>().copied().unwrap_or_default();
        users::change_password(
            super::state(ctx)?,
            super::principal(ctx)?,
            SecretString::from(input.current_password),
            SecretString::from(input.new_password),
            addr,
        )
        .await?;
        Ok(true)
    }

    /// Ends every session of the signed-in user but the one this request comes through.
    /// Answers how many ended (a token with the scope `all`).
    #[graphql(guard = "Require::User(Scope::All)")]
    async fn end_other_sessions(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(users::end_other_sessions(super::state(ctx)?, super::principal(ctx)?).await?)
    }
}
