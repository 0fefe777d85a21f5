//! Text as it arrives from outside: the checks every transport, and the decoding of what the
//! API handed out (paging cursors), apply the same way.

use serde_json::Value;

/// A name as an error message may quote it: control characters replaced.
pub fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
