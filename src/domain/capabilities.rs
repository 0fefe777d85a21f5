//! The capability table: what the protocol endpoints accept. Discovery is generated from it and
//! the endpoints dispatch through it (the token endpoint parses `grant_type` and the client's
//! authentication method here, the authorization endpoint its response type and mode, consent
//! its PKCE methods through [`super::oauth::PkcePolicy`]), so the document advertises exactly
//! what works.

/// Grant types the token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code`
    AuthorizationCode,
    /// `refresh_token`
    RefreshToken,
}

/// Every supported grant type.
pub const GRANT_TYPES: [GrantType; 2] = [GrantType::AuthorizationCode, GrantType::RefreshToken];

impl GrantType {
    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    /// Looks a `grant_type` value up in the table.
    pub fn parse(text: &str) -> Option<Self> {
        GRANT_TYPES.into_iter().find(|g| g.as_str() == text)
    }
}

/// How clients authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Every supported client authentication method.
pub const CLIENT_AUTH_METHODS: [ClientAuthMethod; 2] = [
    ClientAuthMethod::ClientSecretBasic,
    ClientAuthMethod::ClientSecretPost,
];

impl ClientAuthMethod {
    /// The discovery string.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    /// Whether the table offers `self`.
    pub fn is_supported(self) -> bool {
        CLIENT_AUTH_METHODS.contains(&self)
    }
}

/// Response types of the authorization endpoint.
pub const RESPONSE_TYPES: [&str; 1] = ["code"];

/// Claims idgraph can put in ID tokens and userinfo.
pub const CLAIMS: [&str; 13] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
];
