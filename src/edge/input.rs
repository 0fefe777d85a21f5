//! Control characters are refused where they enter: no identifier, URL, name or token of ours
//! holds one, and PostgreSQL cannot store NUL at all. Each transport answers the refusal in its
//! own shape (a JSON envelope, an RFC 6749 error, an error page), always a 400 that names the
//! field, and the same on both stores.

use axum::http::Uri;
use serde_json::Value;
use url::form_urlencoded;

/// Whether `c` is a control character that no field of a URL may hold. Tab, line feed and
/// carriage return are allowed in query values (a GraphQL document sent over GET has them);
/// every other C0 control and DEL is not.
fn forbidden_in_query(c: char) -> bool {
    (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}'
}

/// The first part of `uri` holding a control character: `"path"`, or the name of the query
/// parameter (as decoded).
pub fn control_in_uri(uri: &Uri) -> Option<String> {
    let path = uri.path();
    let decoded: Vec<u8> = percent_decode(path.as_bytes());
    if decoded.iter().any(|b| b.is_ascii_control()) {
        return Some("path".into());
    }
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| {
            name.chars().any(char::is_control) || value.chars().any(forbidden_in_query)
        })
        .map(|(name, _)| printable(&name))
}

/// A name as an error message may quote it: control characters replaced.
pub fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect()
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The first string in a JSON value holding NUL: the dotted path to it (`input.name`, `ids[2]`)
/// or, for a key, the key itself.
pub fn nul_in_json(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> Option<String> {
        match value {
            Value::String(text) if text.contains('\0') => Some(path.clone()),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                path.truncate(len);
                found
            }),
            Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                if key.contains('\0') {
                    return Some(printable(key));
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let found = walk(item, path);
                path.truncate(len);
                found
            }),
            _ => None,
        }
    }
    walk(value, &mut String::new()).map(|path| if path.is_empty() { "body".into() } else { path })
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
    }

    #[test]
    fn nul_in_json_names_the_field() {
        let body = serde_json::json!({ "name": "ok", "input": { "url": "a\u{0}b" } });
        assert_eq!(nul_in_json(&body), Some("input.url".into()));
        let list = serde_json::json!({ "ids": ["a", "b\u{0}"] });
        assert_eq!(nul_in_json(&list), Some("ids[1]".into()));
        assert_eq!(
            nul_in_json(&serde_json::json!({ "name": "tab\tis fine" })),
            None
        );
    }
}
