//! What kind of client an app is and what it may do: its client metadata (RFC 7591 names) as
//! a validated policy, and the pure rules that read it (redirect URI matching, the scope
//! ceiling, allowed grants, CORS origins).

use std::collections::BTreeSet;

use url::{Host, Url};

use super::capabilities::{ClientAuthMethod, GrantType, SigningAlgorithm};
use super::oauth::OidcScope;
use super::scopes::Scopes;
use crate::error::AppError;

/// Most redirect URIs (and post-logout redirect URIs) an app may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI.
pub const MAX_URI_LEN: usize = 512;

/// What an app is allowed: validated, complete client metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    /// 1 to [`MAX_REDIRECT_URIS`], each matched exactly; the first is the seed's
    /// `redirect_uri`.
    pub redirect_uris: Vec<String>,
    /// 0 to [`MAX_REDIRECT_URIS`], same rules (for RP-initiated logout).
    pub post_logout_redirect_uris: Vec<String>,
    /// How the app authenticates at the token endpoint; `none` makes a public client.
    pub auth_method: ClientAuthMethod,
    /// The grants the app may use.
    pub grant_types: Vec<GrantType>,
    /// The scopes the app may ever receive: OpenID scopes (none listed means every one) and
    /// API scopes (only those listed).
    pub scope: Scopes,
    /// The algorithm of the app's ID tokens.
    pub id_token_alg: SigningAlgorithm,
    /// The resource servers (RFC 8707 resource indicators, absolute URIs) the app's
    /// `client_credentials` tokens may name as their audience.
    pub resources: Vec<String>,
    /// Where back-channel logout tokens are POSTed (https, or http on a loopback host).
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in every logout token it receives.
    pub backchannel_logout_session_required: bool,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self {
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            auth_method: ClientAuthMethod::default(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: Scopes::default(),
            id_token_alg: SigningAlgorithm::Rs256,
            resources: Vec::new(),
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        }
    }
}

impl ClientPolicy {
    /// Whether the app is a public client (no secret; PKCE with `S256` required).
    pub fn is_public(&self) -> bool {
        self.auth_method.is_public()
    }

    /// Whether the app may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The audience of a token the app gets for itself (`client_credentials`): the `resource`
    /// it asked for, which must be one of its `resources`; without one, the first of them, or
    /// `issuer` when it has none. `None` when it may not name that resource.
    pub fn app_token_audience<'a>(
        &'a self,
        resource: Option<&'a str>,
        issuer: &'a str,
    ) -> Option<&'a str> {
        match resource {
            Some(resource) => self.may_name(resource).then_some(resource),
            None => Some(self.resources.first().map_or(issuer, String::as_str)),
        }
    }

    /// Whether the app may name `resource` (RFC 8707) as the audience of its tokens, its own
    /// or its users': one of its `resources`.
    pub fn may_name(&self, resource: &str) -> bool {
        self.resources.iter().any(|r| r == resource)
    }

    /// The audience of a user's access token of a grant that was authorized for `granted`
    /// (code and refresh grants): that resource, while the app may still name it, or `None`
    /// (the issuer) when the grant named none. `asked`, the token request's own `resource`,
    /// may only repeat the granted one (RFC 8707 §2.2: the token request names a resource the
    /// authorization covered). The error says why the target is refused.
    pub fn user_token_audience<'a>(
        &self,
        granted: Option<&'a str>,
        asked: Option<&str>,
    ) -> Result<Option<&'a str>, &'static str> {
        if asked.is_some_and(|asked| granted != Some(asked)) {
            return Err("resource must be the one the authorization request named");
        }
        match granted {
            None => Ok(None),
            Some(resource) if self.may_name(resource) => Ok(Some(resource)),
            Some(_) => Err("the app may no longer name the resource this grant is for"),
        }
    }

    /// Whether the app could get, now, a token for itself with audience `audience`: the one
    /// rule both issuing and introspecting such a token follow.
    pub fn may_hold_app_token(&self, audience: &str, issuer: &str) -> bool {
        !self.is_public()
            && self.allows_grant(GrantType::ClientCredentials)
            && (self.may_name(audience) || (self.resources.is_empty() && audience == issuer))
    }

    /// The registered redirect URI that `requested` matches, if any: byte for byte, or, for a
    /// public client only, a loopback IP literal with any port (RFC 8252 §7.3: a native app
    /// listens on whatever port the system gives it).
    pub fn redirect_for<'a>(&'a self, requested: &str) -> Option<&'a str> {
        if let Some(exact) = self.redirect_uris.iter().find(|uri| *uri == requested) {
            return Some(exact);
        }
        if !self.is_public() {
            return None;
        }
        let asked = Url::parse(requested).ok()?;
        if asked.scheme() != "http" || !is_loopback_ip(asked.host()) {
            return None;
        }
        self.redirect_uris.iter().map(String::as_str).find(|uri| {
            Url::parse(uri).is_ok_and(|mut registered| {
                is_loopback_ip(registered.host())
                    && registered.set_port(asked.port()).is_ok()
                    && registered == asked
            })
        })
    }

    /// The scopes an app receives of those it asked for: within the ceiling, and
    /// `offline_access` only when it may use refresh tokens. Never widened, never refused.
    pub fn narrow(&self, requested: &Scopes) -> Scopes {
        let oidc = requested
            .oidc
            .iter()
            .filter(|scope| self.allows_oidc_scope(*scope));
        Scopes {
            oidc: super::oauth::OidcScopes::from_scopes(oidc),
            api: requested
                .api
                .intersection(&self.scope.api)
                .cloned()
                .collect(),
        }
    }

    /// Whether the app may receive the OpenID scope `scope` now: within the ceiling (none
    /// listed means every one), and `offline_access` only when it may use refresh tokens.
    pub fn allows_oidc_scope(&self, scope: OidcScope) -> bool {
        let ceiling = &self.scope.oidc;
        (ceiling.is_empty() || ceiling.contains(scope))
            && (scope != OidcScope::OfflineAccess || self.allows_grant(GrantType::RefreshToken))
    }

    /// The web origins of the redirect URIs: where the app's browser code runs.
    pub fn origins(&self) -> BTreeSet<String> {
        self.redirect_uris
            .iter()
            .filter_map(|uri| web_origin(uri))
            .collect()
    }
}

fn is_loopback_ip(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        other => is_loopback_ip(other),
    }
}

/// The web origin of `uri` (`scheme://host[:port]`), when it has one (https and http do;
/// private-use schemes do not).
pub fn web_origin(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    let origin = url.origin();
    (origin.is_tuple() && matches!(url.scheme(), "http" | "https"))
        .then(|| origin.ascii_serialization())
}

/// Redirect URI rules (RFC 6749 §3.1.2, RFC 3986, RFC 8252, RFC 9700 §2.1), `field` naming the
/// list in errors: absolute, at most [`MAX_URI_LEN`] bytes, no space or control character, no
/// fragment, wildcard or user info, and written exactly as the URL a browser will be sent to
/// (so that what is registered is what is matched and what is redirected to: `https:///cb`
/// would send the browser to host `cb`). `https` anywhere, plain `http` only for loopback
/// hosts, and private-use schemes in reverse-domain form (`com.example.app:/cb`) for native
/// apps. Anything else (`javascript:`, `data:`, `file:`, …) is refused.
pub fn check_redirect_uri(field: &str, uri: &str) -> Result<(), AppError> {
    let fail = |why: &str| Err(AppError::invalid(format!("{field}: {why}")));
    if uri.is_empty() {
        return fail("is required");
    }
    if uri.len() > MAX_URI_LEN {
        return fail(&format!("must be at most {MAX_URI_LEN} bytes"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("must not contain spaces or control characters");
    }
    if uri.contains('*') {
        return fail("must not contain a wildcard");
    }
    if uri.contains('#') {
        return fail("must not contain a fragment");
    }
    let Ok(parsed) = Url::parse(uri) else {
        return fail("must be an absolute URL");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return fail("must not contain user information");
    }
    if parsed.as_str() != uri {
        return fail(&format!(
            "must be written as the URL it stands for, {:?} (an empty host, a default port or \
             an upper-case scheme or host would redirect elsewhere than registered)",
            parsed.as_str()
        ));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback(parsed.host()) => Ok(()),
        "http" => {
            fail("plain http is allowed only for loopback hosts (127.0.0.1, [::1], localhost)")
        }
        scheme if scheme.contains('.') => Ok(()),
        _ => fail(
            "must use https, http on a loopback host, or a private-use scheme like com.example.app",
        ),
    }
}

/// Checks a `backchannel_logout_uri` (Back-Channel Logout 1.0 §2.2): an absolute https URL, or
/// http on a loopback host, with no fragment or user information, written as the URL it stands
/// for (idgraph itself POSTs to it, so a private-use scheme means nothing here).
pub fn check_backchannel_logout_uri(uri: &str) -> Result<(), AppError> {
    const FIELD: &str = "backchannel_logout_uri";
    check_redirect_uri(FIELD, uri)?;
    match Url::parse(uri).map(|url| url.scheme().to_string()) {
        Ok(scheme) if scheme == "https" || scheme == "http" => Ok(()),
        _ => Err(AppError::invalid(format!(
            "{FIELD}: must use https, or http on a loopback host"
        ))),
    }
}

/// Checks a list of redirect URIs: `min` to [`MAX_REDIRECT_URIS`], each by
/// [`check_redirect_uri`], no duplicates.
pub fn check_redirect_uris(field: &str, uris: &[String], min: usize) -> Result<(), AppError> {
    if uris.len() < min || uris.len() > MAX_REDIRECT_URIS {
        return Err(AppError::invalid(format!(
            "{field}: must hold {min} to {MAX_REDIRECT_URIS} URIs"
        )));
    }
    for (at, uri) in uris.iter().enumerate() {
        check_redirect_uri(&format!("{field}[{at}]"), uri)?;
        if uris[..at].contains(uri) {
            return Err(AppError::invalid(format!("{field}[{at}]: is listed twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(uris: &[&str], auth_method: ClientAuthMethod) -> ClientPolicy {
        ClientPolicy {
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            auth_method,
            ..ClientPolicy::default()
        }
    }

    #[test]
    fn a_user_token_is_for_the_granted_resource_while_the_app_may_name_it() {
        let api = "https://api.example/orders";
        let mut app = ClientPolicy {
            resources: vec![api.into()],
            ..ClientPolicy::default()
        };
        assert_eq!(app.user_token_audience(None, None), Ok(None));
        assert_eq!(app.user_token_audience(Some(api), None), Ok(Some(api)));
        assert_eq!(app.user_token_audience(Some(api), Some(api)), Ok(Some(api)));
        // The token request may not name another resource, nor one the grant never had.
        let other = Some("https://other.example");
        assert!(app.user_token_audience(Some(api), other).is_err());
        assert!(app.user_token_audience(None, Some(api)).is_err());
        // Withdrawn from the app since the grant: no more tokens for it.
        app.resources.clear();
        assert!(app.user_token_audience(Some(api), None).is_err());
    }

    #[test]
    fn redirect_uris_follow_the_rules() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:8765/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(check_redirect_uri("redirect_uri", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/relative",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://user:pw@app.example.com/cb",
            "https:///cb",
            "https://app.example.com/cb\r\nX: y",
            "https://app.example.com/c b",
            "https://app.example.com/cb\t",
            "https://app.example.com/cb\0",
            "HTTPS://app.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com",
        ] {
            let err = check_redirect_uri("redirect_uri", bad)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("redirect_uri:"), "{bad:?}: {err}");
        }
        let long = format!("https://a.example/{}", "x".repeat(600));
        assert!(check_redirect_uri("redirect_uri", &long).is_err());
    }

    #[test]
    fn lists_are_bounded_and_name_the_bad_entry() {
        let ten: Vec<String> = (0..10).map(|i| format!("https://a.example/{i}")).collect();
        assert!(check_redirect_uris("redirect_uris", &ten, 1).is_ok());
        let eleven: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        assert!(check_redirect_uris("redirect_uris", &eleven, 1).is_err());
        assert!(check_redirect_uris("redirect_uris", &[], 1).is_err());
        let bad = vec!["https://a.example/ok".into(), "http://a.example/no".into()];
        let err = check_redirect_uris("redirect_uris", &bad, 1)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("redirect_uris[1]:"), "{err}");
        let twice = vec!["https://a.example/x".into(), "https://a.example/x".into()];
        assert!(check_redirect_uris("redirect_uris", &twice, 1).is_err());
    }

    #[test]
    fn loopback_redirects_match_any_port_for_public_clients_only() {
        let public = policy(
            &["http://127.0.0.1/cb", "https://a.example/cb"],
            ClientAuthMethod::None,
        );
        assert_eq!(
            public.redirect_for("http://127.0.0.1:53211/cb"),
            Some("http://127.0.0.1/cb")
        );
        assert_eq!(public.redirect_for("http://127.0.0.1:53211/other"), None);
        assert_eq!(public.redirect_for("https://a.example:8443/cb"), None);
        let confidential = policy(
            &["http://127.0.0.1/cb"],
            ClientAuthMethod::ClientSecretBasic,
        );
        assert_eq!(confidential.redirect_for("http://127.0.0.1:53211/cb"), None);
        assert_eq!(
            confidential.redirect_for("http://127.0.0.1/cb"),
            Some("http://127.0.0.1/cb")
        );
    }

    #[test]
    fn the_ceiling_narrows_and_offline_access_needs_the_refresh_grant() {
        let asked = Scopes::filter("openid email offline_access orders:read");
        let mut policy = policy(
            &["https://a.example/cb"],
            ClientAuthMethod::ClientSecretBasic,
        );
        // No ceiling: every OpenID scope, and no API scope (those must be listed).
        assert_eq!(
            policy.narrow(&asked).to_string(),
            "email offline_access openid"
        );
        policy.scope = Scopes::filter("openid profile offline_access orders:read");
        assert_eq!(
            policy.narrow(&asked).to_string(),
            "offline_access openid orders:read"
        );
        policy.grant_types = vec![GrantType::AuthorizationCode];
        assert_eq!(policy.narrow(&asked).to_string(), "openid orders:read");
    }
}
