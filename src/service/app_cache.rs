//! The in-process cache of app look-ups by client id.
//!
//! The public app GET, the bulk GET, consent and the token endpoint read apps through it. An
//! entry (also "no such app") lives at most [`AppCache::TTL`]; a change made through this node
//! removes the entry at once, and a change made on another node sharing the database is seen
//! here within the TTL. The cache holds at most [`AppCache::CAPACITY`] entries and is emptied
//! when full.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::db::entities::apps;
use crate::domain::ids::ClientId;

/// What the database said about one client id, and when (Unix milliseconds).
type Entry = (Option<Arc<apps::Model>>, i64);

/// A bounded, time-limited map from client id to app row (or its absence).
pub struct AppCache {
    entries: RwLock<HashMap<ClientId, Entry>>,
    clock: Clock,
}

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
        }
    }

    /// `Some(row or None)` when a fresh entry exists, `None` on a miss.
    pub fn get(&self, client_id: &ClientId) -> Option<Option<Arc<apps::Model>>> {
        let entries = self.entries.read().ok()?;
        let (row, at) = entries.get(client_id)?;
        let ttl = i64::try_from(Self::TTL.as_millis()).unwrap_or(i64::MAX);
        (self.clock.now_millis() - at < ttl).then(|| row.clone())
    }

    /// Records what the database said about `client_id`.
    pub fn put(&self, client_id: &ClientId, row: Option<Arc<apps::Model>>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(client_id.clone(), (row, self.clock.now_millis()));
        }
    }

    /// Forgets `client_id` after a change.
    pub fn invalidate(&self, client_id: &ClientId) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(client_id);
        }
    }
}
