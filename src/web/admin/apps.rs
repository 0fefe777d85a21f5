//! The console's app pages: the list (search, paging), registration (the secret shown once),
//! editing every client-model field, the logo, the secrets (rotate with a grace period,
//! revoke) and deletion. Every read and change is an operation of `frontend-queries/apps.graphql`.

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::gql::{Doc, Problem};
use super::{
    Chrome, Console, Errors, Fields, Listing, Posted, SearchQuery, encode, problem_page, render,
    see_other, when,
};
use crate::service::AppState;
use crate::web::MAX_FORM_BYTES;

/// The app pages; `upload_limit` applies to the logo upload, the console's limit to the rest.
pub fn routes(upload_limit: DefaultBodyLimit) -> Router<AppState> {
    Router::new()
        .route(
            "/admin/apps/{client_id}/logo",
            post(upload_logo).layer(upload_limit),
        )
        .merge(forms().layer(DefaultBodyLimit::max(MAX_FORM_BYTES)))
}

fn forms() -> Router<AppState> {
    Router::new()
        .route("/admin/apps", get(list).post(create))
        .route("/admin/apps/new", get(new))
        .route("/admin/apps/{client_id}", get(show).post(update))
        .route("/admin/apps/{client_id}/secrets", post(rotate_secret))
        .route(
            "/admin/apps/{client_id}/secrets/{secret_id}/revoke",
            get(confirm_revoke_secret).post(revoke_secret),
        )
        .route(
            "/admin/apps/{client_id}/delete",
            get(confirm_delete).post(delete),
        )
}

/// How many apps a page lists.
const PAGE: i64 = 25;

/// The fields of `AppFields`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct App {
    client_id: String,
    name: String,
    url: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    token_endpoint_auth_method: String,
    grant_types: Vec<String>,
    scope: String,
    id_token_signed_response_alg: String,
    resources: Vec<String>,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
    logo: String,
    created_at: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Creator {
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedApp {
    #[serde(flatten)]
    app: App,
    creator: Option<Creator>,
}

/// A row of the list.
struct Row {
    client_id: String,
    name: String,
    kind: &'static str,
    creator: String,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct ListPage {
    chrome: Chrome,
    search: String,
    rows: Vec<Row>,
    /// The next page's link; empty on the last page.
    next: String,
}

fn kind(method: &str) -> &'static str {
    match method {
        "NONE" => "public",
        "CLIENT_SECRET_POST" => "confidential (post)",
        _ => "confidential (basic)",
    }
}

/// `GET /admin/apps`.
async fn list(console: Console, Query(query): Query<SearchQuery>) -> Response {
    let chrome = console.chrome("apps");
    let search = query.search();
    let answer = console
        .gql
        .run(Doc::Apps, "AppsPage", query.variables(PAGE))
        .await;
    let page: Listing<ListedApp> = match answer.take("apps") {
        Ok(page) => page,
        Err(problems) => return problem_page(&chrome, "Apps", &problems),
    };
    let next = page.next_link("/admin/apps", &[("search", &search)]);
    let rows = page
        .nodes()
        .map(|node| Row {
            kind: kind(&node.app.token_endpoint_auth_method),
            client_id: node.app.client_id,
            name: node.app.name,
            creator: node.creator.map(|c| c.username).unwrap_or_default(),
            created: when(&node.app.created_at),
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            chrome,
            search,
            rows,
            next,
        },
    )
}

/// The edit form's values, as shown.
struct AppForm {
    name: String,
    url: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    token_endpoint_auth_method: String,
    grant_types: Vec<String>,
    scope: String,
    id_token_signed_response_alg: String,
    resources: String,
    backchannel_logout_uri: String,
    backchannel_logout_session_required: bool,
}

/// The form's field names, for placing errors.
const FORM_FIELDS: [&str; 11] = [
    "name",
    "url",
    "redirect_uris",
    "post_logout_redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "scope",
    "id_token_signed_response_alg",
    "resources",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
];

impl AppForm {
    fn blank() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            token_endpoint_auth_method: "CLIENT_SECRET_BASIC".into(),
            grant_types: vec!["AUTHORIZATION_CODE".into(), "REFRESH_TOKEN".into()],
            scope: String::new(),
            id_token_signed_response_alg: "RS256".into(),
            resources: String::new(),
            backchannel_logout_uri: String::new(),
            backchannel_logout_session_required: false,
        }
    }

    fn of(app: &App) -> Self {
        Self {
            name: app.name.clone(),
            url: app.url.clone(),
            redirect_uris: app.redirect_uris.join("\n"),
            post_logout_redirect_uris: app.post_logout_redirect_uris.join("\n"),
            token_endpoint_auth_method: app.token_endpoint_auth_method.clone(),
            grant_types: app.grant_types.clone(),
            scope: app.scope.clone(),
            id_token_signed_response_alg: app.id_token_signed_response_alg.clone(),
            resources: app.resources.join("\n"),
            backchannel_logout_uri: app.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: app.backchannel_logout_session_required,
        }
    }

    fn posted(fields: &Fields) -> Self {
        Self {
            name: fields.get("name").to_string(),
            url: fields.get("url").trim().to_string(),
            redirect_uris: fields.get("redirect_uris").to_string(),
            post_logout_redirect_uris: fields.get("post_logout_redirect_uris").to_string(),
            token_endpoint_auth_method: fields.get("token_endpoint_auth_method").to_string(),
            grant_types: fields.all("grant_types"),
            scope: fields.get("scope").trim().to_string(),
            id_token_signed_response_alg: fields.get("id_token_signed_response_alg").to_string(),
            resources: fields.get("resources").to_string(),
            backchannel_logout_uri: fields.get("backchannel_logout_uri").trim().to_string(),
            backchannel_logout_session_required: fields.get("backchannel_logout_session_required")
                == "on",
        }
    }

    /// The `AppInput` this form stands for. An empty method or algorithm is left out (the
    /// default on registration, unchanged on update); an empty scope is the empty ceiling
    /// (every OpenID scope, no API scope).
    fn input(&self) -> Value {
        let given = |text: &String| (!text.is_empty()).then(|| text.clone());
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_string)
                .collect()
        };
        json!({
            "name": self.name,
            "url": self.url,
            "redirectUris": lines(&self.redirect_uris),
            "postLogoutRedirectUris": lines(&self.post_logout_redirect_uris),
            "tokenEndpointAuthMethod": given(&self.token_endpoint_auth_method),
            "grantTypes": self.grant_types,
            "scope": self.scope,
            "idTokenSignedResponseAlg": given(&self.id_token_signed_response_alg),
            "resources": lines(&self.resources),
            "backchannelLogoutUri": self.backchannel_logout_uri,
            "backchannelLogoutSessionRequired": self.backchannel_logout_session_required,
        })
    }

    fn grants(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// Problems of an app form: the service names the first redirect URI `redirect_uri`, which
/// the form edits as part of `redirect_uris`.
fn app_errors(problems: Vec<Problem>) -> Errors {
    Errors(
        problems
            .into_iter()
            .map(|mut problem| {
                if problem.field == "redirect_uri" {
                    problem.field = "redirect_uris".into();
                }
                problem
            })
            .collect(),
    )
}

/// A secret row.
struct SecretRow {
    id: String,
    created: String,
    expires: String,
    last_used: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Secret {
    id: String,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
}

/// An app with its secrets (`AppDetail`).
#[derive(Deserialize)]
struct AppDetail {
    #[serde(flatten)]
    app: App,
    secrets: Vec<Secret>,
}

#[derive(Template)]
#[template(path = "admin/app.html")]
struct AppPage {
    chrome: Chrome,
    /// Empty when registering.
    client_id: String,
    /// The app's name as stored (the form may hold an edited one).
    title: String,
    form: AppForm,
    errors: Errors,
    general: Vec<String>,
    /// A `data:` preview of the logo; empty when there is none.
    logo: String,
    logo_error: String,
    secrets: Vec<SecretRow>,
    secret_error: String,
    public: bool,
    /// A notice after a change.
    saved: String,
}

impl AppPage {
    fn new(chrome: Chrome, form: AppForm, errors: Errors) -> Self {
        let general = errors.general(&FORM_FIELDS);
        Self {
            chrome,
            client_id: String::new(),
            title: String::new(),
            form,
            errors,
            general,
            logo: String::new(),
            logo_error: String::new(),
            secrets: Vec::new(),
            secret_error: String::new(),
            public: false,
            saved: String::new(),
        }
    }
}

/// `GET /admin/apps/new`.
async fn new(console: Console) -> Response {
    let page = AppPage::new(console.chrome("apps"), AppForm::blank(), Errors::none());
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithSecret {
    client_secret: Option<String>,
    app: SecretOf,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretOf {
    client_id: String,
    #[serde(default)]
    name: String,
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretPage {
    chrome: Chrome,
    heading: &'static str,
    client_id: String,
    name: String,
    /// `None` for a public client.
    secret: Option<String>,
}

/// `POST /admin/apps`: registers an app and shows its secret once.
async fn create(Posted { console, fields }: Posted) -> Response {
    let posted = AppForm::posted(&fields);
    let answer = console
        .gql
        .run(Doc::Apps, "CreateApp", json!({ "input": posted.input() }))
        .await;
    match answer.take::<WithSecret>("createApp") {
        Ok(created) => render(
            StatusCode::CREATED,
            &SecretPage {
                chrome: console.chrome("apps"),
                heading: "App registered",
                client_id: created.app.client_id,
                name: created.app.name,
                secret: created.client_secret,
            },
        ),
        Err(problems) => {
            let errors = app_errors(problems);
            let status = errors.status();
            render(
                status,
                &AppPage::new(console.chrome("apps"), posted, errors),
            )
        }
    }
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    #[serde(default)]
    saved: String,
}

/// Reads the app and its secrets into a page around `form` (the stored values when `None`).
async fn app_page(
    console: &Console,
    client_id: &str,
    form: Option<AppForm>,
    errors: Errors,
) -> Result<AppPage, Response> {
    let chrome = console.chrome("apps");
    let vars = json!({ "clientId": client_id });
    let answer = console.gql.run(Doc::Apps, "AppDetail", vars).await;
    let AppDetail { app, secrets } = match answer.take::<Option<AppDetail>>("app") {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            let missing = [Problem::general(
                "NOT_FOUND",
                format!("There is no app {client_id}."),
            )];
            return Err(problem_page(&chrome, "No such app", &missing));
        }
        Err(problems) => return Err(problem_page(&chrome, "App", &problems)),
    };
    let public = app.token_endpoint_auth_method == "NONE";
    let mut page = AppPage::new(chrome, form.unwrap_or_else(|| AppForm::of(&app)), errors);
    page.client_id = app.client_id;
    page.title = app.name;
    page.logo = app.logo;
    page.public = public;
    page.secrets = secrets
        .into_iter()
        .map(|secret| SecretRow {
            id: secret.id,
            created: when(&secret.created_at),
            expires: secret
                .expires_at
                .map_or_else(|| "while newest".into(), |at| when(&at)),
            last_used: secret
                .last_used_at
                .map_or_else(|| "never".into(), |at| when(&at)),
        })
        .collect();
    Ok(page)
}

/// `GET /admin/apps/{client_id}`.
async fn show(
    console: Console,
    Path(client_id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    match app_page(&console, &client_id, None, Errors::none()).await {
        Ok(mut page) => {
            page.saved = match query.saved.as_str() {
                "app" => "Saved.",
                "logo" => "Logo uploaded.",
                "revoked" => "Secret revoked.",
                _ => "",
            }
            .into();
            render(StatusCode::OK, &page)
        }
        Err(response) => response,
    }
}

/// `POST /admin/apps/{client_id}`: saves the form.
async fn update(Path(client_id): Path<String>, Posted { console, fields }: Posted) -> Response {
    let posted = AppForm::posted(&fields);
    let vars = json!({ "clientId": client_id, "input": posted.input() });
    let answer = console.gql.run(Doc::Apps, "UpdateApp", vars).await;
    match answer.take::<Value>("updateApp") {
        Ok(_) => see_other(&format!("/admin/apps/{}?saved=app", encode(&client_id))),
        Err(problems) => {
            let errors = app_errors(problems);
            let status = errors.status();
            match app_page(&console, &client_id, Some(posted), errors).await {
                Ok(page) => render(status, &page),
                Err(response) => response,
            }
        }
    }
}

/// `POST /admin/apps/{client_id}/logo` (multipart: `token`, `image`).
async fn upload_logo(
    console: Console,
    Path(client_id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    // The token field comes first in the form; a body that cannot be read is answered only
    // after the token it carried (if any) passed, so a forged post learns nothing.
    let mut token = String::new();
    let mut image = None;
    let mut unread = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let filename = field.file_name().unwrap_or("logo").to_string();
                let content_type = field.content_type().map(str::to_string);
                match field.bytes().await {
                    Ok(bytes) if name == "token" => {
                        token = String::from_utf8_lossy(&bytes).into_owned();
                    }
                    Ok(bytes) if name == "image" => image = Some((filename, content_type, bytes)),
                    Ok(_) => {}
                    Err(err) => {
                        unread = Some(unreadable(&err));
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(err) => {
                unread = Some(unreadable(&err));
                break;
            }
        }
    }
    if let Some(refused) = console.refuse_forged(&token) {
        return refused;
    }
    if let Some(problems) = unread {
        return app_problem(&console, &client_id, Place::Logo, problems).await;
    }
    let Some((filename, content_type, content)) = image.filter(|(_, _, bytes)| !bytes.is_empty())
    else {
        let missing = Problem::general("INVALID_INPUT", "Choose an image file first.".into());
        return app_problem(&console, &client_id, Place::Logo, vec![missing]).await;
    };
    let upload = async_graphql::UploadValue {
        filename,
        content_type,
        content,
    };
    let answer = console
        .gql
        .run_with_upload(
            Doc::Apps,
            "UploadAppLogo",
            json!({ "clientId": client_id, "image": null }),
            "image",
            upload,
        )
        .await;
    match answer.take::<Value>("uploadAppLogo") {
        Ok(_) => see_other(&format!("/admin/apps/{}?saved=logo", encode(&client_id))),
        Err(problems) => app_problem(&console, &client_id, Place::Logo, problems).await,
    }
}

/// A multipart body that could not be read, as a problem.
fn unreadable(err: &axum::extract::multipart::MultipartError) -> Vec<Problem> {
    let code = if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "PAYLOAD_TOO_LARGE"
    } else {
        "INVALID_INPUT"
    };
    vec![Problem::general(code, err.body_text())]
}

/// The messages of `problems` and the status the first one calls for.
fn summary(problems: &[Problem]) -> (StatusCode, String) {
    let status = problems
        .first()
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, Problem::status);
    let text: Vec<&str> = problems.iter().map(|p| p.full.as_str()).collect();
    (status, text.join(" "))
}

/// Where on an app's page a problem is shown.
#[derive(Clone, Copy)]
enum Place {
    Logo,
    Secrets,
}

/// The app's page with `problems` shown at `place`, with the status the first one calls for.
async fn app_problem(
    console: &Console,
    client_id: &str,
    place: Place,
    problems: Vec<Problem>,
) -> Response {
    match app_page(console, client_id, None, Errors::none()).await {
        Ok(mut page) => {
            let (status, text) = summary(&problems);
            match place {
                Place::Logo => page.logo_error = text,
                Place::Secrets => page.secret_error = text,
            }
            render(status, &page)
        }
        Err(response) => response,
    }
}

/// `POST /admin/apps/{client_id}/secrets`: a new secret, shown once; the previous ones keep
/// working for the grace period chosen.
async fn rotate_secret(
    Path(client_id): Path<String>,
    Posted { console, fields }: Posted,
) -> Response {
    let grace = match fields.get("grace_seconds").parse::<i64>() {
        Ok(grace) => grace,
        Err(_) => {
            let missing = Problem::general("INVALID_INPUT", "Choose a grace period.".into());
            return app_problem(&console, &client_id, Place::Secrets, vec![missing]).await;
        }
    };
    let vars = json!({ "clientId": client_id, "graceSeconds": grace });
    let answer = console.gql.run(Doc::Apps, "RotateAppSecret", vars).await;
    match answer.take::<WithSecret>("rotateAppSecret") {
        Ok(rotated) => render(
            StatusCode::OK,
            &SecretPage {
                chrome: console.chrome("apps"),
                heading: "New secret",
                client_id: rotated.app.client_id,
                name: String::new(),
                secret: rotated.client_secret,
            },
        ),
        Err(problems) => app_problem(&console, &client_id, Place::Secrets, problems).await,
    }
}

/// `GET /admin/apps/{client_id}/secrets/{secret_id}/revoke`: "Revoke the secret made …?"
async fn confirm_revoke_secret(
    console: Console,
    Path((client_id, secret_id)): Path<(String, String)>,
) -> Response {
    let page = match app_page(&console, &client_id, None, Errors::none()).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    let Some(secret) = page.secrets.iter().find(|secret| secret.id == secret_id) else {
        let missing = [Problem::general(
            "NOT_FOUND",
            format!("The app {} has no such secret.", page.title),
        )];
        return problem_page(&page.chrome, "No such secret", &missing);
    };
    let path = encode(&page.client_id);
    render(
        StatusCode::OK,
        &ConfirmPage {
            title: format!("Revoke a secret of {}?", page.title),
            text: format!(
                "The secret made {} (last used: {}) stops working at once: whatever still \
                 authenticates with it can no longer get tokens. This cannot be undone.",
                secret.created, secret.last_used
            ),
            action: format!("/admin/apps/{path}/secrets/{}/revoke", encode(&secret.id)),
            button: "Revoke the secret".into(),
            back: format!("/admin/apps/{path}"),
            chrome: page.chrome,
        },
    )
}

/// `POST /admin/apps/{client_id}/secrets/{secret_id}/revoke`.
async fn revoke_secret(
    Path((client_id, secret_id)): Path<(String, String)>,
    Posted { console, .. }: Posted,
) -> Response {
    let vars = json!({ "clientId": client_id, "secretId": secret_id });
    let answer = console.gql.run(Doc::Apps, "RevokeAppSecret", vars).await;
    match answer.take::<Value>("revokeAppSecret") {
        Ok(_) => see_other(&format!("/admin/apps/{}?saved=revoked", encode(&client_id))),
        Err(problems) => app_problem(&console, &client_id, Place::Secrets, problems).await,
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
pub(super) struct ConfirmPage {
    pub chrome: Chrome,
    pub title: String,
    /// What will happen, in a sentence.
    pub text: String,
    pub action: String,
    pub button: String,
    pub back: String,
}

/// `GET /admin/apps/{client_id}/delete`: "Delete NAME?"
async fn confirm_delete(console: Console, Path(client_id): Path<String>) -> Response {
    let chrome = console.chrome("apps");
    let answer = console
        .gql
        .run(Doc::Apps, "App", json!({ "clientId": client_id }))
        .await;
    let app = match answer.take::<Option<App>>("app") {
        Ok(Some(app)) => app,
        Ok(None) => {
            let missing = [Problem::general(
                "NOT_FOUND",
                format!("There is no app {client_id}."),
            )];
            return problem_page(&chrome, "No such app", &missing);
        }
        Err(problems) => return problem_page(&chrome, "App", &problems),
    };
    let path = encode(&app.client_id);
    render(
        StatusCode::OK,
        &ConfirmPage {
            chrome,
            title: format!("Delete {}?", app.name),
            text: format!(
                "The app {} ({}) will be deleted with its secrets, logo and every connection \
                 to it; its tokens stop working at once. This cannot be undone.",
                app.name, app.client_id
            ),
            action: format!("/admin/apps/{path}/delete"),
            button: format!("Delete {}", app.name),
            back: format!("/admin/apps/{path}"),
        },
    )
}

/// `POST /admin/apps/{client_id}/delete`.
async fn delete(Path(client_id): Path<String>, Posted { console, .. }: Posted) -> Response {
    let answer = console
        .gql
        .run(Doc::Apps, "DeleteApp", json!({ "clientId": client_id }))
        .await;
    match answer.take::<Value>("deleteApp") {
        Ok(_) => see_other("/admin/apps"),
        Err(problems) => problem_page(&console.chrome("apps"), "Delete app", &problems),
    }
}
