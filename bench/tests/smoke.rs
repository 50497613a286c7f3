//! The pod start benchmark runs every case end to end (a few iterations, no timing checked).

use wasmpod_bench::{Options, run};

#[test]
fn pod_start_bench_runs_every_case() {
    let options = Options {
        iters: 3,
        warmup: 1,
        disk_iters: 3,
        cold_iters: 3,
        profile_iters: 3,
        ..Options::default()
    };
    let report = run(&options).expect("bench run");
    assert_eq!(report.bare.len(), 3);
    assert_eq!(report.engine_run.len(), 3);
    assert_eq!(report.warm.len(), 3);
    assert_eq!(report.warm_concurrent.len(), 3);
    assert_eq!(report.warm_steps.len(), 3);
    assert_eq!(report.disk.len(), 3);
    assert_eq!(report.cold.len(), 3);
    assert!(report.pieces.iter().all(|p| p.samples.len() == 3));
    assert!(report.to_string().contains("wasmpod warm / bare"));
}
