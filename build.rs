//! Tells the test suite what this machine can run, so that tests which cannot run here are
//! reported as ignored (with the reason) instead of passing silently. Under `CI` everything
//! runs, and a missing service fails its tests.

use std::path::Path;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(idgraph_ci)");
    println!("cargo:rustc-check-cfg=cfg(idgraph_postgres)");
    println!("cargo:rustc-check-cfg=cfg(idgraph_browser)");
    println!("cargo:rustc-check-cfg=cfg(idgraph_axe)");
    println!("cargo:rerun-if-changed=tests/browser/node_modules/axe-core/axe.min.js");
    for var in [
        "CI",
        "TEST_DATABASE_URL",
        "CHROMIUM",
        "CHROMEDRIVER",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if std::env::var_os("CI").is_some() {
        println!("cargo:rustc-cfg=idgraph_ci");
    }
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        println!("cargo:rustc-cfg=idgraph_postgres");
    }
    let found = |var: &str, name: &str| {
        std::env::var_os(var).is_some_and(|path| Path::new(&path).exists())
            || std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join(name).exists())
            })
    };
    if found("CHROMIUM", "chromium") && found("CHROMEDRIVER", "chromedriver") {
        println!("cargo:rustc-cfg=idgraph_browser");
    }
    // axe-core for the console's accessibility check: `npm ci --prefix tests/browser`.
    if Path::new("tests/browser/node_modules/axe-core/axe.min.js").exists() {
        println!("cargo:rustc-cfg=idgraph_axe");
    }
}
