//! The hot writes (code redemptions, refresh rotations, consents, ended grants), and on SQLite
//! one writer that commits them in groups.
//!
//! SQLite lets one connection write at a time. With a pool, every other writer waits in SQLite's
//! busy handler, which sleeps (1, 2, 5, 10 … ms) and tries again: under load, redemptions spent
//! their p99 asleep there, and each paid a commit of its own. So on SQLite these writes go to
//! one writer with a connection of its own. It takes every write queued meanwhile, runs them one
//! after the other in one `BEGIN IMMEDIATE` transaction, commits once, and only then hands each
//! caller its own result. The writer runs on a thread of its own (with a runtime of its own), so
//! that each of its statements does not wait for a turn behind the requests on the async
//! workers: a group is a chain of round trips to SQLite, and only one group runs at a time.
//!
//! A write runs as it would on a plain connection, with the same code on both stores: each
//! statement is atomic by itself, and a write whose statements must hold together begins a
//! transaction of its own ([`TransactionTrait::begin`] on the executor it is given; inside a
//! group that is a savepoint). A write that fails is its caller's alone: its failed statement
//! or its rolled-back transaction changed nothing, and the group goes on. A write succeeds only
//! when its group commits; when the group cannot begin or commit, every write in it fails, and
//! none of them happened. Since the writes of one group run in order in one transaction, each
//! sees those before it: of twenty concurrent redemptions of one code, the first marks it used
//! and the other nineteen find it used, exactly as if they had run one at a time.
//!
//! Should SQLite roll the whole transaction back on its own midway (a full disk, an I/O error),
//! a marker savepoint taken after `BEGIN` goes with it: the group then fails as a whole rather
//! than commit what ran after, and the writer reconnects. The writes that ran between SQLite's
//! rollback and the end of the group ran in autocommit, so those few may have happened although
//! their callers are told they failed; no caller is ever told a write happened that did not.
//!
//! A write must not wait for another write (it would wait for itself), and a caller that stops
//! waiting before its write's turn has nothing written. Other writes (administration, sign-in)
//! stay on the pool and take SQLite's write lock between groups.
//!
//! On PostgreSQL (and for an in-memory SQLite database, which is one connection's own) the
//! writes run directly on the pool: PostgreSQL locks rows, not the database, and commits
//! concurrently.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, SqliteTransactionMode, TransactionOptions, TransactionTrait, UpdateMany,
};
use tokio::sync::{mpsc, oneshot};

/// Writes waiting for the writer, at most; a caller beyond it waits for room.
const QUEUE: usize = 4096;
/// Writes committed together, at most.
const GROUP: usize = 256;

/// Hands a write its outcome once its group's fate is known: `None` when the group committed,
/// the error when it did not.
type Settle = Box<dyn FnOnce(Option<&DbErr>) + Send>;
/// A queued write: runs in the group's transaction and returns how to settle it.
type Job = Box<dyn for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Settle> + Send>;

/// Where the hot writes go: the pool (PostgreSQL), or the one writer (SQLite).
#[derive(Clone)]
pub struct Writer(Route);

#[derive(Clone)]
enum Route {
    Pool(DatabaseConnection),
    Queue {
        queue: mpsc::Sender<Job>,
        /// Statements the writer's writes have run.
        statements: Arc<AtomicU64>,
    },
}

impl Writer {
    /// The writer for `db`, which was opened from `url`. On a SQLite file this starts the
    /// writer's thread, with a connection of its own; it ends when the last clone of the writer
    /// is dropped.
    pub async fn start(db: &DatabaseConnection, url: &str) -> Result<Self, DbErr> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if db.get_database_backend() != DbBackend::Sqlite || memory {
            return Ok(Self(Route::Pool(db.clone())));
        }
        let (queue, jobs) = mpsc::channel(QUEUE);
        let (ready, started) = oneshot::channel();
        let url = url.to_string();
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        std::thread::Builder::new()
            .name("idgraph-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready.send(Err(DbErr::Custom(format!("writer runtime: {err}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match open(&url, &counter).await {
                        Ok(db) => {
                            let _ = ready.send(Ok(()));
                            write_in_groups(&url, &counter, db, jobs).await;
                        }
                        Err(err) => {
                            let _ = ready.send(Err(err));
                        }
                    }
                });
            })
            .map_err(|err| DbErr::Custom(format!("writer thread: {err}")))?;
        started
            .await
            .map_err(|_| DbErr::Custom("the writer did not start".into()))??;
        Ok(Self(Route::Queue { queue, statements }))
    }

    /// How many statements the writer's writes have run on its own connection (none on the
    /// pool route, whose statements are the pool's): for tests and diagnostics.
    pub fn statements(&self) -> u64 {
        match &self.0 {
            Route::Pool(_) => 0,
            Route::Queue { statements, .. } => statements.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` and returns its result once it is committed (see the module's comment for
    /// what is atomic). Once queued, the work runs to its end even when the caller stops
    /// waiting, unless its turn comes after the caller has gone.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
        F: for<'a> FnOnce(&'a DatabaseExecutor<'a>) -> BoxFuture<'a, Result<T, E>> + Send + 'static,
    {
        let queue = match &self.0 {
            Route::Pool(db) => return work(&DatabaseExecutor::Connection(db)).await,
            Route::Queue { queue, .. } => queue,
        };
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move |group| {
            Box::pin(async move {
                if done.is_closed() {
                    // Nobody waits for it any more: nothing is written.
                    return Box::new(|_: Option<&DbErr>| {}) as Settle;
                }
                let result = work(&DatabaseExecutor::Transaction(group)).await;
                Box::new(move |failed: Option<&DbErr>| {
                    let result = match (result, failed) {
                        (Ok(_), Some(err)) => Err(E::from(DbErr::Custom(format!(
                            "the write was not committed: {err}"
                        )))),
                        (result, _) => result,
                    };
                    let _ = done.send(result);
                }) as Settle
            })
        });
        queue
            .send(job)
            .await
            .map_err(|_| E::from(not_committed()))?;
        // A dropped job (its group could not begin, or a write panicked) was not committed.
        outcome.await.map_err(|_| E::from(not_committed()))?
    }

    /// Runs one `UPDATE`; how many rows it changed.
    pub async fn update<E: EntityTrait>(&self, update: UpdateMany<E>) -> Result<u64, DbErr> {
        self.write(move |db| Box::pin(async move { Ok(update.exec(db).await?.rows_affected) }))
            .await
    }

    /// Runs one `UPDATE … RETURNING`; the rows it changed, as they are now.
    pub async fn update_returning<E: EntityTrait>(
        &self,
        update: UpdateMany<E>,
    ) -> Result<Vec<E::Model>, DbErr> {
        self.write(move |db| Box::pin(update.exec_with_returning(db)))
            .await
    }
}

fn not_committed() -> DbErr {
    DbErr::Custom("the write was not committed (the server log says why)".into())
}

/// The writer: takes what is queued, up to a group, and commits it together, until the last
/// sender is gone.
async fn write_in_groups(
    url: &str,
    counter: &Arc<AtomicU64>,
    mut db: DatabaseConnection,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(GROUP);
    while queue.recv_many(&mut jobs, GROUP).await > 0 {
        let group = jobs.drain(..).collect::<Vec<_>>();
        // A panicking write drops its group: the transaction rolls back and every caller in it
        // is told that nothing was committed.
        let fit = AssertUnwindSafe(commit_group(&db, group))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!("a write panicked; its group was rolled back");
                false
            });
        if !fit {
            // Whether the connection is still inside a transaction is not known: start afresh.
            let _ = db.close().await;
            db = reconnect(url, counter).await;
        }
    }
}

/// The writer's connection (a pool of one), counting its statements into `counter`.
async fn open(url: &str, counter: &Arc<AtomicU64>) -> Result<DatabaseConnection, DbErr> {
    let mut db = super::connect(url, 1).await?;
    let counter = counter.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    Ok(db)
}

async fn reconnect(url: &str, counter: &Arc<AtomicU64>) -> DatabaseConnection {
    loop {
        match open(url, counter).await {
            Ok(db) => return db,
            Err(err) => {
                tracing::error!(error = %err, "the writer cannot reconnect; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The marker savepoint that tells whether the group's transaction is still the one it began.
const MARKER: &str = "idgraph_group";

/// Runs one group of writes in one immediate transaction and settles each; whether the
/// connection is fit for the next group.
async fn commit_group(db: &DatabaseConnection, group: Vec<Job>) -> bool {
    let started = Instant::now();
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = match db.begin_with_options(options).await {
        Ok(txn) => txn,
        Err(err) => {
            tracing::error!(error = %err, writes = group.len(), "a group of writes could not begin");
            return true;
        }
    };
    if let Err(err) = txn.execute_unprepared(&format!("SAVEPOINT {MARKER}")).await {
        tracing::error!(error = %err, writes = group.len(), "a group of writes could not begin");
        return false;
    }
    let mut settles = Vec::with_capacity(group.len());
    for job in group {
        settles.push(job(&txn).await);
    }
    let committed = match txn.execute_unprepared(&format!("RELEASE {MARKER}")).await {
        Ok(_) => txn.commit().await,
        Err(err) => {
            let _ = txn.rollback().await;
            Err(DbErr::Custom(format!(
                "the transaction ended midway ({err})"
            )))
        }
    };
    let writes = settles.len();
    if let Err(err) = &committed {
        tracing::error!(error = %err, writes, "a group of writes did not commit");
    }
    for settle in settles {
        settle(committed.as_ref().err());
    }
    tracing::debug!(
        writes,
        micros = started.elapsed().as_micros() as u64,
        "group of writes done"
    );
    committed.is_ok()
}
