//! Bounds on a GraphQL document that hold *before* the library touches it, so that every
//! document is accepted or refused in time linear in its size:
//!
//! - before parsing, the nesting of brackets (`{`, `[`, `(`) outside strings and comments, so
//!   the parser's recursion stays shallow;
//! - after parsing and before validation, the number of field selections the operations would
//!   expand to, counting each fragment's size once (memoised). A document of k fragments that
//!   each spread the next twice expands to 2^k selections: the library's own checks (recursion
//!   depth, directives, complexity, overlapping fields) walk that expansion, so it must be
//!   refused before they run;
//! - string values holding NUL, inline or in variables, named by argument or variable.

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Value};

use crate::edge::input::{printable, refusal};

/// Deepest bracket nesting accepted.
pub const MAX_NESTING: usize = 64;

/// Refuses `query` as soon as its nesting of `{`, `[` and `(`, outside string literals (block
/// strings included) and comments, passes `max`.
pub fn check_nesting(query: &str, max: usize) -> Result<(), String> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return Err(format!(
                        "the document nests deeper than {max} levels of brackets"
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The number of field selections each operation expands to, summed; refused beyond `max`.
/// Fragment spreads that form a cycle are refused here too (validation would, after expanding).
pub fn check_selections(document: &ExecutableDocument, max: u64) -> Result<(), String> {
    let mut sizes: HashMap<Name, Option<u64>> = HashMap::new();
    let mut total = 0u64;
    for (_, operation) in document.operations.iter() {
        let size = set_size(document, &operation.node.selection_set, &mut sizes)?;
        total = total.saturating_add(size);
        if total > max {
            return Err(format!(
                "the document selects more than {max} fields once its fragments are expanded"
            ));
        }
    }
    Ok(())
}

/// The expanded size of a selection set. `sizes` holds each fragment's size once known, and
/// `None` while it is being computed (meeting that again is a cycle).
fn set_size(
    document: &ExecutableDocument,
    set: &Positioned<SelectionSet>,
    sizes: &mut HashMap<Name, Option<u64>>,
) -> Result<u64, String> {
    let mut size = 0u64;
    for selection in &set.node.items {
        let add = match &selection.node {
            Selection::Field(field) => {
                1u64.saturating_add(set_size(document, &field.node.selection_set, sizes)?)
            }
            Selection::InlineFragment(inline) => {
                set_size(document, &inline.node.selection_set, sizes)?
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                match sizes.get(name) {
                    Some(Some(known)) => *known,
                    Some(None) => return Err(format!("fragment {name} spreads itself")),
                    None => match document.fragments.get(name) {
                        // An unknown fragment is the validator's to report.
                        None => 0,
                        Some(fragment) => {
                            sizes.insert(name.clone(), None);
                            let known = set_size(document, &fragment.node.selection_set, sizes)?;
                            sizes.insert(name.clone(), Some(known));
                            known
                        }
                    },
                }
            }
        };
        size = size.saturating_add(add);
    }
    Ok(size)
}

/// The first variable holding a string with NUL, named `$name`.
pub fn check_variables(variables: &Variables) -> Result<(), String> {
    match variables.iter().find(|(_, value)| value_holds_nul(value)) {
        Some((name, _)) => Err(refusal(&format!("${}", printable(name)))),
        None => Ok(()),
    }
}

/// The first string holding NUL written in the document as an argument's value (named by the
/// argument).
pub fn check_strings(document: &ExecutableDocument) -> Result<(), String> {
    for (_, operation) in document.operations.iter() {
        if let Some(name) = nul_in_set(&operation.node.selection_set) {
            return Err(refusal(&name));
        }
    }
    for fragment in document.fragments.values() {
        if let Some(name) = nul_in_set(&fragment.node.selection_set) {
            return Err(refusal(&name));
        }
    }
    Ok(())
}

fn nul_in_set(set: &Positioned<SelectionSet>) -> Option<String> {
    set.node
        .items
        .iter()
        .find_map(|selection| match &selection.node {
            Selection::Field(field) => field
                .node
                .arguments
                .iter()
                .find(|(_, value)| {
                    // Variables are checked on their own; here they stand for nothing.
                    let written = value
                        .node
                        .clone()
                        .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null));
                    written.is_ok_and(|value| value_holds_nul(&value))
                })
                .map(|(name, _)| name.node.to_string())
                .or_else(|| nul_in_set(&field.node.selection_set)),
            Selection::InlineFragment(inline) => nul_in_set(&inline.node.selection_set),
            Selection::FragmentSpread(_) => None,
        })
}

fn value_holds_nul(value: &async_graphql::Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Enum(name) => name.contains('\0'),
        Value::List(items) => items.iter().any(value_holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || value_holds_nul(value)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// k fragments, each spreading the next twice, ending in `__typename`.
    fn fragment_bomb(k: usize) -> String {
        let mut doc = String::from("query Q { ...F0 }\n");
        for i in 0..k {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        doc.push_str(&format!("fragment F{k} on Query {{ __typename }}\n"));
        doc
    }

    #[test]
    fn a_fragment_bomb_is_counted_without_being_expanded() {
        let doc = async_graphql::parser::parse_query(fragment_bomb(60)).unwrap();
        let err = check_selections(&doc, 1000).unwrap_err();
        assert!(err.contains("more than 1000"), "{err}");
        let small = async_graphql::parser::parse_query(fragment_bomb(5)).unwrap();
        assert!(check_selections(&small, 1000).is_ok());
    }

    #[test]
    fn cycles_are_refused() {
        let doc = async_graphql::parser::parse_query(
            "query Q { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        )
        .unwrap();
        assert!(
            check_selections(&doc, 1000)
                .unwrap_err()
                .contains("spreads itself")
        );
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        assert!(check_nesting(&"{".repeat(65), 64).is_err());
        assert!(check_nesting(&format!("{}{}", "[".repeat(64), "]".repeat(64)), 64).is_ok());
        let quoted = format!(
            "query {{ a(x: \"{}\") }} # {}",
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(check_nesting(&quoted, 64).is_ok());
        let block = format!("query {{ a(x: \"\"\"{}\"\"\") }}", "(".repeat(100));
        assert!(check_nesting(&block, 64).is_ok());
    }

    #[test]
    fn nul_is_found_inline_and_in_variables() {
        let doc =
            async_graphql::parser::parse_query("query Q { app(clientId: \"a\\u0000\") { name } }")
                .unwrap();
        let err = check_strings(&doc).unwrap_err();
        assert!(err.starts_with("clientId:"), "{err}");
        let doc =
            async_graphql::parser::parse_query("query Q($id: ID!) { app(clientId: $id) { name } }")
                .unwrap();
        assert!(check_strings(&doc).is_ok());
        let vars = Variables::from_json(serde_json::json!({ "id": "a\u{0}" }));
        let err = check_variables(&vars).unwrap_err();
        assert!(err.starts_with("$id:"), "{err}");
    }
}
