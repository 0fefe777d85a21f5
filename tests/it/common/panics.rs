//! Panics in the server during a test, wherever they happen: a server panic in a spawned task,
//! in the SQLite writer's thread or in a blocking pool is caught there (the task ends, the
//! writer rolls back) and never reaches the test that caused it; this count does.
//!
//! The tests of this binary run in one process, each on a thread named after it, so a panic
//! is counted unless it is a test's own assertion (its location is under `tests/`) or happens
//! on another test's thread (one named like a test, `module::name`, that is not watching).
//! Panics on the runtimes' worker and blocking threads cannot be told apart by test: they are
//! counted, a server panic being a defect whichever test meets it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTED: AtomicUsize = AtomicUsize::new(0);
/// The names of the test threads watching; `None` until the hook is installed.
static WATCHERS: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// How many server panics have happened since the watch began; the calling test's thread
/// watches from its first call on. The hook that was there still runs, so every panic is
/// printed as before.
pub fn counted() -> usize {
    let me = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    let mut watchers = WATCHERS.lock().unwrap_or_else(|e| e.into_inner());
    let names = watchers.get_or_insert_with(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if counts(info) {
                COUNTED.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
        Vec::new()
    });
    if !names.contains(&me) {
        names.push(me);
    }
    drop(watchers);
    COUNTED.load(Ordering::SeqCst)
}

/// Whether the panic `info` describes is one to count (see the module's comment).
fn counts(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let in_tests = info
        .location()
        .is_some_and(|at| at.file().starts_with("tests/"));
    if in_tests {
        return false;
    }
    let thread = std::thread::current();
    let Some(name) = thread.name().filter(|name| name.contains("::")) else {
        return true;
    };
    // A poisoned lock (a panic while it was held) counts the panic rather than lose it.
    WATCHERS
        .lock()
        .map(|watchers| watchers.iter().flatten().any(|watcher| watcher == name))
        .unwrap_or(true)
}
