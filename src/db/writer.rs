//! The hot writes (code redemptions, refresh rotations, consents), and on SQLite one writer that
//! commits them in groups.
//!
//! SQLite lets one connection write at a time. With a pool, every other writer waits in SQLite's
//! busy handler, which sleeps (1, 2, 5, 10 … ms) and tries again: under load, redemptions spent
//! their p99 asleep there, and each paid a commit of its own. So on SQLite these writes go to
//! one task that owns the writing. It takes every write queued meanwhile, runs them one after
//! the other in one `BEGIN IMMEDIATE` transaction, commits once, and only then hands each caller
//! its own result. A write never waits for another connection's lock, and a hundred
//! redemptions cost one commit.
//!
//! A write runs as it would on a plain connection, with the same code on both stores: each
//! statement is atomic by itself, and a write whose statements must hold together begins a
//! transaction of its own ([`TransactionTrait::begin`] on the executor it is given; inside a
//! group that is a savepoint). A write that fails is its caller's alone: its failed statement
//! or its rolled-back transaction changed nothing, and the group goes on. A write succeeds only
//! when its group commits; when the commit (or the `BEGIN`) fails, every write of the group
//! fails and none of them happened. Since the writes of one group run in order in one
//! transaction, each sees those before it: of twenty redemptions of one code, the first marks
//! it used and the other nineteen find it used, exactly as if they had run one at a time.
//!
//! On PostgreSQL the writes run directly on the pool: it locks rows, not the database, and
//! commits concurrently.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sea_orm::{
    DatabaseConnection, DatabaseExecutor, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    SqliteTransactionMode, TransactionOptions, TransactionTrait, UpdateMany,
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
    Queue(mpsc::Sender<Job>),
}

impl Writer {
    /// The writer for `db`. On SQLite this starts the writer task on the current runtime; it
    /// ends when the last clone of the writer is dropped.
    pub fn start(db: &DatabaseConnection) -> Self {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Self(Route::Pool(db.clone()));
        }
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(write_in_groups(db.clone(), jobs));
        Self(Route::Queue(queue))
    }

    /// Runs `work` and returns its result once it is committed (see the module's comment for
    /// what is atomic). The work runs to its end even when the caller stops waiting.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
        F: for<'a> FnOnce(&'a DatabaseExecutor<'a>) -> BoxFuture<'a, Result<T, E>> + Send + 'static,
    {
        let queue = match &self.0 {
            Route::Pool(db) => return work(&DatabaseExecutor::Connection(db)).await,
            Route::Queue(queue) => queue,
        };
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move |group| {
            Box::pin(async move {
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

/// The writer task: takes what is queued, up to a group, and commits it together.
async fn write_in_groups(db: DatabaseConnection, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(GROUP);
    while queue.recv_many(&mut jobs, GROUP).await > 0 {
        let group = jobs.drain(..).collect::<Vec<_>>();
        // A panicking write drops its group: the transaction rolls back and every caller in it
        // is told that nothing was committed. The writer lives on for the next group.
        if AssertUnwindSafe(commit_group(&db, group))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("a write panicked; its group was rolled back");
        }
    }
}

/// Runs one group of writes in one immediate transaction and settles each.
async fn commit_group(db: &DatabaseConnection, group: Vec<Job>) {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = match db.begin_with_options(options).await {
        Ok(txn) => txn,
        Err(err) => {
            tracing::error!(error = %err, writes = group.len(), "could not begin a group of writes");
            return;
        }
    };
    let mut settles = Vec::with_capacity(group.len());
    for job in group {
        settles.push(job(&txn).await);
    }
    let committed = txn.commit().await;
    if let Err(err) = &committed {
        tracing::error!(error = %err, writes = settles.len(), "a group of writes did not commit");
    }
    for settle in settles {
        settle(committed.as_ref().err());
    }
}
