//! Management scopes: a closed set with exactly the strings documented in the REST contract (`openapi.json`).

use std::fmt;
use std::str::FromStr;

use crate::error::AppError;

/// One management scope carried in a first-party token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `gov.user.oauth.app:read`: list apps.
    AppRead,
    /// `gov.user.oauth.app:write`: create, change and delete apps.
    AppWrite,
    /// `gov.user.oauth.authorize`: consent to an app on the user's behalf.
    Authorize,
    /// `gov.user.oauth.connection:read`: list the user's connected apps.
    ConnectionRead,
    /// `gov.user.oauth.connection:write`: revoke the user's connected apps.
    ConnectionWrite,
    /// `gov.user.admin.user:read`: list and read users (administrators).
    UserRead,
    /// `gov.user.admin.user:write`: create, change, disable and delete users (administrators).
    UserWrite,
    /// `gov.user.admin.audit:read`: read the audit trail (administrators).
    AuditRead,
    /// `gov.user.admin.key:read`: list the signing keys (administrators).
    KeyRead,
    /// `gov.user.admin.key:write`: rotate a signing key (administrators).
    KeyWrite,
    /// `all`: every scope above.
    All,
}

impl Scope {
    /// Every scope, in their documented order.
    pub const EVERY: [Scope; 11] = [
        Scope::AppRead,
        Scope::AppWrite,
        Scope::Authorize,
        Scope::ConnectionRead,
        Scope::ConnectionWrite,
        Scope::UserRead,
        Scope::UserWrite,
        Scope::AuditRead,
        Scope::KeyRead,
        Scope::KeyWrite,
        Scope::All,
    ];

    /// The documented string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AppRead => "gov.user.oauth.app:read",
            Scope::AppWrite => "gov.user.oauth.app:write",
            Scope::Authorize => "gov.user.oauth.authorize",
            Scope::ConnectionRead => "gov.user.oauth.connection:read",
            Scope::ConnectionWrite => "gov.user.oauth.connection:write",
            Scope::UserRead => "gov.user.admin.user:read",
            Scope::UserWrite => "gov.user.admin.user:write",
            Scope::AuditRead => "gov.user.admin.audit:read",
            Scope::KeyRead => "gov.user.admin.key:read",
            Scope::KeyWrite => "gov.user.admin.key:write",
            Scope::All => "all",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::EVERY
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| AppError::invalid(format!("unknown scope {s:?}")))
    }
}

/// A set of scopes, parsed from and printed as a space-separated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u16);

impl ScopeSet {
    /// The set holding only `all`.
    pub fn all() -> Self {
        Self(Scope::All.bit())
    }

    /// The set holding only `scope`.
    pub fn only(scope: Scope) -> Self {
        Self(scope.bit())
    }

    /// Parses a space-separated list; an unknown scope or an empty list is an error.
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let mut set = Self::default();
        for word in text.split_ascii_whitespace() {
            set.0 |= word.parse::<Scope>()?.bit();
        }
        if set.0 == 0 {
            return Err(AppError::invalid("scope must name at least one scope"));
        }
        Ok(set)
    }

    /// Whether this set grants `scope` (directly or through `all`).
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::All.bit()) != 0
    }

    /// The scopes in the set, in documented order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::EVERY
            .into_iter()
            .filter(move |scope| self.0 & scope.bit() != 0)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_string() {
        for scope in Scope::EVERY {
            assert_eq!(scope.as_str().parse::<Scope>().ok(), Some(scope));
        }
    }

    #[test]
    fn all_allows_every_scope_and_a_single_scope_only_itself() {
        let all = ScopeSet::all();
        assert!(Scope::EVERY.into_iter().all(|s| all.allows(s)));
        let read = ScopeSet::parse("gov.user.oauth.app:read").unwrap();
        assert!(read.allows(Scope::AppRead));
        assert!(!read.allows(Scope::AppWrite));
    }

    #[test]
    fn unknown_and_empty_scopes_are_refused() {
        assert!(ScopeSet::parse("gov.user.oauth.app:read admin").is_err());
        assert!(ScopeSet::parse("  ").is_err());
    }

    #[test]
    fn sets_print_in_documented_order_without_duplicates() {
        let set =
            ScopeSet::parse("all gov.user.oauth.app:write gov.user.oauth.app:read all").unwrap();
        assert_eq!(
            set.to_string(),
            "gov.user.oauth.app:read gov.user.oauth.app:write all"
        );
    }
}
