//! The command line: `serve`, `migrate`, `user create`, `user set-password`, `user set-roles`,
//! `keys rotate` and `schema`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use migrations::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::Principal;
use crate::config::Config;
use crate::domain::Role;
use crate::domain::users::NewUser;
use crate::graphql::{Limits, build_schema};
use crate::service::AppState;
use crate::service::changes::Change;
use crate::service::{keys, users};

/// idgraph: OpenID Connect apps, consent and tokens, GraphQL-first.
#[derive(Debug, Parser)]
#[command(name = "idgraph", version, about)]
pub struct Cli {
    /// A TOML file with settings; environment variables override it.
    #[arg(long, global = true, env = "IDGRAPH_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve {
        /// Do not run pending migrations at start (fail if any are pending).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply, roll back or list migrations.
    Migrate {
        /// `up` applies all pending, `down` rolls back the latest, `status` lists them.
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
}

/// `idgraph migrate` actions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the most recent migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

/// `idgraph user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        /// Unique login name (lower-case letters, digits, `.`, `_`, `-`).
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// A role to grant (`admin` or `oauth`); repeat for several.
        #[arg(long = "role", value_parser = parse_role)]
        roles: Vec<Role>,
        /// Read the password from standard input (required, so it never shows in `ps`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input); audited with actor `cli`.
    SetPassword {
        /// The user's login name.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (required, so it never shows in `ps`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace a user's roles (for instance to give a locked-out administrator `admin` back);
    /// audited with actor `cli`. No `--role` at all removes every role.
    SetRoles {
        /// The user's login name.
        #[arg(long)]
        username: String,
        /// A role to hold (`admin` or `oauth`); repeat for several.
        #[arg(long = "role", value_parser = parse_role)]
        roles: Vec<Role>,
    },
}

/// Reads a password from standard input (one line; the line end is not part of it).
fn read_password(password_stdin: bool) -> anyhow::Result<SecretString> {
    anyhow::ensure!(
        password_stdin,
        "pass --password-stdin and write the password to standard input"
    );
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    Ok(SecretString::from(password.trim_end_matches(['\r', '\n'])))
}

/// `idgraph keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new active signing key for every algorithm in use; the old ones stay published
    /// until their tokens expire.
    Rotate {
        /// Sign with the new keys at once instead of publishing them ahead. Relying parties that
        /// cached the JWKS meet a key id they do not know yet and must fetch the JWKS again.
        /// The previous keys stay published until the tokens they signed expire.
        #[arg(long)]
        now: bool,
    },
    /// Revoke a key that leaked: it leaves the JWKS at once and no token it signed verifies
    /// again (clients refresh: refresh tokens are not signed); its algorithm gets another
    /// signer at once.
    Revoke {
        /// The key id (`kid`), as `GET /api/oauth/jwks` or the console lists it.
        kid: String,
    },
}

/// Reads a role by its one string form ([`Role`]'s).
fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|err| err.to_string())
}

/// Connects and brings the schema up to date (or checks it is, when migration is off).
async fn open_database(config: &Config, migrate: bool) -> anyhow::Result<DatabaseConnection> {
    let db = crate::db::connect(&config.database_url, config.db_max_connections)
        .await
        .context("cannot connect to the database")?;
    if migrate {
        crate::db::migrate(&db, &config.database_url)
            .await
            .context("migration failed")?;
    } else {
        let pending = Migrator::get_pending_migrations(&db).await?;
        anyhow::ensure!(
            pending.is_empty(),
            "the database has {} pending migration(s); run `idgraph migrate`",
            pending.len()
        );
    }
    Ok(db)
}

/// Runs a parsed command with a validated configuration.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { no_migrate } => {
            let migrate = config.migrate_on_start && !no_migrate;
            serve(config, migrate).await
        }
        Command::Migrate { action } => migrate(&config, action).await,
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    email,
                    name,
                    roles,
                    password_stdin,
                },
        } => {
            let password = read_password(password_stdin)?;
            let db = open_database(&config, config.migrate_on_start).await?;
            let state = AppState::new(db, config).await?;
            let user = users::create_user(
                &state,
                &Principal::System,
                NewUser {
                    username,
                    email,
                    name,
                    password: Some(password),
                    roles,
                },
            )
            .await?;
            println!("created user {} ({})", user.username, user.id);
            state.close().await?;
            Ok(())
        }
        Command::User {
            command:
                UserCommand::SetPassword {
                    username,
                    password_stdin,
                },
        } => {
            let password = read_password(password_stdin)?;
            let db = open_database(&config, config.migrate_on_start).await?;
            let state = AppState::new(db, config).await?;
            let user = users::find_by_username(&state, &Principal::System, &username).await?;
            users::set_password(&state, &Principal::System, &user.id, password).await?;
            println!("password set for {}", user.username);
            state.close().await?;
            Ok(())
        }
        Command::User {
            command: UserCommand::SetRoles { username, roles },
        } => {
            let db = open_database(&config, config.migrate_on_start).await?;
            let state = AppState::new(db, config).await?;
            let user = users::find_by_username(&state, &Principal::System, &username).await?;
            let user = users::set_roles(&state, &Principal::System, &user.id, roles).await?;
            println!(
                "{} now holds: {}",
                user.username,
                if user.roles.is_empty() {
                    "no role".to_string()
                } else {
                    Role::format_list(&user.roles)
                }
            );
            state.close().await?;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { now: at_once },
        } => {
            let db = open_database(&config, config.migrate_on_start).await?;
            let mut rotation = keys::Rotation::of(&config);
            if at_once {
                rotation.publish_ahead = std::time::Duration::ZERO;
            }
            let now = crate::clock::Clock::system().now();
            let mut algorithms = keys::active_algorithms(&db).await?;
            if !algorithms.contains(&config.signing_algorithm) {
                algorithms.push(config.signing_algorithm);
            }
            for algorithm in algorithms {
                let kid = keys::rotate(&db, algorithm, rotation, now).await?;
                println!(
                    "new signing key {kid} ({algorithm}): published now, signing in {} s",
                    rotation.publish_ahead.as_secs()
                );
            }
            if let Err(err) =
                crate::service::changes::announce_from_outside(&db, Change::Keys).await
            {
                eprintln!("warning: the rotation stands but could not be announced: {err}");
            }
            println!(
                "running servers pick the new keys up at once on PostgreSQL (announced), \
                 within {} s otherwise",
                keys::KeyStore::REFRESH.as_secs()
            );
            db.close().await?;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Revoke { kid },
        } => {
            let db = open_database(&config, config.migrate_on_start).await?;
            let now = crate::clock::Clock::system().now();
            let revocation = keys::revoke(&db, &kid, now).await?;
            println!(
                "signing key {} ({}) revoked: unpublished, and nothing it signed verifies",
                revocation.key.kid, revocation.key.algorithm
            );
            if let Some(successor) = &revocation.successor {
                println!(
                    "{} key {} takes its place ({})",
                    successor.algorithm,
                    successor.kid,
                    successor.state.as_str()
                );
            }
            if let Err(err) =
                crate::service::changes::announce_from_outside(&db, Change::Keys).await
            {
                eprintln!("warning: the revocation stands but could not be announced: {err}");
            }
            println!(
                "running servers stop accepting its tokens at once on PostgreSQL (announced), \
                 within {} s otherwise; relying parties drop the key when their cached JWKS \
                 expires (at most {} s)",
                keys::KeyStore::REFRESH.as_secs(),
                keys::jwks_max_age(&config).as_secs()
            );
            db.close().await?;
            Ok(())
        }
        Command::Schema => {
            print!("{}", build_schema(Limits::default()).sdl());
            Ok(())
        }
    }
}

async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let db = crate::db::connect(&config.database_url, 1).await?;
    match action {
        MigrateAction::Up => crate::db::migrate(&db, &config.database_url).await?,
        MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!("{:<40} {}", migration.name(), migration.status());
            }
        }
    }
    db.close().await?;
    Ok(())
}

async fn serve(config: Config, migrate: bool) -> anyhow::Result<()> {
    let bind = config.bind;
    let bootstrap_password = config.bootstrap_admin_password.clone();
    let db = open_database(&config, migrate).await?;
    let state = AppState::new(db, config).await?;
    if let Some(password) = users::bootstrap_admin(&state, bootstrap_password).await? {
        // Printed once, to the terminal only: never through the logger.
        let password = password.expose_secret();
        println!("\n  Created the first user: admin\n  Password (shown once): {password}\n");
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(address = %bind, issuer = %state.config.issuer, "idgraph listening");
    if let Some(address) = state.config.metrics_bind {
        serve_metrics(address, state.clone()).await?;
    }
    let housekeeping = crate::service::housekeeping::spawn(state.clone());
    let logouts = crate::service::backchannel::spawn(state.clone());
    let key_schedule = keys::spawn_schedule(state.clone());
    let touches = crate::service::touches::spawn(state.clone());
    let app =
        crate::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    housekeeping.abort();
    logouts.abort();
    if let Some(schedule) = key_schedule {
        schedule.abort();
    }
    touches.stop().await;
    tracing::info!("in-flight requests finished; closing the database pool");
    state.close().await?;
    Ok(())
}

/// Serves `GET /metrics` on its own listener, and keeps histogram memory bounded between
/// scrapes.
async fn serve_metrics(address: std::net::SocketAddr, state: AppState) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (metrics_bind)"))?;
    tracing::info!(address = %address, "metrics listening");
    let metrics = state.metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            metrics.upkeep();
        }
    });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, crate::edge::metrics::router(state)).await {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
