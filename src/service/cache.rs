//! In-process caches with a bounded lifetime, for the reads on the hot paths: apps by client id
//! (the public app GET, the bulk GET, consent and the token endpoint) and live grants (userinfo
//! and introspection).
//!
//! An entry lives at most the cache's TTL; a change made through this node removes it at once,
//! and a change made on another node sharing the database removes it when that node's
//! announcement arrives ([`crate::service::changes`]), or, should the announcement be lost,
//! within the TTL. A cache holds at most [`Cache::CAPACITY`] entries and is emptied when full.
//!
//! A read that raced a change must not put back what the change removed: a reader takes a
//! [`Ticket`] before it reads the database, and its result is kept only if nothing was
//! invalidated since.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Clock;

/// A bounded, time-limited map.
pub struct Cache<K, V> {
    /// Each value with when it was read (Unix milliseconds).
    entries: RwLock<HashMap<K, (V, i64)>>,
    clock: Clock,
    ttl_millis: i64,
    /// Counts invalidations.
    generation: AtomicU64,
}

/// Taken before reading the database; see [`Cache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// Most entries held at once.
    pub const CAPACITY: usize = 100_000;

    /// An empty cache whose entries are trusted for `ttl` by `clock`.
    pub fn new(clock: Clock, ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            clock,
            ttl_millis: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            generation: AtomicU64::new(0),
        }
    }

    /// The value of a fresh entry for `key`, or `None` on a miss.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let entries = self.entries.read().ok()?;
        let (value, at) = entries.get(key)?;
        (self.clock.now_millis() - at < self.ttl_millis).then(|| value.clone())
    }

    /// A ticket for a read about to start.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// Records what the database said about `key`, unless something was invalidated since
    /// `ticket` was taken (the read may predate that change).
    pub fn put(&self, ticket: Ticket, key: K, value: V) {
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::SeqCst) != ticket.0 {
                return;
            }
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(key, (value, self.clock.now_millis()));
        }
    }

    /// Forgets `key` after a change.
    pub fn invalidate<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.remove(key);
        }
    }

    /// Forgets `key` if it is held, counting an invalidation only then (see [`Cache::put`]):
    /// for a change that found its row already gone, which a loop may repeat at no cost to its
    /// sender. A read of the row in flight at that moment may still put it back, as it could
    /// before the change was made here; the change's own announcement, or the TTL, ends it.
    pub fn invalidate_if_held<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        if let Ok(mut entries) = self.entries.write()
            && entries.remove(key).is_some()
        {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Forgets everything, after a change whose keys are not known one by one.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            entries.clear();
        }
    }
}
