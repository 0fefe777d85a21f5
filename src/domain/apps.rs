//! Apps: the validated input of create and update, the app as transports see it, and the
//! listing cursor.
//!
//! The seed's fields (`name`, `url`, `redirect_uri`) keep their meaning and stay required
//! (`redirect_uris` may stand for `redirect_uri`); the client metadata of RFC 7591 comes beside
//! them, every field optional on input. On update an absent metadata field keeps its value, so
//! an older client that never sends the new fields changes none of them; `redirect_uri` reads
//! and writes the first of `redirect_uris`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use super::capabilities::{ClientAuthMethod, GrantType, SigningAlgorithm};
use super::clients::{
    ClientPolicy, MAX_REDIRECT_URIS, MAX_URI_LEN, check_backchannel_logout_uri, check_redirect_uri,
    check_redirect_uris,
};
use super::ids::{ClientId, UserId};
use super::scopes::Scopes;
use crate::error::AppError;

/// Most ids one bulk look-up may ask for.
pub const MAX_BULK_IDS: usize = 256;

/// An app as every transport sees it: never its secrets or their digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Public client id.
    pub client_id: ClientId,
    /// Display name.
    pub name: String,
    /// Homepage; may be empty.
    pub url: String,
    /// A `data:` URL of a tiny thumbnail, or empty when the app has no logo.
    pub logo: String,
    /// Who registered it, if that user still exists.
    pub creator_id: Option<UserId>,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// Its client metadata (shared with the cached record, never copied per look-up).
    pub policy: Arc<ClientPolicy>,
}

impl App {
    /// The first redirect URI: the seed's `redirect_uri`.
    pub fn redirect_uri(&self) -> &str {
        self.policy.redirect_uris.first().map_or("", String::as_str)
    }
}

/// An app's name and homepage, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFields {
    /// 1..127 characters.
    pub name: String,
    /// Empty, or an absolute http(s) URL of at most 512 bytes.
    pub url: String,
}

/// What create and update receive; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct AppInput {
    /// 1..127 characters.
    pub name: String,
    /// Empty, or an absolute http(s) URL of at most 512 bytes.
    pub url: String,
    /// The first redirect URI.
    pub redirect_uri: Option<String>,
    /// Every redirect URI, 1 to 10.
    pub redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may return to, 0 to 10.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: Option<String>,
    /// A subset of `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Option<Vec<String>>,
    /// The scope ceiling, space-separated: OpenID scopes (none means every one) and API scopes.
    pub scope: Option<String>,
    /// `RS256`, `ES256` or `EdDSA`.
    pub id_token_signed_response_alg: Option<String>,
    /// Resource indicators (absolute URIs) the app's tokens may name as their audience: its
    /// own (`client_credentials`) and its users' (an authorization naming one).
    pub resources: Option<Vec<String>>,
    /// Where back-channel logout tokens go; an empty string removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in its logout tokens.
    pub backchannel_logout_session_required: Option<bool>,
}

impl AppInput {
    /// Checks every field against `current` (an update: absent fields keep their value) or
    /// the defaults (a create); the message names the field that is wrong.
    pub fn validate(
        self,
        current: Option<&ClientPolicy>,
    ) -> Result<(AppFields, ClientPolicy), AppError> {
        let fields = AppFields {
            name: check_name(&self.name)?,
            url: check_url(&self.url)?,
        };
        let mut policy = current.cloned().unwrap_or_default();
        if let Some(method) = self.token_endpoint_auth_method {
            policy.auth_method = ClientAuthMethod::parse(&method).ok_or_else(|| {
                AppError::invalid(
                    "token_endpoint_auth_method: must be client_secret_basic, client_secret_post or none",
                )
            })?;
        }
        if let Some(grants) = self.grant_types {
            policy.grant_types = check_grant_types(&grants)?;
        }
        if policy.is_public() && policy.allows_grant(GrantType::ClientCredentials) {
            return Err(AppError::invalid(
                "grant_types: client_credentials is for confidential apps only (a public client \
                 cannot keep the secret it needs)",
            ));
        }
        let code_flow = policy.allows_grant(GrantType::AuthorizationCode);
        policy.redirect_uris = redirect_uris(
            self.redirect_uri,
            self.redirect_uris,
            current.map(|c| c.redirect_uris.as_slice()),
            code_flow,
        )?;
        if let Some(uris) = self.post_logout_redirect_uris {
            check_redirect_uris("post_logout_redirect_uris", &uris, 0)?;
            policy.post_logout_redirect_uris = uris;
        }
        if let Some(scope) = self.scope {
            policy.scope = check_scope_ceiling(&scope)?;
        }
        if let Some(alg) = self.id_token_signed_response_alg {
            policy.id_token_alg = alg.parse::<SigningAlgorithm>().map_err(|_| {
                AppError::invalid("id_token_signed_response_alg: must be RS256, ES256 or EdDSA")
            })?;
        }
        if let Some(resources) = self.resources {
            policy.resources = check_resources(&resources)?;
        }
        if let Some(uri) = self.backchannel_logout_uri {
            let uri = uri.trim();
            policy.backchannel_logout_uri = if uri.is_empty() {
                None
            } else {
                check_backchannel_logout_uri(uri)?;
                Some(uri.to_string())
            };
        }
        if let Some(required) = self.backchannel_logout_session_required {
            policy.backchannel_logout_session_required = required;
        }
        Ok((fields, policy))
    }
}

fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim().to_string();
    if !(1..=127).contains(&name.chars().count()) {
        return Err(AppError::invalid("name: must be 1 to 127 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name: must not contain control characters",
        ));
    }
    Ok(name)
}

fn check_url(url: &str) -> Result<String, AppError> {
    let url = url.trim().to_string();
    if url.is_empty() {
        return Ok(url);
    }
    if url.len() > 512 {
        return Err(AppError::invalid("url: must be at most 512 bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid(
            "url: must not contain spaces or control characters",
        ));
    }
    let parsed =
        Url::parse(&url).map_err(|_| AppError::invalid("url: must be empty or an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(AppError::invalid("url: must be an http or https URL"));
    }
    Ok(url)
}

/// The redirect URIs from `redirect_uri` (the first: it replaces the current first, the others
/// stay) and `redirect_uris` (all), either or both (then they must agree). An app of the code
/// flow must name one; a service that only uses `client_credentials` may name none.
fn redirect_uris(
    first: Option<String>,
    all: Option<Vec<String>>,
    current: Option<&[String]>,
    code_flow: bool,
) -> Result<Vec<String>, AppError> {
    // Taken exactly as given: a space around a URI is refused with the rest of the rules,
    // never trimmed into something that was not written.
    let uris = match (first, all) {
        (Some(first), Some(all)) => {
            if all.first() != Some(&first) {
                return Err(AppError::invalid(
                    "redirect_uri: must be the first of redirect_uris when both are given",
                ));
            }
            all
        }
        (None, Some(all)) => all,
        (Some(first), None) => {
            check_redirect_uri("redirect_uri", &first)?;
            let others = current.and_then(|uris| uris.get(1..)).unwrap_or_default();
            let others: Vec<String> = others.iter().filter(|u| **u != first).cloned().collect();
            let mut uris = vec![first];
            uris.extend(others);
            uris
        }
        // The seed's create and update both carry `redirect_uri`: it stays required.
        (None, None) if code_flow => {
            return Err(AppError::invalid("redirect_uri: is required"));
        }
        // A service that only uses `client_credentials`: what it had stays (a policy change
        // alone never wipes its URIs), and a new one may have none.
        (None, None) => current.map(<[String]>::to_vec).unwrap_or_default(),
    };
    check_redirect_uris("redirect_uris", &uris, usize::from(code_flow))?;
    Ok(uris)
}

fn check_grant_types(grants: &[String]) -> Result<Vec<GrantType>, AppError> {
    let mut parsed = Vec::new();
    for grant in grants {
        let grant = GrantType::parse(grant).ok_or_else(|| {
            AppError::invalid(format!(
                "grant_types: {grant:?} is not offered (authorization_code, refresh_token, \
                 client_credentials)"
            ))
        })?;
        if !parsed.contains(&grant) {
            parsed.push(grant);
        }
    }
    let code_flow = parsed.contains(&GrantType::AuthorizationCode);
    if parsed.contains(&GrantType::RefreshToken) && !code_flow {
        return Err(AppError::invalid(
            "grant_types: refresh_token needs authorization_code (refresh tokens come from it)",
        ));
    }
    if !code_flow && !parsed.contains(&GrantType::ClientCredentials) {
        return Err(AppError::invalid(
            "grant_types: must include authorization_code or client_credentials",
        ));
    }
    Ok(parsed)
}

/// The ceiling: OpenID scopes (if any is listed, `openid` must be) and API scopes.
fn check_scope_ceiling(scope: &str) -> Result<Scopes, AppError> {
    let ceiling = Scopes::parse(scope).map_err(|word| {
        AppError::invalid(format!(
            "scope: {word:?} is neither an OpenID scope nor an API scope (resource:action)"
        ))
    })?;
    if !ceiling.oidc.is_empty() {
        ceiling.oidc.require_openid().map_err(|why| {
            AppError::invalid(format!("scope: {why} (every sign-in asks for it)"))
        })?;
    }
    Ok(ceiling)
}

/// Resource indicators (RFC 8707 §2): absolute URIs without a fragment, at most ten.
fn check_resources(resources: &[String]) -> Result<Vec<String>, AppError> {
    if resources.len() > MAX_REDIRECT_URIS {
        return Err(AppError::invalid(format!(
            "resources: at most {MAX_REDIRECT_URIS}"
        )));
    }
    let mut checked = Vec::new();
    for (at, resource) in resources.iter().enumerate() {
        let resource = resource.trim().to_string();
        let fail = |why: &str| AppError::invalid(format!("resources[{at}]: {why}"));
        if resource.len() > MAX_URI_LEN
            || resource
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(fail(
                "must be at most 512 bytes, without spaces or control characters",
            ));
        }
        let url = Url::parse(&resource).map_err(|_| fail("must be an absolute URI"))?;
        if url.fragment().is_some() {
            return Err(fail("must not contain a fragment"));
        }
        if !checked.contains(&resource) {
            checked.push(resource);
        }
    }
    Ok(checked)
}

/// A position in the listing order: name, creation time, client id (which breaks ties).
/// Serialised as a JSON array, the text of its cursor (see [`super::page::encode_cursor`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCursor(pub String, pub i64, pub ClientId);

impl AppCursor {
    /// The cursor of `app`.
    pub fn of(app: &App) -> Self {
        Self(app.name.clone(), app.created_at, app.client_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(redirect_uri: Option<&str>, redirect_uris: Option<&[&str]>) -> AppInput {
        AppInput {
            name: "App".into(),
            redirect_uri: redirect_uri.map(str::to_string),
            redirect_uris: redirect_uris.map(|u| u.iter().map(|s| s.to_string()).collect()),
            ..AppInput::default()
        }
    }

    #[test]
    fn redirect_uri_and_redirect_uris_must_agree_and_one_is_required() {
        let (_, created) = input(None, Some(&["https://a.example/1", "https://a.example/2"]))
            .validate(None)
            .unwrap();
        assert_eq!(created.redirect_uris.len(), 2);
        let (_, updated) = input(Some("https://a.example/new"), None)
            .validate(Some(&created))
            .unwrap();
        assert_eq!(
            updated.redirect_uris,
            ["https://a.example/new", "https://a.example/2"],
            "redirect_uri writes the first; the others stay"
        );
        let disagree = input(Some("https://a.example/x"), Some(&["https://a.example/y"]));
        assert!(disagree.validate(None).is_err());
        let none = input(None, None).validate(None).unwrap_err().to_string();
        assert!(none.starts_with("redirect_uri:"), "{none}");
        // A service that only uses client_credentials needs no redirect URI.
        let mut service = input(None, None);
        service.grant_types = Some(vec!["client_credentials".into()]);
        assert!(service.validate(None).unwrap().1.redirect_uris.is_empty());
    }

    #[test]
    fn absent_fields_keep_their_value_on_update() {
        let mut create = input(Some("https://a.example/cb"), None);
        create.token_endpoint_auth_method = Some("none".into());
        create.scope = Some("openid email".into());
        let (_, created) = create.validate(None).unwrap();
        let (_, updated) = input(Some("https://a.example/cb"), None)
            .validate(Some(&created))
            .unwrap();
        assert_eq!(updated, created);
    }

    #[test]
    fn redirect_uris_are_taken_exactly_never_trimmed() {
        for padded in [
            " https://a.example/cb",
            "https://a.example/cb\n",
            "\thttps://a.example/cb",
        ] {
            let err = input(Some(padded), None).validate(None).unwrap_err();
            assert!(
                err.to_string()
                    .contains("must not contain spaces or control characters"),
                "{padded:?}: {err}"
            );
            let err = input(None, Some(&["https://a.example/ok", padded]))
                .validate(None)
                .unwrap_err();
            assert!(err.to_string().starts_with("redirect_uris[1]:"), "{err}");
        }
    }

    #[test]
    fn a_policy_change_alone_keeps_a_services_redirect_uris() {
        let (_, created) = input(Some("https://a.example/cb"), None)
            .validate(None)
            .unwrap();
        let mut service = input(None, None);
        service.grant_types = Some(vec!["client_credentials".into()]);
        let (_, updated) = service.validate(Some(&created)).unwrap();
        assert_eq!(updated.redirect_uris, ["https://a.example/cb"]);
    }

    #[test]
    fn metadata_values_are_checked_by_name() {
        for (field, apply) in [
            (
                "token_endpoint_auth_method",
                (|i: &mut AppInput| i.token_endpoint_auth_method = Some("private_key_jwt".into()))
                    as fn(&mut AppInput),
            ),
            ("grant_types", |i| {
                i.grant_types = Some(vec!["implicit".into()])
            }),
            ("grant_types", |i| {
                i.grant_types = Some(vec!["refresh_token".into()])
            }),
            ("grant_types", |i| {
                i.token_endpoint_auth_method = Some("none".into());
                i.grant_types = Some(vec!["client_credentials".into()]);
            }),
            ("scope", |i| i.scope = Some("openid Admin".into())),
            ("scope", |i| i.scope = Some("email".into())),
            ("resources[0]", |i| {
                i.resources = Some(vec!["not a uri".into()])
            }),
            ("id_token_signed_response_alg", |i| {
                i.id_token_signed_response_alg = Some("none".into())
            }),
            ("post_logout_redirect_uris[0]", |i| {
                i.post_logout_redirect_uris = Some(vec!["http://evil.example/".into()])
            }),
            ("backchannel_logout_uri", |i| {
                i.backchannel_logout_uri = Some("http://rp.example/logout".into())
            }),
            ("backchannel_logout_uri", |i| {
                i.backchannel_logout_uri = Some("com.example.app:/logout".into())
            }),
            ("backchannel_logout_uri", |i| {
                i.backchannel_logout_uri = Some("https://rp.example/logout#x".into())
            }),
        ] {
            let mut bad = input(Some("https://a.example/cb"), None);
            apply(&mut bad);
            let err = bad.validate(None).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{field}:")), "{field}: {err}");
        }
    }
}
