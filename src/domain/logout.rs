//! The parameters of an RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0
//! §2), as they arrive by query or form: each kept as sent, the first of repeated ones, an
//! empty value counting as absent.

use url::form_urlencoded;

/// Longest `id_token_hint` read (an ID token of ours is well under 2 KB).
pub const MAX_HINT_LEN: usize = 8 * 1024;
/// Longest value of any other parameter.
pub const MAX_VALUE_LEN: usize = 1024;

/// An end-session request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndSessionParams {
    /// An ID token idgraph issued to the app, naming the sign-in to end (expired is fine).
    pub id_token_hint: Option<String>,
    /// Which account to sign out; read, not used: a browser holds one session here.
    pub logout_hint: Option<String>,
    /// The app asking; must be the hint's audience when both are given.
    pub client_id: Option<String>,
    /// Where to send the browser afterwards: exactly one the app registered.
    pub post_logout_redirect_uri: Option<String>,
    /// Given back with the redirect.
    pub state: Option<String>,
    /// Preferred languages; read, not used: the pages are in English.
    pub ui_locales: Option<String>,
}

impl EndSessionParams {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "id_token_hint" => &mut self.id_token_hint,
            "logout_hint" => &mut self.logout_hint,
            "client_id" => &mut self.client_id,
            "post_logout_redirect_uri" => &mut self.post_logout_redirect_uri,
            "state" => &mut self.state,
            "ui_locales" => &mut self.ui_locales,
            _ => return None,
        })
    }

    /// Whether `name` is one of the request's parameters.
    pub fn is_parameter(name: &str) -> bool {
        Self::default().slot(name).is_some()
    }

    /// Reads the parameters from name/value pairs; others are ignored.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            let value = value.as_ref();
            if let Some(slot) = params.slot(name.as_ref())
                && slot.is_none()
                && !value.is_empty()
            {
                *slot = Some(value.to_string());
            }
        }
        params
    }

    /// Reads the parameters from a query string.
    pub fn from_query(query: &str) -> Self {
        Self::from_pairs(form_urlencoded::parse(query.as_bytes()))
    }

    /// Whether no parameter was given at all (a plain visit to the sign-out page).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The parameters as a query string.
    pub fn to_query(&self) -> String {
        let fields = [
            ("id_token_hint", &self.id_token_hint),
            ("logout_hint", &self.logout_hint),
            ("client_id", &self.client_id),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
            ("ui_locales", &self.ui_locales),
        ];
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }

    /// The first parameter that is too long, with the message that says so.
    pub fn too_long(&self) -> Option<String> {
        if self
            .id_token_hint
            .as_ref()
            .is_some_and(|hint| hint.len() > MAX_HINT_LEN)
        {
            return Some(format!(
                "id_token_hint: must be at most {MAX_HINT_LEN} bytes"
            ));
        }
        let others = [
            ("logout_hint", &self.logout_hint),
            ("client_id", &self.client_id),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
            ("ui_locales", &self.ui_locales),
        ];
        others
            .into_iter()
            .find(|(_, value)| value.as_ref().is_some_and(|v| v.len() > MAX_VALUE_LEN))
            .map(|(name, _)| format!("{name}: must be at most {MAX_VALUE_LEN} bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_empty_value_of_each_parameter_is_kept() {
        let params = EndSessionParams::from_query(
            "state=&state=a&state=b&client_id=c&other=x&post_logout_redirect_uri=https%3A%2F%2Frp.example%2F",
        );
        assert_eq!(params.state.as_deref(), Some("a"));
        assert_eq!(params.client_id.as_deref(), Some("c"));
        assert_eq!(
            params.post_logout_redirect_uri.as_deref(),
            Some("https://rp.example/")
        );
        assert_eq!(EndSessionParams::from_query(&params.to_query()), params);
        assert!(EndSessionParams::from_query("continue=x&other=y").is_empty());
    }

    #[test]
    fn overlong_values_are_named() {
        let params = EndSessionParams {
            state: Some("s".repeat(MAX_VALUE_LEN + 1)),
            ..Default::default()
        };
        assert_eq!(
            params.too_long().as_deref(),
            Some("state: must be at most 1024 bytes")
        );
        let params = EndSessionParams {
            id_token_hint: Some("h".repeat(MAX_HINT_LEN + 1)),
            ..Default::default()
        };
        assert!(params.too_long().unwrap().starts_with("id_token_hint"));
        assert_eq!(EndSessionParams::default().too_long(), None);
    }
}
