//! SQLite's one writer for the token path's hot statements: a thread that owns a connection of
//! its own and commits the statements queued while it was busy together, in one transaction
//! (group commit).
//!
//! Through sqlx's pool, every statement on SQLite is a round trip to a thread of that
//! connection's own, and writers on different connections wait for SQLite's write lock in its
//! busy handler, which sleeps (1 ms, 2 ms, 5 ms, …) rather than queueing: under 64 concurrent
//! code exchanges that put the p99 above 50 ms. Here a caller queues its statement and awaits
//! the answer; the writer thread takes everything queued, runs it between `BEGIN IMMEDIATE` and
//! `COMMIT` straight against SQLite (through rusqlite, over the same SQLite library sqlx
//! links), and answers each caller once the commit is done, so no caller hears of a write that
//! did not commit. Each statement stays atomic on its own, as under autocommit: one that fails
//! is undone by SQLite alone and only its caller hears of it. Should SQLite abandon the whole
//! transaction (a full disk, an I/O error) or the commit fail, every caller of the group hears
//! of it and nothing of the group is kept.
//!
//! Statements are built by SeaORM (sea-query) as everywhere else and rows come back as SeaORM
//! models ([`FromRow`]); only the execution differs. Two statements use it, both one `UPDATE … RETURNING`
//! that must win exactly once: redeeming a code and rotating a refresh token. PostgreSQL keeps
//! its pool (its writers queue on row locks, without sleeping), and so does SQLite in memory,
//! which a connection of the writer's own could not share: see [`Writer::pool`].

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::types::{FromSql, Value as Column, ValueRef};
use rusqlite::{Connection, OpenFlags};
use sea_orm::sea_query::{Query, Value};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryTrait, Statement, UpdateMany,
};
use tokio::sync::oneshot;

use crate::db::entities::grants;

/// The most statements one transaction commits; more wait for the next.
const MAX_GROUP: usize = 256;

/// How long the writer waits for SQLite's write lock while a pooled connection holds it (a
/// consent, a sweep), as the pool's connections do.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One queued statement and where its rows go.
struct Job {
    statement: Statement,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<Vec<Row>, DbErr>>;

/// A returned row, read off SQLite by the writer and decoded by its caller.
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Column>,
}

impl Row {
    /// The value of column `name`.
    pub fn get<T: FromSql>(&self, name: &str) -> Result<T, DbErr> {
        let index = self
            .columns
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| writer_err(format!("no column {name}")))?;
        T::column_result(ValueRef::from(&self.values[index]))
            .map_err(|err| writer_err(format!("column {name}: {err}")))
    }
}

/// A model read from a row the writer returned.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self, DbErr>;
}

/// The struct literal names every column: a column added to `grants` fails to compile here.
impl FromRow for grants::Model {
    fn from_row(row: &Row) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            client_id: row.get("client_id")?,
            scope: row.get("scope")?,
            nonce: row.get("nonce")?,
            redirect_uri: row.get("redirect_uri")?,
            code_hash: row.get("code_hash")?,
            code_challenge: row.get("code_challenge")?,
            code_challenge_method: row.get("code_challenge_method")?,
            code_expires_at: row.get("code_expires_at")?,
            code_used_at: row.get("code_used_at")?,
            refresh_hash: row.get("refresh_hash")?,
            refresh_expires_at: row.get("refresh_expires_at")?,
            auth_time: row.get("auth_time")?,
            created_at: row.get("created_at")?,
            sid: row.get("sid")?,
        })
    }
}

/// Where the hot statements run: SQLite's writer thread, or the pool. Cheap to clone; the
/// thread ends once every clone is dropped and what was queued is committed.
#[derive(Clone)]
pub struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    /// How many statements the thread has run (SeaORM's metric callback sees the pool's only).
    statements: Arc<AtomicUsize>,
}

impl Writer {
    /// No writer thread: statements run on the pool.
    pub fn pool() -> Self {
        Self {
            queue: None,
            statements: Arc::default(),
        }
    }

    /// How many statements the writer thread has run.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }

    /// Starts the writer thread for the SQLite file `database_url` names (already migrated).
    /// PostgreSQL and in-memory SQLite get [`Writer::pool`].
    pub fn start(database_url: &str) -> Result<Self, DbErr> {
        if !DbBackend::Sqlite.is_prefix_of(database_url) || in_memory(database_url) {
            return Ok(Self::pool());
        }
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(|err| DbErr::Custom(format!("database_url: {err}")))?;
        let connection = open(options.get_filename()).map_err(writer_err)?;
        let (queue, jobs) = mpsc::channel();
        let statements = Arc::new(AtomicUsize::new(0));
        let counted = statements.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&connection, &jobs, &counted))
            .map_err(|err| DbErr::Custom(format!("starting the SQLite writer: {err}")))?;
        Ok(Self {
            queue: Some(queue),
            statements,
        })
    }

    /// Runs `update` with `RETURNING *` and gives the updated rows, committed. On the writer
    /// thread when there is one, else on `db`.
    pub async fn update_returning<E>(
        &self,
        db: &DatabaseConnection,
        update: UpdateMany<E>,
    ) -> Result<Vec<E::Model>, DbErr>
    where
        E: EntityTrait,
        E::Model: FromRow,
    {
        let Some(queue) = &self.queue else {
            return update.exec_with_returning(db).await;
        };
        let mut query = update.into_query();
        query.returning(Query::returning().all());
        let (reply, answer) = oneshot::channel();
        let job = Job {
            statement: DbBackend::Sqlite.build(&query),
            reply,
        };
        queue.send(job).map_err(|_| stopped())?;
        let rows = answer.await.map_err(|_| stopped())??;
        rows.iter().map(E::Model::from_row).collect()
    }
}

/// Whether `database_url` names an in-memory SQLite database.
fn in_memory(database_url: &str) -> bool {
    database_url.contains(":memory:") || database_url.contains("mode=memory")
}

/// The writer's connection, with the pragmas the pool's connections get (`db::connect`); the
/// journal mode (WAL) is the file's and set already.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

/// The writer thread: waits for a statement, takes whatever else is queued behind it, commits
/// them together, and again, until every [`Writer`] is gone.
fn run(connection: &Connection, jobs: &mpsc::Receiver<Job>, statements: &AtomicUsize) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        group.extend(jobs.try_iter().take(MAX_GROUP - 1));
        tracing::trace!(statements = group.len(), "SQLite writer commits a group");
        statements.fetch_add(commit_group(connection, group), Ordering::Relaxed);
    }
}

/// Runs `group` in one transaction and answers each caller after the commit; how many
/// statements it ran. A statement whose caller has stopped waiting (its request was cancelled
/// while queued) is not run.
fn commit_group(connection: &Connection, group: Vec<Job>) -> usize {
    if !connection.is_autocommit() {
        // A failed commit whose rollback failed too left a transaction open; it holds the
        // write lock, and no group could begin.
        if let Err(err) = connection.execute_batch("ROLLBACK") {
            fail(group.into_iter().map(|job| job.reply), &err);
            return 0;
        }
    }
    if let Err(err) = connection.execute_batch("BEGIN IMMEDIATE") {
        fail(group.into_iter().map(|job| job.reply), &err);
        return 0;
    }
    let mut done = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        if job.reply.is_closed() {
            continue;
        }
        let rows = query(connection, &job.statement);
        if let Err(err) = &rows
            && connection.is_autocommit()
        {
            // SQLite rolled the whole transaction back: what ran before it is gone too, and
            // what is still queued has not run.
            let ran = done.len() + 1;
            let everyone = done
                .into_iter()
                .map(|(reply, _)| reply)
                .chain(std::iter::once(job.reply))
                .chain(jobs.map(|job| job.reply));
            fail(everyone, err);
            return ran;
        }
        done.push((job.reply, rows));
    }
    let ran = done.len();
    match connection.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, rows) in done {
                let _ = reply.send(rows.map_err(writer_err));
            }
        }
        Err(err) => {
            let _ = connection.execute_batch("ROLLBACK");
            fail(done.into_iter().map(|(reply, _)| reply), &err);
        }
    }
    ran
}

/// Tells every caller in `replies` that its statement did not commit.
fn fail(replies: impl Iterator<Item = Reply>, err: &rusqlite::Error) {
    tracing::error!(error = %err, "the SQLite writer's transaction failed");
    for reply in replies {
        let _ = reply.send(Err(writer_err(err)));
    }
}

/// Runs one statement and reads its rows.
fn query(connection: &Connection, statement: &Statement) -> rusqlite::Result<Vec<Row>> {
    let mut prepared = connection.prepare_cached(&statement.sql)?;
    let columns: Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(String::from)
        .collect();
    let params = statement
        .values
        .iter()
        .flat_map(|values| values.0.iter())
        .map(param)
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|index| row.get::<_, Column>(index))
            .collect::<rusqlite::Result<_>>()?;
        read.push(Row {
            columns: columns.clone(),
            values,
        });
    }
    Ok(read)
}

/// A statement parameter as SQLite stores it: the text, integers, reals and blobs SeaORM binds
/// for our columns, and NULL.
fn param(value: &Value) -> rusqlite::Result<Column> {
    Ok(match value {
        Value::String(Some(text)) => Column::Text(text.clone()),
        Value::BigInt(Some(n)) => Column::Integer(*n),
        Value::Int(Some(n)) => Column::Integer(i64::from(*n)),
        Value::Bool(Some(b)) => Column::Integer(i64::from(*b)),
        Value::Double(Some(x)) => Column::Real(*x),
        Value::Bytes(Some(bytes)) => Column::Blob(bytes.clone()),
        Value::String(None)
        | Value::BigInt(None)
        | Value::Int(None)
        | Value::Bool(None)
        | Value::Double(None)
        | Value::Bytes(None) => Column::Null,
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("the SQLite writer binds no {other:?}").into(),
            ));
        }
    })
}

fn writer_err(err: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("SQLite writer: {err}"))
}

fn stopped() -> DbErr {
    DbErr::Custom("the SQLite writer has stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer = oneshot::Receiver<Result<Vec<Row>, DbErr>>;

    const ADD_ONE: &str = "UPDATE t SET n = n + 1 WHERE id = ? RETURNING n";

    /// A database file holding `t` (rows `a` and `b`, `n` = 0, which may not go negative) and
    /// `c`, whose rows must name a row of `t` by the time their transaction commits; and the
    /// writer's connection to it.
    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0));
                 INSERT INTO t VALUES ('a', 0), ('b', 0);
                 CREATE TABLE c (parent TEXT REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .unwrap();
        (dir, open(&path).unwrap())
    }

    fn job(sql: &str, id: &str) -> (Job, Answer) {
        let (reply, answer) = oneshot::channel();
        let statement = Statement::from_sql_and_values(DbBackend::Sqlite, sql, [id.into()]);
        (Job { statement, reply }, answer)
    }

    /// The `n` a caller was answered with, or its error.
    fn answered(mut answer: Answer) -> Result<i64, DbErr> {
        let rows = answer.try_recv().expect("answered")?;
        Ok(rows[0].get::<i64>("n").unwrap())
    }

    fn n_of(connection: &Connection, id: &str) -> i64 {
        connection
            .query_row("SELECT n FROM t WHERE id = ?1", [id], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_statement_that_fails_fails_alone_and_the_rest_of_its_group_commits() {
        let (_dir, connection) = database();
        let (first, first_answer) = job(ADD_ONE, "a");
        let (bad, bad_answer) = job("UPDATE t SET n = n - 1 WHERE id = ? RETURNING n", "b");
        let (last, last_answer) = job("UPDATE t SET n = n + 2 WHERE id = ? RETURNING n", "b");
        commit_group(&connection, vec![first, bad, last]);
        assert_eq!(answered(first_answer).unwrap(), 1);
        let refused = answered(bad_answer).unwrap_err().to_string();
        assert!(refused.contains("CHECK constraint failed"), "{refused}");
        assert_eq!(answered(last_answer).unwrap(), 2);
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (1, 2));
    }

    #[test]
    fn a_statement_whose_caller_stopped_waiting_is_not_run() {
        let (_dir, connection) = database();
        let (gone, gone_answer) = job(ADD_ONE, "a");
        drop(gone_answer);
        let (kept, kept_answer) = job(ADD_ONE, "b");
        assert_eq!(
            commit_group(&connection, vec![gone, kept]),
            1,
            "one statement ran"
        );
        assert_eq!(answered(kept_answer).unwrap(), 1);
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (0, 1));
    }

    #[test]
    fn a_commit_that_fails_keeps_nothing_of_its_group_and_tells_every_caller() {
        let (_dir, connection) = database();
        let (good, good_answer) = job("UPDATE t SET n = 5 WHERE id = ? RETURNING n", "a");
        // Breaks the deferred reference, which SQLite checks only at COMMIT.
        let (orphan, orphan_answer) =
            job("INSERT INTO c (parent) VALUES (?) RETURNING 0 AS n", "x");
        commit_group(&connection, vec![good, orphan]);
        assert!(answered(good_answer).is_err());
        assert!(answered(orphan_answer).is_err());
        assert_eq!(n_of(&connection, "a"), 0);
        // The failed transaction is closed: the next group commits.
        assert!(connection.is_autocommit());
        let (next, next_answer) = job(ADD_ONE, "a");
        commit_group(&connection, vec![next]);
        assert_eq!(answered(next_answer).unwrap(), 1);
    }

    #[test]
    fn a_statement_that_makes_sqlite_abandon_the_transaction_fails_its_whole_group() {
        let (_dir, connection) = database();
        connection
            .execute_batch(
                "CREATE TRIGGER abandon BEFORE UPDATE OF n ON t WHEN NEW.n = 99
                 BEGIN SELECT RAISE(ROLLBACK, 'abandoned'); END;",
            )
            .unwrap();
        let (before, before_answer) = job("UPDATE t SET n = 1 WHERE id = ? RETURNING n", "a");
        let (abandon, abandon_answer) = job("UPDATE t SET n = 99 WHERE id = ? RETURNING n", "b");
        let (after, after_answer) = job(ADD_ONE, "a");
        commit_group(&connection, vec![before, abandon, after]);
        for answer in [before_answer, abandon_answer, after_answer] {
            assert!(answered(answer).is_err());
        }
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (0, 0));
    }
}
