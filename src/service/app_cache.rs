//! The in-process cache of app look-ups by client id.
//!
//! The public app GET, the bulk GET, consent and the token endpoint read apps (with their
//! policy and live secrets) through it. An entry (also "no such app") lives at most [`AppCache::TTL`]; a change made through this node
//! removes the entry at once, and a change made on another node sharing the database is seen
//! here within the TTL. The cache holds at most [`AppCache::CAPACITY`] entries and is emptied
//! when full.
//!
//! A read that raced a change must not put back what the change removed: a reader takes a
//! [`Ticket`] before it reads the database, and its result is kept only if nothing was
//! invalidated since.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::domain::ids::ClientId;
use crate::service::apps::AppRecord;

/// What the database said about one client id, and when (Unix milliseconds).
type Entry = (Option<Arc<AppRecord>>, i64);

/// A bounded, time-limited map from client id to app record (or its absence).
pub struct AppCache {
    entries: RwLock<HashMap<ClientId, Entry>>,
    clock: Clock,
    /// Counts invalidations.
    generation: AtomicU64,
}

/// Taken before reading the database; see [`AppCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl AppCache {
    /// How long an entry is trusted: the bound within which nodes converge.
    pub const TTL: Duration = Duration::from_secs(5);
    /// Most entries held at once.
    pub const CAPACITY: usize = 100_000;

    /// An empty cache whose entries age by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            clock,
            generation: AtomicU64::new(0),
        }
    }

    /// `Some(row or None)` when a fresh entry exists, `None` on a miss.
    pub(crate) fn get(&self, client_id: &ClientId) -> Option<Option<Arc<AppRecord>>> {
        let entries = self.entries.read().ok()?;
        let (row, at) = entries.get(client_id)?;
        let ttl = i64::try_from(Self::TTL.as_millis()).unwrap_or(i64::MAX);
        (self.clock.now_millis() - at < ttl).then(|| row.clone())
    }

    /// A ticket for a read about to start.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// Records what the database said about `client_id`, unless something was invalidated
    /// since `ticket` was taken (the read may predate that change).
    pub(crate) fn put(&self, ticket: Ticket, client_id: &ClientId, row: Option<Arc<AppRecord>>) {
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::SeqCst) != ticket.0 {
                return;
            }
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(client_id.clone(), (row, self.clock.now_millis()));
        }
    }

    /// Forgets `client_id` after a change.
    pub fn invalidate(&self, client_id: &ClientId) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.remove(client_id);
        }
    }
}
