//! What the hosted flows hand back to the page layer: display fields only, never a storage row.

use crate::service::browser::SignedInAs;
use crate::service::seal::Sealed;

/// What a flow answers: the view to render and the cookie to set, if any.
#[derive(Debug)]
pub struct Outcome<V> {
    /// What the browser sees.
    pub view: V,
    /// The change to the browser's cookie.
    pub cookie: Option<CookieChange>,
}

impl<V> Outcome<V> {
    /// An outcome that leaves the cookie as it is.
    pub fn view(view: V) -> Self {
        Self { view, cookie: None }
    }
}

/// A change to the browser's cookie. Printing it never shows a value.
#[derive(Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// A value that only anchors forms (not signed in): it ends with the browser.
    Anchor(String),
    /// A signed-in session's value, kept `max_age` seconds.
    SignedIn {
        /// The new value.
        value: String,
        /// Seconds the browser keeps it.
        max_age: i64,
    },
    /// The cookie is deleted.
    Clear,
}

impl std::fmt::Debug for CookieChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anchor(_) => f.write_str("Anchor(..)"),
            Self::SignedIn { max_age, .. } => f
                .debug_struct("SignedIn")
                .field("max_age", max_age)
                .finish_non_exhaustive(),
            Self::Clear => f.write_str("Clear"),
        }
    }
}

/// The app an authorization request is for, as pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    /// Display name.
    pub name: String,
    /// Public client id (the logo's address names it).
    pub client_id: String,
    /// Homepage; may be empty.
    pub url: String,
    /// Whether a logo is served.
    pub has_logo: bool,
    /// Where the answer goes: the redirect URI's origin (or `scheme:` for a private-use
    /// scheme). Forms may end up there after a redirect, so browsers check it against the
    /// page's `form-action`.
    pub client_origin: String,
}

/// Why the sign-in page is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    /// Unknown username or wrong password (the page does not say which).
    WrongCredentials,
    /// The back-off holds: try again after this many seconds.
    TooManyAttempts {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
}

/// The sign-in page.
#[derive(Debug, Clone)]
pub struct SignInView {
    /// The app asking.
    pub app: AppView,
    /// The sealed request and its seal, carried by the form.
    pub form: Sealed,
    /// Pre-filled username (the last attempt's, or the request's `login_hint`).
    pub username: String,
    /// What went wrong with the last attempt, if anything.
    pub failure: Option<SignInFailure>,
}

/// The consent page.
#[derive(Debug, Clone)]
pub struct ConsentView {
    /// The app asking.
    pub app: AppView,
    /// Each requested scope in plain words, the sign-in itself first, then the API scopes as
    /// written.
    pub scopes: Vec<String>,
    /// The API (RFC 8707 resource) the app's access would be for, when it named one.
    pub resource: Option<String>,
    /// The sealed request and its seal, carried by the form.
    pub form: Sealed,
    /// Who would consent.
    pub signed_in_as: SignedInAs,
    /// The authorization request as a query, to start it over after "Not you? Sign out".
    pub restart_query: String,
}

/// What the authorization endpoint shows.
#[derive(Debug)]
pub enum AuthorizeView {
    /// The client cannot be trusted with a redirect: an error page (400) saying this.
    Error(String),
    /// A form that was not served to this browser, or has expired: refused (403).
    FormRefused,
    /// The sign-in page.
    SignIn(SignInView),
    /// The consent page.
    Consent(ConsentView),
    /// A 303 to the client's redirect URI with the answer.
    Redirect(String),
}

/// What sign-out shows.
#[derive(Debug)]
pub enum SignOutView {
    /// Nobody is signed in here.
    NotSignedIn,
    /// "Sign out?" with a form.
    Confirm {
        /// Who is signed in.
        signed_in_as: SignedInAs,
        /// The form's token, bound to the cookie.
        token: String,
        /// An authorization request to return to afterwards (a query; may be empty).
        continue_query: String,
    },
    /// Signed out, with nowhere to return to.
    SignedOut,
    /// Signed out: back to the authorization endpoint with this query.
    Continue(String),
    /// A form that was not served to this browser: refused (403).
    FormRefused,
    /// An app's logout request that cannot be followed (400), with the reason.
    BadRequest(String),
    /// "Sign out?" for an app's logout request.
    ConfirmRequest {
        /// Who is signed in.
        signed_in_as: SignedInAs,
        /// The app asking, when it named itself.
        app_name: Option<String>,
        /// The web origin the browser is sent to afterwards, for the page's `form-action`.
        redirect_origin: Option<String>,
        /// The checked request, sealed to the cookie (also the CSRF token).
        form: Sealed,
    },
    /// An app's logout request is done and there is nowhere to send the browser.
    Done {
        /// Whether a session ended (otherwise there was none).
        signed_out: bool,
        /// The app asked to return to an address it has not registered.
        unregistered_redirect: bool,
    },
    /// A 303 to the app's registered `post_logout_redirect_uri`.
    Redirect(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_a_cookie_change_never_shows_its_value() {
        let value = "cookie-value-that-proves-a-session";
        for change in [
            CookieChange::Anchor(value.into()),
            CookieChange::SignedIn {
                value: value.into(),
                max_age: 60,
            },
        ] {
            let printed = format!(
                "{:?}",
                Outcome {
                    view: (),
                    cookie: Some(change)
                }
            );
            assert!(!printed.contains(value), "{printed}");
        }
    }
}
