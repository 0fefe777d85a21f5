//! GraphQL object types, written by hand: storage columns never reach the schema.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, TimeZone, Utc};
use secrecy::ExposeSecret;

use crate::domain::users::{
    SessionKind as DomainSessionKind, User as DomainUser, UserSession as DomainUserSession,
};
use crate::service::sessions::SessionTokens;

// The GraphQL face of `crate::domain::Role`: the `remote` derive maps the two and fails to
// compile when their variants differ, so the roles are decided once.
/// A role a user holds.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::Role")]
pub enum Role {
    /// Administers idgraph; also manages OAuth apps.
    Admin,
    /// Manages OAuth apps.
    Oauth,
}

pub(crate) fn timestamp(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// A person who signs in. The fields past `updatedAt` are for administrators
/// (`gov.user.admin.user:read`).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    /// Random, URL-safe id.
    pub id: ID,
    /// Unique login name.
    pub username: String,
    /// Contact address.
    pub email: String,
    /// Display name; may be empty.
    pub name: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub user: DomainUser,
}

impl From<DomainUser> for User {
    fn from(user: DomainUser) -> Self {
        Self {
            user: user.clone(),
            id: ID(user.id.to_string()),
            username: user.username,
            email: user.email,
            name: user.name,
            roles: user.roles.into_iter().map(Role::from).collect(),
            created_at: timestamp(user.created_at),
            updated_at: timestamp(user.updated_at),
        }
    }
}

/// Credentials and the scopes wanted for a first-party session.
#[derive(InputObject)]
pub struct LoginInput {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
    /// Space-separated management scopes, or `all`; omitted means `all`.
    pub scope: Option<String>,
}

/// Tokens of a first-party session.
#[derive(SimpleObject)]
pub struct SessionPayload {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Exchange it with `refreshSession` for new tokens; it works once.
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl From<SessionTokens> for SessionPayload {
    fn from(tokens: SessionTokens) -> Self {
        Self {
            access_token: tokens.access_token.expose_secret().to_string(),
            token_type: "Bearer".into(),
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token.expose_secret().to_string(),
            scope: tokens.scope,
        }
    }
}

// The GraphQL face of `crate::domain::users::SessionKind`.
/// How a user is signed in somewhere.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "DomainSessionKind")]
pub enum SessionKind {
    /// A first-party session opened by `login` (bearer tokens).
    Api,
    /// A sign-in on the hosted pages (a browser cookie).
    Browser,
}

/// One of a user's live sessions.
#[derive(SimpleObject)]
pub struct UserSession {
    /// Which kind.
    pub kind: SessionKind,
    /// The session's id (its `sid`); null for a browser session opened by an older release.
    pub id: Option<String>,
    /// When the user signed in.
    pub signed_in_at: DateTime<Utc>,
    /// When it ends unless used or ended.
    pub expires_at: DateTime<Utc>,
    /// Whether the caller acts through it.
    pub current: bool,
}

impl From<DomainUserSession> for UserSession {
    fn from(session: DomainUserSession) -> Self {
        Self {
            kind: session.kind.into(),
            id: session.id,
            signed_in_at: timestamp(session.signed_in_at),
            expires_at: timestamp(session.expires_at),
            current: session.current,
        }
    }
}
