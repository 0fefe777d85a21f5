//! The layers point one way: transports (`graphql`, `rest`, `oidc`, `web`, `edge`) → `service`
//! → `auth`, `domain`, `db` and the plumbing beside them (errors, settings, the clock, logging,
//! the metrics recorder). Read from the source: no foundation names a service or a transport,
//! nothing under `service/` names a transport, and `domain/` names no storage. Paths are read
//! as `crate::…`; the sources use no `super::super` to climb out of a layer.

use std::path::{Path, PathBuf};

const TRANSPORTS: [&str; 5] = ["graphql", "rest", "oidc", "web", "edge"];

/// What services build on: the vocabulary, storage and tokens, and the crate's own plumbing
/// (errors, settings, the clock, logging, the metrics recorder).
const FOUNDATIONS: [&str; 8] = [
    "auth",
    "domain",
    "db",
    "error.rs",
    "config.rs",
    "clock.rs",
    "telemetry.rs",
    "metrics.rs",
];

/// Every top-level module of the crate has its place: a transport, `service`, a foundation, or
/// the entry points that wire them (`lib.rs`, `main.rs`, `cli.rs`).
#[test]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let placed: Vec<String> = TRANSPORTS
        .iter()
        .chain(FOUNDATIONS.iter())
        .chain(["service", "lib.rs", "main.rs", "cli.rs"].iter())
        .map(|name| name.to_string())
        .collect();
    let mut unplaced = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !placed.contains(&name) {
            unplaced.push(name);
        }
    }
    assert!(
        unplaced.is_empty(),
        "give these a layer in tests/it/layers.rs: {unplaced:?}"
    );
}

/// The source files at `path`: the file itself, or every one under the directory.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The leading identifier of a path.
fn head(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level items of a `{…}` group (the text after its `{`), split at commas outside
/// nested groups.
fn group_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items
}

/// The crate modules a source text names: `crate::x` and every top-level name of
/// `crate::{x, y::z}`.
fn named_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => found.extend(group_items(group).into_iter().map(head)),
            None => found.push(head(rest)),
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut found = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for module in named_modules(&text) {
            if forbidden.contains(&module.as_str()) {
                found.push(format!("{} names crate::{module}", file.display()));
            }
        }
    }
    found
}

#[test]
fn module_names_are_read_from_paths_and_groups() {
    let text = "use crate::domain::Role;\nuse crate::{service::AppState, web, db::owned::{a, b}};";
    assert_eq!(named_modules(text), ["domain", "service", "web", "db"]);
}

#[test]
fn layers_point_down_only() {
    let below_services: Vec<&str> = TRANSPORTS.iter().copied().chain(["service"]).collect();
    let mut found = Vec::new();
    for layer in FOUNDATIONS {
        found.extend(violations(layer, &below_services));
    }
    found.extend(violations("domain", &["db"]));
    found.extend(violations("service", &TRANSPORTS));
    assert!(
        found.is_empty(),
        "layers pointing up:\n{}",
        found.join("\n")
    );
}
