//! Headless Chromium for the browser tests: Debian's `chromium`, driven over WebDriver
//! (`chromedriver`) by fantoccini, and where the screenshots go.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

use super::process::Lines;

/// A chromedriver process, killed when dropped.
pub struct ChromeDriver {
    child: Child,
    port: u16,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free port and waits, without polling, for the line it prints once
/// it listens ("ChromeDriver was started successfully"); the rest of its output is drained by
/// the same thread, so that a full pipe never stalls it.
pub async fn start_chromedriver() -> ChromeDriver {
    let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let port = free_port();
    let mut child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {program} ({e}): install Chromium and its driver \
                 (apt-get install chromium chromium-driver) or set CHROMEDRIVER"
            )
        });
    let mut output = Lines::read(child.stdout.take().expect("piped stdout"));
    let driver = ChromeDriver { child, port };
    // Off the async workers: the wait blocks.
    let waited = tokio::task::spawn_blocking(move || {
        output.wait_for("started successfully", Duration::from_secs(20));
    });
    if let Err(failed) = waited.await {
        std::panic::resume_unwind(failed.into_panic());
    }
    driver
}

/// A headless Chromium with `extra` arguments; with `network_log`, it keeps the performance
/// log (every request it sends, see `console_browser.rs`).
pub async fn open_browser_with(driver: &ChromeDriver, extra: &[&str], network_log: bool) -> Client {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=520,900",
        "--lang=en-US",
    ];
    args.extend_from_slice(extra);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary,
            "args": args,
        }),
    );
    if network_log {
        capabilities.insert("goog:loggingPrefs".into(), json!({ "performance": "ALL" }));
    }
    // chromedriver listens on loopback over plain HTTP: no TLS stack is needed to reach it.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium")
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn save_screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}
