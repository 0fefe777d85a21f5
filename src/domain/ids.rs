//! Identifier newtypes, so that one kind of id cannot be passed where another is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret::random_token;

/// A user's id: 16 random bytes, base64url without padding (22 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(random_token(16))
    }

    /// Wraps an id read from storage or from a verified token.
    pub fn from_trusted(id: String) -> Self {
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A first-party session's id (one refresh-token family).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(random_token(16))
    }

    /// Wraps an id read from storage or from a verified token.
    pub fn from_trusted(id: String) -> Self {
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
