//! Memory a piece of work takes on this thread: the test binary's allocator counts the bytes
//! each thread holds, so a test can bound what a request cost at its peak without reading the
//! whole process's resident size, which every test running beside it moves.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting per thread.
pub struct Counting;

thread_local! {
    /// Bytes allocated on this thread less bytes freed on it.
    static HELD: Cell<isize> = const { Cell::new(0) };
    /// The highest `HELD` since the last [`peak_growth`] began.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(change: isize) {
    // `try_with`: while a thread is torn down its counters may be gone already.
    let _ = HELD.try_with(|held| {
        let now = held.get() + change;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed to the system allocator unchanged; the counting around it
// allocates nothing (const-initialised thread-locals of `Cell`s).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = unsafe { System.realloc(ptr, layout, new_size) };
        if !grown.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        grown
    }
}

/// Runs `work` and gives, with its output, how far the bytes held on this thread rose above
/// where they started, at their highest. On a current-thread runtime that is the work's own
/// peak, whatever other tests do meanwhile.
pub async fn peak_growth<F: std::future::Future>(work: F) -> (F::Output, usize) {
    let start = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let output = work.await;
    let peak = PEAK.with(Cell::get);
    (output, usize::try_from(peak - start).unwrap_or(0))
}
