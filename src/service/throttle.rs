//! Sign-in back-off: repeated failed sign-ins for one username or from one address are slowed
//! down, never locked for good.
//!
//! The first [`FREE_FAILURES`] failures cost nothing. After that each new attempt must wait
//! [`BASE_DELAY`] doubled per further failure, at most [`MAX_DELAY`], counted from the last
//! failure. A key is forgotten [`FORGET_AFTER`] after its last failure, and a success clears the
//! username's count (not the address's, so one working account cannot reset an address that is
//! guessing others). The counts live in this node's memory: behind several nodes an attacker's
//! budget is multiplied by the node count, which the cap on the delay keeps bounded anyway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before any delay.
pub const FREE_FAILURES: u32 = 3;
/// The first delay; it doubles with every further failure.
pub const BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest delay ever asked for.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// How long a key's failures are remembered after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Keys tracked at most; beyond it the stalest key is dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failure counts by key (`user:<name>` and `addr:<ip>`).
#[derive(Debug, Default)]
pub struct SignInThrottle {
    keys: Mutex<HashMap<String, Failures>>,
}

/// The keys one attempt is counted under.
pub fn keys(username: &str, addr: Option<IpAddr>) -> Vec<String> {
    let mut keys = vec![format!("user:{}", username.to_lowercase())];
    if let Some(addr) = addr {
        keys.push(format!("addr:{addr}"));
    }
    keys
}

/// The delay owed after `count` failures.
fn delay_after(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(16);
    (BASE_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

impl SignInThrottle {
    /// How long an attempt under `keys` must still wait at `now`; `None` when it may go ahead.
    pub fn wait(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let map = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        keys.iter()
            .filter_map(|key| map.get(key))
            .filter(|f| now.duration_since(f.last) < FORGET_AFTER)
            .map(|f| (f.last + delay_after(f.count)).saturating_duration_since(now))
            .filter(|left| !left.is_zero())
            .max()
    }

    /// Counts a failed attempt under every key.
    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut map = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if map.len() + keys.len() > MAX_KEYS {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            while map.len() + keys.len() > MAX_KEYS {
                let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&stalest);
            }
        }
        for key in keys {
            let entry = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
    }

    /// Clears the username's count after a successful sign-in.
    pub fn succeeded(&self, username: &str) {
        let mut map = self
            .keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        map.remove(&format!("user:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &SignInThrottle, keys: &[String], now: Instant, times: u32) {
        for _ in 0..times {
            throttle.failed(keys, now);
        }
    }

    #[test]
    fn the_first_failures_cost_nothing() {
        let throttle = SignInThrottle::default();
        let keys = keys("Alice", None);
        let now = Instant::now();
        fail(&throttle, &keys, now, FREE_FAILURES - 1);
        assert_eq!(throttle.wait(&keys, now), None);
    }

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let throttle = SignInThrottle::default();
        let keys = keys("alice", None);
        let now = Instant::now();
        fail(&throttle, &keys, now, FREE_FAILURES);
        assert_eq!(throttle.wait(&keys, now), Some(BASE_DELAY));
        throttle.failed(&keys, now);
        assert_eq!(throttle.wait(&keys, now), Some(BASE_DELAY * 2));
        fail(&throttle, &keys, now, 40);
        assert_eq!(throttle.wait(&keys, now), Some(MAX_DELAY));
    }

    #[test]
    fn the_wait_runs_out_and_the_key_is_forgotten() {
        let throttle = SignInThrottle::default();
        let keys = keys("alice", None);
        let now = Instant::now();
        fail(&throttle, &keys, now, 50);
        assert_eq!(throttle.wait(&keys, now + MAX_DELAY), None);
        // Long after, one more failure starts the count afresh.
        throttle.failed(&keys, now + FORGET_AFTER);
        assert_eq!(throttle.wait(&keys, now + FORGET_AFTER), None);
    }

    #[test]
    fn usernames_are_counted_case_insensitively_and_addresses_apart() {
        let throttle = SignInThrottle::default();
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        fail(&throttle, &keys("Mallory", Some(addr)), now, FREE_FAILURES);
        assert!(throttle.wait(&keys("mallory", None), now).is_some());
        // Another username from the same address waits too; from elsewhere it does not.
        assert!(throttle.wait(&keys("bob", Some(addr)), now).is_some());
        assert_eq!(throttle.wait(&keys("bob", None), now), None);
    }

    #[test]
    fn success_clears_the_username_but_not_the_address() {
        let throttle = SignInThrottle::default();
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        fail(&throttle, &keys("alice", Some(addr)), now, FREE_FAILURES);
        throttle.succeeded("ALICE");
        assert_eq!(throttle.wait(&keys("alice", None), now), None);
        assert!(throttle.wait(&keys("alice", Some(addr)), now).is_some());
    }
}
