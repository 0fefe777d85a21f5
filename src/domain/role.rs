//! User roles: a closed set with one string form each.

use std::fmt;
use std::str::FromStr;

use crate::error::AppError;

/// A role held by a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// `admin`: administers idgraph itself; also counts as an oauth admin.
    Admin,
    /// `oauth`: manages OAuth apps.
    Oauth,
}

impl Role {
    /// The stored and documented string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Oauth => "oauth",
        }
    }

    /// Parses the space-separated form stored in the `users.roles` column.
    pub fn parse_list(text: &str) -> Result<Vec<Role>, AppError> {
        text.split_ascii_whitespace().map(str::parse).collect()
    }

    /// Formats roles for the `users.roles` column.
    pub fn format_list(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "oauth" => Ok(Role::Oauth),
            other => Err(AppError::invalid(format!(
                "unknown role {other:?} (expected admin or oauth)"
            ))),
        }
    }
}
