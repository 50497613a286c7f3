//! Graceful termination through the sandbox API: the termination request, the grace period,
//! the hard stop.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmpod::engine::EXIT_KILLED;
use wasmpod::spec::{ContainerSpec, MountSpec, VolumeSource, VolumeSpec};
use wasmpod::{ContainerConfig, Engine, EngineConfig, ExitReason, Sandbox, SandboxConfig};
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(30);

/// The names of the containers that wrote output so far: what `until_output` waits on.
type Printed = tokio::sync::watch::Receiver<BTreeSet<String>>;

async fn sandbox(dir: &std::path::Path) -> (Sandbox, Printed) {
    let engine = Engine::new(EngineConfig {
        cache_dir: None,
        ..EngineConfig::default()
    })
    .expect("engine");
    let config = SandboxConfig {
        volumes: vec![VolumeSpec {
            name: "data".into(),
            source: VolumeSource::EmptyDir {
                memory: false,
                size_limit: None,
            },
        }],
        ..SandboxConfig::new("term", dir.to_owned())
    };
    let (printed, watch) = tokio::sync::watch::channel(BTreeSet::new());
    let config = SandboxConfig {
        log_observer: Some(Arc::new(move |name: &str, _, _, _| {
            printed.send_if_modified(|names| names.insert(name.to_owned()));
        })),
        ..config
    };
    (
        Sandbox::create(&engine, config).await.expect("sandbox"),
        watch,
    )
}

async fn start(sandbox: &Sandbox, name: &str, module: &str, args: &[&str]) {
    let mut spec = ContainerSpec::new(name, module);
    spec.argv.extend(args.iter().map(|a| a.to_string()));
    spec.mounts.push(MountSpec {
        volume: "data".into(),
        mount_path: "/data".into(),
        read_only: false,
        sub_path: None,
    });
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await
        .expect("create");
    sandbox.start_container(name).expect("start");
}

/// Waits until container `name` wrote its first line: the guest is past its start.
async fn until_output(printed: &mut Printed, name: &str) {
    tokio::time::timeout(DEADLINE, printed.wait_for(|names| names.contains(name)))
        .await
        .expect("guest wrote its first line before the deadline")
        .expect("the sandbox is alive");
}

#[tokio::test]
async fn a_cooperative_guest_sees_the_request_and_exits_with_its_own_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, mut printed) = sandbox(dir.path()).await;
    start(
        &sandbox,
        "polite",
        guests::GRACEFUL_P1,
        &["/data/final.txt", "3"],
    )
    .await;
    start(
        &sandbox,
        "polite2",
        guests::GRACEFUL_P2,
        &["/data/final2.txt"],
    )
    .await;
    until_output(&mut printed, "polite").await;
    until_output(&mut printed, "polite2").await;

    let grace = Duration::from_secs(20);
    let began = Instant::now();
    let (a, b) = tokio::join!(
        sandbox.stop_container("polite", grace),
        sandbox.stop_container("polite2", grace)
    );
    let a = a.expect("stop").expect("it ran");
    let b = b.expect("stop").expect("it ran");
    assert!(
        began.elapsed() < grace,
        "both exited before the grace period ended"
    );
    assert_eq!(
        (a.code, a.reason),
        (3, ExitReason::Error),
        "its own code, not 137"
    );
    assert_eq!((b.code, b.reason), (0, ExitReason::Completed));
    let volume = sandbox.volume_path("data").expect("volume");
    for file in ["final.txt", "final2.txt"] {
        let text = std::fs::read_to_string(volume.join(file)).expect("final line");
        assert_eq!(text, "terminated: TERM\n");
    }
    sandbox.delete().await.expect("delete");
}

#[tokio::test]
async fn a_guest_that_ignores_the_request_is_killed_at_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, mut printed) = sandbox(dir.path()).await;
    start(&sandbox, "sleeper", guests::SLEEP_P1, &["600000"]).await;
    start(&sandbox, "spinner", guests::SPIN_P2, &[]).await;
    until_output(&mut printed, "spinner").await;
    let grace = Duration::from_millis(300);
    let began = Instant::now();
    let (sleeper, spinner) = tokio::join!(
        sandbox.stop_container("sleeper", grace),
        sandbox.stop_container("spinner", grace)
    );
    let waited = began.elapsed();
    for exit in [sleeper, spinner] {
        let exit = exit.expect("stop").expect("it ran");
        assert_eq!((exit.code, exit.reason), (EXIT_KILLED, ExitReason::Error));
    }
    assert!(
        waited >= grace,
        "the grace period is granted in full: {waited:?}"
    );
    sandbox.delete().await.expect("delete");
}

#[tokio::test]
async fn stopping_a_container_that_never_started_or_already_exited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sandbox, _printed) = sandbox(dir.path()).await;
    let spec = ContainerSpec::new("idle", guests::HELLO_P1);
    sandbox
        .create_container(ContainerConfig::new(spec, 0))
        .await
        .expect("create");
    let none = sandbox
        .stop_container("idle", Duration::from_secs(1))
        .await
        .expect("stop created");
    assert!(none.is_none());
    start(&sandbox, "done", guests::HELLO_P2, &[]).await;
    let exit = sandbox.wait_container("done").await.expect("wait");
    let again = sandbox
        .stop_container("done", Duration::from_secs(1))
        .await
        .expect("stop exited");
    assert_eq!(again, Some(exit));
}
