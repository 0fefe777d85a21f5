//! GraphiQL served whole from the binary: our page (`templates/graphiql.html`), the vendored
//! GraphiQL and React builds and a small boot script (`static/graphiql/`, see its
//! `LICENSES.md`), so that it works offline and runs no other origin's code. The page's
//! Content-Security-Policy allows only `'self'`: no CDN, no inline script or style.
//!
//! Asset URLs are `/graphql/assets/{tag}/{file}`, where the tag is a hash of every embedded
//! file: a build with other files has another tag, so each URL's content never changes and
//! browsers may cache it forever.

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::service::AppState;

/// The page's policy. Fonts and a few icons are `data:` URLs inside `graphiql.min.css`.
/// GraphiQL's dialogs try to add a `<style>` element (to stop the page scrolling behind
/// them); it is refused, harmlessly, since the page never scrolls (`page.css`).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

/// How long browsers and proxies may keep an asset: a year, unrevalidated.
const FOREVER: &str = "public, max-age=31536000, immutable";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file the page loads; nothing else is served under `/graphql/assets/`.
static ASSETS: [Asset; 6] = [
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        body: include_bytes!("../../static/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        body: include_bytes!("../../static/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        body: include_bytes!("../../static/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: CSS,
        body: include_bytes!("../../static/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "boot.js",
        content_type: JS,
        body: include_bytes!("../../static/graphiql/boot.js"),
    },
    Asset {
        name: "page.css",
        content_type: CSS,
        body: include_bytes!("../../static/graphiql/page.css"),
    },
];

/// The first 16 hex digits of a SHA-256 over every asset's name and bytes, computed once.
static TAG: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for asset in &ASSETS {
        hasher.update(asset.name.as_bytes());
        hasher.update(asset.body);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// The GraphiQL page: links to the assets under the current tag, no inline code.
#[derive(Template)]
#[template(path = "graphiql.html")]
struct GraphiqlPage<'a> {
    tag: &'a str,
}

/// The asset route. It needs no authentication and reads no body, so it is mounted beside
/// `/graphql`'s guard rather than under it.
pub fn routes() -> Router<AppState> {
    Router::new().route("/graphql/assets/{tag}/{file}", get(asset))
}

/// The GraphiQL page, under [`CSP`]. It is revalidated on every visit (`no-cache`), so a new
/// build's tag is picked up at once.
pub fn page() -> Response {
    let html = match (GraphiqlPage { tag: TAG.as_str() }).render() {
        Ok(html) => html,
        Err(err) => return AppError::internal(err).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// `GET /graphql/assets/{tag}/{file}`: an embedded file, cacheable forever. An unknown name,
/// or another build's tag, is a 404.
async fn asset(path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let found = path.ok().and_then(|Path((tag, file))| {
        ASSETS
            .iter()
            .find(|asset| asset.name == file)
            .filter(|_| tag == *TAG)
    });
    let Some(asset) = found else {
        return AppError::NotFound("asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, FOREVER),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}
