//! Blocking work (the file system, compiling on a cache miss) from async code, without holding
//! up the runtime's other tasks: one place that sends it to tokio's blocking pool and hands
//! back its result (a panic in it reaches the caller).
//!
//! Each call is a trip to the blocking pool, a thread wake-up each way: 20–55 µs on a small
//! VM, most of what the sandbox adds to a warm pod start (bench/README.md). Running the work in
//! `tokio::task::block_in_place` instead (tokio moves the worker's other tasks to another
//! thread and the work runs at once) made a warm start 1.4× bare wasmtime instead of 2.8×,
//! but the CRI soak then hung (an exec into a running container never answered, once in a few
//! hundred pods). The same hang came back with the blocking pool, so `block_in_place` is not
//! shown to cause it; it stays out until that hang is understood.

use tokio::runtime::Handle;

/// Runs `work` on the blocking pool (at once, without a runtime) and returns what it returned;
/// a panic in it propagates to the caller.
pub async fn unblocked<F, R>(work: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if Handle::try_current().is_err() {
        // No runtime: this thread may block.
        return work();
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // The runtime is shutting down: this task will not be polled again.
            Err(_) => std::future::pending().await,
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
