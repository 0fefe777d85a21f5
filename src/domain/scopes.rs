//! The scopes of a request or a grant: OpenID scopes (a closed set, [`OidcScopes`]) and API
//! scopes, the words an operator defines for their own APIs, written `resource:action`
//! (`orders:read`, `billing.invoices:write`). API scopes are carried into access tokens
//! unchanged; an app receives one only when its scope ceiling lists it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::oauth::{OidcScope, OidcScopes};

/// Longest API scope.
pub const MAX_API_SCOPE_LEN: usize = 128;

/// An API scope: `resource:action`, each part starting with a lower-case letter or digit and
/// holding lower-case letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiScope(String);

impl ApiScope {
    /// `word` as an API scope, if it has the shape of one.
    pub fn parse(word: &str) -> Option<Self> {
        let part = |text: &str| {
            text.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && text.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        let (resource, action) = word.split_once(':')?;
        (word.len() <= MAX_API_SCOPE_LEN && part(resource) && part(action))
            .then(|| Self(word.to_string()))
    }

    /// The scope as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// OpenID scopes and API scopes, each deduplicated and sorted; printed OpenID scopes first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scopes {
    /// The OpenID scopes.
    pub oidc: OidcScopes,
    /// The API scopes.
    pub api: BTreeSet<ApiScope>,
}

impl Scopes {
    /// The known OpenID scopes and the well-formed API scopes of a space-separated list; any
    /// other word is dropped (the REST contract: unknown scopes are dropped).
    pub fn filter(text: &str) -> Self {
        Self {
            oidc: OidcScopes::filter(text),
            api: text
                .split_ascii_whitespace()
                .filter(|word| word.parse::<OidcScope>().is_err())
                .filter_map(ApiScope::parse)
                .collect(),
        }
    }

    /// A space-separated list in which every word is a scope; `Err` names the first that is
    /// neither an OpenID scope nor an API scope.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(word) = text
            .split_ascii_whitespace()
            .find(|word| word.parse::<OidcScope>().is_err() && ApiScope::parse(word).is_none())
        {
            return Err(word.to_string());
        }
        Ok(Self::filter(text))
    }

    /// Whether there is no scope at all.
    pub fn is_empty(&self) -> bool {
        self.oidc.is_empty() && self.api.is_empty()
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.oidc.is_subset_of(&other.oidc) && self.api.is_subset(&other.api)
    }

    /// The scopes in either.
    pub fn union(&self, other: &Scopes) -> Self {
        Self {
            oidc: self.oidc.union(&other.oidc),
            api: self.api.union(&other.api).cloned().collect(),
        }
    }
}

impl Scopes {
    /// Each scope in plain words for the consent page: the OpenID scopes described, the sign-in
    /// itself first, then the API scopes verbatim.
    pub fn describe(&self) -> Vec<String> {
        self.oidc
            .in_display_order()
            .map(|scope| scope.describe().to_string())
            .chain(self.api.iter().map(|scope| scope.as_str().to_string()))
            .collect()
    }
}

impl From<OidcScopes> for Scopes {
    fn from(oidc: OidcScopes) -> Self {
        Self {
            oidc,
            api: BTreeSet::new(),
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self
            .oidc
            .iter()
            .map(|scope| scope.as_str())
            .chain(self.api.iter().map(|scope| scope.as_str()))
            .collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_scopes_have_a_resource_and_an_action() {
        for ok in ["orders:read", "billing.invoices:write", "a1:b-2_c"] {
            assert!(ApiScope::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "orders",
            ":read",
            "orders:",
            "Orders:read",
            "o:r:w",
            "o r:x",
            "o:r\0",
        ] {
            assert!(ApiScope::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ApiScope::parse(&format!("a:{}", "b".repeat(200))).is_none());
    }

    #[test]
    fn lists_keep_openid_and_api_scopes_and_print_openid_first() {
        let scopes = Scopes::filter("orders:read openid junk email orders:read");
        assert_eq!(scopes.to_string(), "email openid orders:read");
        assert_eq!(Scopes::parse("openid nope").unwrap_err(), "nope");
        assert!(Scopes::parse("openid orders:read").is_ok());
        let narrow = Scopes::filter("openid orders:read");
        assert!(narrow.is_subset_of(&scopes));
        assert!(!scopes.is_subset_of(&narrow));
    }
}
