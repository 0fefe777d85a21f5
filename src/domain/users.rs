//! Validated input for creating a user.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::Role;
use crate::error::AppError;

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
    pub password: SecretString,
    /// Roles granted to the user.
    pub roles: Vec<Role>,
}

impl NewUser {
    /// Checks every field, naming the first one that is wrong.
    pub fn validate(mut self) -> Result<Self, AppError> {
        self.username = self.username.trim().to_string();
        if self.username.is_empty() || self.username.len() > 64 {
            return Err(AppError::invalid("username must be 1 to 64 characters"));
        }
        if !self
            .username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(AppError::invalid(
                "username may contain only lower-case letters, digits, '.', '_' and '-'",
            ));
        }
        self.email = self.email.trim().to_string();
        let valid_email = self.email.len() <= 254
            && self
                .email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !self.email.chars().any(char::is_whitespace);
        if !valid_email {
            return Err(AppError::invalid(
                "email must be an address like name@example.com",
            ));
        }
        self.name = self.name.trim().to_string();
        if self.name.chars().count() > 128 || self.name.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "name must be at most 128 printable characters",
            ));
        }
        let password_len = self.password.expose_secret().chars().count();
        if !(8..=1024).contains(&password_len) {
            return Err(AppError::invalid("password must be 8 to 1024 characters"));
        }
        self.roles.sort();
        self.roles.dedup();
        Ok(self)
    }
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
}
