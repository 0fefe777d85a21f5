//! Panics anywhere in the process but in the tests' own code: a server panic in a spawned task,
//! in the SQLite writer's thread or in a blocking pool is caught there (the task ends, the
//! writer rolls back) and never reaches the test that caused it; this count does.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

static OUTSIDE_TESTS: AtomicUsize = AtomicUsize::new(0);
static WATCH: Once = Once::new();

/// How many panics have happened outside `tests/` since the watch began (the first call
/// begins it). The hook that was there still runs, so every panic is printed as before.
pub fn outside_tests() -> usize {
    WATCH.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_tests = info
                .location()
                .is_some_and(|at| at.file().starts_with("tests/"));
            if !in_tests {
                OUTSIDE_TESTS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    OUTSIDE_TESTS.load(Ordering::SeqCst)
}
