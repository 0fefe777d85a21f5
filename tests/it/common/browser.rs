//! A client that keeps idgraph's cookie like a browser and reads the forms' hidden fields the
//! way a browser would, driven through the real router.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use super::rp::{REDIRECT, Rp, VERIFIER, s256};
use super::{TestApp, TestResponse};

/// A client that keeps idgraph's cookie like a browser.
pub struct Browser<'a> {
    app: &'a TestApp,
    /// The cookie's name under the app's settings (`__Host-` prefixed on an https issuer).
    name: &'static str,
    pub cookie: Option<String>,
    /// The address its requests come from (none: the router sees no peer address).
    addr: Option<std::net::IpAddr>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            name: idgraph::service::browser::cookie_name(&app.state.config),
            cookie: None,
            addr: None,
        }
    }

    /// A browser whose requests come from `addr`.
    pub fn at(app: &'a TestApp, addr: std::net::IpAddr) -> Self {
        Self {
            addr: Some(addr),
            ..Self::new(app)
        }
    }

    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> TestResponse {
        let request = match &self.cookie {
            Some(value) => request.header(header::COOKIE, format!("{}={value}", self.name)),
            None => request,
        };
        let request = request.body(body).unwrap();
        let response = match self.addr {
            Some(addr) => self.app.send_from(addr, request).await,
            None => self.app.send(request).await,
        };
        for set in response.headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            // The cookie lives at `/`; the expiry of one an earlier release set at `/oauth`, or
            // under another name, does not touch it.
            let value = set
                .strip_prefix(self.name)
                .and_then(|rest| rest.strip_prefix('='))
                .and_then(|rest| rest.split(';').next());
            let (Some(value), true) = (value, set.contains("; Path=/;")) else {
                continue;
            };
            self.cookie = (!set.contains("Max-Age=0")).then(|| value.to_string());
        }
        response
    }

    /// Sends `request` with the cookie, as a browser would.
    pub async fn send_request(
        &mut self,
        request: axum::http::request::Builder,
        body: Body,
    ) -> TestResponse {
        self.send(request, body).await
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        let request = Request::builder().method(Method::GET).uri(path);
        self.send(request, Body::empty()).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> TestResponse {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(body)).await
    }

    /// Fills in and sends the sign-in form of `page`.
    pub async fn sign_in(
        &mut self,
        page: &TestResponse,
        username: &str,
        password: &str,
    ) -> TestResponse {
        let html = text(page);
        self.post(
            "/oauth/authorize",
            &[
                ("action", "signin"),
                ("csrf", &hidden(&html, "csrf")),
                ("request", &hidden(&html, "request")),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Signs in on the admin console's own sign-in page; answers where it led.
    pub async fn console_sign_in(&mut self, username: &str, password: &str) -> TestResponse {
        let page = self.get("/admin/signin").await;
        page.assert_status(StatusCode::OK);
        let token = hidden(&text(&page), "token");
        self.post(
            "/admin/signin",
            &[
                ("token", &token),
                ("next", "/admin"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Presses `action` (`approve` or `deny`) on the consent page `page`.
    pub async fn press(&mut self, page: &TestResponse, action: &str) -> TestResponse {
        let html = text(page);
        self.post(
            "/oauth/authorize",
            &[
                ("action", action),
                ("csrf", &hidden(&html, "csrf")),
                ("request", &hidden(&html, "request")),
            ],
        )
        .await
    }
}

pub fn text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

pub fn unescape(text: &str) -> String {
    [
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&#x27;", "'"),
        ("&#60;", "<"),
        ("&lt;", "<"),
        ("&#62;", ">"),
        ("&gt;", ">"),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
}

/// The value of the hidden input `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

/// The query of a redirect's `Location`, which must lead to the client.
pub fn redirect_query(response: &TestResponse) -> HashMap<String, String> {
    response.assert_status(StatusCode::SEE_OTHER);
    let location = response.header("location").unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// `/oauth/authorize` for `rp` with the usual parameters; `changes` replace or add some, and an
/// empty value removes one.
pub fn authorize_path(rp: &Rp, changes: &[(&str, &str)]) -> String {
    let challenge = s256(VERIFIER);
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", rp.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", "st-42 &?"),
        ("nonce", "n-0S6"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        if !value.is_empty() {
            params.push((name.to_string(), value.to_string()));
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    format!("/oauth/authorize?{query}")
}
