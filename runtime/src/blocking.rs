//! Blocking work (the file system, compiling on a cache miss) from async code, without holding
//! up the runtime's other tasks.
//!
//! On a multi-threaded tokio runtime the work runs right here, in
//! [`tokio::task::block_in_place`]: tokio hands this worker's other tasks to another thread
//! first, so nothing waits behind the work, and the caller waits for no thread to wake up. On
//! this 2-core VM that costs ~4 µs over the work itself, where a `spawn_blocking` round trip
//! costs 20–45 µs (two cross-thread wake-ups), which was most of a warm pod start (bench/README).
//! Elsewhere (a current-thread runtime, as `#[tokio::test]` makes, where `block_in_place` is
//! not allowed) it goes to the blocking pool.
//!
//! Work that waits for another party (a FIFO's other end, a lock held elsewhere) does not
//! belong here: it goes to the blocking pool, where waiting holds no worker.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` off the async threads' duty and returns what it returned; a panic in it
/// propagates to the caller.
pub async fn unblocked<F, R>(work: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        // No runtime: this thread may block.
        Err(_) => work(),
        Ok(_) => match tokio::task::spawn_blocking(work).await {
            Ok(done) => done,
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // The runtime is shutting down: this task will not be polled again.
                Err(_) => std::future::pending().await,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_each_flavor_and_without_a_runtime() {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        // From a worker, as spawned tasks run.
        let on_worker = multi.block_on(async { tokio::spawn(unblocked(|| 1 + 1)).await });
        assert_eq!(on_worker.expect("join"), 2);
        // From block_on's own thread.
        assert_eq!(multi.block_on(unblocked(|| 3)), 3);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(current.block_on(unblocked(|| 4)), 4);
        // Outside any runtime the work runs at the first poll.
        let mut outside = std::pin::pin!(unblocked(|| 5));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(outside.as_mut().poll(&mut cx), std::task::Poll::Ready(5));
    }

    #[test]
    fn a_panic_reaches_the_caller() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            current.block_on(unblocked(|| panic!("boom")))
        }));
        assert!(caught.is_err());
    }
}
