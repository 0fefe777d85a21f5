//! SQLite's one writer for the token path's hot writes: a thread that owns a connection of its
//! own and commits the work queued while it was busy together, in one transaction (group
//! commit).
//!
//! Through sqlx's pool, every statement on SQLite is a round trip to a thread of that
//! connection's own, and writers on different connections wait for SQLite's write lock in its
//! busy handler, which sleeps (1 ms, 2 ms, 5 ms, …) rather than queueing: under 64 concurrent
//! code exchanges that put the p99 above 50 ms. Here a caller queues its work and awaits
//! the answer; the writer thread takes everything queued, runs it between `BEGIN IMMEDIATE` and
//! `COMMIT` straight against SQLite (through rusqlite, over the same SQLite library sqlx
//! links), and answers each caller once the commit is done, so no caller hears of a write that
//! did not commit. Each job stays atomic on its own, as under autocommit: one that fails
//! is undone by SQLite alone and only its caller hears of it. Should SQLite abandon the whole
//! transaction (a full disk, an I/O error) or the commit fail, every caller of the group hears
//! of it and nothing of the group is kept.
//!
//! Statements are built by SeaORM (sea-query) as everywhere else and rows come back as SeaORM
//! models ([`FromRow`]); only the execution differs. Four writes use it: redeeming a code and
//! rotating a refresh token (each one `UPDATE … RETURNING` that must win exactly once,
//! [`Writer::update_returning`]), recording a consent (an upsert and an insert that take
//! effect together or not at all, [`Writer::all_or_nothing`], kept apart from the rest of its
//! group by a savepoint), and revoking a grant (remembering its app for the browser session's
//! logout and deleting it, together, [`Writer::together`]). PostgreSQL keeps its pool (its writers queue on row
//! locks, without sleeping), and so does SQLite in memory, which a connection of the writer's
//! own could not share: see [`Writer::pool`].
//!
//! A panic while the writer runs a group (a bug) fails that group's callers and not the
//! writer, which rolls back the transaction the panic left open and goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};
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
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryTrait, Statement,
    TransactionTrait, UpdateMany,
};
use tokio::sync::oneshot;

use crate::db::entities::grants;

/// The most jobs one transaction commits; more wait for the next.
const MAX_GROUP: usize = 256;

/// How long the writer waits for SQLite's write lock while a pooled connection holds it (a
/// sweep, a sign-in), as the pool's connections do.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What SQLite says when a statement would break a foreign key
/// (`SQLITE_CONSTRAINT_FOREIGNKEY`); [`foreign_key_violation`](crate::db::foreign_key_violation) recognises it in an answer.
pub(super) const FOREIGN_KEY_FAILED: &str = "SQLite writer: FOREIGN KEY constraint failed";

/// Where a caller's answer goes.
type Answer<T> = oneshot::Sender<Result<T, DbErr>>;

/// One queued piece of work and where its answer goes.
enum Job {
    /// One statement, atomic on its own as under autocommit; answered with its rows.
    Returning(Statement, Answer<Vec<Row>>),
    /// Statements that take effect together or not at all; answered with how many rows each
    /// changed, or with `None` when `every_must_change` and one changed none (none took effect).
    Together {
        statements: Vec<Statement>,
        every_must_change: bool,
        to: Answer<Option<Vec<usize>>>,
    },
}

impl Job {
    /// Whether its caller has stopped waiting (its request was cancelled while queued).
    fn caller_gone(&self) -> bool {
        match self {
            Job::Returning(_, to) => to.is_closed(),
            Job::Together { to, .. } => to.is_closed(),
        }
    }

    /// Tells its caller that its work did not commit.
    fn fail(self, err: &rusqlite::Error) {
        match self {
            Job::Returning(_, to) => tell(to, err),
            Job::Together { to, .. } => tell(to, err),
        }
    }
}

/// A job that ran, its answer held until its group's transaction has ended.
enum Held {
    Rows(Answer<Vec<Row>>, rusqlite::Result<Vec<Row>>),
    Counts(
        Answer<Option<Vec<usize>>>,
        rusqlite::Result<Option<Vec<usize>>>,
    ),
}

impl Held {
    /// Answers the caller, once the group has committed.
    fn send(self) {
        match self {
            Held::Rows(to, rows) => answer(to, rows),
            Held::Counts(to, counts) => answer(to, counts),
        }
    }

    /// Tells the caller that its work did not commit after all.
    fn fail(self, err: &rusqlite::Error) {
        match self {
            Held::Rows(to, _) => tell(to, err),
            Held::Counts(to, _) => tell(to, err),
        }
    }
}

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
            retired_refresh: row.get("retired_refresh")?,
            resource: row.get("resource")?,
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
    /// How many callers are waiting for the thread (queued, or in the group being committed).
    waiting: Arc<AtomicUsize>,
}

impl Writer {
    /// No writer thread: statements run on the pool.
    pub fn pool() -> Self {
        Self {
            queue: None,
            statements: Arc::default(),
            waiting: Arc::default(),
        }
    }

    /// How many statements the writer thread has run.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }

    /// How many callers are waiting for the writer thread right now: queued, or in the group
    /// being committed (0 without a thread). The metrics' view of a saturated SQLite.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
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
            waiting: Arc::default(),
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
        let statement = DbBackend::Sqlite.build(&query);
        let rows = send(queue, &self.waiting, |to| Job::Returning(statement, to)).await?;
        rows.iter().map(E::Model::from_row).collect()
    }

    /// Runs `statements` in order, as one: all of them take effect or none does (a statement
    /// that fails undoes the ones before it), whatever rows each changes; how many each changed,
    /// committed. On the writer thread when there is one, else in a transaction of its own on
    /// `db`. Statements built for another database than the one they would run on are refused
    /// before any runs.
    pub async fn together(
        &self,
        db: &DatabaseConnection,
        statements: Vec<Statement>,
    ) -> Result<Vec<usize>, DbErr> {
        let counts = self.run_together(db, statements, false).await?;
        Ok(counts.unwrap_or_default()) // always `Some` when no statement has to change a row
    }

    /// Runs `statements` in order, as one: all of them take effect or none does. `Ok(true)` once
    /// they are committed; `Ok(false)` when one changed no row, which undoes the ones before it
    /// and skips the rest (an `INSERT … SELECT … WHERE` whose condition no longer holds). On the
    /// writer thread when there is one, else in a transaction of its own on `db`.
    ///
    /// A statement that breaks a foreign key fails with an error [`foreign_key_violation`](crate::db::foreign_key_violation)
    /// recognises, wherever it ran. Statements built for another database than the one they
    /// would run on (SQLite's syntax on PostgreSQL's pool) are refused before any runs.
    pub async fn all_or_nothing(
        &self,
        db: &DatabaseConnection,
        statements: Vec<Statement>,
    ) -> Result<bool, DbErr> {
        Ok(self.run_together(db, statements, true).await?.is_some())
    }

    /// [`Writer::together`] and [`Writer::all_or_nothing`]: how many rows each statement
    /// changed, or `None` when `every_must_change` and one changed none.
    async fn run_together(
        &self,
        db: &DatabaseConnection,
        statements: Vec<Statement>,
        every_must_change: bool,
    ) -> Result<Option<Vec<usize>>, DbErr> {
        self.refuse_foreign(db, &statements)?;
        let Some(queue) = &self.queue else {
            let txn = db.begin().await?;
            let mut counts = Vec::with_capacity(statements.len());
            for statement in statements {
                let changed = txn.execute_raw(statement).await?.rows_affected() as usize;
                if every_must_change && changed == 0 {
                    return Ok(None); // dropping `txn` rolls it back
                }
                counts.push(changed);
            }
            txn.commit().await?;
            return Ok(Some(counts));
        };
        send(queue, &self.waiting, |to| Job::Together {
            statements,
            every_must_change,
            to,
        })
        .await
    }

    /// Refuses statements built for another database than the one they would run on (SQLite's
    /// syntax on PostgreSQL's pool), before any runs.
    fn refuse_foreign(
        &self,
        db: &DatabaseConnection,
        statements: &[Statement],
    ) -> Result<(), DbErr> {
        let runs_on = match self.queue {
            Some(_) => DbBackend::Sqlite,
            None => db.get_database_backend(),
        };
        match statements.iter().find(|s| s.db_backend != runs_on) {
            Some(foreign) => Err(DbErr::Custom(format!(
                "a statement built for {:?} cannot run on {runs_on:?}: {}",
                foreign.db_backend, foreign.sql
            ))),
            None => Ok(()),
        }
    }
}

/// Queues the job `job` makes of an answer's sender on the writer thread, and awaits the
/// answer, counted in `waiting` meanwhile (a caller that gives up stops counting).
async fn send<T>(
    queue: &mpsc::Sender<Job>,
    waiting: &AtomicUsize,
    job: impl FnOnce(Answer<T>) -> Job,
) -> Result<T, DbErr> {
    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    waiting.fetch_add(1, Ordering::Relaxed);
    let _counted = Counted(waiting);
    let (to, answer) = oneshot::channel();
    queue.send(job(to)).map_err(|_| stopped())?;
    answer.await.map_err(|_| dropped())?
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

/// The writer thread: waits for a job, takes whatever else is queued behind it, commits them
/// together, and again, until every [`Writer`] is gone.
fn run(connection: &Connection, jobs: &mpsc::Receiver<Job>, statements: &AtomicUsize) {
    serve(connection, jobs, statements, commit_group);
}

/// [`run`], with the function that commits a group as a parameter (the tests make one panic).
fn serve(
    connection: &Connection,
    jobs: &mpsc::Receiver<Job>,
    statements: &AtomicUsize,
    commit: impl Fn(&Connection, Vec<Job>, &AtomicUsize),
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        group.extend(jobs.try_iter().take(MAX_GROUP - 1));
        tracing::trace!(jobs = group.len(), "SQLite writer commits a group");
        // A panic drops the group's replies: each caller hears that the writer dropped its work.
        if catch_unwind(AssertUnwindSafe(|| commit(connection, group, statements))).is_err() {
            tracing::error!("the SQLite writer panicked; its group did not commit");
            // The write lock is not kept until the next job comes (should this fail, the next
            // group tries again).
            let _ = roll_back_open(connection);
        }
    }
}

/// Runs `group` in one transaction and answers each caller after the commit, having counted in
/// `statements` the statements it ran. Work whose caller has stopped waiting (its request was
/// cancelled while queued) is not run.
fn commit_group(connection: &Connection, group: Vec<Job>, statements: &AtomicUsize) {
    // A failed commit whose rollback failed too, or a panic, may have left a transaction open;
    // it holds the write lock, and no group could begin.
    let began =
        roll_back_open(connection).and_then(|()| connection.execute_batch("BEGIN IMMEDIATE"));
    if let Err(err) = began {
        fail(Vec::new(), group, &err);
        return;
    }
    let mut ran = 0;
    let mut held = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        if job.caller_gone() {
            continue;
        }
        match run_job(connection, job, &mut ran) {
            Ok(answer) => held.push(answer),
            Err(err) => {
                // What ran before it is gone too, and what is still queued has not run.
                let _ = roll_back_open(connection);
                statements.fetch_add(ran, Ordering::Relaxed);
                fail(held, jobs, &err);
                return;
            }
        }
    }
    statements.fetch_add(ran, Ordering::Relaxed);
    match connection.execute_batch("COMMIT") {
        Ok(()) => held.into_iter().for_each(Held::send),
        Err(err) => {
            let _ = roll_back_open(connection);
            fail(held, Vec::new(), &err);
        }
    }
}

/// Rolls back the transaction open on `connection`, if one is.
fn roll_back_open(connection: &Connection) -> rusqlite::Result<()> {
    if connection.is_autocommit() {
        return Ok(());
    }
    connection.execute_batch("ROLLBACK")
}

/// Runs `job` inside the group's transaction, counting in `ran` the statements it runs: its
/// answer, held until the group ends (a failed statement was undone alone, and the group goes
/// on). `Err`, its caller told, when the group's transaction is gone (SQLite abandoned it) or
/// in doubt: nothing of the group may commit.
fn run_job(connection: &Connection, job: Job, ran: &mut usize) -> Result<Held, rusqlite::Error> {
    match job {
        Job::Returning(statement, to) => {
            *ran += 1;
            match query(connection, &statement) {
                Err(err) if connection.is_autocommit() => {
                    tell(to, &err);
                    Err(err)
                }
                rows => Ok(Held::Rows(to, rows)),
            }
        }
        Job::Together {
            statements,
            every_must_change,
            to,
        } => match savepointed(connection, &statements, ran, every_must_change) {
            Ok(Err(err)) if connection.is_autocommit() => {
                tell(to, &err);
                Err(err)
            }
            Ok(counts) => Ok(Held::Counts(to, counts)),
            Err(err) => {
                tell(to, &err);
                Err(err)
            }
        },
    }
}

/// Runs `statements` in order between a savepoint and its release, counting in `ran` the
/// statements it ran: how many rows each changed (`Ok(Ok(Some))`), or `Ok(Ok(None))` when
/// `every_must_change` and one changed none, which undoes them all and skips the rest, as a
/// statement that fails does (`Ok(Err)`). `Err` when the savepoint could not be ended, which
/// leaves the group's transaction in doubt.
fn savepointed(
    connection: &Connection,
    statements: &[Statement],
    ran: &mut usize,
    every_must_change: bool,
) -> rusqlite::Result<rusqlite::Result<Option<Vec<usize>>>> {
    connection.execute_batch("SAVEPOINT job")?;
    let mut counts = Vec::with_capacity(statements.len());
    let mut outcome = Ok(true);
    for statement in statements {
        *ran += 1;
        outcome = execute(connection, statement).map(|changed| {
            counts.push(changed);
            changed > 0 || !every_must_change
        });
        if !matches!(outcome, Ok(true)) {
            break;
        }
    }
    if connection.is_autocommit() {
        // SQLite abandoned the transaction, savepoint and all.
        return Ok(outcome.map(|kept| kept.then_some(counts)));
    }
    let end = match outcome {
        Ok(true) => "RELEASE job",
        _ => "ROLLBACK TO job; RELEASE job",
    };
    connection.execute_batch(end)?;
    Ok(outcome.map(|kept| kept.then_some(counts)))
}

/// Tells every caller of `held` and `queued` that its work did not commit (whatever the reason,
/// it is the group's, not the caller's).
fn fail(held: Vec<Held>, queued: impl IntoIterator<Item = Job>, err: &rusqlite::Error) {
    tracing::error!(error = %err, "the SQLite writer's transaction failed");
    held.into_iter().for_each(|answer| answer.fail(err));
    queued.into_iter().for_each(|job| job.fail(err));
}

/// Answers a caller with what its work gave (a caller that stopped waiting meanwhile misses
/// nothing it could use).
fn answer<T>(to: Answer<T>, result: rusqlite::Result<T>) {
    let _ = to.send(result.map_err(|err| db_err(&err)));
}

/// Tells a caller that its work did not commit.
fn tell<T>(to: Answer<T>, err: &rusqlite::Error) {
    let _ = to.send(Err(writer_err(err)));
}

/// Runs one statement that returns no rows; how many rows it changed.
fn execute(connection: &Connection, statement: &Statement) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(&statement.sql)?
        .execute(rusqlite::params_from_iter(params(statement)?))
}

/// Runs one statement and reads its rows.
fn query(connection: &Connection, statement: &Statement) -> rusqlite::Result<Vec<Row>> {
    let mut prepared = connection.prepare_cached(&statement.sql)?;
    let columns: Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(String::from)
        .collect();
    let mut rows = prepared.query(rusqlite::params_from_iter(params(statement)?))?;
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

/// The parameters of `statement`, as SQLite stores them.
fn params(statement: &Statement) -> rusqlite::Result<Vec<Column>> {
    statement
        .values
        .iter()
        .flat_map(|values| values.0.iter())
        .map(param)
        .collect()
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

/// The error a caller hears: a broken foreign key as [`foreign_key_violation`](crate::db::foreign_key_violation) recognises it,
/// anything else with SQLite's words.
fn db_err(err: &rusqlite::Error) -> DbErr {
    match err.sqlite_error() {
        Some(failure) if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            DbErr::Custom(FOREIGN_KEY_FAILED.into())
        }
        _ => writer_err(err),
    }
}

fn writer_err(err: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("SQLite writer: {err}"))
}

fn stopped() -> DbErr {
    DbErr::Custom("the SQLite writer has stopped".into())
}

fn dropped() -> DbErr {
    DbErr::Custom("the SQLite writer dropped the work (it panicked)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::foreign_key_violation;

    type Answered<T> = oneshot::Receiver<Result<T, DbErr>>;

    const ADD_ONE: &str = "UPDATE t SET n = n + 1 WHERE id = ? RETURNING n";

    /// A database file holding `t` (rows `a` and `b`, `n` = 0, which may not go negative), `c`,
    /// whose rows must name a row of `t` by the time their transaction commits, and `d`, whose
    /// rows must name one at once; and the writer's connection to it.
    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0));
                 INSERT INTO t VALUES ('a', 0), ('b', 0);
                 CREATE TABLE c (parent TEXT REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED);
                 CREATE TABLE d (parent TEXT REFERENCES t (id));",
            )
            .unwrap();
        (dir, open(&path).unwrap())
    }

    fn statement(sql: &str, id: &str) -> Statement {
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, [id.into()])
    }

    fn job(sql: &str, id: &str) -> (Job, Answered<Vec<Row>>) {
        let (to, answer) = oneshot::channel();
        (Job::Returning(statement(sql, id), to), answer)
    }

    /// Work of `(sql, id)` statements that take effect together; all-or-nothing work when
    /// `every_must_change`.
    fn together(
        statements: &[(&str, &str)],
        every_must_change: bool,
    ) -> (Job, Answered<Option<Vec<usize>>>) {
        let (to, answer) = oneshot::channel();
        let statements = statements
            .iter()
            .map(|(sql, id)| statement(sql, id))
            .collect();
        let job = Job::Together {
            statements,
            every_must_change,
            to,
        };
        (job, answer)
    }

    /// All-or-nothing work of `(sql, id)` statements.
    fn unit(statements: &[(&str, &str)]) -> (Job, Answered<Option<Vec<usize>>>) {
        together(statements, true)
    }

    /// Commits `group`; how many statements ran.
    fn commit(connection: &Connection, group: Vec<Job>) -> usize {
        let ran = AtomicUsize::new(0);
        commit_group(connection, group, &ran);
        ran.into_inner()
    }

    /// The `n` a caller was answered with, or its error.
    fn answered(mut answer: Answered<Vec<Row>>) -> Result<i64, DbErr> {
        let rows = answer.try_recv().expect("answered")?;
        Ok(rows[0].get::<i64>("n").unwrap())
    }

    /// Whether all-or-nothing work took effect, or its error.
    fn changed(mut answer: Answered<Option<Vec<usize>>>) -> Result<bool, DbErr> {
        Ok(answer.try_recv().expect("answered")?.is_some())
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
        commit(&connection, vec![first, bad, last]);
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
            commit(&connection, vec![gone, kept]),
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
        commit(&connection, vec![good, orphan]);
        assert!(answered(good_answer).is_err());
        assert!(answered(orphan_answer).is_err());
        assert_eq!(n_of(&connection, "a"), 0);
        // The failed transaction is closed: the next group commits.
        assert!(connection.is_autocommit());
        let (next, next_answer) = job(ADD_ONE, "a");
        commit(&connection, vec![next]);
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
        commit(&connection, vec![before, abandon, after]);
        for answer in [before_answer, abandon_answer, after_answer] {
            assert!(answered(answer).is_err());
        }
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (0, 0));
    }

    #[test]
    fn work_with_a_statement_that_changes_no_row_is_undone_whole_and_its_group_commits() {
        let (_dir, connection) = database();
        let (first, first_answer) = job(ADD_ONE, "a");
        let (nothing, nothing_answer) = unit(&[
            ("UPDATE t SET n = n + 1 WHERE id = ?", "b"),
            ("UPDATE t SET n = n + 1 WHERE id = ?", "no such row"),
            ("UPDATE t SET n = n + 1 WHERE id = ?", "a"),
        ]);
        let (both, both_answer) = unit(&[
            ("UPDATE t SET n = n + 1 WHERE id = ?", "a"),
            ("UPDATE t SET n = n + 1 WHERE id = ?", "b"),
        ]);
        assert_eq!(
            commit(&connection, vec![first, nothing, both]),
            1 + 2 + 2,
            "the statement after the one that changed nothing did not run"
        );
        assert_eq!(answered(first_answer).unwrap(), 1);
        assert!(!changed(nothing_answer).unwrap());
        assert!(changed(both_answer).unwrap());
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (2, 1));
    }

    #[test]
    fn work_that_breaks_a_foreign_key_is_undone_whole_and_its_caller_hears_which_rule() {
        let (_dir, connection) = database();
        let (orphan, orphan_answer) = unit(&[
            ("UPDATE t SET n = 7 WHERE id = ?", "a"),
            ("INSERT INTO d (parent) VALUES (?)", "no such row"),
        ]);
        let (next, next_answer) = job(ADD_ONE, "b");
        commit(&connection, vec![orphan, next]);
        let refused = changed(orphan_answer).unwrap_err();
        assert!(foreign_key_violation(&refused), "{refused}");
        assert_eq!(answered(next_answer).unwrap(), 1);
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (0, 1));
        // Any other failure is not taken for one.
        let (negative, negative_answer) = unit(&[("UPDATE t SET n = n - 1 WHERE id = ?", "a")]);
        commit(&connection, vec![negative]);
        let refused = changed(negative_answer).unwrap_err();
        assert!(!foreign_key_violation(&refused), "{refused}");
    }

    #[test]
    fn work_done_together_runs_every_statement_and_is_undone_whole_when_one_fails() {
        let (_dir, connection) = database();
        // A statement that changes nothing does not stop the work (unlike all-or-nothing).
        let (counted, mut counted_answer) = together(
            &[
                ("UPDATE t SET n = n + 1 WHERE id = ?", "no such row"),
                ("UPDATE t SET n = n + 1 WHERE id = ?", "a"),
            ],
            false,
        );
        // The second statement breaks the CHECK: the first is undone with it.
        let (failed, mut failed_answer) = together(
            &[
                ("UPDATE t SET n = n + 5 WHERE id = ?", "b"),
                ("UPDATE t SET n = n - 9 WHERE id = ?", "a"),
            ],
            false,
        );
        let (next, next_answer) = job(ADD_ONE, "b");
        assert_eq!(commit(&connection, vec![counted, failed, next]), 2 + 2 + 1);
        assert_eq!(
            counted_answer.try_recv().unwrap().unwrap(),
            Some(vec![0, 1])
        );
        let refused = failed_answer.try_recv().unwrap().unwrap_err().to_string();
        assert!(refused.contains("CHECK constraint failed"), "{refused}");
        assert_eq!(answered(next_answer).unwrap(), 1);
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (1, 1));
    }

    #[test]
    fn a_panic_fails_its_group_and_the_writer_goes_on_with_the_next() {
        let (dir, connection) = database();
        let (queue, jobs) = mpsc::channel();
        let writer = std::thread::spawn(move || {
            let panicked = std::cell::Cell::new(false);
            let statements = AtomicUsize::new(0);
            serve(
                &connection,
                &jobs,
                &statements,
                |connection, group, statements| {
                    if !panicked.replace(true) {
                        // Dies inside its transaction, with a write in it.
                        connection
                            .execute_batch("BEGIN IMMEDIATE; UPDATE t SET n = 9 WHERE id = 'a';")
                            .unwrap();
                        panic!("a bug in the writer");
                    }
                    commit_group(connection, group, statements)
                },
            );
            connection
        });
        let (lost, lost_answer) = job(ADD_ONE, "a");
        queue.send(lost).unwrap();
        assert!(lost_answer.blocking_recv().is_err(), "its caller hears");
        // The write lock is let go without waiting for another job: another connection takes
        // it (within its busy timeout, since the writer rolls back just after the panic).
        let other = open(&dir.path().join("writer.db")).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .expect("the write lock is free");
        let (next, next_answer) = job(ADD_ONE, "a");
        queue.send(next).expect("the writer still takes work");
        let rows = next_answer.blocking_recv().unwrap().unwrap();
        assert_eq!(rows[0].get::<i64>("n").unwrap(), 1);
        drop(queue);
        let connection = writer.join().unwrap();
        assert_eq!(
            n_of(&connection, "a"),
            1,
            "the panicked group's write is gone"
        );
    }

    /// Without a writer thread (PostgreSQL, SQLite in memory) the same work runs in a
    /// transaction on the pool, with the same answers.
    #[tokio::test]
    async fn on_the_pool_work_is_all_or_nothing_too() {
        let (dir, connection) = database();
        let url = format!("sqlite://{}", dir.path().join("writer.db").display());
        let db = sea_orm::Database::connect(url).await.unwrap();
        let writer = Writer::pool();
        let add_one = |id| statement("UPDATE t SET n = n + 1 WHERE id = ?", id);
        let nothing = vec![add_one("a"), add_one("no such row")];
        assert!(!writer.all_or_nothing(&db, nothing).await.unwrap());
        let orphan = vec![
            add_one("a"),
            statement("INSERT INTO d (parent) VALUES (?)", "no such row"),
        ];
        let refused = writer.all_or_nothing(&db, orphan).await.unwrap_err();
        assert!(foreign_key_violation(&refused), "{refused}");
        assert!(
            writer
                .all_or_nothing(&db, vec![add_one("a"), add_one("b")])
                .await
                .unwrap()
        );
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (1, 1));
        // PostgreSQL's syntax on SQLite (or the other way round) is refused before anything
        // runs, even where the text would happen to work.
        let for_postgres = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE t SET n = n + 1 WHERE id = $1",
            ["a".into()],
        );
        let refused = writer
            .all_or_nothing(&db, vec![add_one("b"), for_postgres])
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("built for Postgres"),
            "{refused}"
        );
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (1, 1));
        // Work done together: every statement runs, or none takes effect.
        let counts = writer
            .together(&db, vec![add_one("no such row"), add_one("b")])
            .await
            .unwrap();
        assert_eq!(counts, vec![0, 1]);
        let minus_nine = statement("UPDATE t SET n = n - 9 WHERE id = ?", "a");
        assert!(
            writer
                .together(&db, vec![add_one("b"), minus_nine])
                .await
                .is_err()
        );
        assert_eq!((n_of(&connection, "a"), n_of(&connection, "b")), (1, 2));
    }
}
