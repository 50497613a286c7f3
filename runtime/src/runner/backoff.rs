//! Kubernetes' container restart back-off.

use std::time::Duration;

/// Kubernetes' container restart back-off: `base`, doubling up to 30 × `base`, back to `base`
/// after a run of 60 × `base` (10 s, 5 min and 10 min in Kubernetes).
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    next: Duration,
}

impl Backoff {
    /// A back-off starting at `base`.
    pub fn new(base: Duration) -> Self {
        Backoff { base, next: base }
    }

    /// The delay before the next restart of a container that ran for `ran_for`.
    pub fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.base * 60 {
            self.next = self.base;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.base * 30);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let base = Duration::from_secs(10);
        let mut b = Backoff::new(base);
        let quick = Duration::from_secs(1);
        let delays: Vec<u64> = (0..7).map(|_| b.next(quick).as_secs()).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.next(Duration::from_secs(600)).as_secs(), 10);
        assert_eq!(b.next(quick).as_secs(), 20);
    }
}
