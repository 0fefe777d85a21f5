//! The in-process test harness: a fresh database per test (SQLite in a temporary directory, or
//! a fresh PostgreSQL database when `TEST_DATABASE_URL` is set), the real router, and helpers
//! that send requests through it with `oneshot`.

pub mod api;
pub mod browser;
pub mod chromium;
pub mod memory;
pub mod oidc_rp;
pub mod panics;
pub mod process;
pub mod rp;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use idgraph::auth::Principal;
use idgraph::config::RawConfig;
use idgraph::domain::Role;
use idgraph::domain::users::NewUser;
use idgraph::service::AppState;
use idgraph::service::users;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Runs each named `async fn name(app: TestApp)` once on SQLite and once on PostgreSQL. The
/// PostgreSQL runs need `TEST_DATABASE_URL`; without it (and outside CI) they are reported as
/// ignored, never passed.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestApp::sqlite().await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(any(idgraph_postgres, idgraph_ci)),
                    ignore = "TEST_DATABASE_URL is unset: the PostgreSQL run is skipped (under CI it runs)"
                )]
                async fn $name() {
                    let app = $crate::common::TestApp::postgres()
                        .await
                        .expect("TEST_DATABASE_URL must be set to run the PostgreSQL tests");
                    super::$name(app).await;
                }
            )+
        }
    };
}

/// Which store a test runs on.
enum Store {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        database: String,
    },
    /// Another node's database (see [`TestApp::another_node`]).
    Shared,
}

/// One isolated application with its own database.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// SQL statements executed on the app's pool so far.
    pub statements: Arc<AtomicUsize>,
    store: Store,
}

/// An app registered by [`TestApp::register_app`].
pub struct Registered {
    pub client_id: String,
    pub secret: String,
}

/// A SQLite-backed app served over real TCP on a loopback port, for clients that speak HTTP
/// themselves (the `openidconnect` crate, a browser). Its issuer is its own URL; the server
/// stops when this is dropped.
pub struct Served {
    pub app: TestApp,
    pub issuer: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Starts one; `adjust` may change the configuration first (the issuer is set after it).
    pub async fn start(adjust: impl FnOnce(&mut RawConfig)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let issuer = format!("http://{}", listener.local_addr().expect("its address"));
        let app = TestApp::sqlite_with(|c| {
            adjust(c);
            c.issuer = Some(issuer.clone());
        })
        .await;
        let server = tokio::spawn(axum::serve(listener, app.router.clone()).into_future());
        Self {
            app,
            issuer,
            server,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Sends a request through `router` and reads the answer to the end.
pub async fn send_on(router: Router, request: Request<Body>) -> TestResponse {
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    TestResponse {
        status,
        headers,
        body,
    }
}

/// A JSON request with an optional bearer token (for [`TestApp::send_all`]).
pub fn json_request(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    request.body(body).expect("request")
}

/// A response read to the end.
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status, showing the body when it differs.
    pub fn assert_status(&self, expected: StatusCode) {
        assert_eq!(
            self.status,
            expected,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The configuration every test starts from.
pub fn test_config(database_url: &str) -> RawConfig {
    RawConfig {
        database_url: database_url.to_string(),
        db_max_connections: 4,
        issuer: Some("http://idgraph.test".into()),
        password_hash_concurrency: 2,
        ..RawConfig::default()
    }
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(|_| {}).await
    }

    /// A SQLite-backed app whose configuration `adjust` may change first.
    pub async fn sqlite_with(adjust: impl FnOnce(&mut RawConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}/idgraph.db?mode=rwc", dir.path().display());
        Self::start(&url, Store::Sqlite(dir), adjust).await
    }

    /// A SQLite-backed app on `dir/idgraph.db`, which outlives it (another process, such as
    /// the `idgraph` binary, may open the file afterwards).
    pub async fn sqlite_in(dir: &std::path::Path) -> Self {
        let url = format!("sqlite://{}/idgraph.db?mode=rwc", dir.display());
        Self::start(&url, Store::Shared, |_| {}).await
    }

    pub async fn postgres() -> Option<Self> {
        Self::postgres_with(|_| {}).await
    }

    /// A PostgreSQL-backed app in a database of its own, or `None` when no server is
    /// configured (outside CI).
    pub async fn postgres_with(adjust: impl FnOnce(&mut RawConfig)) -> Option<Self> {
        let (admin_url, database, url) = create_postgres_database().await?;
        Some(
            Self::start(
                &url,
                Store::Postgres {
                    admin_url,
                    database,
                },
                adjust,
            )
            .await,
        )
    }

    async fn start(url: &str, store: Store, adjust: impl FnOnce(&mut RawConfig)) -> Self {
        let mut raw = test_config(url);
        adjust(&mut raw);
        let config = raw.validate().expect("valid test configuration");
        Self::node(config, store, true).await
    }

    /// A node on `config`'s database, migrating it first when `migrate`, on a manual clock.
    async fn node(config: idgraph::config::Config, store: Store, migrate: bool) -> Self {
        // Time stands still in tests until a test moves it (`TestApp::advance`).
        Self::node_at(config, store, migrate, idgraph::clock::Clock::manual()).await
    }

    async fn node_at(
        config: idgraph::config::Config,
        store: Store,
        migrate: bool,
        clock: idgraph::clock::Clock,
    ) -> Self {
        let mut db = idgraph::db::connect(&config.database_url, config.db_max_connections)
            .await
            .expect("connect");
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        if migrate {
            Migrator::up(&db, None).await.expect("migrate");
        }
        let state = AppState::with_clock(db, config, clock)
            .await
            .expect("state");
        let router = idgraph::app(state.clone());
        Self {
            state,
            router,
            statements,
            store,
        }
    }

    /// A second node over this app's database: its own pool, caches, change listener and
    /// clock (reading this node's time when it starts), as another process would have. The
    /// database stays this app's to drop.
    pub async fn another_node(&self) -> Self {
        let clock = idgraph::clock::Clock::manual_at(self.state.clock.now_millis());
        Self::node_at((*self.state.config).clone(), Store::Shared, false, clock).await
    }

    /// Moves the application's clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.state.clock.advance(by);
    }

    /// The application's current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.state.clock.now()
    }

    /// Statements executed while `work` runs.
    pub async fn count_statements<F: std::future::Future>(&self, work: F) -> (F::Output, usize) {
        // On the pool (SeaORM's metric callback) and on SQLite's writer thread.
        let ran = || self.statements.load(Ordering::SeqCst) + self.state.writer.statements();
        let before = ran();
        let output = work.await;
        (output, ran() - before)
    }

    /// Sends a request through the real router.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send_on(self.router.clone(), request).await
    }

    /// Sends every request at once, each on a task of its own (so they truly run in
    /// parallel), and returns the answers in order.
    pub async fn send_all(&self, requests: Vec<Request<Body>>) -> Vec<TestResponse> {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| tokio::spawn(send_on(self.router.clone(), request)))
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("request task"));
        }
        answers
    }

    /// Sends a request as if it came from `addr` over TCP (the client address the sign-in
    /// back-off counts).
    pub async fn send_from(
        &self,
        addr: std::net::IpAddr,
        mut request: Request<Body>,
    ) -> TestResponse {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
                addr, 40000,
            )));
        self.send(request).await
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        let mut request = Request::builder().method(Method::GET).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn rest(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        self.send(json_request(method, path, token, body)).await
    }

    /// Sends raw bytes with a content type and extra headers.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
        bytes: Vec<u8>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(bytes)).expect("request"))
            .await
    }

    /// Registers an app over REST as the oauth admin holding `admin`.
    pub async fn register_app(
        &self,
        admin: &str,
        name: &str,
        url: &str,
        redirect_uri: &str,
    ) -> Registered {
        let body = json!({ "name": name, "url": url, "redirect_uri": redirect_uri });
        self.register_app_with(admin, body).await
    }

    /// Registers an app over REST with the whole body given (client metadata included). A
    /// public client's `secret` is empty: it has none.
    pub async fn register_app_with(&self, admin: &str, body: Value) -> Registered {
        let public = body["token_endpoint_auth_method"] == "none";
        let response = self
            .rest(Method::POST, "/api/oauth/app", Some(admin), Some(body))
            .await;
        response.assert_status(StatusCode::CREATED);
        let created = response.json();
        assert_eq!(created.get("key").is_none(), public, "{created}");
        Registered {
            client_id: created["client_id"].as_str().expect("client_id").into(),
            secret: created["key"].as_str().unwrap_or_default().into(),
        }
    }

    /// Whether the token endpoint accepts `secret` for `client_id`: a refresh with a junk token
    /// is `invalid_grant` (400) once the client is authenticated, `invalid_client` (401) before.
    pub async fn secret_works(&self, client_id: &str, secret: &str) -> bool {
        use base64::Engine;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
        let response = self
            .send_bytes(
                Method::POST,
                "/api/oauth/token",
                None,
                "application/x-www-form-urlencoded",
                &[("authorization", &format!("Basic {basic}"))],
                b"grant_type=refresh_token&refresh_token=junk.junk".to_vec(),
            )
            .await;
        match response.status {
            StatusCode::BAD_REQUEST => true,
            StatusCode::UNAUTHORIZED => false,
            other => panic!(
                "unexpected {other}: {}",
                String::from_utf8_lossy(&response.body)
            ),
        }
    }

    /// The newest audit event of `action`, which must exist.
    pub async fn audit_event(&self, action: &str) -> idgraph::db::entities::audit_events::Model {
        use idgraph::db::entities::audit_events::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        Entity::find()
            .filter(Column::Action.eq(action))
            .order_by_desc(Column::At)
            .one(&self.state.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no {action} event in the audit trail"))
    }

    /// Creates the oauth admin `username` (role `oauth`) and returns their token (scope `all`).
    pub async fn oauth_admin(&self, username: &str) -> String {
        self.create_user(username, &[Role::Oauth]).await;
        self.token(username, None).await
    }

    /// POSTs a GraphQL operation as JSON.
    pub async fn graphql_response(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/graphql")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.send(request.body(Body::from(body)).expect("request"))
            .await
    }

    /// POSTs a GraphQL operation and returns the JSON response (`data` and `errors`).
    pub async fn graphql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let response = self.graphql_response(query, variables, token).await;
        response.assert_status(StatusCode::OK);
        response.json()
    }

    /// Creates a user with [`PASSWORD`] and the given roles.
    pub async fn create_user(
        &self,
        username: &str,
        roles: &[Role],
    ) -> idgraph::domain::users::User {
        users::create_user(
            &self.state,
            &Principal::System,
            NewUser {
                username: username.into(),
                email: format!("{username}@example.com"),
                name: format!("User {username}"),
                password: Some(PASSWORD.into()),
                roles: roles.to_vec(),
            },
        )
        .await
        .expect("create user")
    }

    /// Signs in over GraphQL and returns the `login` payload.
    pub async fn login(&self, username: &str, scope: Option<&str>) -> Value {
        let body = self
            .graphql(
                "mutation Login($input: LoginInput!) { login(input: $input) { accessToken tokenType expiresIn refreshToken scope } }",
                json!({ "input": { "username": username, "password": PASSWORD, "scope": scope } }),
                None,
            )
            .await;
        assert!(body["errors"].is_null(), "login failed: {body}");
        body["data"]["login"].clone()
    }

    /// The stored row of user `username`, to compare before and after a refused change.
    pub async fn user_row(&self, username: &str) -> idgraph::db::entities::users::Model {
        use idgraph::db::entities::users::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        Entity::find()
            .filter(Column::Username.eq(username))
            .one(&self.state.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {username}"))
    }

    /// Signs in over GraphQL with `password`: the error code, or `None` when it worked.
    pub async fn login_error(&self, username: &str, password: &str) -> Option<String> {
        let body = self
            .graphql(
                "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
                json!({ "input": { "username": username, "password": password } }),
                None,
            )
            .await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_string)
    }

    /// Signs in and returns only the access token.
    pub async fn token(&self, username: &str, scope: Option<&str>) -> String {
        self.login(username, scope).await["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_string()
    }
}

/// The first error's `extensions.code` of a GraphQL response.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Store::Postgres {
            admin_url,
            database,
        } = &self.store
        {
            drop_database(admin_url, database);
        }
    }
}

/// Drops a test database, from a thread of its own: Drop cannot await.
fn drop_database(admin_url: &str, database: &str) {
    let (admin_url, database) = (admin_url.to_string(), database.to_string());
    let dropper = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        }
    });
    let _ = dropper.join();
}

/// Creates a database of its own on the `TEST_DATABASE_URL` server: (admin URL, name, URL).
/// `None` when no server is configured (outside CI).
async fn create_postgres_database() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "TEST_DATABASE_URL must be set in CI so that every test also runs on PostgreSQL"
        );
        eprintln!("TEST_DATABASE_URL unset: skipping the PostgreSQL run");
        return None;
    };
    let database = format!(
        "idgraph_test_{}",
        idgraph::domain::secret::random_token(9)
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let admin = Database::connect(&admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {database}"))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&database);
    Some((admin_url, database, url.to_string()))
}

/// An empty PostgreSQL database of its own (no schema), dropped with this value.
pub struct EmptyPostgres {
    /// Its URL.
    pub url: String,
    admin_url: String,
    database: String,
}

impl EmptyPostgres {
    /// Creates one, or `None` when no server is configured (outside CI).
    pub async fn create() -> Option<Self> {
        let (admin_url, database, url) = create_postgres_database().await?;
        Some(Self {
            url,
            admin_url,
            database,
        })
    }
}

impl Drop for EmptyPostgres {
    fn drop(&mut self) {
        drop_database(&self.admin_url, &self.database);
    }
}
