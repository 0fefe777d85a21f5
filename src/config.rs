//! Configuration in layers: built-in defaults, then an optional TOML file, then the environment
//! (`DATABASE_URL`, then `IDGRAPH_*`). Loaded and validated once at start; the validated
//! [`Config`] is passed through the application state, never read from globals.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::auth::SigningAlgorithm;

/// The raw, unvalidated settings exactly as the layers provide them. Every key is documented in
/// the README; the field names are the TOML keys and, upper-cased with `IDGRAPH_`, the variables.
/// It has no `Debug`: it holds the bootstrap password and the database URL in clear.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub database_url: String,
    pub db_max_connections: u32,
    pub bind: String,
    pub issuer: Option<String>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub log_format: String,
    pub signing_algorithm: String,
    pub migrate_on_start: bool,
    pub graphql_body_limit_bytes: usize,
    pub graphql_max_depth: usize,
    pub graphql_max_complexity: usize,
    pub password_hash_concurrency: usize,
    pub bootstrap_admin_password: Option<String>,
    pub pkce_allow_plain: bool,
    pub authorization_endpoint: Option<String>,
    pub browser_session_ttl_secs: u64,
    pub cors_allowed_origins: Vec<String>,
    pub metrics_bind: Option<String>,
    pub key_rotation_days: Option<u32>,
    pub audit_retention_days: u32,
    pub trusted_proxies: Vec<String>,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://idgraph.db?mode=rwc".into(),
            db_max_connections: 8,
            bind: "127.0.0.1:8080".into(),
            issuer: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            log_format: "pretty".into(),
            signing_algorithm: "EdDSA".into(),
            migrate_on_start: true,
            graphql_body_limit_bytes: 256 * 1024,
            graphql_max_depth: 12,
            graphql_max_complexity: 500,
            password_hash_concurrency: 0,
            bootstrap_admin_password: None,
            pkce_allow_plain: true,
            authorization_endpoint: None,
            browser_session_ttl_secs: 12 * 3600,
            cors_allowed_origins: Vec::new(),
            metrics_bind: None,
            key_rotation_days: None,
            audit_retention_days: 365,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when writing to a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A database URL, which may carry a password: printing it shows the password as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                write!(f, "{:?}", url.as_str())
            }
            _ => write!(f, "{:?}", self.0),
        }
    }
}

/// The validated configuration the server runs with. Printing it shows no secret.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// Size of the connection pool.
    pub db_max_connections: u32,
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Public issuer URL (`iss` of every token, base of discovery), without a trailing slash;
    /// `http://<bind>` unless configured.
    pub issuer: String,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (and of a first-party session).
    pub refresh_token_ttl: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// Algorithm of newly generated signing keys.
    pub signing_algorithm: SigningAlgorithm,
    /// Run pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// Largest GraphQL request body accepted.
    pub graphql_body_limit_bytes: usize,
    /// Deepest selection nesting accepted.
    pub graphql_max_depth: usize,
    /// Highest query complexity accepted.
    pub graphql_max_complexity: usize,
    /// How many password hashes may be computed at once.
    pub password_hash_concurrency: usize,
    /// Password for the bootstrap `admin` user; random when unset. Never printed.
    pub bootstrap_admin_password: Option<SecretString>,
    /// Whether PKCE `plain` is accepted (S256 always is); discovery follows.
    pub pkce_allow_plain: bool,
    /// The sign-in UI's authorization URL advertised by discovery: idgraph's own
    /// `<issuer>/oauth/authorize` unless an external sign-in UI is configured.
    pub authorization_endpoint: String,
    /// How long a sign-in on idgraph's own sign-in page lasts.
    pub browser_session_ttl: Duration,
    /// Web origins whose browsers may call the management API and GraphQL (CORS); none by
    /// default. The token endpoint and userinfo follow each app's redirect URIs instead.
    pub cors_allowed_origins: Vec<String>,
    /// Address of the Prometheus metrics listener (`GET /metrics`); off when unset. Never the
    /// public port.
    pub metrics_bind: Option<SocketAddr>,
    /// Rotate the signing keys automatically this often (off when unset); see
    /// `service::keys`.
    pub key_rotation: Option<Duration>,
    /// How long audit events are kept before the sweep deletes them.
    pub audit_retention: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (the HTTP edge reads the client from it);
    /// none by default, so the client is the TCP peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Config {
    /// Whether discovery points at idgraph's own authorization endpoint.
    pub fn hosts_authorization_endpoint(&self) -> bool {
        self.authorization_endpoint == format!("{}/oauth/authorize", self.issuer)
    }

    /// Whether cookies must carry `Secure` (the issuer is https).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// A configuration that failed validation; lists every problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads defaults, then `file` (when given), then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    path.display()
                )]));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(Env::prefixed("IDGRAPH_").only(&setting_names()));
        let raw: RawConfig = figment
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        raw.validate()
    }
}

/// Variables under `IDGRAPH_` that are not settings (the command line's own `IDGRAPH_CONFIG`
/// aside), upper-cased and sorted. They are ignored, not refused: Kubernetes, for one, injects
/// `IDGRAPH_PORT`, `IDGRAPH_SERVICE_HOST` and the like into every pod of a namespace that has a
/// Service named `idgraph`. The caller warns about them once.
pub fn ignored_environment() -> Vec<String> {
    let known = setting_names();
    let mut ignored: Vec<String> = Env::prefixed("IDGRAPH_")
        .ignore(&known)
        .ignore(&["config"])
        .iter()
        .map(|(key, _)| format!("IDGRAPH_{}", key.as_str().to_ascii_uppercase()))
        .collect();
    ignored.sort();
    ignored
}

/// The settings' names: [`RawConfig`]'s fields, as its defaults serialise them.
fn setting_names() -> Vec<&'static str> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| match serde_json::to_value(RawConfig::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        })
        .iter()
        .map(String::as_str)
        .collect()
}

impl RawConfig {
    /// Checks every setting and converts it into its typed form.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();

        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            errors.push("database_url must start with sqlite: or postgres://".to_string());
        }
        if !(1..=1000).contains(&self.db_max_connections) {
            errors.push("db_max_connections must be between 1 and 1000".to_string());
        }
        let bind = self.bind.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "bind must be an address with a port, like 127.0.0.1:8080 (got {:?})",
                self.bind
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let issuer_text = self
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"));
        let issuer = match Url::parse(&issuer_text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none() =>
            {
                issuer_text.trim_end_matches('/').to_string()
            }
            _ => {
                errors.push(format!(
                    "issuer must be an absolute http(s) URL without query or fragment (got {:?})",
                    issuer_text
                ));
                String::new()
            }
        };
        if !(60..=24 * 3600).contains(&self.access_token_ttl_secs) {
            errors.push("access_token_ttl_secs must be between 60 and 86400".to_string());
        }
        if !(300..=365 * 24 * 3600).contains(&self.refresh_token_ttl_secs) {
            errors.push("refresh_token_ttl_secs must be between 300 and 31536000".to_string());
        }
        let log_format = match self.log_format.as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                errors.push(format!("log_format must be pretty or json (got {other:?})"));
                LogFormat::Pretty
            }
        };
        let signing_algorithm = self
            .signing_algorithm
            .parse::<SigningAlgorithm>()
            .unwrap_or_else(|_| {
                errors.push(format!(
                    "signing_algorithm must be RS256, ES256 or EdDSA (got {:?})",
                    self.signing_algorithm
                ));
                SigningAlgorithm::Rs256
            });
        if !(1024..=64 * 1024 * 1024).contains(&self.graphql_body_limit_bytes) {
            errors.push("graphql_body_limit_bytes must be between 1024 and 67108864".to_string());
        }
        if !(2..=64).contains(&self.graphql_max_depth) {
            errors.push("graphql_max_depth must be between 2 and 64".to_string());
        }
        if !(10..=100_000).contains(&self.graphql_max_complexity) {
            errors.push("graphql_max_complexity must be between 10 and 100000".to_string());
        }
        if self.password_hash_concurrency > 256 {
            errors.push("password_hash_concurrency must be at most 256 (0 = one per core)".into());
        }
        if let Some(password) = &self.bootstrap_admin_password
            && password.chars().count() < 8
        {
            errors.push("bootstrap_admin_password must be at least 8 characters".to_string());
        }

        let authorization_endpoint = match &self.authorization_endpoint {
            None => format!("{issuer}/oauth/authorize"),
            Some(text) => match Url::parse(text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.fragment().is_none() => {
                    text.clone()
                }
                _ => {
                    errors.push(format!(
                        "authorization_endpoint must be an absolute http(s) URL (got {text:?})"
                    ));
                    String::new()
                }
            },
        };

        if !(300..=30 * 24 * 3600).contains(&self.browser_session_ttl_secs) {
            errors.push("browser_session_ttl_secs must be between 300 and 2592000".to_string());
        }
        for origin in &self.cors_allowed_origins {
            let is_origin = Url::parse(origin).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.origin().ascii_serialization() == *origin
            });
            if !is_origin {
                errors.push(format!(
                    "cors_allowed_origins: {origin:?} is not an origin like https://admin.example.com"
                ));
            }
        }

        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .filter_map(|text| {
                let parsed = (text.parse::<ipnet::IpNet>())
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                match parsed {
                    Err(_) => errors.push(format!(
                        "trusted_proxies: {text:?} is not an address or a network like 10.0.0.0/24"
                    )),
                    // Every address a proxy: any client could name itself anyone.
                    Ok(net) if net.prefix_len() == 0 => errors.push(format!(
                        "trusted_proxies: {text:?} trusts every address; name the proxies"
                    )),
                    Ok(_) => {}
                }
                parsed.ok()
            })
            .collect();

        let metrics_bind = match &self.metrics_bind {
            None => None,
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(address) if address.port() == bind.port() && bind.port() != 0 => {
                    errors.push(format!(
                        "metrics_bind must not share the public port {} (got {text:?})",
                        bind.port()
                    ));
                    None
                }
                Ok(address) => Some(address),
                Err(_) => {
                    errors.push(format!(
                        "metrics_bind must be an address with a port, like 127.0.0.1:9090 (got {text:?})"
                    ));
                    None
                }
            },
        };

        if let Some(days) = self.key_rotation_days
            && !(1..=3650).contains(&days)
        {
            errors.push(format!(
                "key_rotation_days must be between 1 and 3650 (got {days})"
            ));
        }

        if !(1..=36500).contains(&self.audit_retention_days) {
            errors.push(format!(
                "audit_retention_days must be between 1 and 36500 (got {})",
                self.audit_retention_days
            ));
        }

        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        let password_hash_concurrency = match self.password_hash_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Config {
            database_url: DatabaseUrl(self.database_url),
            db_max_connections: self.db_max_connections,
            bind,
            issuer,
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl_secs),
            log_format,
            signing_algorithm,
            migrate_on_start: self.migrate_on_start,
            graphql_body_limit_bytes: self.graphql_body_limit_bytes,
            graphql_max_depth: self.graphql_max_depth,
            graphql_max_complexity: self.graphql_max_complexity,
            password_hash_concurrency,
            bootstrap_admin_password: self.bootstrap_admin_password.map(SecretString::from),
            pkce_allow_plain: self.pkce_allow_plain,
            authorization_endpoint,
            browser_session_ttl: Duration::from_secs(self.browser_session_ttl_secs),
            cors_allowed_origins: self.cors_allowed_origins,
            metrics_bind,
            key_rotation: self
                .key_rotation_days
                .map(|days| Duration::from_secs(u64::from(days) * 24 * 3600)),
            audit_retention: Duration::from_secs(u64::from(self.audit_retention_days) * 24 * 3600),
            trusted_proxies,
        })
    }
}
