//! The capability table: what the protocol endpoints accept. Discovery is generated from it and
//! the endpoints dispatch through it, so the document advertises exactly what works.

use crate::auth::SigningAlgorithm;
use crate::config::Config;
use crate::domain::oauth::{OidcScope, PkceMethod};

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

/// PKCE methods accepted under `config`.
pub fn pkce_methods(config: &Config) -> Vec<PkceMethod> {
    let mut methods = vec![PkceMethod::S256];
    if config.pkce_allow_plain {
        methods.push(PkceMethod::Plain);
    }
    methods
}

/// The discovery document (OpenID Connect Discovery 1.0 §3). `signing` lists the algorithms of
/// the published keys.
pub fn discovery(config: &Config, signing: &[SigningAlgorithm]) -> serde_json::Value {
    let issuer = &config.issuer;
    let mut algorithms: Vec<&str> = signing.iter().map(|a| a.as_str()).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    let mut document = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": config.authorization_endpoint,
        "token_endpoint": format!("{issuer}/api/oauth/token"),
        "userinfo_endpoint": format!("{issuer}/api/oauth/userinfo"),
        "jwks_uri": format!("{issuer}/api/oauth/jwks"),
        "scopes_supported": OidcScope::EVERY.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "response_types_supported": RESPONSE_TYPES,
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "code_challenge_methods_supported": pkce_methods(config).iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "claims_supported": CLAIMS,
        // Request objects are not supported (OpenID Connect Discovery §3: the second defaults
        // to true, so it is said out loud).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if config.hosts_authorization_endpoint() {
        // RFC 9207: our own endpoint names itself in every answer with `iss`.
        document["authorization_response_iss_parameter_supported"] = true.into();
    }
    document
}
