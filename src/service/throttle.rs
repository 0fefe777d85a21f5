//! Sign-in back-off: repeated failed sign-ins for one username or from one address are slowed
//! down, never locked for good.
//!
//! Every attempt is counted *before* the password is checked (a reservation), under the
//! username and under the client's address; a success then takes its reservation back and
//! clears the username. So a burst of concurrent attempts cannot all slip through before the
//! first failure is recorded: each one sees the attempts before it.
//!
//! A username gets [`USER_FREE`] attempts, an address [`ADDRESS_FREE`] (many people may share
//! one address, and spraying one password over many usernames is counted there). After that
//! each new attempt must wait [`BASE_DELAY`] doubled per further attempt, at most
//! [`MAX_DELAY`], counted from the last one. A key is forgotten [`FORGET_AFTER`] after its last
//! attempt, so a real user is never locked out for good. The counts live in this node's memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Failed attempts allowed for a username before any delay.
pub const USER_FREE: u32 = 3;
/// Failed attempts allowed from an address before any delay.
pub const ADDRESS_FREE: u32 = 10;
/// The first delay; it doubles with every further failure.
pub const BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest delay ever asked for.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// How long a key's failures are remembered after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Keys tracked at most; beyond it the stalest key is dropped.
const MAX_KEYS: usize = 100_000;

/// What an attempt is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A username, lower-cased.
    User(String),
    /// A client address.
    Address(IpAddr),
}

impl Key {
    fn free(&self) -> u32 {
        match self {
            Key::User(_) => USER_FREE,
            Key::Address(_) => ADDRESS_FREE,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    /// Unix milliseconds of the last attempt.
    last: i64,
}

/// An attempt counted before its password was checked; settle it with
/// [`SignInThrottle::succeeded`], or drop it to let it stand as a failure.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    keys: Vec<Key>,
}

/// Attempt counts by username and by address.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    keys: Mutex<HashMap<Key, Attempts>>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The delay owed after `count` attempts under a key allowing `free`.
fn delay_after(count: u32, free: u32) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(16);
    (BASE_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

impl SignInThrottle {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Attempts>> {
        self.keys
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Counts an attempt for `username` from `addr` at `now` (Unix milliseconds), or says how
    /// long it must still wait. Checking and counting happen under one lock.
    pub fn reserve(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: i64,
    ) -> Result<Reservation, Duration> {
        let mut keys = vec![Key::User(username.to_lowercase())];
        keys.extend(addr.map(Key::Address));
        let forget = millis(FORGET_AFTER);
        let mut map = self.map();
        let wait = keys
            .iter()
            .filter_map(|key| Some((key, map.get(key)?)))
            .filter(|(_, a)| now - a.last < forget)
            .map(|(key, a)| a.last + millis(delay_after(a.count, key.free())) - now)
            .max()
            .filter(|left| *left > 0);
        if let Some(left) = wait {
            return Err(Duration::from_millis(u64::try_from(left).unwrap_or(0)));
        }
        if map.len() + keys.len() > MAX_KEYS {
            map.retain(|_, a| now - a.last < forget);
            while map.len() + keys.len() > MAX_KEYS {
                let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, a)| a.last)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                map.remove(&stalest);
            }
        }
        for key in &keys {
            let entry = map.entry(key.clone()).or_insert(Attempts {
                count: 0,
                last: now,
            });
            if now - entry.last >= forget {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
        Ok(Reservation { keys })
    }

    /// The password was right: the username's count is cleared, and the address gets this
    /// attempt back (its earlier failures stand, so one working account cannot reset an
    /// address that is guessing others).
    pub fn succeeded(&self, reservation: Reservation) {
        let mut map = self.map();
        for key in reservation.keys {
            match key {
                Key::User(_) => {
                    map.remove(&key);
                }
                Key::Address(_) => {
                    if let Some(entry) = map.get_mut(&key) {
                        entry.count = entry.count.saturating_sub(1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn attempts(throttle: &SignInThrottle, user: &str, addr: Option<IpAddr>, times: u32) {
        for _ in 0..times {
            drop(throttle.reserve(user, addr, T0).expect("allowed"));
        }
    }

    #[test]
    fn the_first_failures_cost_nothing_and_the_next_attempt_waits() {
        let throttle = SignInThrottle::default();
        attempts(&throttle, "Alice", None, USER_FREE);
        assert_eq!(throttle.reserve("alice", None, T0).unwrap_err(), BASE_DELAY);
    }

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let throttle = SignInThrottle::default();
        attempts(&throttle, "alice", None, USER_FREE);
        let later = T0 + millis(BASE_DELAY);
        drop(throttle.reserve("alice", None, later).unwrap());
        assert_eq!(
            throttle.reserve("alice", None, later).unwrap_err(),
            BASE_DELAY * 2
        );
        let mut now = later;
        for _ in 0..40 {
            now += millis(MAX_DELAY);
            drop(throttle.reserve("alice", None, now).unwrap());
        }
        assert_eq!(throttle.reserve("alice", None, now).unwrap_err(), MAX_DELAY);
    }

    #[test]
    fn the_key_is_forgotten_long_after_the_last_attempt() {
        let throttle = SignInThrottle::default();
        attempts(&throttle, "alice", None, USER_FREE);
        assert!(throttle.reserve("alice", None, T0).is_err());
        let much_later = T0 + millis(FORGET_AFTER);
        attempts_at(&throttle, "alice", much_later, USER_FREE);
    }

    fn attempts_at(throttle: &SignInThrottle, user: &str, now: i64, times: u32) {
        for _ in 0..times {
            drop(throttle.reserve(user, None, now).expect("allowed afresh"));
        }
    }

    #[test]
    fn spraying_many_usernames_from_one_address_is_slowed_down() {
        let throttle = SignInThrottle::default();
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..ADDRESS_FREE {
            drop(
                throttle
                    .reserve(&format!("user{i}"), Some(addr), T0)
                    .unwrap(),
            );
        }
        assert!(throttle.reserve("someone-else", Some(addr), T0).is_err());
        // The same username from another address is not held back by that address.
        assert!(throttle.reserve("someone-else", None, T0).is_ok());
    }

    #[test]
    fn success_clears_the_username_and_returns_the_address_attempt() {
        let throttle = SignInThrottle::default();
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        attempts(&throttle, "alice", Some(addr), USER_FREE - 1);
        let good = throttle.reserve("ALICE", Some(addr), T0).unwrap();
        throttle.succeeded(good);
        attempts(&throttle, "alice", None, USER_FREE);
        // The address still holds the two failures; the success did not count against it.
        for i in 0..ADDRESS_FREE - (USER_FREE - 1) {
            drop(
                throttle
                    .reserve(&format!("user{i}"), Some(addr), T0 + 1)
                    .unwrap(),
            );
        }
        assert!(throttle.reserve("carol", Some(addr), T0 + 1).is_err());
    }
}
