//! Announcing the changes that per-node caches hold (apps, live tokens) to every node.
//!
//! A change is applied to this node's caches at once, and on PostgreSQL also announced with
//! `NOTIFY idgraph_changes` after its write committed; every node `LISTEN`s on one connection of
//! its own and drops the entries the announcement names. Announcements are not durable: when
//! the listening connection drops, whatever was announced meanwhile is lost, so a node that
//! reconnects forgets everything it cached. The caches' TTLs remain the last bound. On SQLite
//! there is one node (the database is a file on it), so nothing is announced.
//!
//! Payloads: `app <client id>` (an app, its policy or its secrets changed) and `tokens` (some
//! grant or token was ended). Anything else makes a node forget everything.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::ids::ClientId;
use crate::service::AppState;
use crate::service::apps::AppCache;
use crate::service::tokens::LiveTokens;

/// The PostgreSQL channel.
pub const CHANNEL: &str = "idgraph_changes";

/// A change that caches may hold.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// An app, its policy or its secrets.
    App(&'a ClientId),
    /// Some grant or app token was ended.
    Tokens,
}

impl Change<'_> {
    fn payload(self) -> String {
        match self {
            Change::App(client_id) => format!("app {client_id}"),
            Change::Tokens => "tokens".into(),
        }
    }
}

/// The caches a change may concern.
#[derive(Clone)]
pub(crate) struct Caches {
    /// Apps by client id.
    pub(crate) apps: Arc<AppCache>,
    /// Live grants and unrevoked app tokens.
    pub(crate) live: Arc<LiveTokens>,
}

impl Caches {
    /// Drops what `payload` names; everything when it names nothing known.
    fn forget(&self, payload: &str) {
        if payload == "tokens" {
            return self.live.clear();
        }
        match payload.strip_prefix("app ").and_then(ClientId::parse) {
            Some(client_id) => self.apps.invalidate(&client_id),
            None => self.forget_everything(),
        }
    }

    fn forget_everything(&self) {
        self.apps.clear();
        self.live.clear();
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
    let notify = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), payload.into()],
    );
    if let Err(err) = state.db.query_one_raw(notify).await {
        tracing::warn!(error = %err, "a change could not be announced to the other nodes");
    }
}

/// This node's listener; it stops when the last state holding it is dropped.
pub struct Listener {
    received: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Counts the announcements received so far (tests wait on it).
    pub fn received(&self) -> watch::Receiver<u64> {
        self.received.clone()
    }

    /// A listener that hears nothing (SQLite: one node).
    pub fn none() -> Self {
        Self {
            received: watch::channel(0).1,
            task: None,
        }
    }

    /// Starts listening on a connection of its own to `database_url`, which must be PostgreSQL;
    /// returns once `LISTEN` is in place, so nothing announced after this returns is missed.
    pub(crate) async fn start(
        database_url: &str,
        caches: Caches,
    ) -> Result<Self, sea_orm::sqlx::Error> {
        let mut listener = PgListener::connect(database_url).await?;
        listener.listen(CHANNEL).await?;
        let (count, received) = watch::channel(0);
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        caches.forget(notification.payload());
                        count.send_modify(|n| *n += 1);
                    }
                    Ok(None) => {
                        tracing::warn!("change listener reconnected; caches emptied");
                        caches.forget_everything();
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "change listener lost its connection");
                        caches.forget_everything();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self {
            received,
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
