//! Per-container limits and usage: memory (wasmtime `ResourceLimiter`), CPU time (the thread's
//! CPU clock around every poll of the guest) and the CPU-limit throttle (the epoch callback
//! parks a guest that used its share of the current period).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The period over which `limits.cpu` is enforced, as the kernel's CFS quota period.
pub const CPU_PERIOD: Duration = Duration::from_millis(100);

/// Bytes each table element is counted as against the memory limit.
const TABLE_ELEMENT_BYTES: usize = 8;

/// A container's resource usage and its current limits, shared between its store and the
/// sandbox (which reports the usage and may change the limits while the guest runs: an
/// in-place resize).
#[derive(Debug, Default)]
pub struct Usage {
    /// Bytes of memory and tables the guest may hold; 0 until the store sets it.
    memory_limit: AtomicU64,
    /// `limits.cpu` in millicores; 0 is unthrottled.
    cpu_limit_millis: AtomicU64,
    cpu_nanos: AtomicU64,
    memory: AtomicU64,
    memory_peak: AtomicU64,
    oom: AtomicBool,
    /// The thread CPU clock when the current poll of the guest began, in nanoseconds.
    poll_started: AtomicU64,
}

impl Usage {
    /// Bytes of linear memory and tables the guest may hold.
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit.load(Ordering::Relaxed)
    }

    /// Changes the memory limit: later growth is checked against it (memory the guest holds
    /// is never taken back, as a cgroup's lowered limit does not shrink a process either).
    pub fn set_memory_limit(&self, bytes: u64) {
        self.memory_limit.store(bytes, Ordering::Relaxed);
    }

    /// `limits.cpu` in millicores, `None` when unthrottled.
    pub fn cpu_limit(&self) -> Option<u64> {
        Some(self.cpu_limit_millis.load(Ordering::Relaxed)).filter(|m| *m > 0)
    }

    /// Changes the CPU limit, from the next epoch tick on.
    pub fn set_cpu_limit(&self, millis: Option<u64>) {
        self.cpu_limit_millis
            .store(millis.unwrap_or(0), Ordering::Relaxed);
    }

    /// CPU time the guest consumed.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }

    /// Bytes of linear memory and tables the guest holds now.
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// The most it ever held.
    pub fn memory_peak(&self) -> u64 {
        self.memory_peak.load(Ordering::Relaxed)
    }

    /// Whether the guest was stopped for growing past its memory limit.
    pub fn oom_killed(&self) -> bool {
        self.oom.load(Ordering::Relaxed)
    }

    /// Notes that a poll of the guest begins on this thread.
    pub(crate) fn poll_begins(&self) -> Duration {
        let now = thread_cpu_time();
        self.poll_started.store(nanos(now), Ordering::Relaxed);
        now
    }

    /// Adds the CPU time of the poll that began at `started` (see [`Usage::poll_begins`]).
    pub(crate) fn poll_ends(&self, started: Duration) {
        let spent = thread_cpu_time().saturating_sub(started);
        self.cpu_nanos.fetch_add(nanos(spent), Ordering::Relaxed);
    }

    /// CPU time including the poll in progress; called from inside the guest's poll.
    pub(crate) fn cpu_time_now(&self) -> Duration {
        let started = Duration::from_nanos(self.poll_started.load(Ordering::Relaxed));
        self.cpu_time() + thread_cpu_time().saturating_sub(started)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The guest grew past its memory limit: the container is `OOMKilled`.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded: the guest asked for {wanted} bytes")]
pub struct OutOfMemory {
    /// The limit.
    pub limit: u64,
    /// What the guest would have held after the growth.
    pub wanted: u64,
}

/// The store's `ResourceLimiter`: all memories and tables of the store count against one
/// budget, [`Usage::memory_limit`] at the time of each growth; growing past it traps the guest
/// with [`OutOfMemory`]. What the store holds is added to its [`Usage`] (the container's, which
/// the instances of a `wasi:http` service share: each is held to the limit on its own) and
/// taken back when the store is dropped.
#[derive(Debug)]
pub(crate) struct Limiter {
    usage: Arc<Usage>,
    /// Bytes this store holds.
    held: u64,
}

impl Limiter {
    /// The limiter of a guest whose limit starts at `limit`.
    pub(crate) fn new(limit: u64, usage: Arc<Usage>) -> Self {
        usage.set_memory_limit(limit);
        Limiter { usage, held: 0 }
    }

    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let more = (desired.saturating_sub(current)) as u64;
        let wanted = self.held.saturating_add(more);
        let limit = self.usage.memory_limit();
        if wanted > limit {
            self.usage.oom.store(true, Ordering::Relaxed);
            return Err(OutOfMemory { limit, wanted }.into());
        }
        self.held = wanted;
        let total = self.usage.memory.fetch_add(more, Ordering::Relaxed) + more;
        self.usage.memory_peak.fetch_max(total, Ordering::Relaxed);
        Ok(true)
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.usage.memory.fetch_sub(self.held, Ordering::Relaxed);
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }
}

/// The CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Enforces `limits.cpu`: over each [`CPU_PERIOD`], a guest may run `millis / 1000` of it;
/// once it used that, it is parked until the period ends. The guest is only checked at epoch
/// ticks, so it overshoots its quota by up to a tick; the overshoot is carried into the next
/// periods as debt (as CFS carries a runtime deficit), so the share holds on average.
#[derive(Debug)]
pub(crate) struct Throttle {
    quota: Duration,
    period_start: Instant,
    cpu_at_period_start: Duration,
    debt: Duration,
}

impl Throttle {
    /// A throttle to `millis` millicores from now on, for a guest that has used `cpu` so far
    /// (what it used before is not charged: a limit set by a resize starts afresh).
    pub(crate) fn new(millis: u64, cpu: Duration) -> Self {
        Throttle {
            quota: quota(millis),
            period_start: Instant::now(),
            cpu_at_period_start: cpu,
            debt: Duration::ZERO,
        }
    }

    /// Changes the limit; the current period's use and the debt stay.
    pub(crate) fn set_limit(&mut self, millis: u64) {
        self.quota = quota(millis);
    }

    /// Given the guest's CPU time so far, how long it must wait now (zero: go on).
    pub(crate) fn pause(&mut self, cpu: Duration) -> Duration {
        let now = Instant::now();
        let used = cpu.saturating_sub(self.cpu_at_period_start);
        if now.duration_since(self.period_start) >= CPU_PERIOD {
            self.debt = (self.debt + used).saturating_sub(self.quota);
            self.period_start = now;
            self.cpu_at_period_start = cpu;
            // A debt of a whole quota or more sits out this period entirely.
            return if self.debt >= self.quota {
                self.debt -= self.quota;
                CPU_PERIOD
            } else {
                Duration::ZERO
            };
        }
        if used + self.debt < self.quota {
            return Duration::ZERO;
        }
        (self.period_start + CPU_PERIOD).saturating_duration_since(now)
    }
}

/// The CPU time per [`CPU_PERIOD`] of `millis` millicores.
fn quota(millis: u64) -> Duration {
    CPU_PERIOD.mul_f64(millis as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn stores_sharing_a_usage_are_each_held_to_the_limit_and_give_back_on_drop() {
        let usage = Arc::new(Usage::default());
        let mut first = Limiter::new(1 << 20, usage.clone());
        let mut second = Limiter::new(1 << 20, usage.clone());
        assert!(first.memory_growing(0, 768 << 10, None).expect("fits"));
        assert!(
            second
                .memory_growing(0, 768 << 10, None)
                .expect("fits on its own")
        );
        assert_eq!(usage.memory(), 1536 << 10, "the usage is the sum");
        assert!(second.memory_growing(768 << 10, 2 << 20, None).is_err());
        drop(first);
        assert_eq!(usage.memory(), 768 << 10);
        drop(second);
        assert_eq!(usage.memory(), 0);
        assert_eq!(usage.memory_peak(), 1536 << 10);
    }

    #[test]
    fn memories_and_tables_share_one_budget() {
        let usage = Arc::new(Usage::default());
        let mut limiter = Limiter::new(1 << 20, usage.clone());
        assert!(limiter.memory_growing(0, 512 << 10, None).expect("fits"));
        assert!(limiter.table_growing(0, 1024, None).expect("fits"));
        assert_eq!(usage.memory(), (512 << 10) + 8 * 1024);
        let err = limiter
            .memory_growing(512 << 10, 1 << 20, None)
            .expect_err("over the limit");
        assert!(err.downcast_ref::<OutOfMemory>().is_some());
        assert!(usage.oom_killed());
        assert_eq!(usage.memory_peak(), (512 << 10) + 8 * 1024);
        // A resize applies to the next growth.
        usage.set_memory_limit(2 << 20);
        assert!(
            limiter
                .memory_growing(512 << 10, 1 << 20, None)
                .expect("fits now")
        );
    }

    #[test]
    fn throttle_parks_a_guest_that_used_its_quota() {
        let mut throttle = Throttle::new(250, Duration::ZERO);
        assert_eq!(throttle.pause(Duration::from_millis(10)), Duration::ZERO);
        let wait = throttle.pause(Duration::from_millis(30));
        assert!(wait > Duration::ZERO && wait <= CPU_PERIOD, "{wait:?}");
    }

    #[test]
    fn overshoot_is_carried_into_the_next_period() {
        let mut throttle = Throttle::new(250, Duration::ZERO);
        // The previous period ended with 35 ms used against a 25 ms quota.
        throttle.period_start = Instant::now() - CPU_PERIOD;
        assert_eq!(throttle.pause(Duration::from_millis(35)), Duration::ZERO);
        assert_eq!(throttle.debt, Duration::from_millis(10));
        // So this period allows 15 ms, not 25.
        assert_eq!(
            throttle.pause(Duration::from_millis(35 + 14)),
            Duration::ZERO
        );
        assert!(throttle.pause(Duration::from_millis(35 + 15)) > Duration::ZERO);
    }

    #[test]
    fn a_limit_set_mid_run_does_not_charge_the_cpu_used_before() {
        // Ten seconds of CPU unthrottled, then a resize to a quarter of a CPU.
        let before = Duration::from_secs(10);
        let mut throttle = Throttle::new(250, before);
        assert_eq!(
            throttle.pause(before + Duration::from_millis(10)),
            Duration::ZERO
        );
        assert!(throttle.pause(before + Duration::from_millis(30)) > Duration::ZERO);
        assert!(throttle.pause(before + Duration::from_millis(30)) <= CPU_PERIOD);
    }
}
