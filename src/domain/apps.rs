//! Apps: the validated input of create and update, the app as transports see it, and the pure
//! rules for redirect URIs and listing cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::{Host, Url};

use crate::error::AppError;

/// Longest client id accepted anywhere (ours are 22 characters).
pub const MAX_CLIENT_ID_LEN: usize = 31;
/// Most ids one bulk look-up may ask for.
pub const MAX_BULK_IDS: usize = 256;
/// Largest page of a listing.
pub const MAX_PAGE: u64 = 1024;

/// An app as every transport sees it: never its secret or the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Public client id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Homepage; may be empty.
    pub url: String,
    /// The one registered redirect URI.
    pub redirect_uri: String,
    /// A `data:` URL of a tiny thumbnail, or empty when the app has no logo.
    pub logo: String,
    /// Who registered it, if that user still exists.
    pub creator_id: Option<String>,
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

/// Checks a client id's shape before any look-up.
pub fn check_client_id(client_id: &str) -> Result<(), AppError> {
    if client_id.is_empty()
        || client_id.len() > MAX_CLIENT_ID_LEN
        || !client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AppError::NotFound("app"));
    }
    Ok(())
}

/// A position in the listing order: name, creation time, client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCursor {
    /// The app's name.
    pub name: String,
    /// Its creation time.
    pub created_at: i64,
    /// Its client id (breaks ties).
    pub client_id: String,
}

impl AppCursor {
    /// The cursor of `app`.
    pub fn of(app: &App) -> Self {
        Self {
            name: app.name.clone(),
            created_at: app.created_at,
            client_id: app.client_id.clone(),
        }
    }

    /// Opaque text form: base64url of a JSON array.
    pub fn encode(&self) -> String {
        let json = serde_json::json!([self.name, self.created_at, self.client_id]);
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    /// Parses [`AppCursor::encode`]'s output; anything else is a 400 naming `after`.
    pub fn decode(text: &str) -> Result<Self, AppError> {
        let bad = || AppError::invalid("after: not a cursor returned by this API");
        if text.len() > 1024 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let (name, created_at, client_id): (String, i64, String) =
            serde_json::from_slice(&bytes).map_err(|_| bad())?;
        Ok(Self {
            name,
            created_at,
            client_id,
        })
    }
}

/// Which slice of the listing to return.
#[derive(Debug, Clone)]
pub enum Page {
    /// REST: `amount` rows after skipping `offset`.
    Offset {
        /// 1..=1024.
        amount: u64,
        /// ≥ 0.
        offset: u64,
    },
    /// GraphQL: `first` rows after the cursor.
    After {
        /// 1..=1024.
        first: u64,
        /// Start after this position, or at the beginning.
        after: Option<AppCursor>,
    },
}

impl Page {
    /// Checks the bounds.
    pub fn validate(self) -> Result<Self, AppError> {
        match &self {
            Page::Offset { amount, .. } => super::check_page_size("amount", *amount)?,
            Page::After { first, .. } => super::check_page_size("first", *first)?,
        };
        Ok(self)
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

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = AppCursor {
            name: "Zed \"app\"".into(),
            created_at: 42,
            client_id: "abc".into(),
        };
        assert_eq!(AppCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(AppCursor::decode("not-a-cursor").is_err());
        assert!(AppCursor::decode(&URL_SAFE_NO_PAD.encode("[1,2]")).is_err());
    }
}
