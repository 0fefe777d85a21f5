//! The capability table: what the protocol endpoints accept. Discovery is generated from it and
//! the endpoints dispatch through it (the token endpoint parses `grant_type` and the client's
//! authentication method here, the authorization endpoint its response type and mode, consent
//! its PKCE methods through [`super::oauth::PkcePolicy`]), so the document advertises exactly
//! what works.

use std::fmt;
use std::str::FromStr;

/// The JWS algorithms idgraph signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key; required by OpenID Connect.
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlgorithm {
    /// The `alg` string of JOSE.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Every algorithm, RS256 (which OpenID Connect requires) first.
    pub const EVERY: [SigningAlgorithm; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!("unknown signing algorithm {other:?}")),
        }
    }
}

/// Grant types the token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code`
    AuthorizationCode,
    /// `refresh_token`
    RefreshToken,
    /// `client_credentials`: a confidential app's token for itself (RFC 6749 §4.4).
    ClientCredentials,
}

/// Every supported grant type.
pub const GRANT_TYPES: [GrantType; 3] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::ClientCredentials,
];

impl GrantType {
    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    /// Looks a `grant_type` value up in the table.
    pub fn parse(text: &str) -> Option<Self> {
        GRANT_TYPES.into_iter().find(|g| g.as_str() == text)
    }
}

/// How clients authenticate at the token endpoint (an app registers exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client (a single-page or native app): `client_id` only, no secret, PKCE with
    /// `S256` required.
    None,
}

/// Every supported client authentication method.
pub const CLIENT_AUTH_METHODS: [ClientAuthMethod; 3] = [
    ClientAuthMethod::ClientSecretBasic,
    ClientAuthMethod::ClientSecretPost,
    ClientAuthMethod::None,
];

impl ClientAuthMethod {
    /// The discovery string (RFC 7591 `token_endpoint_auth_method`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::None => "none",
        }
    }

    /// Looks a method up in the table.
    pub fn parse(text: &str) -> Option<Self> {
        CLIENT_AUTH_METHODS.into_iter().find(|m| m.as_str() == text)
    }

    /// Whether the method names a public client (no secret).
    pub fn is_public(self) -> bool {
        self == ClientAuthMethod::None
    }
}

/// Response types of the authorization endpoint.
pub const RESPONSE_TYPES: [&str; 1] = ["code"];

/// Claims idgraph can put in ID tokens and userinfo.
pub const CLAIMS: [&str; 14] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
];
