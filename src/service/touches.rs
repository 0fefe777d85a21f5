//! When each connection was last marked used by this node. A connection's `access_time` is kept
//! to the minute: a refresh marks it at most once a minute per node, so a busy app's refreshes
//! do not all rewrite (and on SQLite, lock) the connection row. A consent on this node counts
//! (it sets the mark), and so does a refresh's write that changed the row: one that found the
//! mark under a minute old (set by another node, say) leaves the next one due.

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
    /// Whether this node may mark the connection used at `now`: it has not marked it within
    /// the last minute.
    pub fn due(&self, user_id: &str, client_id: &str, now: i64) -> bool {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        last.get(&(user_id.to_string(), client_id.to_string()))
            .is_none_or(|at| now - at >= EVERY_SECS)
    }

    /// Records that this node marked the connection used at `now`.
    pub fn marked(&self, user_id: &str, client_id: &str, now: i64) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if last.len() >= CAPACITY {
            last.clear();
        }
        last.insert((user_id.to_string(), client_id.to_string()), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_due_a_minute_after_it_was_marked() {
        let touches = Touches::default();
        assert!(touches.due("u", "c", 1000));
        touches.marked("u", "c", 1000);
        assert!(!touches.due("u", "c", 1000 + EVERY_SECS - 1));
        assert!(touches.due("u", "d", 1001));
        assert!(touches.due("u", "c", 1000 + EVERY_SECS));
    }
}
