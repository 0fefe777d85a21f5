//! The authorization request of idgraph's own authorization endpoint (RFC 6749 §4.1.1, OpenID
//! Connect Core §3.1.2.1, RFC 7636 §4.3): its parameters and the rules that need no storage.
//! Looking the client up and matching its redirect URI is the service's part.

use serde::{Deserialize, Serialize};
use url::form_urlencoded;

use crate::domain::capabilities::RESPONSE_TYPES;
use crate::domain::ids::ClientId;
use crate::domain::oauth::{ConsentRequest, OidcScopes, PkcePolicy};
use crate::error::AppError;

/// Longest `state`, `login_hint` or other single value accepted.
pub const MAX_VALUE_LEN: usize = 2048;

/// The parameters as received. Empty values count as absent (RFC 6749 §3.1); parameters not
/// listed here are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
    /// RFC 8707: the API the access tokens are for.
    pub resource: Option<String>,
    /// Known parameters that appeared more than once (RFC 6749 §3.1 forbids it).
    pub repeated: Vec<&'static str>,
    /// The error owed to a request object (`request` or `request_uri`, OpenID Connect Core
    /// §6), which idgraph does not support.
    pub request_object: Option<&'static str>,
}

impl AuthorizeParams {
    /// Whether `name` is a parameter of an authorization request (one idgraph reads, or a
    /// request object it refuses by name).
    pub fn is_parameter(name: &str) -> bool {
        matches!(name, "request" | "request_uri") || Self::default().slot(name).is_some()
    }

    fn slot(&mut self, name: &str) -> Option<(&'static str, &mut Option<String>)> {
        Some(match name {
            "response_type" => ("response_type", &mut self.response_type),
            "client_id" => ("client_id", &mut self.client_id),
            "redirect_uri" => ("redirect_uri", &mut self.redirect_uri),
            "scope" => ("scope", &mut self.scope),
            "state" => ("state", &mut self.state),
            "nonce" => ("nonce", &mut self.nonce),
            "code_challenge" => ("code_challenge", &mut self.code_challenge),
            "code_challenge_method" => ("code_challenge_method", &mut self.code_challenge_method),
            "prompt" => ("prompt", &mut self.prompt),
            "max_age" => ("max_age", &mut self.max_age),
            "login_hint" => ("login_hint", &mut self.login_hint),
            "response_mode" => ("response_mode", &mut self.response_mode),
            "resource" => ("resource", &mut self.resource),
            _ => return None,
        })
    }

    /// Collects the known parameters from name/value pairs.
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut params = Self::default();
        let mut repeated = Vec::new();
        for (name, value) in pairs {
            let value: String = value.into();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "request" => params.request_object = Some("request_not_supported"),
                "request_uri" => params.request_object = Some("request_uri_not_supported"),
                _ => {}
            }
            if let Some((known, slot)) = params.slot(name.as_ref()) {
                if slot.is_some() {
                    repeated.push(known);
                }
                *slot = Some(value);
            }
        }
        params.repeated = repeated;
        params
    }

    /// Parses a URL query or form body.
    pub fn from_query(query: &str) -> Self {
        Self::from_pairs(form_urlencoded::parse(query.as_bytes()).into_owned())
    }

    /// The known parameters as a query string, for a hidden form field or a link back here.
    pub fn to_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        let fields = [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
            ("login_hint", &self.login_hint),
            ("response_mode", &self.response_mode),
            ("resource", &self.resource),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }
}

/// The `prompt` parameter's values (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Show no page: answer `login_required` or `consent_required` instead.
    pub none: bool,
    /// Ask for the password even when signed in.
    pub login: bool,
    /// Ask for consent even when it was given before.
    pub consent: bool,
}

impl Prompt {
    /// Parses a space-separated list. `select_account` is accepted and has no effect: a browser
    /// holds one idgraph sign-in at a time, and "not you?" on the consent page switches it.
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let mut prompt = Prompt::default();
        let mut others = false;
        for word in text.unwrap_or_default().split_ascii_whitespace() {
            match word {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => others = true,
                other => return Err(format!("prompt: unknown value '{other}'")),
            }
        }
        if prompt.none && (prompt.login || prompt.consent || others) {
            return Err("prompt: none cannot be combined with other values".into());
        }
        Ok(prompt)
    }

    /// The parameter's value again; `None` when no value was set.
    fn to_param(self) -> Option<String> {
        let words: Vec<&str> = [
            (self.none, "none"),
            (self.login, "login"),
            (self.consent, "consent"),
        ]
        .into_iter()
        .filter_map(|(on, word)| on.then_some(word))
        .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }
}

/// How the answer travels back to the client (OAuth 2.0 Multiple Response Type Encoding
/// Practices §2.1). `form_post` is not offered: it needs a self-submitting page, which the
/// hosted pages' policy of no script at all rules out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// In the redirect URI's query (the default for `response_type=code`).
    #[default]
    Query,
    /// In the redirect URI's fragment.
    Fragment,
}

impl ResponseMode {
    /// Every mode offered, for discovery.
    pub const EVERY: [ResponseMode; 2] = [ResponseMode::Query, ResponseMode::Fragment];

    /// The parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
        }
    }

    /// Parses an offered mode.
    pub fn parse(text: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// An error the client is told about by redirect (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    /// `error`: `invalid_request`, `unsupported_response_type`, `invalid_scope`,
    /// `access_denied`, `login_required`, `consent_required`, `request_not_supported`,
    /// `request_uri_not_supported`, `unauthorized_client`, `invalid_target` (RFC 8707).
    pub error: &'static str,
    /// `error_description`.
    pub description: String,
}

impl RedirectError {
    /// Builds an error with its description.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: super::oauth::error_description(&description.into()),
        }
    }
}

/// A valid authorization request for a known client and one of its redirect URIs. It is
/// validated once, when it arrives; the hosted pages carry it sealed from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The redirect URI asked for, exactly as registered.
    pub redirect_uri: String,
    /// Returned unchanged with the answer.
    pub state: Option<String>,
    /// What consent would record: client, scopes, nonce, PKCE.
    pub consent: ConsentRequest,
    pub prompt: Prompt,
    /// Longest acceptable age of the sign-in, in seconds.
    pub max_age: Option<i64>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
    /// Where the answer goes in the redirect.
    pub response_mode: ResponseMode,
}

impl AuthorizationRequest {
    /// Applies the rules that come after the client and redirect URI were found good. Errors
    /// here are reported to the client by redirect. A code challenge without a method means
    /// `plain` (RFC 7636 §4.3), which `pkce` may refuse.
    pub fn validate(
        params: &AuthorizeParams,
        client_id: &ClientId,
        redirect_uri: &str,
        pkce: PkcePolicy,
    ) -> Result<Self, RedirectError> {
        let invalid = |text: String| RedirectError::new("invalid_request", text);
        // RFC 8707 lets a request name several resources; idgraph gives a grant's tokens one
        // audience, so it refuses more than one as a target it cannot serve (§2).
        if params.repeated.contains(&"resource") {
            return Err(RedirectError::new(
                "invalid_target",
                "name at most one resource: a grant's access tokens are for one resource server",
            ));
        }
        if let Some(name) = params.repeated.first() {
            return Err(invalid(format!("{name} was given more than once")));
        }
        if let Some(error) = params.request_object {
            return Err(RedirectError::new(
                error,
                "request objects (request, request_uri) are not supported",
            ));
        }
        match params.response_type.as_deref() {
            None => return Err(invalid("response_type is required".into())),
            Some(kind) if RESPONSE_TYPES.contains(&kind) => {}
            Some(_) => {
                return Err(RedirectError::new(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        let response_mode = match params.response_mode.as_deref() {
            None => ResponseMode::default(),
            Some(text) => ResponseMode::parse(text).ok_or_else(|| {
                invalid(format!(
                    "response_mode must be query or fragment (got '{text}')"
                ))
            })?,
        };
        for (name, value) in [
            ("state", &params.state),
            ("login_hint", &params.login_hint),
            ("resource", &params.resource),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE_LEN) {
                return Err(invalid(format!(
                    "{name} is longer than {MAX_VALUE_LEN} bytes"
                )));
            }
        }
        let scope = params.scope.as_deref().unwrap_or_default();
        OidcScopes::filter(scope)
            .require_openid()
            .map_err(|why| RedirectError::new("invalid_scope", why))?;
        let prompt = Prompt::parse(params.prompt.as_deref()).map_err(invalid)?;
        let max_age = match params.max_age.as_deref() {
            None => None,
            Some(text) => Some(
                text.parse::<u32>()
                    .map(i64::from)
                    .map_err(|_| invalid("max_age must be a whole number of seconds".into()))?,
            ),
        };
        let method = match (&params.code_challenge, &params.code_challenge_method) {
            (Some(_), None) => Some("plain".to_string()),
            (_, method) => method.clone(),
        };
        let mut consent = ConsentRequest::validate(
            client_id.clone(),
            scope,
            params.nonce.clone(),
            params.code_challenge.clone(),
            method,
            pkce,
        )
        .map_err(|err| match err {
            AppError::InvalidInput(text) => invalid(text),
            other => invalid(other.to_string()),
        })?;
        // Whether the app may name it is the policy's to say (`service::authorize`).
        consent.resource = params.resource.clone();
        Ok(Self {
            redirect_uri: redirect_uri.to_string(),
            state: params.state.clone(),
            consent,
            prompt,
            max_age,
            login_hint: params.login_hint.clone(),
            response_mode,
        })
    }

    /// Whether a sign-in at `auth_time` is older, at `now`, than the request's `max_age`
    /// allows (OpenID Connect Core §3.1.2.1): the password is asked for again.
    pub fn sign_in_too_old(&self, auth_time: i64, now: i64) -> bool {
        self.max_age
            .is_some_and(|max_age| now - auth_time > max_age)
    }

    /// The request as parameters again, for a link that starts it over (after signing out).
    pub fn to_params(&self) -> AuthorizeParams {
        let consent = &self.consent;
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(consent.client_id.to_string()),
            redirect_uri: Some(self.redirect_uri.clone()),
            scope: Some(consent.scopes.to_string()),
            state: self.state.clone(),
            nonce: consent.nonce.clone(),
            code_challenge: consent.pkce.as_ref().map(|p| p.challenge.clone()),
            code_challenge_method: consent.pkce.as_ref().map(|p| p.method.as_str().into()),
            prompt: self.prompt.to_param(),
            max_age: self.max_age.map(|age| age.to_string()),
            login_hint: self.login_hint.clone(),
            response_mode: (self.response_mode != ResponseMode::default())
                .then(|| self.response_mode.as_str().into()),
            resource: consent.resource.clone(),
            ..AuthorizeParams::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> AuthorizeParams {
        AuthorizeParams::from_query(query)
    }

    fn client() -> ClientId {
        ClientId::from_trusted("c1".into())
    }

    fn check(query: &str) -> Result<AuthorizationRequest, RedirectError> {
        let policy = PkcePolicy { allow_plain: true };
        AuthorizationRequest::validate(&params(query), &client(), "https://rp.example/cb", policy)
    }

    #[test]
    fn empty_values_are_absent_and_unknown_names_ignored() {
        let p = params("scope=&client_id=c1&colour=blue");
        assert_eq!(p.scope, None);
        assert_eq!(p.client_id.as_deref(), Some("c1"));
        assert!(p.repeated.is_empty());
    }

    #[test]
    fn the_query_survives_a_round_trip() {
        let p = params("client_id=c1&state=a%20b%26c&scope=openid+email&prompt=login");
        assert_eq!(AuthorizeParams::from_query(&p.to_query()), p);
    }

    #[test]
    fn repeated_parameters_are_invalid_requests() {
        let err = check("response_type=code&scope=openid&state=a&state=b").unwrap_err();
        assert_eq!(err.error, "invalid_request");
        assert!(err.description.contains("state"));
    }

    #[test]
    fn request_objects_are_refused_by_name() {
        let by_value = check("response_type=code&scope=openid&request=eyJ").unwrap_err();
        assert_eq!(by_value.error, "request_not_supported");
        let by_reference =
            check("response_type=code&scope=openid&request_uri=https://rp.example/r").unwrap_err();
        assert_eq!(by_reference.error, "request_uri_not_supported");
    }

    #[test]
    fn response_type_must_be_code() {
        assert_eq!(check("scope=openid").unwrap_err().error, "invalid_request");
        let err = check("response_type=token&scope=openid").unwrap_err();
        assert_eq!(err.error, "unsupported_response_type");
    }

    #[test]
    fn scope_must_contain_openid() {
        let err = check("response_type=code&scope=profile").unwrap_err();
        assert_eq!(err.error, "invalid_scope");
    }

    #[test]
    fn prompt_none_stands_alone_and_unknown_values_are_refused() {
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("select_account none")).is_err());
        assert!(Prompt::parse(Some("select_account")).is_ok());
        assert!(Prompt::parse(Some("sometimes")).is_err());
        let both = Prompt::parse(Some("login consent")).unwrap();
        assert!(both.login && both.consent && !both.none);
    }

    #[test]
    fn max_age_must_be_a_non_negative_integer() {
        let err = check("response_type=code&scope=openid&max_age=-1").unwrap_err();
        assert_eq!(err.error, "invalid_request");
        let ok = check("response_type=code&scope=openid&max_age=300").unwrap();
        assert_eq!(ok.max_age, Some(300));
    }

    #[test]
    fn a_challenge_without_method_is_plain_and_bad_pkce_is_invalid_request() {
        let verifier = "a".repeat(43);
        let ok = check(&format!(
            "response_type=code&scope=openid&code_challenge={verifier}"
        ));
        assert_eq!(ok.unwrap().consent.pkce.unwrap().method.as_str(), "plain");
        let plain_off = AuthorizationRequest::validate(
            &params(&format!(
                "response_type=code&scope=openid&code_challenge={verifier}"
            )),
            &client(),
            "https://rp.example/cb",
            PkcePolicy { allow_plain: false },
        );
        assert_eq!(plain_off.unwrap_err().error, "invalid_request");
        let short =
            check("response_type=code&scope=openid&code_challenge=abc&code_challenge_method=S256");
        assert_eq!(short.unwrap_err().error, "invalid_request");
    }

    #[test]
    fn one_resource_is_carried_and_two_are_an_invalid_target() {
        let one =
            check("response_type=code&scope=openid&resource=https%3A%2F%2Fapi.example").unwrap();
        assert_eq!(one.consent.resource.as_deref(), Some("https://api.example"));
        let two = check(
            "response_type=code&scope=openid&resource=https%3A%2F%2Fa.example\
             &resource=https%3A%2F%2Fb.example",
        )
        .unwrap_err();
        assert_eq!(two.error, "invalid_target");
    }

    #[test]
    fn response_mode_is_query_or_fragment() {
        let fragment = check("response_type=code&scope=openid&response_mode=fragment").unwrap();
        assert_eq!(fragment.response_mode, ResponseMode::Fragment);
        let err = check("response_type=code&scope=openid&response_mode=form_post").unwrap_err();
        assert_eq!(err.error, "invalid_request");
    }

    #[test]
    fn a_validated_request_gives_back_its_parameters() {
        let query = "response_type=code&client_id=c1&redirect_uri=https%3A%2F%2Frp.example%2Fcb\
                     &scope=openid+email&state=s&prompt=login+consent&max_age=60\
                     &response_mode=fragment&resource=https%3A%2F%2Fapi.example%2Forders";
        let request = check(query).unwrap();
        let again = AuthorizationRequest::validate(
            &request.to_params(),
            &client(),
            "https://rp.example/cb",
            PkcePolicy { allow_plain: true },
        )
        .unwrap();
        assert_eq!(again, request);
    }
}
