//! Announcing the changes that per-node caches hold (apps, live tokens) to every node.
//!
//! A change is applied to this node's caches at once, and on PostgreSQL also announced with
//! `NOTIFY idgraph_changes` after its write committed; every node `LISTEN`s on one connection of
//! its own and drops the entries the announcement names. Announcements are not durable: when
//! the listening connection drops, whatever was announced meanwhile is lost, so a node that
//! reconnects forgets everything it cached. The caches' TTLs remain the last bound. On SQLite
//! there is one node (the database is a file on it), so nothing is announced.
//!
//! Payloads are `<node> <change>`: the announcing node's random tag, so that a node skips its
//! own announcements (it applied them before announcing; hearing them again would empty what it
//! cached since), then `app <client id>` (an app, its policy or its secrets changed),
//! `grant <id>` (one grant ended), `token <jti>` (one app token revoked), `user <id>` (a user
//! changed, was disabled or deleted, or had grants ended: the node forgets that user's cached
//! claims, and with them the liveness of every grant of theirs), `tokens`
//! (grants ended that are not named one by one) or `keys` (signing keys changed: the node reads
//! them again at its next use). Anything else makes a node forget everything. The command line's
//! key rotation announces with the tag 0.
//!
//! Only a write that changed something announces, a single revocation names what it ended, and
//! a user's change names the user: a client revoking its own tokens, or a user renaming
//! themselves, in a loop cannot keep emptying every node's caches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::ids::ClientId;
use crate::service::AppState;
use crate::service::apps::AppCache;
use crate::service::keys::KeyStore;
use crate::service::tokens::LiveTokens;

/// The PostgreSQL channel.
pub const CHANNEL: &str = "idgraph_changes";

/// A change that caches may hold.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// An app, its policy or its secrets.
    App(&'a ClientId),
    /// One grant (by id) was ended.
    Grant(&'a str),
    /// One app token (by `jti`) was revoked.
    Token(&'a str),
    /// Grants or tokens were ended that are not named one by one.
    Tokens,
    /// A user (by id) changed: the claims cached with their grants may be stale.
    User(&'a str),
    /// Signing keys were added, rotated or retired.
    Keys,
}

impl Change<'_> {
    fn payload(self) -> String {
        match self {
            Change::App(client_id) => format!("app {client_id}"),
            Change::Grant(gid) => format!("grant {gid}"),
            Change::Token(jti) => format!("token {jti}"),
            Change::Tokens => "tokens".into(),
            Change::User(id) => format!("user {id}"),
            Change::Keys => "keys".into(),
        }
    }
}

/// Splits `<node> <change>`; `None` when the payload has no node tag.
fn from_node(payload: &str) -> Option<(u64, &str)> {
    let (node, change) = payload.split_once(' ')?;
    Some((node.parse().ok()?, change))
}

/// The caches a change may concern.
#[derive(Clone)]
pub(crate) struct Caches {
    /// Apps by client id.
    pub(crate) apps: Arc<AppCache>,
    /// Live grants and unrevoked app tokens.
    pub(crate) live: Arc<LiveTokens>,
    /// The signing keys.
    pub(crate) keys: Arc<KeyStore>,
}

impl Caches {
    /// Drops what `payload` names; everything when it names nothing known.
    fn forget(&self, payload: &str) {
        match payload {
            "tokens" => return self.live.clear(),
            "keys" => return self.keys.changed(),
            _ => {}
        }
        match payload.split_once(' ') {
            Some(("app", id)) => match ClientId::parse(id) {
                Some(client_id) => self.apps.invalidate(&client_id),
                None => self.forget_everything(),
            },
            Some(("grant", gid)) => self.live.forget_grant(gid),
            Some(("token", jti)) => self.live.forget_token(jti),
            Some(("user", id)) => self.live.forget_user(id),
            _ => self.forget_everything(),
        }
    }

    fn forget_everything(&self) {
        self.apps.clear();
        self.live.clear();
        self.keys.changed();
    }
}

/// Applies `change` to this node's caches and announces it to the others. Call it after the
/// change committed. A failed announcement is logged, not returned: the change stands, and the
/// other nodes see it within their caches' TTL.
pub async fn announce(state: &AppState, change: Change<'_>) {
    let payload = change.payload();
    state.caches().forget(&payload);
    if state.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    match notify(&state.db, state.listener.node, &payload).await {
        Ok(_) => {
            state.listener.sent.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => {
            tracing::warn!(error = %err, "a change could not be announced to the other nodes");
        }
    }
}

/// Beyond this many grants ended at once, an ending is announced as a bulk change.
const GRANTS_NAMED_ONE_BY_ONE: usize = 16;

/// Announces that the grants `ids` ended (after the write that ended them committed): by id,
/// so that each node drops just those and ending grants in a loop cannot keep emptying every
/// node's caches; as one bulk change beyond a handful.
pub(crate) async fn grants_ended(state: &AppState, ids: &[String]) {
    if ids.len() > GRANTS_NAMED_ONE_BY_ONE {
        announce(state, Change::Tokens).await;
    } else {
        for id in ids {
            announce(state, Change::Grant(id)).await;
        }
    }
}

/// The `application_name` of every node's listening connection (`pg_stat_activity` shows it).
pub const LISTENER_NAME: &str = "idgraph-changes";

/// A listener on a connection of its own, `LISTEN`ing on [`CHANNEL`]. It does not reconnect by
/// itself: a lost connection is answered as such, so that the caches are emptied before
/// anything is heard again (see [`Listener::start`]).
async fn listen(database_url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let options: PgConnectOptions = database_url.parse()?;
    // A connection given back is closed rather than pinged, and lives as long as the listener
    // does. (Dropping a listener whose connection went half-open still sends `UNLISTEN *`,
    // which waits for TCP to give up: a background task and a socket linger meanwhile, never
    // the node, which listens on a new pool at once.)
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .after_release(|_, _| Box::pin(async { Ok(false) }))
        .connect_lazy_with(options.application_name(LISTENER_NAME));
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Announces `change` from a process that serves nothing (the command line): every node hears
/// it. Nothing is announced on SQLite.
pub async fn announce_from_outside(
    db: &sea_orm::DatabaseConnection,
    change: Change<'_>,
) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    notify(db, OUTSIDE, &change.payload()).await
}

/// Deletes the grant `grant_id` and, when it was there, announces it: on PostgreSQL in one
/// statement (`WITH ended AS (DELETE … RETURNING) SELECT pg_notify(…) FROM ended`), so that a
/// revocation costs one round trip and one commit, and the deletion and its announcement stand
/// or fall together. A grant through which the app received an ID token naming a browser
/// session that lasts is remembered in `session_apps` (on PostgreSQL in the same statement, on
/// SQLite just before the delete), so that ending the session still tells the app
/// (`backchannel::sessions_ended`). This node's caches forget the grant either way: one that
/// another node deleted, whose announcement has not reached this node yet (or was lost), must
/// not outlive a revocation answered here. When nothing was deleted the entry is forgotten only if held, so
/// that revoking a dead token in a loop cannot keep every other read from filling the cache.
/// Returns whether the grant was there.
pub(crate) async fn end_grant_announced(
    state: &AppState,
    grant_id: &str,
) -> Result<bool, sea_orm::DbErr> {
    let change = Change::Grant(grant_id);
    let payload = change.payload();
    let now = state.clock.now();
    let ended = if state.db.get_database_backend() == DbBackend::Postgres {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH ended AS (DELETE FROM grants WHERE id = $1 \
                 RETURNING id, sid, client_id, user_id, code_used_at), \
             remembered AS (INSERT INTO session_apps (sid, client_id, user_id) \
                 SELECT e.sid, e.client_id, e.user_id FROM ended e \
                 WHERE e.sid IS NOT NULL AND e.code_used_at IS NOT NULL AND EXISTS \
                     (SELECT 1 FROM browser_sessions b WHERE b.sid = e.sid AND b.expires_at > $4) \
                 ON CONFLICT DO NOTHING) \
             SELECT pg_notify($2, $3) FROM ended",
            [
                grant_id.into(),
                CHANNEL.into(),
                format!("{} {payload}", state.listener.node).into(),
                now.into(),
            ],
        );
        let ended = state.db.query_one_raw(statement).await?.is_some();
        if ended {
            state.listener.sent.fetch_add(1, Ordering::Relaxed);
        }
        ended
    } else {
        // Two statements that take effect together, queued on SQLite's writer as one job:
        // the app is remembered from the grant as it still is, then the grant is deleted, so a
        // sign-out that finds the grant gone finds the app owed a logout token. (The writer
        // thread holds the write lock for its whole group anyway; only SQLite in memory, which
        // has no writer thread, runs the two in a transaction on the pool.)
        let remember = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT OR IGNORE INTO session_apps (sid, client_id, user_id) \
             SELECT g.sid, g.client_id, g.user_id FROM grants g \
             WHERE g.id = ? AND g.sid IS NOT NULL AND g.code_used_at IS NOT NULL AND EXISTS \
                 (SELECT 1 FROM browser_sessions b WHERE b.sid = g.sid AND b.expires_at > ?)",
            [grant_id.into(), now.into()],
        );
        let delete = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "DELETE FROM grants WHERE id = ?",
            [grant_id.into()],
        );
        let changed = state
            .writer
            .together(&state.db, vec![remember, delete])
            .await?;
        matches!(changed[..], [_remembered, deleted] if deleted > 0)
    };
    if ended {
        state.caches().forget(&payload);
    } else {
        state.live.forget_gone_grant(grant_id);
    }
    Ok(ended)
}

/// How long the listener waits in silence before it checks that its connection still answers.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// How long that check may take before the connection counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The listener's next notification. After [`IDLE_CHECK`] of silence it runs `SELECT 1` on its
/// own connection: a connection cut without a word (a failover, a network partition, a
/// firewall dropping idle flows) never reports an error by itself, and a node would otherwise
/// wait on it forever, its caches bounded only by their lifetimes. A check that fails, or does
/// not answer within [`CHECK_TIMEOUT`], is answered as a lost connection. Receiving is
/// cancel-safe in sqlx (a message is taken from the buffer only once whole), so the timeout
/// loses nothing.
async fn next_event(
    listener: &mut PgListener,
) -> Result<Option<sea_orm::sqlx::postgres::PgNotification>, sea_orm::sqlx::Error> {
    loop {
        if let Ok(event) = tokio::time::timeout(IDLE_CHECK, listener.try_recv()).await {
            return event;
        }
        let check = sea_orm::sqlx::query("SELECT 1").execute(&mut *listener);
        match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                return Err(sea_orm::sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the change listener's connection did not answer its check",
                )));
            }
        }
    }
}

/// `NOTIFY idgraph_changes` with `<node> <payload>`.
async fn notify(
    db: &sea_orm::DatabaseConnection,
    node: u64,
    payload: &str,
) -> Result<(), sea_orm::DbErr> {
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), format!("{node} {payload}").into()],
    );
    db.query_one_raw(statement).await.map(drop)
}

/// The node tag of announcements made outside any node.
const OUTSIDE: u64 = 0;

/// This node's listener; it stops when the last state holding it is dropped.
pub struct Listener {
    /// This node's tag in its announcements.
    node: u64,
    /// Announcements this node sent.
    sent: AtomicU64,
    received: watch::Receiver<u64>,
    /// Counts the times the listening connection was found lost and listened again.
    relistened: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// How many announcements this node has sent.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts the announcements received from other nodes so far (tests wait on it).
    pub fn received(&self) -> watch::Receiver<u64> {
        self.received.clone()
    }

    /// Counts the times the listening connection was lost and `LISTEN` was in place again,
    /// each time with the caches emptied (tests wait on it).
    pub fn relistened(&self) -> watch::Receiver<u64> {
        self.relistened.clone()
    }

    /// A listener that hears nothing (SQLite: one node).
    pub fn none() -> Self {
        Self {
            node: rand::random::<u64>().max(1),
            sent: AtomicU64::new(0),
            received: watch::channel(0).1,
            relistened: watch::channel(0).1,
            task: None,
        }
    }

    /// Starts listening on a connection of its own to `database_url`, which must be PostgreSQL;
    /// returns once `LISTEN` is in place, so nothing announced after this returns is missed.
    pub(crate) async fn start(
        database_url: &str,
        caches: Caches,
    ) -> Result<Self, sea_orm::sqlx::Error> {
        let node = rand::random::<u64>().max(1);
        let mut listener = listen(database_url).await?;
        let database_url = database_url.to_string();
        let (count, received) = watch::channel(0);
        let (again, relistened) = watch::channel(0);
        let task = tokio::spawn(async move {
            let mut listening_since = std::time::Instant::now();
            loop {
                let lost = match next_event(&mut listener).await {
                    Ok(Some(notification)) => {
                        match from_node(notification.payload()) {
                            Some((from, _)) if from == node => continue,
                            Some((_, change)) => caches.forget(change),
                            None => caches.forget_everything(),
                        }
                        count.send_modify(|n| *n += 1);
                        continue;
                    }
                    // The connection dropped (the listener does not reconnect on its own, so the
                    // loss is told here before anything is heard again).
                    Ok(None) => "the connection closed".to_string(),
                    Err(err) => err.to_string(),
                };
                // Whatever was announced while the connection was down is lost: forget now,
                // listen on a new connection (retrying every second), and forget again once
                // listening (entries cached meanwhile may have missed announcements).
                tracing::warn!(error = %lost, "change listener lost its connection");
                caches.forget_everything();
                // A connection cut again right after it listened (a proxy, an idle killer) is
                // not reopened in a tight loop.
                if listening_since.elapsed() < Duration::from_secs(5) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                listener = loop {
                    match listen(&database_url).await {
                        Ok(fresh) => break fresh,
                        Err(err) => {
                            tracing::warn!(error = %err, "change listener still down");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                };
                tracing::warn!("change listener reconnected; caches emptied");
                listening_since = std::time::Instant::now();
                caches.forget_everything();
                again.send_modify(|n| *n += 1);
            }
        });
        Ok(Self {
            node,
            sent: AtomicU64::new(0),
            received,
            relistened,
            task: Some(task),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
