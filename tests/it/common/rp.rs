//! A relying party's side of the tests: a registered app with a signed-in user, consent over
//! REST, and the token endpoint with HTTP Basic client authentication.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use idgraph::domain::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Registered, TestApp, TestResponse};

pub const REDIRECT: &str = "https://rp.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A registered app and a signed-in user who may consent.
#[derive(Clone)]
pub struct Rp {
    pub client_id: String,
    pub secret: String,
    pub user_token: String,
    pub user_id: String,
}

impl Rp {
    /// The app `registered` with this one's user (another app the same user uses).
    pub fn for_app(&self, registered: &Registered) -> Rp {
        Rp {
            client_id: registered.client_id.clone(),
            secret: registered.secret.clone(),
            user_token: self.user_token.clone(),
            user_id: self.user_id.clone(),
        }
    }

    /// The app `registered` with no user: a resource server, or an app acting for itself.
    pub fn app_only(registered: Registered) -> Rp {
        Rp {
            client_id: registered.client_id,
            secret: registered.secret,
            user_token: String::new(),
            user_id: String::new(),
        }
    }
}

/// Creates the oauth admin `admin`, who registers the app "RP" (redirect URI [`REDIRECT`]),
/// and the user `user` (role `oauth`), signed in with scope `all`.
pub async fn setup(app: &TestApp, admin: &str, user: &str) -> Rp {
    let admin = app.oauth_admin(admin).await;
    let created = app
        .register_app(&admin, "RP", "https://rp.example", REDIRECT)
        .await;
    let created_user = app.create_user(user, &[Role::Oauth]).await;
    Rp {
        client_id: created.client_id,
        secret: created.secret,
        user_token: app.token(user, None).await,
        user_id: created_user.id.to_string(),
    }
}

/// Consents over REST and returns the code.
pub async fn consent(app: &TestApp, rp: &Rp, body: Value) -> String {
    let mut body = body;
    body["client_id"] = json!(rp.client_id);
    let response = app
        .rest(
            Method::POST,
            "/api/oauth/auth/code",
            Some(&rp.user_token),
            Some(body),
        )
        .await;
    response.assert_status(StatusCode::OK);
    response.json()["code"].as_str().unwrap().to_string()
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// POSTs a form to the token endpoint with HTTP Basic client authentication.
pub async fn token(app: &TestApp, rp: &Rp, form: &[(&str, &str)]) -> TestResponse {
    token_with(app, Some(basic(&rp.client_id, &rp.secret)), form).await
}

/// `grant_type=refresh_token` with `refresh_token`, the client authenticating with Basic.
pub async fn refresh_grant(app: &TestApp, rp: &Rp, refresh_token: &str) -> TestResponse {
    token(
        app,
        rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

pub async fn token_with(
    app: &TestApp,
    authorization: Option<String>,
    form: &[(&str, &str)],
) -> TestResponse {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut headers = Vec::new();
    if let Some(value) = &authorization {
        headers.push(("authorization", value.as_str()));
    }
    app.send_bytes(
        Method::POST,
        "/api/oauth/token",
        None,
        "application/x-www-form-urlencoded",
        &headers,
        body.into_bytes(),
    )
    .await
}

/// Consents over REST with `body` and redeems the code at once: the token response body.
pub async fn consented_tokens(app: &TestApp, rp: &Rp, body: Value) -> Value {
    let code = consent(app, rp, body).await;
    redeem_for(app, rp, &code).await
}

/// Redeems a code without PKCE and returns the token response body.
pub async fn redeem_for(app: &TestApp, rp: &Rp, code: &str) -> Value {
    let response = token(
        app,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    response.assert_status(StatusCode::OK);
    response.json()
}
