//! Control characters are refused where they enter: no identifier, URL, name or token of ours
//! holds one, and PostgreSQL cannot store NUL at all. Each transport answers the refusal in its
//! own shape (a JSON envelope, an RFC 6749 error, an error page), always a 400 that names the
//! field, and the same on both stores.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::Uri;
use axum::response::Response;
use futures_util::future::Either;
use tower::{Layer, Service};
use url::form_urlencoded;

pub use crate::domain::text::{nul_in_json, printable};

/// Whether `c` is a control character that no field of a URL may hold. Tab, line feed and
/// carriage return are allowed in query values (a GraphQL document sent over GET has them);
/// every other C0 control and DEL is not.
fn forbidden_in_query(c: char) -> bool {
    (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}'
}

/// The first part of `uri` holding a control character: `"path"`, or the name of the query
/// parameter (as decoded).
pub fn control_in_uri(uri: &Uri) -> Option<String> {
    if percent_decoded(uri.path().as_bytes()).any(|b| b.is_ascii_control()) {
        return Some("path".into());
    }
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| {
            name.chars().any(char::is_control) || value.chars().any(forbidden_in_query)
        })
        .map(|(name, _)| printable(&name))
}

/// The bytes `bytes` percent-decode to, one at a time (every request's path passes here, so
/// nothing is copied); a `%` not followed by two hex digits stands for itself.
fn percent_decoded(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    std::iter::from_fn(move || {
        let byte = *bytes.get(i)?;
        if byte == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            i += 3;
            Some(high << 4 | low)
        } else {
            i += 1;
            Some(byte)
        }
    })
}

/// A layer that refuses a URL holding a control character (see [`control_in_uri`]) before the
/// request goes further, with the answer its transport gives the refusal's message. A layer of
/// its own rather than `axum::middleware::from_fn`, which boxes the service behind it on every
/// request: every request to every route passes here.
#[derive(Clone, Copy)]
pub struct RefuseControlCharacters(pub fn(&str) -> Response);

impl<S> Layer<S> for RefuseControlCharacters {
    type Service = Refusing<S>;

    fn layer(&self, inner: S) -> Refusing<S> {
        Refusing {
            inner,
            answer: self.0,
        }
    }
}

/// The service [`RefuseControlCharacters`] puts in front of `S`.
#[derive(Clone)]
pub struct Refusing<S> {
    inner: S,
    answer: fn(&str) -> Response,
}

impl<S> Service<Request> for Refusing<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match control_in_uri(request.uri()) {
            Some(field) => Either::Left(ready(Ok((self.answer)(&refusal(&field))))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

/// The message of a refusal.
pub fn refusal(field: &str) -> String {
    format!("{field}: must not contain control characters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_the_url_are_found_and_named() {
        let uri = |text: &str| text.parse::<Uri>().unwrap();
        assert_eq!(
            control_in_uri(&uri("/connection/id/a%00")),
            Some("path".into())
        );
        assert_eq!(
            control_in_uri(&uri("/app?amount=1&creatorid=%00")),
            Some("creatorid".into())
        );
        assert_eq!(control_in_uri(&uri("/app?a=%1b")), Some("a".into()));
        assert_eq!(control_in_uri(&uri("/graphql?query=%7B%0A%20a%7D")), None);
        assert_eq!(control_in_uri(&uri("/app/id/abc?state=x%20y")), None);
        assert_eq!(control_in_uri(&uri("/app/id/%ZZ")), None);
        assert_eq!(control_in_uri(&uri("/app/id/%7f%2")), Some("path".into()));
        assert_eq!(control_in_uri(&uri("/app/id/%4")), None);
    }
}
