//! Configuration: layering (defaults, file, environment) and validation messages.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use figment::Jail;
use idgraph::auth::SigningAlgorithm;
use idgraph::config::{Config, LogFormat, RawConfig};

#[test]
fn defaults_are_valid_and_serve_sqlite_in_the_working_directory() {
    let config = RawConfig::default().validate().unwrap();
    assert_eq!(config.database_url, "sqlite://idgraph.db?mode=rwc");
    assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(config.issuer, "http://127.0.0.1:8080");
    assert_eq!(config.access_token_ttl.as_secs(), 900);
    assert_eq!(config.signing_algorithm, SigningAlgorithm::EdDsa);
}

#[test]
fn every_invalid_setting_is_reported_by_name() {
    let raw = RawConfig {
        database_url: "mysql://x".into(),
        bind: "localhost".into(),
        issuer: Some("idgraph.example".into()),
        access_token_ttl_secs: 5,
        log_format: "xml".into(),
        signing_algorithm: "HS256".into(),
        bootstrap_admin_password: Some("short".into()),
        authorization_endpoint: Some("sign-in.example/authorize".into()),
        browser_session_ttl_secs: 10,
        ..RawConfig::default()
    };
    let message = raw.validate().unwrap_err().to_string();
    for key in [
        "database_url",
        "bind",
        "issuer",
        "access_token_ttl_secs",
        "log_format",
        "signing_algorithm",
        "bootstrap_admin_password",
        "authorization_endpoint",
        "browser_session_ttl_secs",
    ] {
        assert!(message.contains(key), "{key} missing from:\n{message}");
    }
}

#[test]
fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "idgraph.toml",
            r#"
                bind = "0.0.0.0:9000"
                issuer = "https://id.example.com/"
                log_format = "json"
                access_token_ttl_secs = 600
            "#,
        )?;
        jail.set_env("DATABASE_URL", "postgres://from-database-url/db");
        jail.set_env("IDGRAPH_ACCESS_TOKEN_TTL_SECS", "300");
        jail.set_env("IDGRAPH_SIGNING_ALGORITHM", "ES256");
        let config = Config::load(Some("idgraph.toml".as_ref())).map_err(|e| e.to_string())?;
        assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(config.issuer, "https://id.example.com");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.access_token_ttl.as_secs(), 300);
        assert_eq!(config.signing_algorithm, SigningAlgorithm::Es256);
        assert_eq!(config.database_url, "postgres://from-database-url/db");

        jail.set_env("IDGRAPH_DATABASE_URL", "postgres://from-idgraph/db");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.database_url, "postgres://from-idgraph/db");
        Ok(())
    });
}

#[test]
fn unknown_keys_and_missing_files_are_errors() {
    Jail::expect_with(|jail| {
        jail.create_file("typo.toml", "bnd = \"0.0.0.0:1\"")?;
        let message = Config::load(Some("typo.toml".as_ref()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("bnd"), "{message}");
        let message = Config::load(Some("absent.toml".as_ref()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("does not exist"), "{message}");
        jail.set_env("IDGRAPH_ACCESS_TOKEN_TTL_SECS", "soon");
        let message = Config::load(None).unwrap_err().to_string().to_lowercase();
        assert!(message.contains("access_token_ttl_secs"), "{message}");
        Ok(())
    });
}

/// Only settings are read from `IDGRAPH_*`: other names (Kubernetes service links, the command
/// line's `IDGRAPH_CONFIG`) neither stop the server nor set anything, and all but the command
/// line's own are listed for the warning.
#[test]
fn environment_variables_that_are_not_settings_are_ignored_and_listed() {
    Jail::expect_with(|jail| {
        jail.set_env("IDGRAPH_PORT", "tcp://10.0.0.7:8080");
        jail.set_env("IDGRAPH_PORT_8080_TCP_ADDR", "10.0.0.7");
        jail.set_env("IDGRAPH_SERVICE_HOST", "10.0.0.7");
        jail.set_env("IDGRAPH_CONFIG", "unused-here.toml");
        jail.set_env("IDGRAPH_BIND", "0.0.0.0:9000");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(
            idgraph::config::ignored_environment(),
            [
                "IDGRAPH_PORT",
                "IDGRAPH_PORT_8080_TCP_ADDR",
                "IDGRAPH_SERVICE_HOST"
            ]
        );
        Ok(())
    });
}
