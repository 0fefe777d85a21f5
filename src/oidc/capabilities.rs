//! The discovery document, generated from the capability table
//! ([`crate::domain::capabilities`]) and the configuration, so that it advertises exactly what
//! works.

use crate::auth::SigningAlgorithm;
use crate::config::Config;
use crate::domain::authorize::ResponseMode;
use crate::domain::capabilities::{CLAIMS, CLIENT_AUTH_METHODS, GRANT_TYPES, RESPONSE_TYPES};
use crate::domain::oauth::{OidcScope, PkcePolicy};

/// The discovery document (OpenID Connect Discovery 1.0 §3). `signing` lists the algorithms of
/// the published keys.
pub fn discovery(config: &Config, signing: &[SigningAlgorithm]) -> serde_json::Value {
    let issuer = &config.issuer;
    let mut algorithms: Vec<&str> = signing.iter().map(|a| a.as_str()).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    let pkce = PkcePolicy {
        allow_plain: config.pkce_allow_plain,
    };
    let mut document = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": config.authorization_endpoint,
        "token_endpoint": format!("{issuer}/api/oauth/token"),
        "userinfo_endpoint": format!("{issuer}/api/oauth/userinfo"),
        "revocation_endpoint": format!("{issuer}/api/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "introspection_endpoint": format!("{issuer}/api/oauth/introspect"),
        // Introspection is for confidential apps (resource servers) only.
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS.iter().filter(|m| !m.is_public()).map(|m| m.as_str()).collect::<Vec<_>>(),
        "jwks_uri": format!("{issuer}/api/oauth/jwks"),
        "scopes_supported": OidcScope::EVERY.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "response_types_supported": RESPONSE_TYPES,
        "response_modes_supported": ResponseMode::EVERY.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "grant_types_supported": GRANT_TYPES.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        // idgraph's own member (no specification names one): access tokens are signed with the
        // configured fast key whatever algorithm an app's ID tokens use, so a resource server
        // knows which key type it must accept from the JWKS.
        "access_token_signing_alg_values_supported": [config.signing_algorithm.as_str()],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "code_challenge_methods_supported": pkce.methods().iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "claims_supported": CLAIMS,
        // Request objects are not supported (OpenID Connect Discovery §3: the second defaults
        // to true, so it is said out loud).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // Back-Channel Logout 1.0: deleting a connection tells the app even without our pages.
        "backchannel_logout_supported": true,
        "frontchannel_logout_supported": false,
        "frontchannel_logout_session_supported": false,
    });
    if config.hosts_authorization_endpoint() {
        // RFC 9207: our own endpoint names itself in every answer with `iss`.
        document["authorization_response_iss_parameter_supported"] = true.into();
        // Browser sessions exist on our own pages only: their sign-out is the end-session
        // endpoint (RP-Initiated Logout 1.0), and their `sid` is in ID and logout tokens.
        document["end_session_endpoint"] = format!("{issuer}/oauth/logout").into();
        document["backchannel_logout_session_supported"] = true.into();
    }
    document
}
