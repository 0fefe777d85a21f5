//! How an answer travels back to the client: the redirect URI with the answer's parameters
//! and `iss` (RFC 9207) in the response mode's place.

use url::Url;

use crate::domain::authorize::{RedirectError, ResponseMode};
use crate::error::{AppError, AppResult};
use crate::service::AppState;

/// The origin of `redirect_uri` (or `scheme:` for a private-use scheme).
pub(super) fn client_origin(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(url) if url.origin().is_tuple() => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => String::new(),
    }
}

pub(super) fn error_pairs<'a>(
    error: &'a RedirectError,
    state: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("error", error.error),
        ("error_description", error.description.as_str()),
    ];
    if let Some(value) = state {
        pairs.push(("state", value));
    }
    pairs
}

/// `redirect_uri` with `pairs` and `iss` (RFC 9207) added in the response mode's place: the
/// query (kept after what the registered URI already holds) or the fragment.
pub(super) fn answer(
    state: &AppState,
    redirect_uri: &str,
    mode: ResponseMode,
    pairs: &[(&str, &str)],
) -> AppResult<String> {
    let mut url = Url::parse(redirect_uri).map_err(AppError::internal)?;
    let issuer = ("iss", state.config.issuer.as_str());
    match mode {
        ResponseMode::Query => {
            url.query_pairs_mut()
                .extend_pairs(pairs)
                .extend_pairs([issuer]);
        }
        ResponseMode::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .extend_pairs([issuer])
                .finish();
            url.set_fragment(Some(&fragment));
        }
    }
    Ok(url.into())
}
