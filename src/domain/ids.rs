//! Identifier newtypes, so that one kind of id cannot be passed where another is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret::random_token;

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, at most $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id: 16 random bytes, base64url (22 characters).
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

            /// An id as received from outside: `None` unless it has the shape of one (1 to
            /// the type's maximum characters of `A-Z a-z 0-9 - _`), so that nothing else ever
            /// reaches a query. Callers answer `None` with their own "not found".
            pub fn parse(text: &str) -> Option<Self> {
                is_id_shaped(text, $max).then(|| Self(text.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id! {
    /// A user's id.
    UserId, at most MAX_ID_LEN
}

random_id! {
    /// A first-party session's id (one refresh-token family of `login`).
    SessionId, at most MAX_ID_LEN
}

random_id! {
    /// A browser session's id: a public name for one sign-in on the hosted pages, distinct
    /// from the secret cookie value that proves it.
    BrowserSessionId, at most MAX_ID_LEN
}

random_id! {
    /// A grant's id: one consent's code and the token family it started (`gid`).
    GrantId, at most MAX_ID_LEN
}

random_id! {
    /// An app's public client id.
    ClientId, at most MAX_CLIENT_ID_LEN
}

/// Longest id accepted anywhere (ours are 22 characters).
pub const MAX_ID_LEN: usize = 32;
/// Longest client id accepted (the REST contract: at most 31).
pub const MAX_CLIENT_ID_LEN: usize = 31;

/// Whether `text` is 1 to `max` characters of `A-Z a-z 0-9 - _`.
fn is_id_shaped(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_must_have_the_shape_of_one() {
        assert!(ClientId::parse(ClientId::generate().as_str()).is_some());
        for bad in ["", "a b", "a\0", "é", &"x".repeat(32)] {
            assert!(ClientId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(UserId::parse(&"x".repeat(32)).is_some());
        assert!(UserId::parse(&"x".repeat(33)).is_none());
    }
}
