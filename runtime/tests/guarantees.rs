//! What a pod promises against guests that misbehave, through the test harness: memory
//! limits, CPU limits, hostile traps, log floods, volume escapes, preStop hooks, deadlines and
//! gang admission.

use std::time::Duration;

use wasmpod::ExitReason;
use wasmpod::admission::{Node, Quantities};
use wasmpod::harness::{Container, PodBuilder};
use wasmpod::spec::Handler;
use wasmpod::status::Phase;
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(60);
const MI: u64 = 1 << 20;

#[tokio::test]
async fn a_memory_bomb_is_oom_killed_while_its_neighbour_completes() {
    let run = PodBuilder::new("bomb")
        .container(Container::new("bomb", guests::MEMBOMB_P1).memory_limit(64 * MI))
        .container(Container::new("bomb2", guests::MEMBOMB_P2).memory_limit(32 * MI))
        .container(Container::new("neighbour", guests::SLEEP_P2).args(["200"]))
        .run(DEADLINE)
        .await
        .expect("pod ran");
    for bomb in ["bomb", "bomb2"] {
        assert_eq!(run.reason(bomb), Some(ExitReason::OOMKilled), "{bomb}");
        assert_eq!(run.exit_code(bomb), Some(137), "{bomb}");
        let record = run.container(bomb).expect("status");
        assert!(
            record.memory_peak <= 64 * MI,
            "{bomb}: peak {}",
            record.memory_peak
        );
    }
    assert!(
        !run.stdout("bomb").contains("64 MiB"),
        "it never got past its limit"
    );
    assert_eq!(run.exit_code("neighbour"), Some(0));
    assert_eq!(run.stdout("neighbour"), "slept 200 ms\n");
    assert_eq!(run.phase(), Phase::Failed);
}

#[tokio::test]
async fn traps_panics_and_overflows_are_each_their_containers_error() {
    let mut pod = PodBuilder::new("hostile");
    for (name, module) in [
        ("unreachable", guests::TRAP_P1),
        ("panic", guests::PANIC_P1),
        ("oob", guests::OOB_P2),
        ("stack", guests::STACKOVERFLOW_P1),
    ] {
        pod = pod.container(Container::new(name, module));
    }
    let run = pod
        .container(Container::new("survivor", guests::HELLO_P1))
        .run(DEADLINE)
        .await
        .expect("pod ran");
    for name in ["unreachable", "panic", "oob", "stack"] {
        assert_eq!(run.reason(name), Some(ExitReason::Error), "{name}");
        assert_eq!(run.exit_code(name), Some(134), "{name}");
    }
    assert!(run.stderr("panic").contains("guest panicked on purpose"));
    assert_eq!(run.stdout("survivor"), "hello from wasm\n");
}

#[tokio::test]
async fn a_cpu_limit_throttles_a_spinning_guest_and_its_neighbour_still_runs() {
    let run = PodBuilder::new("cpu")
        .grace_period(Duration::from_millis(100))
        .active_deadline(Duration::from_secs(1))
        .container(Container::new("throttled", guests::SPIN_P1).cpu_limit(100))
        .container(Container::new("free", guests::SPIN_P2))
        .container(Container::new("neighbour", guests::SLEEP_P1).args(["50"]))
        .run(DEADLINE)
        .await
        .expect("pod ran");
    assert_eq!(run.status().reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        run.exit_code("neighbour"),
        Some(0),
        "the neighbour ran to its end"
    );
    let throttled = run.container("throttled").expect("status").cpu_time;
    // 100m over ~1.1 s of life is ~110 ms; a tick of overshoot per 100 ms period at most
    // doubles that.
    assert!(
        throttled < Duration::from_millis(400),
        "throttled used {throttled:?}"
    );
    assert!(throttled > Duration::ZERO, "throttled ran at all");
    assert_eq!(
        run.exit_code("throttled"),
        Some(137),
        "hard-stopped at the grace period"
    );
}

#[tokio::test]
async fn a_log_flood_neither_blocks_the_pod_nor_fills_the_harness_memory() {
    let run = PodBuilder::new("flood")
        .container(Container::new("flood", guests::FLOOD_P1).args(["1500"]))
        .container(Container::new("neighbour", guests::HELLO_P2))
        .run(DEADLINE)
        .await
        .expect("pod ran");
    assert_eq!(run.exit_code("flood"), Some(0));
    let logs = run.logs("flood");
    let last = logs
        .last()
        .map(|(_, line)| line.clone())
        .unwrap_or_default();
    assert!(
        last.starts_with("done ") && last.ends_with(" lines"),
        "{last}"
    );
    // The harness keeps the newest 10 MiB of a run, whatever the guest wrote: every line is
    // either kept, in order and the newest, or counted as dropped.
    let written: u64 = last
        .trim_start_matches("done ")
        .trim_end_matches(" lines")
        .parse()
        .expect("a line count");
    let dropped = run.log_lines_dropped("flood");
    assert_eq!(
        dropped + logs.len() as u64,
        written + 1,
        "every line kept or dropped"
    );
    let kept: usize = logs.iter().map(|(_, line)| line.len()).sum();
    assert!(kept <= 10 << 20, "{kept} bytes kept");
    assert_eq!(
        logs.first().and_then(|(_, line)| line.get(..14)),
        Some(format!("flood {dropped:08}").as_str()),
        "the oldest lines were dropped"
    );
    assert_eq!(run.stdout("neighbour"), "hello from wasm\n");
}

#[tokio::test]
async fn dot_dot_and_symlinks_cannot_leave_a_volume() {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "host secret\n").expect("secret");
    let volume = outside.path().join("volume");
    std::fs::create_dir(&volume).expect("volume dir");
    std::os::unix::fs::symlink(&secret, volume.join("absolute-link")).expect("symlink");
    std::os::unix::fs::symlink("../secret.txt", volume.join("relative-link")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), volume.join("dir-link")).expect("symlink");

    let mut pod = PodBuilder::new("escape").host_path("vol", &volume);
    let reads = [
        "/data/../secret.txt",
        "/data/absolute-link",
        "/data/relative-link",
        "/data/dir-link/secret.txt",
    ];
    for (i, path) in reads.iter().enumerate() {
        pod = pod.container(
            Container::new(&format!("read{i}"), guests::CAT_P1)
                .args([*path])
                .mount("vol", "/data"),
        );
    }
    for (i, path) in ["/data/relative-link", "/data/dir-link/secret.txt"]
        .iter()
        .enumerate()
    {
        pod = pod.container(
            Container::new(&format!("write{i}"), guests::WRITE_P2)
                .args([*path, "overwritten"])
                .mount("vol", "/data"),
        );
    }
    let run = pod.run(DEADLINE).await.expect("pod ran");
    for (i, path) in reads.iter().enumerate() {
        let name = format!("read{i}");
        assert_eq!(run.exit_code(&name), Some(1), "{name} read {path}");
        assert!(!run.stdout(&name).contains("host secret"), "{name} leaked");
    }
    for name in ["write0", "write1"] {
        assert_ne!(run.exit_code(name), Some(0), "{name} must fail");
    }
    assert_eq!(
        std::fs::read_to_string(&secret).expect("secret"),
        "host secret\n"
    );
}

#[tokio::test]
async fn pre_stop_output_lands_before_the_container_stops() {
    // The hook runs in the container, as `kubectl exec` would: its module is in a volume.
    let guests_dir = std::path::Path::new(guests::WRITE_P1)
        .parent()
        .expect("the guests' directory");
    let hook = [
        "/guests/write.wasm",
        "--append",
        "/data/order.txt",
        "prestop ran",
    ];
    let run = PodBuilder::new("prestop")
        .empty_dir("data")
        .host_path("guests", guests_dir)
        .active_deadline(Duration::from_millis(500))
        .container(
            Container::new("app", guests::GRACEFUL_P1)
                .args(["/data/order.txt"])
                .mount("data", "/data")
                .mount_read_only("guests", "/guests")
                .pre_stop(Handler::Exec {
                    argv: hook.map(String::from).to_vec(),
                }),
        )
        .run(DEADLINE)
        .await
        .expect("pod ran");
    assert_eq!(run.exit_code("app"), Some(0), "the app exited cleanly");
    assert_eq!(
        run.read_file("data", "order.txt").expect("order file"),
        "prestop ran\nterminated: TERM\n"
    );
    assert_eq!(run.phase(), Phase::Failed, "a deadline fails the pod");
    assert_eq!(run.status().reason.as_deref(), Some("DeadlineExceeded"));
}

#[tokio::test]
async fn gang_admission_refuses_or_admits_the_whole_pod() {
    let pod = |node| {
        let mut pod = PodBuilder::new("gang").node(node);
        for i in 0..3 {
            pod = pod.container(
                Container::new(&format!("m{i}"), guests::HELLO_P1).memory_limit(1 << 30),
            );
        }
        pod
    };
    let node = |memory| {
        Node::new(Quantities {
            memory,
            cpu_millis: 4000,
        })
    };
    let refused = pod(node(5 << 29))
        .run(DEADLINE)
        .await
        .expect_err("2.5Gi is too small");
    assert_eq!(refused.kind(), wasmpod::ErrorKind::ResourceExhausted);
    let message = refused.to_string();
    assert!(message.contains("requests memory 3Gi"), "{message}");
    assert!(message.contains("memory 2560Mi"), "{message}");
    let run = pod(node(3 << 30)).run(DEADLINE).await.expect("3Gi fits");
    assert_eq!(run.phase(), Phase::Succeeded);
}

#[tokio::test]
async fn an_empty_dir_past_its_size_limit_gets_the_pod_evicted() {
    // `small` writes within the limit and ends before the filler starts (an init container:
    // as an app container it would race the eviction, which kills whatever still runs).
    let run = PodBuilder::new("evicted")
        .empty_dir_with_limit("scratch", MI)
        .init_container(
            Container::new("small", guests::FILL_P2)
                .args(["/scratch/small", "1000"])
                .mount("scratch", "/scratch"),
        )
        .container(
            Container::new("filler", guests::FILL_P1)
                .args(["/scratch/blob", &(2 * MI).to_string(), "600000"])
                .mount("scratch", "/scratch"),
        )
        .run(DEADLINE)
        .await
        .expect("pod ran");
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(run.status().reason.as_deref(), Some("Evicted"));
    let message = run.status().message.clone().unwrap_or_default();
    assert!(
        message.contains("\"scratch\" exceeds the limit \"1Mi\""),
        "{message}"
    );
    assert_eq!(run.exit_code("filler"), Some(137), "killed at eviction");
    assert_eq!(run.exit_code("small"), Some(0));
}
