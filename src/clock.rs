//! Time as a parameter: every rule that depends on the time reads it from the [`Clock`] in the
//! application state, so that tests move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The source of "now". The server runs on the system clock; tests use a manual one.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` reads the system clock; `Some` holds Unix milliseconds that only
    /// [`Clock::advance`] moves.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock standing at the system's current time until it is advanced.
    pub fn manual() -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(system_millis()))),
        }
    }

    /// A manual clock standing at `millis` (Unix milliseconds): another process's clock that
    /// reads the same time as this one when it starts.
    pub fn manual_at(millis: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(millis))),
        }
    }

    /// Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        match &self.manual {
            Some(millis) => millis.load(Ordering::SeqCst),
            None => system_millis(),
        }
    }

    /// Unix seconds, the unit every stored time uses.
    pub fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Moves a manual clock forward. The system clock cannot be moved: on it this does
    /// nothing, so a test that forgets to use a manual clock fails on its own assertions.
    pub fn advance(&self, by: Duration) {
        if let Some(millis) = &self.manual {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
            millis.fetch_add(by, Ordering::SeqCst);
        }
    }
}

fn system_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let clock = Clock::manual();
        let start = clock.now_millis();
        assert_eq!(clock.now_millis(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now_millis(), start + 90_000);
        assert_eq!(clock.now(), (start + 90_000).div_euclid(1000));
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() < before + 3600);
    }
}
