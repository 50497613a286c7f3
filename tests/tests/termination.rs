//! `wasmpod run` ends pods as Kubernetes does: Ctrl-C terminates gracefully, a second Ctrl-C
//! kills at once, `activeDeadlineSeconds` fails the pod; admission and memory limits hold.

use wasmpod_guests as guests;
use wasmpod_tests::{Wasmpod, terminated, wait_until};

fn two_containers(volume_dir: &std::path::Path, grace_seconds: u32) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: stopping}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: {grace_seconds}
  volumes:
  - name: out
    hostPath: {{path: {dir}, type: Directory}}
  containers:
  - name: polite
    image: {graceful}
    args: ["/out/final.txt"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  - name: stubborn
    image: {sleep}
    args: ["600000"]
"#,
        dir = volume_dir.display(),
        graceful = guests::GRACEFUL_P2,
        sleep = guests::SLEEP_P1,
    )
}

#[test]
fn ctrl_c_terminates_gracefully_and_kills_what_ignores_it_at_the_grace_period() {
    let wasmpod = Wasmpod::new();
    let out = tempfile::tempdir().expect("tempdir");
    let manifest = wasmpod.manifest("pod.yaml", &two_containers(out.path(), 30));
    let manifest = manifest.to_str().expect("utf-8");
    let running = wasmpod.spawn(&["run", "--grace-period", "500ms", manifest]);
    running.wait_for_stdout("[polite] working");
    running.signal("INT");
    let outcome = running.finish();
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("[polite] terminated: TERM"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("final.txt")).expect("final line"),
        "terminated: TERM\n"
    );
    assert!(
        wasmpod
            .state_entries()
            .iter()
            .all(|e| !e.ends_with("volumes"))
    );
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let wasmpod = Wasmpod::new();
    let out = tempfile::tempdir().expect("tempdir");
    // A grace period far longer than the test's deadline: only the second signal can end it.
    let manifest = wasmpod.manifest("pod.yaml", &two_containers(out.path(), 3600));
    let manifest = manifest.to_str().expect("utf-8");
    let running = wasmpod.spawn(&["run", manifest]);
    running.wait_for_stdout("[polite] working");
    running.signal("INT");
    // The first signal was handled once the polite guest saw the request.
    running.wait_for_stdout("[polite] terminated: TERM");
    running.signal("INT");
    let outcome = running.finish();
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("killing the pod"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn the_final_status_tells_a_clean_exit_from_a_hard_stop() {
    let wasmpod = Wasmpod::new();
    let out = tempfile::tempdir().expect("tempdir");
    let manifest = wasmpod.manifest("pod.yaml", &two_containers(out.path(), 30));
    let manifest = manifest.to_str().expect("utf-8");
    let running = wasmpod.spawn(&["run", "-o", "json", "--grace-period", "200ms", manifest]);
    // With -o json stdout is kept for the status: wait for the guest's first log line.
    let final_txt = out.path().join("final.txt");
    wait_until("polite printed its first line", || {
        wasmpod.state_entries().iter().any(|e| {
            e.ends_with("logs/polite/0.log")
                && std::fs::metadata(wasmpod.state_dir().join(e)).is_ok_and(|m| m.len() > 0)
        })
    });
    running.signal("INT");
    let outcome = running.finish();
    let status = outcome.json();
    assert_eq!(terminated(&status, "polite"), (0, "Completed".into()));
    assert_eq!(terminated(&status, "stubborn"), (137, "Error".into()));
    assert!(final_txt.exists());
    assert_eq!(status["phase"], "Failed");
}

#[test]
fn active_deadline_fails_the_pod_with_deadline_exceeded() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: late}}\nspec:\n  restartPolicy: Never\n  activeDeadlineSeconds: 1\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: spin\n    image: {}\n",
        guests::SPIN_P1
    );
    let out = wasmpod.run_json(&manifest, &[]);
    assert_eq!(out.code, 1);
    let status = out.json();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["reason"], "DeadlineExceeded");
    assert_eq!(terminated(&status, "spin"), (137, "Error".into()));
}

#[test]
fn admission_refuses_a_pod_bigger_than_the_node_and_starts_nothing() {
    let wasmpod = Wasmpod::new();
    let container = |name: &str| {
        format!(
            "  - name: {name}\n    image: {}\n    resources: {{limits: {{memory: 1Gi}}}}\n",
            guests::HELLO_P1
        )
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: gang}}\nspec:\n  restartPolicy: Never\n  containers:\n{}{}{}",
        container("a"),
        container("b"),
        container("c")
    );
    let refused = wasmpod.run_json(&manifest, &["--node-memory", "2.5Gi"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("requests memory 3Gi"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("memory 2560Mi"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty());
    assert!(wasmpod.state_entries().is_empty(), "nothing started");

    let admitted = wasmpod.run_json(&manifest, &["--node-memory", "3Gi"]);
    assert_eq!(admitted.code, 0, "{}", admitted.stderr);
    assert_eq!(admitted.lines_of("c"), vec!["hello from wasm"]);
}

#[test]
fn a_memory_bomb_is_oom_killed_and_the_runner_stays_small() {
    let wasmpod = Wasmpod::new();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: bomb}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: bomb\n    image: {}\n    resources: {{limits: {{memory: 256Mi}}}}\n  - name: neighbour\n    image: {}\n    args: [\"100\"]\n",
        guests::MEMBOMB_P1,
        guests::SLEEP_P2,
    );
    let out = wasmpod.run_json(&manifest, &[]);
    let status = out.json();
    assert_eq!(terminated(&status, "bomb"), (137, "OOMKilled".into()));
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
    let peak = status["wasmpod"]["runnerPeakRSSBytes"]
        .as_u64()
        .expect("runner peak RSS");
    // The bomb holds at most its 256 MiB; the runner's own memory is small beside it.
    assert!(
        peak < (256 + 128) << 20,
        "runner peak RSS {} MiB",
        peak >> 20
    );
    let bomb_peak = status["wasmpod"]["containers"]["bomb"]["memoryPeakBytes"]
        .as_u64()
        .expect("bomb peak");
    assert!(bomb_peak <= 256 << 20, "bomb peak {bomb_peak}");
}
