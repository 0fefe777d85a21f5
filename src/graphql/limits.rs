//! Bounds on a GraphQL document that hold *before* the library touches it, so that every
//! document is accepted or refused in time linear in its size:
//!
//! - before parsing, the nesting of brackets (`{`, `[`, `(`) outside strings and comments, so
//!   the parser's recursion stays shallow;
//! - after parsing and before validation, the number of field selections, arguments and
//!   directives the operations would expand to, counting each fragment's size once (memoised).
//!   A document of k fragments that each spread the next twice expands to 2^k selections: the
//!   library's own checks (recursion depth, directives, complexity, overlapping fields) walk
//!   that expansion, so it must be refused before they run. Arguments count because the
//!   library compares those of two fields of one name pairwise (n arguments each, n² steps)
//!   and reports each unknown one as an error of its own;
//! - string values holding NUL, inline or in variables, named by argument or variable.

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
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

/// Most fragment definitions in one document. Every fragment the library validates is walked
/// again from every selection set that spreads it, so their number is bounded before anything
/// walks them (the console's operations define a handful; GraphiQL's introspection query three).
pub const MAX_FRAGMENTS: usize = 64;

/// Deepest walk through selection sets and fragment spreads together. A field nests one level
/// and a spread one more; a chain of fragments, each spreading the next, nests as deep as it is
/// long, although no bracket nests. Far beyond any depth the schema's own limit lets run, and
/// low enough that the walks (ours and the library's, all recursive) stay within a worker's stack.
pub const MAX_WALK_DEPTH: usize = 128;

/// The number of field selections (with their arguments and directives) the document expands
/// to, refused beyond `max`: each
/// operation expanded, plus each fragment definition expanded once (an unused fragment is
/// still parsed and validated, so it counts too). Fragment spreads that form a cycle, more than
/// [`MAX_FRAGMENTS`] definitions and walks deeper than [`MAX_WALK_DEPTH`] are refused here too.
pub fn check_selections(document: &ExecutableDocument, max: u64) -> Result<(), String> {
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(format!(
            "the document defines {} fragments; at most {MAX_FRAGMENTS} are accepted",
            document.fragments.len()
        ));
    }
    let mut walk = Walk {
        document,
        fragments: HashMap::new(),
    };
    let operations = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set);
    let fragments = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set);
    let mut total = 0u64;
    for set in operations.chain(fragments) {
        total = total.saturating_add(walk.set_size(set, 0)?);
        if total > max {
            return Err(format!(
                "the document selects more than {max} fields and arguments once its fragments are expanded"
            ));
        }
    }
    Ok(())
}

/// One walk over a document. `fragments` holds each fragment's expanded size and height once
/// known, and `None` while it is being computed (meeting that again is a cycle), so every
/// fragment is expanded once whatever the number of spreads naming it.
struct Walk<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<Name, Option<Expanded>>,
}

/// A selection set's expanded size (fields), and its height: how many levels of fields,
/// inline fragments and spreads it nests below itself.
#[derive(Debug, Clone, Copy, Default)]
struct Expanded {
    size: u64,
    height: usize,
}

impl Walk<'_> {
    /// The expanded size of a selection set found `depth` levels down (and its height).
    fn set_size(&mut self, set: &Positioned<SelectionSet>, depth: usize) -> Result<u64, String> {
        self.expand(set, depth).map(|expanded| expanded.size)
    }

    fn expand(&mut self, set: &Positioned<SelectionSet>, depth: usize) -> Result<Expanded, String> {
        too_deep(depth)?;
        let mut expanded = Expanded::default();
        for selection in &set.node.items {
            let (add, below) = match &selection.node {
                Selection::Field(field) => {
                    let child = self.expand(&field.node.selection_set, depth + 1)?;
                    let own = 1 + field.node.arguments.len() + directives(&field.node.directives);
                    (count(own).saturating_add(child.size), child.height)
                }
                Selection::InlineFragment(inline) => {
                    let child = self.expand(&inline.node.selection_set, depth + 1)?;
                    let own = count(directives(&inline.node.directives));
                    (own.saturating_add(child.size), child.height)
                }
                Selection::FragmentSpread(spread) => {
                    let child = self.spread(&spread.node.fragment_name.node, depth + 1)?;
                    let own = count(directives(&spread.node.directives));
                    (own.saturating_add(child.size), child.height)
                }
            };
            expanded.size = expanded.size.saturating_add(add);
            expanded.height = expanded.height.max(below + 1);
        }
        Ok(expanded)
    }

    /// A fragment spread `depth` levels down: the fragment expanded once, and checked for depth
    /// wherever it is spread (a fragment first met near the top may be spread again far down).
    fn spread(&mut self, name: &Name, depth: usize) -> Result<Expanded, String> {
        let expanded = match self.fragments.get(name) {
            Some(Some(known)) => *known,
            Some(None) => return Err(format!("fragment {name} spreads itself")),
            None => match self.document.fragments.get(name) {
                // An unknown fragment is the validator's to report.
                None => Expanded::default(),
                Some(fragment) => {
                    self.fragments.insert(name.clone(), None);
                    let known = self.expand(&fragment.node.selection_set, depth)?;
                    self.fragments.insert(name.clone(), Some(known));
                    known
                }
            },
        };
        too_deep(depth + expanded.height)?;
        Ok(expanded)
    }
}

/// What `directives` add to a selection's size: each directive and each of its arguments.
fn directives(directives: &[Positioned<Directive>]) -> usize {
    directives
        .iter()
        .map(|directive| 1 + directive.node.arguments.len())
        .sum()
}

fn count(items: usize) -> u64 {
    u64::try_from(items).unwrap_or(u64::MAX)
}

fn too_deep(depth: usize) -> Result<(), String> {
    if depth > MAX_WALK_DEPTH {
        return Err(format!(
            "the document nests fields and fragment spreads deeper than {MAX_WALK_DEPTH} levels"
        ));
    }
    Ok(())
}

/// The first variable holding a string with NUL, named `$name`.
pub fn check_variables(variables: &Variables) -> Result<(), String> {
    match variables.iter().find(|(_, value)| value_holds_nul(value)) {
        Some((name, _)) => Err(refusal(&format!("${}", printable(name)))),
        None => Ok(()),
    }
}

/// The first string holding NUL written in the document: as an argument's value (named by the
/// argument) or as a variable's default (named `$name`: a variable the request leaves out takes
/// its default, which [`check_variables`] never sees).
pub fn check_strings(document: &ExecutableDocument) -> Result<(), String> {
    for (_, operation) in document.operations.iter() {
        let defaults = operation.node.variable_definitions.iter();
        if let Some(variable) = defaults
            .map(|definition| &definition.node)
            .find(|variable| {
                (variable.default_value.as_ref()).is_some_and(|value| value_holds_nul(&value.node))
            })
        {
            return Err(refusal(&format!("${}", printable(&variable.name.node))));
        }
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
    fn arguments_and_directives_count_toward_the_bound() {
        let arguments: Vec<String> = (0..600).map(|i| format!("a{i}: 0")).collect();
        let doc = format!(
            "{{ app({args}) {{ name }} app({args}) {{ name }} }}",
            args = arguments.join(" ")
        );
        let doc = async_graphql::parser::parse_query(doc).unwrap();
        let err = check_selections(&doc, 1000).unwrap_err();
        assert!(err.contains("fields and arguments"), "{err}");
        let directives = "@include(if: true) ".repeat(600);
        let doc = format!("{{ __typename {directives} }}");
        let doc = async_graphql::parser::parse_query(doc).unwrap();
        assert!(check_selections(&doc, 1000).is_err());
        let fine = async_graphql::parser::parse_query("{ app(clientId: \"x\") { name } }").unwrap();
        assert!(check_selections(&fine, 1000).is_ok());
    }

    #[test]
    fn a_fragment_bomb_is_counted_without_being_expanded() {
        let doc = async_graphql::parser::parse_query(fragment_bomb(60)).unwrap();
        let err = check_selections(&doc, 1000).unwrap_err();
        assert!(err.contains("more than 1000"), "{err}");
        let small = async_graphql::parser::parse_query(fragment_bomb(5)).unwrap();
        assert!(check_selections(&small, 1000).is_ok());
    }

    /// `n` fragments, each spreading the next once: linear in size, as deep as it is long.
    fn fragment_chain(n: usize, used: bool) -> String {
        let mut doc = String::from(if used {
            "query Q { ...F0 }\n"
        } else {
            "query Q { __typename }\n"
        });
        for i in 0..n {
            doc.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        doc.push_str(&format!("fragment F{n} on Query {{ __typename }}\n"));
        doc
    }

    #[test]
    fn too_many_fragments_are_refused_before_any_walk() {
        let doc = async_graphql::parser::parse_query(fragment_chain(MAX_FRAGMENTS, true)).unwrap();
        let err = check_selections(&doc, u64::MAX).unwrap_err();
        assert!(err.contains("at most 64 are accepted"), "{err}");
        let fits = async_graphql::parser::parse_query(fragment_chain(MAX_FRAGMENTS - 1, true));
        assert!(check_selections(&fits.unwrap(), u64::MAX).is_ok());
    }

    #[test]
    fn unused_fragments_count_toward_the_selections() {
        // One operation selecting one field, and an unused fragment selecting 50.
        let fields = (0..50)
            .map(|i| format!("a{i}: __typename"))
            .collect::<Vec<_>>();
        let doc = format!(
            "query Q {{ __typename }} fragment Unused on Query {{ {} }}",
            fields.join(" ")
        );
        let doc = async_graphql::parser::parse_query(doc).unwrap();
        let err = check_selections(&doc, 40).unwrap_err();
        assert!(err.contains("more than 40"), "{err}");
        assert!(check_selections(&doc, 51).is_ok());
    }

    #[test]
    fn deep_walks_through_spreads_are_refused() {
        // A chain of spreads nests one level per spread although no bracket nests.
        let doc = "query Q { ...F0 } ".to_string()
            + &(0..50)
                .map(|i| format!("fragment F{i} on Query {{ a {{ b {{ ...F{} }} }} }}", i + 1))
                .collect::<String>()
            + "fragment F50 on Query { __typename }";
        let doc = async_graphql::parser::parse_query(doc).unwrap();
        let err = check_selections(&doc, u64::MAX).unwrap_err();
        assert!(err.contains("deeper than 128 levels"), "{err}");
        let shallow = async_graphql::parser::parse_query(fragment_chain(40, true)).unwrap();
        assert!(check_selections(&shallow, u64::MAX).is_ok());
    }

    #[test]
    fn a_fragment_met_shallow_first_is_still_too_deep_when_spread_deep_later() {
        // F0 → F1 → F2 → F3, each nesting 40 fields before its spread. Spread at the top,
        // F2 is 80 levels high; spread again under F0 and F1 it reaches about 160 levels.
        let nest = |inner: &str| {
            let open: String = (0..40).map(|i| format!("f{i} {{ ")).collect();
            format!("{open}{inner}{}", " }".repeat(40))
        };
        let mut doc = String::from("query Q { ...F2 ...F0 }\n");
        for i in 0..3 {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ {} }}\n",
                nest(&format!("...F{}", i + 1))
            ));
        }
        doc.push_str(&format!(
            "fragment F3 on Query {{ {} }}\n",
            nest("__typename")
        ));
        let doc = async_graphql::parser::parse_query(doc).unwrap();
        let err = check_selections(&doc, u64::MAX).unwrap_err();
        assert!(err.contains("deeper than 128 levels"), "{err}");
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
