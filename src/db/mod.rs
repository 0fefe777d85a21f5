//! Storage: connecting to SQLite or PostgreSQL, and the SeaORM entities.

pub mod entities;
pub mod owned;
pub mod writer;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::Connection;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqlErr};

/// Whether `err` says a statement would have broken a foreign key: SQLite's or PostgreSQL's
/// through the pool (SeaORM's [`SqlErr`]), or SQLite's through the writer thread ([`writer`]).
pub fn foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    ) || matches!(err, DbErr::Custom(message) if message == writer::FOREIGN_KEY_FAILED)
}

/// The PostgreSQL advisory lock that nodes take turns on to migrate (any fixed number works, as
/// long as every node uses the same one): the bytes of "idgraph" and a version.
const MIGRATION_LOCK: i64 = 0x6964_6772_6170_6801;

/// How long a pooled PostgreSQL connection may sit idle before it is pinged on its way out of
/// the pool (see [`connect`]).
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Opens a connection pool. For SQLite the pragmas are set through the connect options, so
/// every pooled connection gets them: WAL journal, `synchronous=NORMAL`, foreign keys on, a
/// five-second busy timeout, and the file created when missing.
///
/// The pool does not ping a connection on every checkout (sqlx's default), since each ping is a
/// round trip of its own, as dear as the statement that follows it: through sqlx a SQLite
/// connection lives on a worker thread, and a ping there wakes that thread for nothing (an
/// in-process connection cannot have been dropped by a server). A PostgreSQL connection is
/// pinged only once it has sat idle for [`PING_AFTER_IDLE`], so a connection left behind by a
/// server restart is found and replaced before a request uses it, while connections under load
/// go straight to their statement.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    if DbBackend::Sqlite.is_prefix_of(url) {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(PING_AFTER_IDLE);
    }
    options
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                .create_if_missing(true)
        });
    Database::connect(options).await
}

/// Brings the schema of `db` (opened from `database_url`) up to date. On PostgreSQL, nodes
/// started together take turns: each holds a session advisory lock, on a connection of its own,
/// while it migrates, so one node migrates and the others wait for it and then find nothing
/// pending. The lock goes with its session, should a node die halfway. On SQLite there is one
/// node: the database is a file on it.
pub async fn migrate(db: &DatabaseConnection, database_url: &str) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Migrator::up(db, None).await?);
    }
    let mut lock = PgConnection::connect(database_url).await?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await?;
    let migrated = Migrator::up(db, None).await;
    // Closing the session releases the lock too; unlocking first says so plainly.
    let _ = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await;
    let _ = lock.close().await;
    Ok(migrated?)
}

/// Rows where any of `columns`, lowercased, contains `search` (already lowercased): a
/// case-insensitive substring match in which `%` and `_` are plain characters. SQLite's
/// `lower()` folds ASCII letters only.
pub fn contains_any<C>(columns: impl IntoIterator<Item = C>, search: &str) -> sea_orm::Condition
where
    C: sea_orm::sea_query::IntoColumnRef,
{
    use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
    let escaped: String = search
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    columns
        .into_iter()
        .fold(sea_orm::Condition::any(), |any, column| {
            any.add(
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\')),
            )
        })
}
