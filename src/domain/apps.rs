//! Apps: the validated input of create and update, the app as transports see it, and the pure
//! rules for redirect URIs and listing cursors.

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::ids::{ClientId, UserId};
use crate::error::AppError;

/// Most ids one bulk look-up may ask for.
pub const MAX_BULK_IDS: usize = 256;

/// An app as every transport sees it: never its secret or the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Public client id.
    pub client_id: ClientId,
    /// Display name.
    pub name: String,
    /// Homepage; may be empty.
    pub url: String,
    /// The one registered redirect URI.
    pub redirect_uri: String,
    /// A `data:` URL of a tiny thumbnail, or empty when the app has no logo.
    pub logo: String,
    /// Who registered it, if that user still exists.
    pub creator_id: Option<UserId>,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// Name, homepage and redirect URI, as given to create or update an app.
#[derive(Debug, Clone)]
pub struct AppInput {
    /// 1..127 characters.
    pub name: String,
    /// Empty, or an absolute http(s) URL of at most 512 bytes.
    pub url: String,
    /// An absolute URL of at most 512 bytes, see [`check_redirect_uri`].
    pub redirect_uri: String,
}

impl AppInput {
    /// Checks every field; the message names the field that is wrong.
    pub fn validate(mut self) -> Result<Self, AppError> {
        self.name = self.name.trim().to_string();
        let chars = self.name.chars().count();
        if !(1..=127).contains(&chars) {
            return Err(AppError::invalid("name: must be 1 to 127 characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "name: must not contain control characters",
            ));
        }
        self.url = self.url.trim().to_string();
        if !self.url.is_empty() {
            if self.url.len() > 512 {
                return Err(AppError::invalid("url: must be at most 512 bytes"));
            }
            let parsed = Url::parse(&self.url)
                .map_err(|_| AppError::invalid("url: must be empty or an absolute URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(AppError::invalid("url: must be an http or https URL"));
            }
        }
        self.redirect_uri = self.redirect_uri.trim().to_string();
        check_redirect_uri(&self.redirect_uri)?;
        Ok(self)
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Redirect URI rules (RFC 6749 §3.1.2, RFC 8252, RFC 9700 §2.1): absolute, at most 512 bytes,
/// no fragment, no wildcard, no user info; `https` anywhere, plain `http` only for loopback
/// hosts, and private-use schemes in reverse-domain form (`com.example.app:/cb`) for native
/// apps. Anything else (`javascript:`, `data:`, `file:`, …) is refused.
pub fn check_redirect_uri(uri: &str) -> Result<(), AppError> {
    let fail = |why: &str| Err(AppError::invalid(format!("redirect_uri: {why}")));
    if uri.is_empty() {
        return fail("is required");
    }
    if uri.len() > 512 {
        return fail("must be at most 512 bytes");
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
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
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
        ] {
            let err = check_redirect_uri(bad).unwrap_err().to_string();
            assert!(err.starts_with("redirect_uri:"), "{bad}: {err}");
        }
        assert!(check_redirect_uri(&format!("https://a.example/{}", "x".repeat(600))).is_err());
    }
}
