//! JSON Web Tokens: claims, signing with a pre-parsed key, and verification that pins the
//! algorithm of the key named by `kid` (the header's `alg` is never trusted).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::{SigningAlgorithm, SigningKey, VerifyingKey};
use crate::domain::secret::random_token;

/// What a token is for. Management guards accept only [`TokenKind::Session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A first-party token from `login`, for the management APIs.
    Session,
    /// An access token issued to an OAuth app at `/token`, for `/userinfo` only.
    Oauth,
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the configured public URL.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience: the issuer for first-party tokens.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// What the token is for.
    pub kind: TokenKind,
    /// The first-party session the token belongs to; checked on every use so that logout and
    /// refresh-token reuse end the session's access tokens at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// For app tokens: the app the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// For app tokens: the grant (token family) the token belongs to; checked on every use so
    /// that deleting the connection or replaying its code ends the token at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

impl AccessClaims {
    /// The claims every access token carries; the constructors below add what their kind needs.
    fn issued(
        issuer: &str,
        sub: &str,
        aud: &str,
        scope: &str,
        now: i64,
        ttl: i64,
        kind: TokenKind,
    ) -> Self {
        Self {
            iss: issuer.to_string(),
            sub: sub.to_string(),
            aud: aud.to_string(),
            exp: now + ttl,
            iat: now,
            jti: random_token(16),
            scope: scope.to_string(),
            kind,
            sid: None,
            client_id: None,
            gid: None,
        }
    }

    /// A first-party token for `session`: the issuer is its own audience.
    pub fn session(
        issuer: &str,
        user_id: &str,
        session_id: &str,
        scope: &str,
        now: i64,
        ttl: i64,
    ) -> Self {
        Self {
            sid: Some(session_id.to_string()),
            ..Self::issued(issuer, user_id, issuer, scope, now, ttl, TokenKind::Session)
        }
    }

    /// An app's access token for the grant `grant_id` (RFC 9068 claims) whose audience is the
    /// issuer (good at userinfo); a grant for a resource server sets `aud` to it after.
    pub fn app(
        issuer: &str,
        user_id: &str,
        client_id: &str,
        grant_id: &str,
        scope: &str,
        now: i64,
        ttl: i64,
    ) -> Self {
        Self {
            client_id: Some(client_id.to_string()),
            gid: Some(grant_id.to_string()),
            ..Self::issued(issuer, user_id, issuer, scope, now, ttl, TokenKind::Oauth)
        }
    }

    /// An app's access token for itself (`client_credentials`, RFC 9068 §2.2: `sub` is the
    /// client), for `audience`.
    pub fn service(
        issuer: &str,
        client_id: &str,
        audience: &str,
        scope: &str,
        now: i64,
        ttl: i64,
    ) -> Self {
        Self {
            client_id: Some(client_id.to_string()),
            ..Self::issued(
                issuer,
                client_id,
                audience,
                scope,
                now,
                ttl,
                TokenKind::Oauth,
            )
        }
    }
}

/// Claims of an ID token (OpenID Connect Core §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// When the user signed in, Unix seconds.
    pub auth_time: i64,
    /// The consent request's nonce, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Left half of the access token's hash, base64url.
    pub at_hash: String,
    /// The browser session the user signed in with (Back-Channel Logout 1.0 §2.1), when the
    /// consent was given on the hosted pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Every key a node signs and verifies with, loaded from the database. [`KeyRing::sign`] and
/// [`KeyRing::sign_with`] are the one signing path of every token idgraph issues.
pub struct KeyRing {
    /// The newest unsuperseded key of each algorithm.
    pub signers: HashMap<SigningAlgorithm, Arc<SigningKey>>,
    /// The algorithm of access tokens and first-party tokens (the configured one).
    pub default: SigningAlgorithm,
    /// Every published key by `kid`.
    pub verifying: HashMap<String, VerifyingKey>,
    /// The public JSON Web Key Set, `{"keys": [...]}`.
    pub jwks: Value,
    /// The app access tokens this ring has verified.
    pub verified: VerifiedTokens,
}

/// App access tokens a key ring has verified, with their claims, so that a token presented
/// again (a client calls userinfo, or an API introspects, with the same token until it expires)
/// is not verified again: a signature check costs more than the rest of a userinfo call.
///
/// An entry is keyed by the whole token, compared byte for byte, and is used only before the
/// token's `exp`. It lives as long as the ring that verified it: a node replaces its ring at
/// least once a minute, and at once when it learns that the keys changed, so a retired key's
/// tokens stop here as soon as they stop verifying. Only verification is remembered; whether
/// the token's grant is still live is asked on every use. At most [`VerifiedTokens::CAPACITY`]
/// entries; when full, it starts afresh.
#[derive(Default)]
pub struct VerifiedTokens {
    entries: std::sync::RwLock<HashMap<Box<str>, AccessClaims>>,
}

impl VerifiedTokens {
    /// Most tokens remembered at once (an entry is about a kilobyte).
    pub const CAPACITY: usize = 10_000;

    /// The claims of `token` if it was verified and has not expired at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<AccessClaims> {
        let entries = self.entries.read().ok()?;
        entries
            .get(token)
            .filter(|claims| now < claims.exp)
            .cloned()
    }

    /// Remembers that `token` verified, with `claims`.
    pub fn put(&self, token: &str, claims: &AccessClaims) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(token.into(), claims.clone());
        }
    }
}

impl KeyRing {
    /// The key that signs with `algorithm`, if the ring has one.
    pub fn signer(&self, algorithm: SigningAlgorithm) -> Option<&SigningKey> {
        self.signers.get(&algorithm).map(Arc::as_ref)
    }

    /// The algorithms the ring can sign with, sorted by name.
    pub fn algorithms(&self) -> Vec<SigningAlgorithm> {
        let mut algorithms: Vec<SigningAlgorithm> = self.signers.keys().copied().collect();
        algorithms.sort_by_key(|a| a.as_str());
        algorithms
    }

    /// Signs `claims` (a plain JWT) with the default algorithm's key.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        self.sign_typed(self.default, JwtType::Jwt, claims)
    }

    /// Signs `claims` (a plain JWT) with `algorithm`'s key.
    pub fn sign_with<T: Serialize>(
        &self,
        algorithm: SigningAlgorithm,
        claims: &T,
    ) -> anyhow::Result<String> {
        self.sign_typed(algorithm, JwtType::Jwt, claims)
    }

    /// Signs an app's access token (RFC 9068: `typ` `at+jwt`) with the default algorithm's key.
    pub fn sign_access<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        self.sign_typed(self.default, JwtType::AccessToken, claims)
    }

    /// Signs a back-channel logout token (`typ` `logout+jwt`) with `algorithm`'s key: the
    /// algorithm of the app's ID tokens.
    pub fn sign_logout<T: Serialize>(
        &self,
        algorithm: SigningAlgorithm,
        claims: &T,
    ) -> anyhow::Result<String> {
        self.sign_typed(algorithm, JwtType::Logout, claims)
    }

    fn sign_typed<T: Serialize>(
        &self,
        algorithm: SigningAlgorithm,
        typ: JwtType,
        claims: &T,
    ) -> anyhow::Result<String> {
        let key = self
            .signer(algorithm)
            .ok_or_else(|| anyhow::anyhow!("no active {algorithm} signing key"))?;
        sign_as(key, typ, claims)
    }
}

/// The `typ` of a token's JOSE header: what kind of token it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtType {
    /// `JWT`: first-party session tokens, ID tokens.
    Jwt,
    /// `at+jwt` (RFC 9068 §2.1): access tokens issued to apps, read by resource servers.
    AccessToken,
    /// `logout+jwt` (Back-Channel Logout 1.0 §2.4): logout tokens POSTed to apps.
    Logout,
}

impl JwtType {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtType::Jwt => "JWT",
            JwtType::AccessToken => "at+jwt",
            JwtType::Logout => "logout+jwt",
        }
    }

    /// The type a token's header declares (`application/at+jwt` counts as `at+jwt`, RFC 9068
    /// §4; a header without `typ` counts as `JWT`); `None` when it cannot be read.
    pub fn of(token: &str) -> Option<Self> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        match header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("jwt") => Some(JwtType::Jwt),
            Some("at+jwt") | Some("application/at+jwt") => Some(JwtType::AccessToken),
            Some("logout+jwt") | Some("application/logout+jwt") => Some(JwtType::Logout),
            Some(_) => None,
        }
    }
}

/// Signs `claims` as a compact JWS with `key` (header `alg`, `typ` `JWT`, `kid`).
pub fn sign<T: Serialize>(key: &SigningKey, claims: &T) -> anyhow::Result<String> {
    sign_as(key, JwtType::Jwt, claims)
}

/// Signs `claims` as a compact JWS of type `typ` with `key`.
pub fn sign_as<T: Serialize>(key: &SigningKey, typ: JwtType, claims: &T) -> anyhow::Result<String> {
    let header = serde_json::json!({
        "alg": key.algorithm().as_str(),
        "typ": typ.as_str(),
        "kid": key.kid(),
    });
    let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The header names no `kid` we publish.
    UnknownKey,
    /// Bad signature, wrong algorithm, expired, wrong issuer or audience, or malformed.
    Invalid,
}

/// Reads the `kid` of a token's header without verifying anything.
pub fn header_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// Seconds of clock difference between nodes tolerated on `nbf` (a token signed on a node whose
/// clock runs ahead). `exp` gets none: these tokens are verified by the servers that issued
/// them, and a token is dead from its `exp` on (RFC 7519 §4.1.4; introspection must not call an
/// expired token active, RFC 7662 §2.2).
pub const LEEWAY_SECS: i64 = 30;

/// What a verification expects of a token.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// The audience, or `None` to accept any (the caller decides what it may see).
    pub audience: Option<&'a str>,
    /// The header's `typ`: an app's access token is never accepted as another kind of token,
    /// and no other token as an app's access token.
    pub typ: JwtType,
    /// Whether a token past its `exp` is still read: only for an `id_token_hint`, which names
    /// a sign-in rather than granting anything (RP-Initiated Logout 1.0 §2).
    pub expired_ok: bool,
}

/// Verifies `token` against `ring` at `now` (Unix seconds): the key is chosen by `kid` and the
/// algorithm is that key's own; the header's `typ`, the signature, `iss` and `aud` are checked,
/// and `exp` (required) and `nbf` (when present) against `now`, not against the system clock,
/// so that time is a parameter here as everywhere.
pub fn verify<T: DeserializeOwned>(
    ring: &KeyRing,
    token: &str,
    expect: Expect<'_>,
    now: i64,
) -> Result<T, VerifyError> {
    if JwtType::of(token) != Some(expect.typ) {
        return Err(VerifyError::Invalid);
    }
    let kid = header_kid(token).ok_or(VerifyError::Invalid)?;
    let key = ring.verifying.get(&kid).ok_or(VerifyError::UnknownKey)?;
    verify_typed(key, token, expect, now)
}

/// Verifies `token` with `key` alone, as [`verify`] does once it has chosen the key.
pub fn verify_with<T: DeserializeOwned>(
    key: &VerifyingKey,
    token: &str,
    expect: Expect<'_>,
    now: i64,
) -> Result<T, VerifyError> {
    if JwtType::of(token) != Some(expect.typ) {
        return Err(VerifyError::Invalid);
    }
    verify_typed(key, token, expect, now)
}

/// The checks after the header's `typ` (which both callers read first): signature, issuer,
/// audience and times.
fn verify_typed<T: DeserializeOwned>(
    key: &VerifyingKey,
    token: &str,
    expect: Expect<'_>,
    now: i64,
) -> Result<T, VerifyError> {
    let mut validation = Validation::new(super::keys::jwt_algorithm(key.algorithm));
    validation.set_issuer(&[expect.issuer]);
    match expect.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
        .map_err(|_| VerifyError::Invalid)?
        .claims;
    let time = |name: &str| claims.get(name).map(Value::as_i64);
    match time("exp") {
        Some(Some(exp)) if now < exp || expect.expired_ok => {}
        _ => return Err(VerifyError::Invalid),
    }
    match time("nbf") {
        None => {}
        Some(Some(nbf)) if nbf <= now + LEEWAY_SECS => {}
        Some(_) => return Err(VerifyError::Invalid),
    }
    serde_json::from_value(claims).map_err(|_| VerifyError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> AccessClaims {
        AccessClaims::app("https://id.example", "u", "c", "g", "openid", 1_000, exp_in)
    }

    #[test]
    fn a_verified_token_is_remembered_until_its_exp_and_only_whole() {
        let verified = VerifiedTokens::default();
        verified.put("header.payload.signature", &claims(60));
        assert_eq!(
            verified
                .get("header.payload.signature", 1_059)
                .map(|c| c.gid),
            Some(Some("g".to_string()))
        );
        assert!(
            verified.get("header.payload.signature", 1_060).is_none(),
            "expired"
        );
        assert!(verified.get("header.payload.signaturf", 1_000).is_none());
        assert!(verified.get("header.payload.signatur", 1_000).is_none());
    }

    #[test]
    fn a_full_memo_starts_afresh() {
        let verified = VerifiedTokens::default();
        for i in 0..VerifiedTokens::CAPACITY {
            verified.put(&format!("token-{i}"), &claims(60));
        }
        assert!(verified.get("token-0", 1_000).is_some());
        verified.put("one-more", &claims(60));
        assert!(verified.get("token-0", 1_000).is_none());
        assert!(verified.get("one-more", 1_000).is_some());
    }
}
