//! SQLite's one writer (`idgraph::db::writer`): writes queued while it is busy commit as one
//! group, each caller gets its own outcome, and a group that cannot commit fails as a whole.
//! Each test makes its group on purpose: a first write holds the writer until the others are
//! queued, so they are all taken together. On PostgreSQL the writes go straight to the pool
//! (there are no groups); the token endpoint's concurrency tests run the same writes there.

use std::pin::pin;

use futures_util::poll;
use sea_orm::{ConnectionTrait, DbErr, Statement, TransactionTrait};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::TestApp;

/// An app on SQLite with a table `t (k)` holding `a` and the tables of `schema`, and the writer
/// held busy: it starts the next group once the returned sender fires. (The writer holds the
/// write lock meanwhile, so the tables are made first.)
async fn held_writer(
    schema: &str,
) -> (TestApp, oneshot::Sender<()>, JoinHandle<Result<(), DbErr>>) {
    let app = TestApp::sqlite().await;
    app.state
        .db
        .execute_unprepared(&format!(
            "CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a'); {schema}"
        ))
        .await
        .unwrap();
    let (release, released) = oneshot::channel::<()>();
    let (began, begun) = oneshot::channel::<()>();
    let writer = app.state.writer.clone();
    let hold = tokio::spawn(async move {
        writer
            .write(move |_| {
                Box::pin(async move {
                    let _ = began.send(());
                    let _ = released.await;
                    Ok::<_, DbErr>(())
                })
            })
            .await
    });
    begun.await.expect("the writer runs the holding write");
    (app, release, hold)
}

async fn insert(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    db.execute_unprepared(&format!("INSERT INTO t (k) VALUES ('{key}')"))
        .await
        .map(drop)
}

async fn keys(app: &TestApp) -> Vec<String> {
    let rows = app
        .state
        .db
        .query_all_raw(Statement::from_string(
            app.state.db.get_database_backend(),
            "SELECT k FROM t ORDER BY k",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_its_callers_alone_and_the_rest_of_its_group_commits() {
    let (app, release, hold) = held_writer("").await;
    let writer = &app.state.writer;
    let mut first = pin!(writer.write(|db| Box::pin(insert(db, "b"))));
    // Two statements in a transaction of its own (a savepoint in the group); the second
    // repeats a key, so the whole write must come undone and the group go on.
    let mut failing = pin!(writer.write(|db| {
        Box::pin(async move {
            let txn = db.begin().await?;
            insert(&txn, "c").await?;
            insert(&txn, "a").await?;
            txn.commit().await
        })
    }));
    let mut last = pin!(writer.write(|db| Box::pin(insert(db, "d"))));
    // One poll each queues the write; none can finish while the writer is held.
    assert!(poll!(first.as_mut()).is_pending());
    assert!(poll!(failing.as_mut()).is_pending());
    assert!(poll!(last.as_mut()).is_pending());
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();

    first.await.expect("the write before the failing one");
    let err = failing.await.expect_err("the repeated key");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    last.await.expect("the write after the failing one");
    assert_eq!(keys(&app).await, ["a", "b", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_cannot_commit_fails_every_write_in_it_and_the_writer_goes_on() {
    let (app, release, hold) = held_writer(
        "CREATE TABLE parent (k TEXT PRIMARY KEY); \
         CREATE TABLE child (k TEXT REFERENCES parent (k))",
    )
    .await;
    let writer = &app.state.writer;
    let mut good = pin!(writer.write(|db| Box::pin(insert(db, "b"))));
    // Foreign keys checked at the commit: the orphan passes its statement and fails the group.
    let mut orphan = pin!(writer.write(|db| {
        Box::pin(async move {
            db.execute_unprepared(
                "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES ('orphan')",
            )
            .await
            .map(drop)
        })
    }));
    assert!(poll!(good.as_mut()).is_pending());
    assert!(poll!(orphan.as_mut()).is_pending());
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();

    for (name, outcome) in [("good", good.await), ("orphan", orphan.await)] {
        let err = outcome.expect_err(name);
        assert!(err.to_string().contains("not committed"), "{name}: {err}");
    }
    assert_eq!(keys(&app).await, ["a"], "nothing of the failed group stays");
    writer
        .write(|db| Box::pin(insert(db, "e")))
        .await
        .expect("the next group commits");
    assert_eq!(keys(&app).await, ["a", "e"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_transaction_ends_midway_fails_as_a_whole() {
    let (app, release, hold) = held_writer("").await;
    let writer = &app.state.writer;
    let mut first = pin!(writer.write(|db| Box::pin(insert(db, "b"))));
    // What SQLite does by itself on a full disk or an I/O error: the whole transaction is
    // rolled back under the group's feet.
    let mut rollback = pin!(writer.write(|db| {
        Box::pin(async move { db.execute_unprepared("ROLLBACK").await.map(drop) })
    }));
    // A later write's own transaction now opens a new one, and its failure leaves it open: a
    // commit would succeed and tell the first write it happened.
    let mut failing = pin!(writer.write(|db| {
        Box::pin(async move {
            let txn = db.begin().await?;
            insert(&txn, "a").await?;
            txn.commit().await
        })
    }));
    assert!(poll!(first.as_mut()).is_pending());
    assert!(poll!(rollback.as_mut()).is_pending());
    assert!(poll!(failing.as_mut()).is_pending());
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();

    let err = first.await.expect_err("the first write was rolled back");
    assert!(err.to_string().contains("not committed"), "{err}");
    assert!(rollback.await.is_err());
    assert!(failing.await.is_err());
    assert_eq!(keys(&app).await, ["a"]);
    writer
        .write(|db| Box::pin(insert(db, "e")))
        .await
        .expect("the writer starts afresh");
    assert_eq!(keys(&app).await, ["a", "e"]);
}
