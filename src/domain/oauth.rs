//! OpenID Connect vocabulary and pure protocol rules: scopes, consent input, PKCE.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AppError;

/// The OpenID scopes idgraph grants to apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OidcScope {
    /// `email`: the `email` and `email_verified` claims.
    Email,
    /// `offline_access`: a refresh token.
    OfflineAccess,
    /// `openid`: required; an ID token.
    Openid,
    /// `profile`: `name`, `preferred_username`, `updated_at`.
    Profile,
}

impl OidcScope {
    /// Every scope, sorted by name.
    pub const EVERY: [OidcScope; 4] = [
        OidcScope::Email,
        OidcScope::OfflineAccess,
        OidcScope::Openid,
        OidcScope::Profile,
    ];

    /// The order in which the consent page lists scopes: the sign-in itself first.
    pub const DISPLAY_ORDER: [OidcScope; 4] = [
        OidcScope::Openid,
        OidcScope::Profile,
        OidcScope::Email,
        OidcScope::OfflineAccess,
    ];

    /// The scope's string.
    pub fn as_str(self) -> &'static str {
        match self {
            OidcScope::Email => "email",
            OidcScope::OfflineAccess => "offline_access",
            OidcScope::Openid => "openid",
            OidcScope::Profile => "profile",
        }
    }

    /// What granting the scope lets an app do, in plain words for the consent page.
    pub fn describe(self) -> &'static str {
        match self {
            OidcScope::Email => "See your email address",
            OidcScope::OfflineAccess => "Stay connected while you are away (until you revoke it)",
            OidcScope::Openid => "Sign you in with your idgraph account",
            OidcScope::Profile => "See your name and username",
        }
    }
}

impl fmt::Display for OidcScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OidcScope {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OidcScope::EVERY
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}

/// A granted set of OpenID scopes: known scopes only, deduplicated, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OidcScopes(Vec<OidcScope>);

impl OidcScopes {
    /// Keeps the known scopes of a space-separated request, deduplicated and sorted.
    pub fn filter(requested: &str) -> Self {
        let mut scopes: Vec<OidcScope> = requested
            .split_ascii_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: OidcScope) -> bool {
        self.0.contains(&scope)
    }

    /// The scopes in either set.
    pub fn union(&self, other: &OidcScopes) -> Self {
        let mut scopes: Vec<OidcScope> = self.0.iter().chain(other.0.iter()).copied().collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &OidcScopes) -> bool {
        self.0.iter().all(|scope| other.contains(*scope))
    }
}

impl fmt::Display for OidcScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&words.join(" "))
    }
}

/// PKCE transformation methods (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    /// The challenge is the verifier.
    Plain,
    /// The challenge is BASE64URL(SHA256(verifier)).
    S256,
}

impl PkceMethod {
    /// The method's string.
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMethod::Plain => "plain",
            PkceMethod::S256 => "S256",
        }
    }

    /// Parses a stored or requested method.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "plain" => Some(PkceMethod::Plain),
            "S256" => Some(PkceMethod::S256),
            _ => None,
        }
    }

    /// The challenge that `verifier` answers under this method.
    pub fn challenge_of(self, verifier: &str) -> String {
        match self {
            PkceMethod::Plain => verifier.to_string(),
            PkceMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        }
    }

    /// Whether `verifier` answers `challenge`, compared in constant time.
    pub fn verify(self, challenge: &str, verifier: &str) -> bool {
        self.challenge_of(verifier)
            .as_bytes()
            .ct_eq(challenge.as_bytes())
            .into()
    }
}

/// Whether `text` is 43..128 characters of `[A-Za-z0-9._~-]` (a PKCE challenge or verifier).
pub fn is_pkce_string(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'))
}

/// A validated consent request.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    /// The app consented to.
    pub client_id: String,
    /// Granted scopes (contains `openid`).
    pub scopes: OidcScopes,
    /// Passed through to the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge and method, given together or not at all.
    pub pkce: Option<(String, PkceMethod)>,
}

impl ConsentRequest {
    /// Applies the consent rules of REST.md; `allow_plain` says whether PKCE `plain` is on.
    pub fn validate(
        client_id: String,
        scope: &str,
        nonce: Option<String>,
        code_challenge: Option<String>,
        code_challenge_method: Option<String>,
        allow_plain: bool,
    ) -> Result<Self, AppError> {
        let scopes = OidcScopes::filter(scope);
        if !scopes.contains(OidcScope::Openid) {
            return Err(AppError::invalid("scope: must contain openid"));
        }
        let nonce = nonce.filter(|n| !n.is_empty());
        if let Some(nonce) = &nonce
            && (nonce.len() > 255 || !nonce.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        {
            return Err(AppError::invalid(
                "nonce: must be at most 255 printable ASCII characters",
            ));
        }
        let challenge = code_challenge.filter(|c| !c.is_empty());
        let method = code_challenge_method.filter(|m| !m.is_empty());
        let pkce = match (challenge, method) {
            (None, None) => None,
            (Some(challenge), Some(method)) => {
                if !is_pkce_string(&challenge) {
                    return Err(AppError::invalid(
                        "code_challenge: must be 43 to 128 characters of A-Z a-z 0-9 . _ ~ -",
                    ));
                }
                let method = match PkceMethod::parse(&method) {
                    Some(PkceMethod::Plain) if !allow_plain => {
                        return Err(AppError::invalid(
                            "code_challenge_method: plain is disabled; use S256",
                        ));
                    }
                    Some(method) => method,
                    None => {
                        return Err(AppError::invalid(
                            "code_challenge_method: must be plain or S256",
                        ));
                    }
                };
                Some((challenge, method))
            }
            _ => {
                return Err(AppError::invalid(
                    "code_challenge and code_challenge_method must be given together",
                ));
            }
        };
        Ok(Self {
            client_id,
            scopes,
            nonce,
            pkce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_filtered_deduplicated_and_sorted() {
        let scopes = OidcScopes::filter("profile openid admin openid email");
        assert_eq!(scopes.to_string(), "email openid profile");
    }

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(PkceMethod::S256.verify(challenge, verifier));
        assert!(!PkceMethod::S256.verify(challenge, "x".repeat(43).as_str()));
        assert!(PkceMethod::Plain.verify(verifier, verifier));
    }

    #[test]
    fn consent_rules_are_enforced() {
        let ok = ConsentRequest::validate("c".into(), "openid", None, None, None, true);
        assert!(ok.is_ok());
        let missing_openid =
            ConsentRequest::validate("c".into(), "profile", None, None, None, true);
        assert!(missing_openid.unwrap_err().to_string().contains("openid"));
        let lone =
            ConsentRequest::validate("c".into(), "openid", None, Some("a".repeat(43)), None, true);
        assert!(lone.is_err());
        let short = ConsentRequest::validate(
            "c".into(),
            "openid",
            None,
            Some("a".repeat(42)),
            Some("S256".into()),
            true,
        );
        assert!(short.is_err());
        let plain_off = ConsentRequest::validate(
            "c".into(),
            "openid",
            None,
            Some("a".repeat(43)),
            Some("plain".into()),
            false,
        );
        assert!(plain_off.is_err());
        let bad_nonce = ConsentRequest::validate(
            "c".into(),
            "openid",
            Some("a\u{7}".into()),
            None,
            None,
            true,
        );
        assert!(bad_nonce.is_err());
    }
}
