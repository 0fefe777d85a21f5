//! OpenID Connect vocabulary and pure protocol rules: scopes, consent input, PKCE.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::ClientId;
use super::scopes::Scopes;
use crate::error::AppError;

/// The OpenID scopes idgraph grants to apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OidcScopes(Vec<OidcScope>);

impl OidcScopes {
    /// Keeps the known scopes of a space-separated request, deduplicated and sorted.
    pub fn filter(requested: &str) -> Self {
        Self::from_scopes(
            requested
                .split_ascii_whitespace()
                .filter_map(|word| word.parse().ok()),
        )
    }

    /// A set of `scopes`, deduplicated and sorted.
    pub fn from_scopes(scopes: impl IntoIterator<Item = OidcScope>) -> Self {
        let mut scopes: Vec<OidcScope> = scopes.into_iter().collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: OidcScope) -> bool {
        self.0.contains(&scope)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = OidcScope> + '_ {
        self.0.iter().copied()
    }

    /// The scopes in either set.
    pub fn union(&self, other: &OidcScopes) -> Self {
        Self::from_scopes(self.iter().chain(other.iter()))
    }

    /// The one rule every OpenID request obeys: `openid` must be among the scopes.
    pub fn require_openid(&self) -> Result<(), &'static str> {
        if self.contains(OidcScope::Openid) {
            Ok(())
        } else {
            Err("scope must contain openid")
        }
    }

    /// The scopes in display order (the consent page lists the sign-in itself first).
    pub fn in_display_order(&self) -> impl Iterator<Item = OidcScope> + '_ {
        OidcScope::DISPLAY_ORDER
            .into_iter()
            .filter(|scope| self.contains(*scope))
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A PKCE challenge and its method, as a code remembers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pkce {
    /// The challenge.
    pub challenge: String,
    /// How the verifier becomes the challenge.
    pub method: PkceMethod,
}

/// Which PKCE methods idgraph accepts: `S256` always, `plain` when the configuration allows
/// it. Consent, the authorization endpoint and discovery all ask this one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PkcePolicy {
    /// Whether `plain` is accepted.
    pub allow_plain: bool,
}

impl PkcePolicy {
    /// The accepted methods, `S256` first (discovery lists them).
    pub fn methods(self) -> Vec<PkceMethod> {
        let mut methods = vec![PkceMethod::S256];
        if self.allow_plain {
            methods.push(PkceMethod::Plain);
        }
        methods
    }

    /// Checks a challenge and its method, given together or not at all. An `S256` challenge
    /// is a SHA-256 digest in base64url, exactly 43 characters that decode to 32 bytes;
    /// anything else could never be answered, so it is refused rather than stored.
    pub fn check(
        self,
        challenge: Option<String>,
        method: Option<String>,
    ) -> Result<Option<Pkce>, String> {
        let challenge = challenge.filter(|c| !c.is_empty());
        let method = method.filter(|m| !m.is_empty());
        let (challenge, method) = match (challenge, method) {
            (None, None) => return Ok(None),
            (Some(challenge), Some(method)) => (challenge, method),
            _ => {
                return Err(
                    "code_challenge and code_challenge_method must be given together".into(),
                );
            }
        };
        let method = match PkceMethod::parse(&method) {
            Some(PkceMethod::Plain) if !self.allow_plain => {
                return Err("code_challenge_method: plain is disabled; use S256".into());
            }
            Some(method) => method,
            None => return Err("code_challenge_method: must be plain or S256".into()),
        };
        if !is_pkce_string(&challenge) {
            return Err(
                "code_challenge: must be 43 to 128 characters of A-Z a-z 0-9 . _ ~ -".into(),
            );
        }
        // base64url without padding, decoded strictly (the unused low bits of the last
        // character must be zero), to exactly the 32 bytes of a SHA-256 digest: `.` and `~`,
        // another length or a non-canonical last character can never equal what a verifier
        // hashes to.
        let digest = || URL_SAFE_NO_PAD.decode(challenge.as_bytes());
        if method == PkceMethod::S256 && !digest().is_ok_and(|bytes| bytes.len() == 32) {
            return Err(
                "code_challenge: an S256 challenge is exactly 43 base64url characters \
                 (A-Z a-z 0-9 - _), the encoding of a SHA-256 digest"
                    .into(),
            );
        }
        Ok(Some(Pkce { challenge, method }))
    }
}

/// The longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 255;

/// A validated consent request: what a code remembers about the authorization it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequest {
    /// The app consented to.
    pub client_id: ClientId,
    /// Requested scopes (known OpenID scopes, containing `openid`, and well-formed API scopes).
    pub scopes: Scopes,
    /// Passed through to the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge and method.
    pub pkce: Option<Pkce>,
    /// The resource server (RFC 8707) the user's access tokens are for, which the app must be
    /// allowed to name; `None`: the issuer (userinfo). Set by the caller after [`Self::validate`]:
    /// only the app's policy can tell a good one.
    pub resource: Option<String>,
}

impl ConsentRequest {
    /// Applies the consent rules of the REST contract under `pkce` policy. The message of an error names
    /// the field.
    pub fn validate(
        client_id: ClientId,
        scope: &str,
        nonce: Option<String>,
        code_challenge: Option<String>,
        code_challenge_method: Option<String>,
        pkce: PkcePolicy,
    ) -> Result<Self, AppError> {
        let scopes = Scopes::filter(scope);
        scopes
            .oidc
            .require_openid()
            .map_err(|why| AppError::invalid(format!("scope: {why}")))?;
        let nonce = nonce.filter(|n| !n.is_empty());
        if let Some(nonce) = &nonce
            && (nonce.len() > MAX_NONCE_LEN
                || !nonce.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        {
            return Err(AppError::invalid(format!(
                "nonce: must be at most {MAX_NONCE_LEN} printable ASCII characters"
            )));
        }
        let pkce = pkce
            .check(code_challenge, code_challenge_method)
            .map_err(AppError::invalid)?;
        Ok(Self {
            client_id,
            scopes,
            nonce,
            pkce,
            resource: None,
        })
    }
}

/// `text` as an `error_description` may carry it (RFC 6749 §5.2 and §4.1.2.1: printable ASCII
/// other than `"` and the backslash): anything else, such as a character of the client's echoed back,
/// becomes `?`.
pub fn error_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
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

    fn consent(
        scope: &str,
        nonce: Option<&str>,
        challenge: Option<String>,
        method: Option<&str>,
        allow_plain: bool,
    ) -> Result<ConsentRequest, String> {
        ConsentRequest::validate(
            ClientId::from_trusted("c".into()),
            scope,
            nonce.map(str::to_string),
            challenge,
            method.map(str::to_string),
            PkcePolicy { allow_plain },
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn consent_rules_are_enforced() {
        assert!(consent("openid", None, None, None, true).is_ok());
        let missing_openid = consent("profile", None, None, None, true).unwrap_err();
        assert!(missing_openid.contains("openid"), "{missing_openid}");
        let lone = consent("openid", None, Some("a".repeat(43)), None, true).unwrap_err();
        assert!(lone.contains("together"), "{lone}");
        let short = consent("openid", None, Some("a".repeat(42)), Some("S256"), true);
        assert!(short.unwrap_err().starts_with("code_challenge:"));
        let plain_off = consent("openid", None, Some("a".repeat(43)), Some("plain"), false);
        assert!(plain_off.unwrap_err().contains("plain is disabled"));
        let bad_nonce = consent("openid", Some("a\u{7}"), None, None, true).unwrap_err();
        assert!(bad_nonce.starts_with("nonce:"), "{bad_nonce}");
    }

    #[test]
    fn an_s256_challenge_is_exactly_43_characters() {
        let long = consent("openid", None, Some("a".repeat(44)), Some("S256"), true);
        assert!(long.unwrap_err().contains("exactly 43"));
        // A plain challenge may be longer: it is the verifier itself.
        assert!(consent("openid", None, Some("a".repeat(44)), Some("plain"), true).is_ok());
        // 43 characters that a verifier's digest could be...
        let real = URL_SAFE_NO_PAD.encode(Sha256::digest(b"a verifier"));
        assert!(consent("openid", None, Some(real.clone()), Some("S256"), true).is_ok());
        // ...and 43 that no digest is: `~` and `.` are verifier characters, not base64url,
        // and a last character whose unused bits are set encodes no 32 bytes.
        for never in [
            format!("{}~", &real[..42]),
            format!("{}.", &real[..42]),
            format!("{}B", &real[..42]),
        ] {
            let refused = consent("openid", None, Some(never.clone()), Some("S256"), true);
            assert!(refused.unwrap_err().contains("exactly 43"), "{never}");
        }
    }

    #[test]
    fn an_error_description_holds_only_what_rfc_6749_allows() {
        assert_eq!(
            error_description("'x' is not a scope"),
            "'x' is not a scope"
        );
        assert_eq!(error_description("\"é\\\u{7f}\ttab"), "?????tab");
    }
}
