//! Users: validated input for creating and changing them, listing positions, and the views
//! transports see.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::Role;
use crate::error::AppError;

/// Longest search text accepted by the user listing.
pub const MAX_SEARCH_LEN: usize = 128;

/// Checks a login name: 1..64 of `a-z 0-9 . _ -` (surrounding spaces are dropped).
pub fn check_username(username: &str) -> Result<String, AppError> {
    let username = username.trim();
    if username.is_empty() || username.len() > 64 {
        return Err(AppError::invalid("username must be 1 to 64 characters"));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return Err(AppError::invalid(
            "username may contain only lower-case letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(username.to_string())
}

/// Checks a contact address: something like `name@example.com`, at most 254 characters.
pub fn check_email(email: &str) -> Result<String, AppError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email.to_string())
    } else {
        Err(AppError::invalid(
            "email must be an address like name@example.com",
        ))
    }
}

/// Checks a display name: at most 128 printable characters; may be empty.
pub fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name must be at most 128 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// Checks a new password's length: 8 to 1024 characters. `field` names it in the error.
pub fn check_password(field: &str, password: &SecretString) -> Result<(), AppError> {
    let len = password.expose_secret().chars().count();
    if (8..=1024).contains(&len) {
        Ok(())
    } else {
        Err(AppError::invalid(format!(
            "{field} must be 8 to 1024 characters"
        )))
    }
}

/// Sorts roles and drops repeats.
fn normalise(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

/// A request to create a user, validated by [`NewUser::validate`].
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Unique login name: 1..64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Contact address (never logged).
    pub email: String,
    /// Display name, up to 128 characters; may be empty.
    pub name: String,
    /// The plain password, 8..1024 characters; hashed before it is stored. Never printed.
    /// `None`: the account cannot sign in until a password is set.
    pub password: Option<SecretString>,
    /// Roles granted to the user.
    pub roles: Vec<Role>,
}

impl NewUser {
    /// Checks every field, naming the first one that is wrong.
    pub fn validate(self) -> Result<Self, AppError> {
        if let Some(password) = &self.password {
            check_password("password", password)?;
        }
        Ok(Self {
            username: check_username(&self.username)?,
            email: check_email(&self.email)?,
            name: check_name(&self.name)?,
            password: self.password,
            roles: normalise(self.roles),
        })
    }
}

/// A change to a user's profile or roles; what is `None` keeps its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// A new contact address.
    pub email: Option<String>,
    /// A new display name.
    pub name: Option<String>,
    /// The new roles (replacing all of them).
    pub roles: Option<Vec<Role>>,
}

impl UserChanges {
    /// Checks every field given, naming the first one that is wrong.
    pub fn validate(self) -> Result<Self, AppError> {
        Ok(Self {
            email: self.email.as_deref().map(check_email).transpose()?,
            name: self.name.as_deref().map(check_name).transpose()?,
            roles: self.roles.map(normalise),
        })
    }
}

/// Position in the user listing (ordered by username, which is unique).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserCursor(pub String);

/// Which users to list: those whose username, email or name contains `search` (any case).
pub fn check_search(search: Option<String>) -> Result<Option<String>, AppError> {
    match search.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text)
            if text.chars().count() > MAX_SEARCH_LEN || text.chars().any(char::is_control) =>
        {
            Err(AppError::invalid(format!(
                "search must be at most {MAX_SEARCH_LEN} printable characters"
            )))
        }
        Some(text) => Ok(Some(text.to_lowercase())),
    }
}

/// How a user is signed in somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A first-party session opened by `login` (bearer tokens).
    Api,
    /// A sign-in on the hosted pages (a browser cookie).
    Browser,
}

/// One of a user's live sessions (never a token or a cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// Which kind.
    pub kind: SessionKind,
    /// The session's id: its `sid` (a browser session opened by an older release has none).
    pub id: Option<String>,
    /// When the user signed in, Unix seconds.
    pub signed_in_at: i64,
    /// When it ends unless used or ended, Unix seconds.
    pub expires_at: i64,
    /// Whether it is the session the caller acts through.
    pub current: bool,
}

/// A user as the transports see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Random, URL-safe id.
    pub id: crate::domain::ids::UserId,
    /// Unique login name.
    pub username: String,
    /// Contact address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// When the account was disabled; `None` while it is enabled.
    pub disabled_at: Option<i64>,
    /// Whether a password is set (without one the user cannot sign in).
    pub has_password: bool,
}
