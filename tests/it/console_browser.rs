//! The admin console in a real browser: headless Chromium (as in `browser.rs`) with every host
//! but loopback made unresolvable, driven through the pages only.
//!
//! An administrator signs in, registers an app (the secret is shown once), rotates its secret
//! (both work during the grace period), uploads a logo (previewed first), creates a user and
//! disables them, and reads each step in the audit trail; a form whose token was removed
//! changes nothing; a person without `admin`/`oauth` is refused. GraphiQL, linked from the
//! console, runs a query with the administrator's session. Every request the browser makes
//! stays on idgraph's origin, and axe-core (from npm, `tests/browser/`) finds no serious or
//! critical violation on any page. Screenshots of the main pages at 390 and 1280 px are saved
//! under `target/browser-screenshots/` (and into `docs/` with `IDGRAPH_DOCS_SCREENSHOTS=1`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use idgraph::db::entities::{apps, audit_events};
use idgraph::domain::Role;
use image::ImageFormat;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};

use crate::common::chromium::{
    open_browser_with, save_screenshot, screenshot_dir, start_chromedriver,
};
use crate::common::{PASSWORD, Served};
use crate::fixtures::image;

/// Where axe-core's browser build is: `AXE_CORE`, or `tests/browser/node_modules` after
/// `npm ci --prefix tests/browser` (which `.ci/run` does).
fn axe_source() -> String {
    let path = std::env::var_os("AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read axe-core at {} ({e}): run `npm ci --prefix tests/browser` or set AXE_CORE",
            path.display()
        )
    })
}

/// chromedriver's log of the session's network events since the last call.
#[derive(Debug)]
struct PerformanceLog;

impl fantoccini::wd::WebDriverCompatibleCommand for PerformanceLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({ "type": "performance" }).to_string()),
        )
    }
}

struct Walk {
    browser: Client,
    origin: String,
    axe: String,
    /// Every URL the browser requested so far.
    requested: BTreeSet<String>,
}

impl Walk {
    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_until(Locator::Css(css)).await
    }

    /// Waits (on the browser's own events, through WebDriver) until `locator` finds an element.
    async fn wait_until(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        match self
            .browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(locator)
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.browser.current_url().await.ok();
                let html = self.browser.source().await.unwrap_or_default();
                panic!("{locator:?} did not appear ({e}) on {url:?}:\n{html}")
            }
        }
    }

    async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn page_text(&self) -> String {
        self.wait_for("body").await.text().await.unwrap()
    }

    /// Waits until the page's `<h1>` reads `heading`.
    async fn on_page(&self, heading: &str) {
        let xpath = format!("//h1[starts-with(normalize-space(.), '{heading}')]");
        self.wait_until(Locator::XPath(&xpath)).await;
    }

    fn ours(&self, url: &str) -> bool {
        url.starts_with(&format!("{}/", self.origin))
            || url.starts_with("data:")
            || url == "about:blank"
    }

    /// Asserts that every request the browser sent since the last check went to idgraph (its
    /// network log: each `Network.requestWillBeSent`), and that nothing the page loads or posts
    /// to is elsewhere (scripts, images, frames, stylesheets, forms: what the page's policy
    /// would otherwise block silently). Links a person may follow are not requests.
    async fn check_requests(&mut self) {
        let log = self.browser.issue_cmd(PerformanceLog).await.unwrap();
        for entry in log.as_array().unwrap() {
            let message: Value = serde_json::from_str(entry["message"].as_str().unwrap()).unwrap();
            let message = &message["message"];
            if message["method"] != "Network.requestWillBeSent" {
                continue;
            }
            let url = message["params"]["request"]["url"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                self.ours(&url),
                "the browser sent a request to another host: {url}"
            );
            self.requested.insert(url);
        }
        let referred = self
            .browser
            .execute(
                "var found = [];
                 var loads = 'script[src], img[src], iframe[src], source[src], embed[src], ' +
                   'link[href], form[action], object[data]';
                 document.querySelectorAll(loads).forEach(function (e) {
                   ['src', 'href', 'action', 'data'].forEach(function (name) {
                     var value = e.getAttribute(name);
                     if (value !== null) { found.push(new URL(value, document.baseURI).href); }
                   });
                 });
                 return found;",
                vec![],
            )
            .await
            .unwrap();
        for url in referred.as_array().unwrap() {
            let url = url.as_str().unwrap();
            assert!(self.ours(url), "the page refers to another host: {url}");
        }
    }

    /// Runs axe-core on the page; no serious or critical violation may remain.
    async fn check_accessibility(&mut self, page: &str) {
        self.check_requests().await;
        let loaded = self
            .browser
            .execute("return typeof axe !== 'undefined';", vec![])
            .await
            .unwrap();
        if loaded != Value::Bool(true) {
            self.browser
                .execute(&format!("{}\nreturn true;", self.axe), vec![])
                .await
                .expect("axe-core loads");
        }
        let found = self
            .browser
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(function (result) {
                   done(result.violations
                     .filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
                     .map(function (v) {
                       return v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
                         v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');
                     }));
                 }, function (err) { done(['axe failed: ' + err]); });",
                vec![],
            )
            .await
            .unwrap();
        let found: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(found.is_empty(), "{page}: {found:#?}");
    }

    /// Screenshots at 390 and 1280 px wide.
    async fn screenshots(&self, name: &str) {
        for (width, height) in [(390, 844), (1280, 900)] {
            self.browser.set_window_size(width, height).await.unwrap();
            // Readable at this width: the page scrolls down only, never sideways (a wide
            // table scrolls inside its own box).
            let widths = self
                .browser
                .execute(
                    "const page = document.documentElement; return [page.scrollWidth, page.clientWidth];",
                    Vec::new(),
                )
                .await
                .unwrap();
            assert!(
                widths[0].as_u64().unwrap() <= widths[1].as_u64().unwrap(),
                "{name} at {width} px is wider than the window: {widths}"
            );
            let file = format!("console-{name}-{width}.png");
            save_screenshot(&self.browser, &file).await;
            if std::env::var_os("IDGRAPH_DOCS_SCREENSHOTS").is_some() {
                let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
                std::fs::copy(screenshot_dir().join(&file), docs.join(&file)).unwrap();
            }
        }
        self.browser.set_window_size(1280, 900).await.unwrap();
    }

    async fn sign_in(&self, username: &str) {
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        self.click("button.primary").await;
    }

    async fn input_value(&self, css: &str) -> String {
        self.wait_for(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(any(all(idgraph_browser, idgraph_axe), idgraph_ci)),
    ignore = "needs Chromium, chromedriver (apt-get install chromium chromium-driver) and axe-core (npm ci --prefix tests/browser); under CI it runs"
)]
async fn an_administrator_runs_idgraph_from_the_console() {
    let served = Served::start(|_| {}).await;
    let app = &served.app;
    let root = app.create_user("root", &[Role::Admin]).await;
    app.create_user("plain", &[]).await;
    let logo_file = tempfile::NamedTempFile::with_suffix(".png").unwrap();
    std::fs::write(logo_file.path(), image(ImageFormat::Png, 120, 120)).unwrap();

    let driver = start_chromedriver().await;
    // Nothing but loopback resolves: a page that tried to load anything from elsewhere fails.
    let browser = open_browser_with(
        &driver,
        &["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        true,
    )
    .await;
    browser.set_window_size(1280, 900).await.unwrap();
    let mut walk = Walk {
        browser,
        origin: served.issuer.clone(),
        axe: axe_source(),
        requested: BTreeSet::new(),
    };

    // A person without admin or oauth signs in and is refused, then signs out.
    walk.browser
        .goto(&format!("{}/admin/apps", served.issuer))
        .await
        .unwrap();
    walk.on_page("Sign in").await;
    walk.check_accessibility("sign-in").await;
    walk.screenshots("sign-in").await;
    walk.sign_in("plain").await;
    walk.on_page("Not for this account").await;
    walk.check_accessibility("refused").await;
    walk.click("button.primary").await;
    walk.on_page("Sign in").await;

    // The administrator signs in and lands on the users page.
    walk.sign_in("root").await;
    walk.on_page("Users").await;

    // Register an app: the secret is shown once.
    walk.click("nav a[href='/admin/apps']").await;
    walk.on_page("Apps").await;
    walk.click("a[href='/admin/apps/new']").await;
    walk.on_page("Register an app").await;
    walk.check_accessibility("register").await;
    // A refused form comes back with the error beside its field, marked for assistive tools.
    walk.fill("#name", "Billing").await;
    walk.fill("#redirect_uris", "https://billing.example/cb#fragment")
        .await;
    walk.click("form.panel button.primary").await;
    walk.on_page("Register an app").await;
    walk.wait_for("#redirect_uris[aria-invalid='true']").await;
    walk.check_accessibility("register-errors").await;
    walk.fill("#name", "Billing").await;
    walk.fill("#url", "https://billing.example").await;
    walk.fill(
        "#redirect_uris",
        "https://billing.example/cb\nhttps://staging.billing.example/cb",
    )
    .await;
    walk.click("form.panel button.primary").await;
    walk.on_page("App registered").await;
    let client_id = walk.input_value("#client-id").await;
    let first_secret = walk.input_value("#client-secret").await;
    assert!(app.secret_works(&client_id, &first_secret).await);
    walk.click("button[data-copy='client-secret']").await;
    let copy = walk
        .wait_until(Locator::XPath(
            "//button[@data-copy='client-secret'][normalize-space(.) != 'Copy']",
        ))
        .await;
    // Copied to the clipboard, or (without clipboard access) told how to copy it.
    let said = copy.text().await.unwrap();
    assert!(
        ["Copied", "Press Ctrl+C"].contains(&said.as_str()),
        "console.js answered the click with {said:?}"
    );
    walk.check_accessibility("secret").await;
    walk.screenshots("secret").await;

    // Rotate it: during the grace period both secrets work.
    walk.click(&format!("a[href='/admin/apps/{client_id}']"))
        .await;
    walk.on_page("Billing").await;
    walk.click("#secrets-heading ~ form button").await;
    walk.on_page("New secret").await;
    walk.check_accessibility("new-secret").await;
    let second_secret = walk.input_value("#client-secret").await;
    assert_ne!(second_secret, first_secret);
    assert!(app.secret_works(&client_id, &second_secret).await);
    assert!(app.secret_works(&client_id, &first_secret).await);

    // Upload a logo, previewed before it is sent.
    walk.click(&format!("a[href='/admin/apps/{client_id}']"))
        .await;
    walk.on_page("Billing").await;
    walk.wait_for("#image")
        .await
        .send_keys(logo_file.path().to_str().unwrap())
        .await
        .unwrap();
    // The preview must become visible (the wait fails, naming it, if it never does).
    let preview = walk.wait_for("#logo-preview:not([hidden])").await;
    assert!(
        preview
            .attr("src")
            .await
            .unwrap()
            .unwrap_or_default()
            .starts_with("data:image/png"),
        "the preview shows the chosen file"
    );
    walk.click("#logo-heading ~ form button").await;
    walk.wait_for("p.ok").await;
    assert!(walk.page_text().await.contains("Logo uploaded."));
    walk.wait_for("img.logo[alt^='Current logo']").await;
    walk.check_accessibility("app").await;
    walk.screenshots("app").await;

    // A form whose token was taken out changes nothing.
    walk.browser
        .execute(
            "document.querySelector('form.panel input[name=token]').remove();
             document.getElementById('name').value = 'Renamed';",
            vec![],
        )
        .await
        .unwrap();
    walk.click("form.panel button.primary").await;
    walk.on_page("This form has expired").await;
    walk.check_accessibility("refused-form").await;
    let stored = apps::Entity::find_by_id(client_id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Billing");

    // The list now holds it.
    walk.click("nav a[href='/admin/apps']").await;
    walk.on_page("Apps").await;
    walk.wait_for(&format!("a[href='/admin/apps/{client_id}']"))
        .await;
    walk.check_accessibility("apps").await;
    walk.screenshots("apps").await;

    // Create a user, then disable them.
    walk.browser
        .goto(&format!("{}/admin/users/new", served.issuer))
        .await
        .unwrap();
    walk.on_page("Create a user").await;
    walk.check_accessibility("new-user").await;
    walk.fill("#username", "dana").await;
    walk.fill("#email", "dana@example.com").await;
    walk.fill("#name", "Dana Scully").await;
    walk.fill("#password", "a long enough password").await;
    walk.click("form.panel button.primary").await;
    walk.on_page("dana").await;
    assert!(walk.page_text().await.contains("User created."));
    walk.click("#access-heading ~ .row a.button.danger").await;
    walk.on_page("Disable dana?").await;
    walk.check_accessibility("confirm").await;
    walk.click("form button.danger").await;
    walk.wait_for("h1 .badge.off").await;
    assert!(walk.page_text().await.contains("Disabled:"));
    walk.check_accessibility("user").await;
    walk.screenshots("user").await;
    walk.click("nav a[href='/admin/users']").await;
    walk.on_page("Users").await;
    walk.check_accessibility("users").await;
    walk.screenshots("users").await;

    // The signing keys.
    walk.click("nav a[href='/admin/keys']").await;
    walk.on_page("Signing keys").await;
    walk.check_accessibility("keys").await;
    walk.screenshots("keys").await;

    // The audit trail shows each step, newest first; the filter narrows it.
    walk.click("nav a[href='/admin/audit']").await;
    walk.on_page("Audit trail").await;
    let trail = walk.wait_for("#results").await.text().await.unwrap();
    let steps = [
        "user.disable",
        "user.create",
        "app.logo.change",
        "app.secret.rotate",
        "app.create",
    ];
    let mut at = 0;
    for step in steps {
        let found = trail[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step} missing or out of order in {trail}"));
        at += found + step.len();
    }
    walk.check_accessibility("audit").await;
    walk.screenshots("audit").await;
    walk.wait_for("#action")
        .await
        .select_by_value("user.disable")
        .await
        .unwrap();
    // htmx swaps the filtered results in: wait for them, then read them.
    let filtered = walk
        .wait_until(Locator::XPath(
            "//div[@id='results'][not(contains(., 'user.create'))]",
        ))
        .await
        .text()
        .await
        .unwrap();
    // The wait above fails if the filter never drops the other actions; what remains is the
    // action asked for.
    assert!(filtered.contains("user.disable"), "{filtered}");
    assert!(
        filtered.contains("user dana"),
        "the target by name: {filtered}"
    );
    // What the trail shows is what the database holds, the latest of each by the administrator
    // (the test's own set-up created two users from the command line before).
    let events = audit_events::Entity::find()
        .order_by_asc(audit_events::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap();
    for step in steps {
        let event = events
            .iter()
            .rev()
            .find(|e| e.action == step)
            .unwrap_or_else(|| panic!("{step} not recorded"));
        assert_eq!(event.actor_kind, "user", "{step}");
        assert_eq!(event.actor_id.as_deref(), Some(root.id.as_str()), "{step}");
    }

    // Deleting the app asks first, naming it.
    walk.browser
        .goto(&format!("{}/admin/apps/{client_id}/delete", served.issuer))
        .await
        .unwrap();
    walk.on_page("Delete Billing?").await;
    walk.check_accessibility("delete").await;
    walk.click("button.danger").await;
    walk.on_page("Apps").await;
    assert!(
        apps::Entity::find_by_id(client_id.clone())
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );

    // GraphiQL from the console, with the network blocked, runs a query as the administrator.
    walk.click("nav a[href='/graphql']").await;
    walk.wait_for(".graphiql-query-editor .CodeMirror").await;
    walk.browser
        .execute(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror
               .setValue('{ viewer { username roles } }');",
            vec![],
        )
        .await
        .unwrap();
    walk.click(".graphiql-execute-button").await;
    walk.wait_until(Locator::XPath(
        "//*[contains(@class, 'graphiql-response')]//*[contains(@class, 'CodeMirror-code')]\
         [contains(., 'data') or contains(., 'errors')]",
    ))
    .await;
    let answer = walk
        .browser
        .execute(
            "return document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue();",
            vec![],
        )
        .await
        .unwrap();
    let answer = answer.as_str().unwrap_or_default().to_string();
    assert!(!answer.is_empty(), "GraphiQL showed no answer");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["data"]["viewer"],
        json!({ "username": "root", "roles": ["ADMIN"] }),
        "{answer}"
    );
    walk.check_requests().await;
    assert!(
        walk.requested
            .iter()
            .any(|url| url.contains("/admin/assets/htmx.min.js")),
        "{:?}",
        walk.requested
    );
    walk.browser.close().await.unwrap();
}
