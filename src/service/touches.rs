//! When each connection was last used, kept to the minute and written behind the requests.
//!
//! A connection's `access_time` says when its app last used it: consent sets it, and a refresh
//! marks it again once it is a minute old. A refresh does not write the mark itself: it queues
//! it ([`Touches::touch`]), and [`flush`] writes the queued marks every [`FLUSH_EVERY`], one
//! statement per second of marks and per [`BATCH`] connections, so that a busy node's refreshes
//! neither each take SQLite's write lock nor each commit on PostgreSQL. This node remembers
//! what it marked (or consent set) within the last minute and queues nothing for those.
//!
//! A failed write puts its marks back for the next flush, and a node that stops flushes before
//! it closes the database. A node killed outright loses the marks of its last few seconds: the
//! access time only informs (the connected-apps list shows it and sorts by it), it decides
//! nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter};
use tokio::task::JoinHandle;

use crate::db::entities::connections;
use crate::service::AppState;

/// How often a connection's access time is written, at most.
pub const EVERY_SECS: i64 = 60;
/// How often the queued marks are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Connections one statement marks at most (its condition has one `OR` per connection, within
/// SQLite's expression depth).
const BATCH: usize = 100;
/// Connections remembered, and marks queued, at most; beyond it the memo starts afresh and a
/// mark that finds the queue full is dropped (it only informs).
const CAPACITY: usize = 100_000;

type Connection = (String, String);

/// This node's recent marks and the marks it has yet to write.
#[derive(Debug, Default)]
pub struct Touches {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// When this node last marked (or saw consent set) each (user, client) connection.
    last: HashMap<Connection, i64>,
    /// Marks not yet written, each with its time.
    queued: HashMap<Connection, i64>,
}

impl Touches {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Queues a mark of the connection at `now`, unless this node marked it within the last
    /// minute; whether it queued one.
    pub fn touch(&self, user_id: &str, client_id: &str, now: i64) -> bool {
        let mut inner = self.lock();
        let key = (user_id.to_string(), client_id.to_string());
        if inner.last.get(&key).is_some_and(|at| now - at < EVERY_SECS) {
            return false;
        }
        if inner.last.len() >= CAPACITY {
            inner.last.clear();
        }
        inner.last.insert(key.clone(), now);
        if inner.queued.len() < CAPACITY || inner.queued.contains_key(&key) {
            inner.queued.insert(key, now);
        }
        true
    }

    /// Records that the connection was marked at `now` (a consent on this node wrote it).
    pub fn marked(&self, user_id: &str, client_id: &str, now: i64) {
        let mut inner = self.lock();
        if inner.last.len() >= CAPACITY {
            inner.last.clear();
        }
        inner
            .last
            .insert((user_id.to_string(), client_id.to_string()), now);
    }

    /// Takes the queued marks, grouped by their time.
    fn take(&self) -> BTreeMap<i64, Vec<Connection>> {
        let queued = std::mem::take(&mut self.lock().queued);
        let mut by_time: BTreeMap<i64, Vec<Connection>> = BTreeMap::new();
        for (connection, at) in queued {
            by_time.entry(at).or_default().push(connection);
        }
        by_time
    }

    /// Puts back marks that were not written; a mark queued since, being newer, stays.
    fn requeue(&self, at: i64, connections: Vec<Connection>) {
        let mut inner = self.lock();
        for connection in connections {
            let queued = inner.queued.entry(connection).or_insert(at);
            *queued = Ord::max(*queued, at);
        }
    }
}

/// Writes the queued marks; how many connections it marked. Marks that could not be written
/// are queued again, and the first error is returned.
pub async fn flush(state: &AppState) -> Result<u64, DbErr> {
    use connections::Column as C;
    let mut marked = 0;
    let mut failed = None;
    for (at, connections) in state.touches.take() {
        for batch in connections.chunks(BATCH) {
            // `(user_id = ? AND client_id = ?) OR …`: both stores look each pair up by the primary
            // key (SQLite scans the table for a row-value `IN` list).
            let pairs = batch.iter().fold(Condition::any(), |any, (user, client)| {
                any.add(
                    C::UserId
                        .eq(user.as_str())
                        .and(C::ClientId.eq(client.as_str())),
                )
            });
            let written = connections::Entity::update_many()
                .col_expr(C::AccessTime, Expr::value(at))
                .filter(C::AccessTime.lte(at - EVERY_SECS))
                .filter(pairs)
                .exec(&state.db)
                .await;
            match written {
                Ok(written) => marked += written.rows_affected,
                Err(err) => {
                    state.touches.requeue(at, batch.to_vec());
                    failed.get_or_insert(err);
                }
            }
        }
    }
    failed.map_or(Ok(marked), Err)
}

/// This node's writer of queued marks, started by [`spawn`].
pub struct MarkWriter {
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MarkWriter {
    /// Stops the writer once a flush under way has finished, then writes what is still queued.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::warn!(error = %err, "the connection-mark writer ended abnormally");
        }
    }
}

/// Starts this node's writer of queued marks: [`flush`] every [`FLUSH_EVERY`]; a failure is
/// logged and its marks wait for the next one. [`MarkWriter::stop`] ends it with a last flush.
pub fn spawn(state: AppState) -> MarkWriter {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            // Only the wait is interrupted: a flush under way always finishes.
            let stopping = tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => false,
                _ = stopped.changed() => true,
            };
            if let Err(err) = flush(&state).await {
                tracing::warn!(error = %err, "could not mark connections used; the next flush tries again");
            }
            if stopping {
                break;
            }
        }
    });
    MarkWriter { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_queued_at_most_once_a_minute() {
        let touches = Touches::default();
        assert!(touches.touch("u", "c", 1000));
        assert!(!touches.touch("u", "c", 1000 + EVERY_SECS - 1));
        assert!(touches.touch("u", "d", 1001));
        assert!(touches.touch("u", "c", 1000 + EVERY_SECS));
        let queued = touches.take();
        assert_eq!(
            queued.into_iter().collect::<Vec<_>>(),
            vec![
                (1001, vec![("u".into(), "d".into())]),
                (1000 + EVERY_SECS, vec![("u".into(), "c".into())]),
            ]
        );
        assert!(touches.take().is_empty(), "taken once");
    }

    #[test]
    fn a_consent_mark_holds_off_the_next_minute() {
        let touches = Touches::default();
        touches.marked("u", "c", 1000);
        assert!(!touches.touch("u", "c", 1000 + EVERY_SECS - 1));
        assert!(touches.take().is_empty());
        assert!(touches.touch("u", "c", 1000 + EVERY_SECS));
    }

    #[test]
    fn marks_put_back_keep_a_newer_queued_one() {
        let touches = Touches::default();
        touches.requeue(
            1000,
            vec![("u".into(), "c".into()), ("u".into(), "d".into())],
        );
        touches.requeue(900, vec![("u".into(), "c".into())]);
        touches.requeue(1100, vec![("u".into(), "d".into())]);
        let queued = touches.take();
        assert_eq!(
            queued.into_iter().collect::<Vec<_>>(),
            vec![
                (1000, vec![("u".into(), "c".into())]),
                (1100, vec![("u".into(), "d".into())]),
            ]
        );
    }
}
