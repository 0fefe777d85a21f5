//! GraphiQL works offline: its page and every file the page loads come from the binary, under a
//! Content-Security-Policy that allows only idgraph's own origin (and `data:` images and fonts).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::common::TestApp;

/// Every `src=` and `href=` value in `html`, quoted (`"` or `'`) or not.
fn links_in(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=", "href="] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let (value, after) = match rest.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &rest[1..];
                    let end = inner.find(quote).expect("a closed attribute value");
                    (&inner[..end], &inner[end..])
                }
                _ => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '>')
                        .unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            found.push(value.to_string());
            rest = after;
        }
    }
    found
}

/// Whether a CSP source expression names only this origin, nothing, or inline data.
fn own_source(source: &str) -> bool {
    matches!(source, "'self'" | "'none'" | "data:")
}

#[tokio::test]
async fn graphiql_page_and_assets_are_served_from_the_binary() {
    let app = TestApp::sqlite().await;
    let request = Request::builder()
        .uri("/graphql")
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .body(Body::empty())
        .unwrap();
    let page = app.send(request).await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.header("content-type")
    );

    // The policy: scripts, styles and requests from this origin only; nothing else anywhere.
    let csp = page
        .header("content-security-policy")
        .expect("the GraphiQL page carries a Content-Security-Policy");
    let directives: Vec<Vec<&str>> = csp
        .split(';')
        .map(|d| d.split_whitespace().collect())
        .filter(|d: &Vec<&str>| !d.is_empty())
        .collect();
    for wanted in ["default-src", "script-src", "style-src", "connect-src"] {
        let directive = directives
            .iter()
            .find(|d| d[0] == wanted)
            .unwrap_or_else(|| panic!("{wanted} missing from {csp}"));
        assert_eq!(directive[1..], ["'self'"], "{csp}");
    }
    for directive in &directives {
        assert!(
            directive[1..].iter().all(|source| own_source(source)),
            "{csp}"
        );
    }

    // The page: no inline script or style, and every link is a path on this server.
    let html = String::from_utf8(page.body.to_vec()).expect("UTF-8 page");
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script defer src=").count(),
        "every script is a file of ours:\n{html}"
    );
    assert!(!html.contains("<style"), "no inline style element:\n{html}");
    assert!(
        !html.contains(" style="),
        "no inline style attribute:\n{html}"
    );
    let links = links_in(&html);
    for link in &links {
        assert!(
            link.starts_with('/') && !link.contains("//") && !link.contains("http"),
            "{link} is not a path on this server"
        );
    }
    for wanted in [
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
        "boot.js",
    ] {
        assert!(
            links
                .iter()
                .any(|link| link.ends_with(&format!("/{wanted}"))),
            "the page loads no {wanted}: {links:?}"
        );
    }

    // Every asset is here, typed, and cacheable forever; the boot script calls /graphql the
    // way the endpoint requires.
    let mut scripts = String::new();
    for link in &links {
        let asset = app.get(link, None).await;
        asset.assert_status(StatusCode::OK);
        assert!(!asset.body.is_empty(), "{link} is empty");
        assert!(
            asset
                .header("cache-control")
                .is_some_and(|c| c.contains("max-age=31536000")),
            "{link}: {:?}",
            asset.header("cache-control")
        );
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
        let expected = if link.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            asset
                .header("content-type")
                .is_some_and(|t| t.starts_with(expected)),
            "{link}: {:?}",
            asset.header("content-type")
        );
        // Nor does an asset name anything to load from another host: a stylesheet's `url(…)`s
        // are inlined data and it imports nothing; a script imports no module by URL. (A
        // script could still build a URL at run time: the policy checked above, `'self'` for
        // scripts and connections, is what stops it, and the browser test loads GraphiQL with
        // every other host unresolvable.)
        let text = String::from_utf8_lossy(&asset.body);
        if link.ends_with(".css") {
            assert!(!text.contains("@import"), "{link} imports a stylesheet");
            for reference in text.split("url(").skip(1) {
                let target = reference.trim_start_matches(['"', '\'']);
                assert!(
                    target.starts_with("data:"),
                    "{link} loads {}",
                    &target[..target.len().min(60)]
                );
            }
        } else {
            for loader in [
                "import(\"http",
                "import('http",
                "from\"http",
                "from \"http",
                "importScripts(",
            ] {
                assert!(!text.contains(loader), "{link} loads a script: {loader}");
            }
        }
        if link.ends_with("/boot.js") {
            scripts = text.into_owned();
        }
    }
    assert!(
        scripts.contains("'/graphql'") && scripts.contains("apollo-require-preflight"),
        "{scripts}"
    );

    // An unknown name, or another build's tag, is a 404 with the error envelope.
    let boot = links
        .iter()
        .find(|link| link.ends_with("/boot.js"))
        .expect("boot.js");
    let folder = boot.trim_end_matches("boot.js");
    for missing in [
        format!("{folder}nothing.js"),
        format!("{folder}LICENSES.md"),
        "/graphql/assets/0000000000000000/boot.js".to_string(),
    ] {
        let response = app.get(&missing, None).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(response.json()["code"], "NOT_FOUND", "{missing}");
    }
}
