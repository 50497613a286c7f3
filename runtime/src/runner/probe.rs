//! Probes, as kubelet runs them: the loops that turn checks of a probe's [`Handler`]
//! ([`Sandbox::run_handler`]) into a container's `started` and `ready` and into a restart. Each
//! check has the probe's `timeoutSeconds`.

use std::time::Duration;

use crate::pod::Sandbox;
#[cfg(doc)]
use crate::spec::Handler;
use crate::spec::Probe;

/// What a failed startup or liveness probe (or postStart hook) asks for: the container's
/// restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// What failed: `startup probe`, `liveness probe`, `postStart hook`.
    pub check: &'static str,
    /// The last check's failure.
    pub message: String,
    /// The probe's own grace period for the restart, if it has one.
    pub grace: Option<Duration>,
}

/// Runs `probe` until it has failed `failure_threshold` times in a row; then it asks for a
/// restart. With `until_success`, returns `Ok` at the first success instead (a startup probe).
pub async fn until_failed(
    sandbox: &Sandbox,
    container: &str,
    probe: &Probe,
    name: &'static str,
    until_success: bool,
) -> Result<(), Failed> {
    tokio::time::sleep(probe.initial_delay).await;
    let mut failures = 0;
    loop {
        match sandbox
            .run_handler(container, &probe.action, Some(probe.timeout))
            .await
        {
            Ok(()) if until_success => return Ok(()),
            Ok(()) => failures = 0,
            Err(message) => {
                failures += 1;
                tracing::info!(container, probe = name, failures, message, "Unhealthy");
                if failures >= probe.failure_threshold {
                    return Err(Failed {
                        check: name,
                        message,
                        grace: probe.termination_grace_period,
                    });
                }
            }
        }
        tokio::time::sleep(probe.period).await;
    }
}

/// Runs readiness probe `probe` for as long as it is polled, calling `ready` with each change:
/// ready after `success_threshold` successes in a row, not ready after `failure_threshold`
/// failures in a row (not ready before its first success).
pub async fn readiness(
    sandbox: &Sandbox,
    container: &str,
    probe: &Probe,
    ready: impl Fn(bool),
) -> std::convert::Infallible {
    tokio::time::sleep(probe.initial_delay).await;
    let (mut is_ready, mut successes, mut failures) = (false, 0, 0);
    loop {
        match sandbox
            .run_handler(container, &probe.action, Some(probe.timeout))
            .await
        {
            Ok(()) => {
                (successes, failures) = (successes + 1, 0);
                if !is_ready && successes >= probe.success_threshold {
                    is_ready = true;
                    ready(true);
                }
            }
            Err(message) => {
                (successes, failures) = (0, failures + 1);
                tracing::info!(
                    container,
                    probe = "readiness probe",
                    failures,
                    message,
                    "Unhealthy"
                );
                if is_ready && failures >= probe.failure_threshold {
                    is_ready = false;
                    ready(false);
                }
            }
        }
        tokio::time::sleep(probe.period).await;
    }
}
