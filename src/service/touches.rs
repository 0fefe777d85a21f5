//! When each connection was last marked used by this node. A connection's `access_time` is kept
//! to the minute: a refresh marks it at most once a minute per node, so a busy app's refreshes
//! do not all rewrite (and on SQLite, lock) the connection row.

use std::collections::HashMap;
use std::sync::Mutex;

/// How often a connection's access time is written, at most.
pub const EVERY_SECS: i64 = 60;
/// Connections remembered at most; beyond it the map starts afresh.
const CAPACITY: usize = 100_000;

/// The last write of each (user, client) connection's access time by this node.
#[derive(Debug, Default)]
pub struct Touches {
    last: Mutex<HashMap<(String, String), i64>>,
}

impl Touches {
    /// Whether the connection is due a write at `now`; if it is, it counts as written.
    pub fn due(&self, user_id: &str, client_id: &str, now: i64) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let key = (user_id.to_string(), client_id.to_string());
        if last.get(&key).is_some_and(|at| now - at < EVERY_SECS) {
            return false;
        }
        if last.len() >= CAPACITY {
            last.clear();
        }
        last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_due_once_a_minute() {
        let touches = Touches::default();
        assert!(touches.due("u", "c", 1000));
        assert!(!touches.due("u", "c", 1000 + EVERY_SECS - 1));
        assert!(touches.due("u", "d", 1001));
        assert!(touches.due("u", "c", 1000 + EVERY_SECS));
    }
}
