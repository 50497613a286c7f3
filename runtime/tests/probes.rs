//! Startup, liveness and readiness probes, run by the runner as kubelet runs them: exec checks
//! inside the container, tcpSocket and httpGet checks on the pod's loopback; a failed startup
//! or liveness probe restarts the container, readiness sets READY and the pod's `Ready`.

use std::cell::Cell;
use std::time::Duration;

use wasmpod::harness::PodBuilder;
use wasmpod::status::PodStatus;
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(60);

/// A pod manifest of `containers` (YAML list items, indented by two) and an emptyDir `data`.
fn manifest(restart_policy: &str, containers: &str) -> PodBuilder {
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: probed}}
spec:
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: 5
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
{containers}"
    );
    PodBuilder::from_yaml(&yaml)
        .expect("manifest")
        .backoff_base(Duration::from_millis(10))
}

/// A long-running container `name` (until its termination request) with `probes` (YAML
/// fields of the container, indented by four).
fn worker(name: &str, probes: &str) -> String {
    format!(
        "  - name: {name}
    image: {image}
    args: [/data/{name}.out]
    volumeMounts: [{{name: data, mountPath: /data}}]
{probes}
",
        image = guests::GRACEFUL_P2,
    )
}

fn app(status: &PodStatus) -> &wasmpod::status::ContainerRecord {
    status.container("app").expect("app's status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container_whatever_its_exit() {
    // The worker exits 0 when asked to stop; under OnFailure only the probe restarts it.
    let pod = manifest(
        "OnFailure",
        &worker(
            "app",
            "    livenessProbe: {exec: {command: [cat, /data/healthy]}, periodSeconds: 1, failureThreshold: 2}",
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            let restarted = live.wait_for(|s| app(s).restart_count >= 2).await;
            assert!(restarted.is_some(), "never restarted: {:?}", live.status());
        })
        .await
        .expect("run");
    assert!(run.restart_count("app") >= 2);
    let last = run.container("app").and_then(|c| c.last_state.clone());
    assert!(
        matches!(&last, Some(wasmpod::status::State::Terminated { exit, .. }) if exit.code == 0),
        "the worker stopped gracefully before its restart: {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_probes_leave_the_container_alone() {
    // `sleep` ends by itself after a few liveness periods; every check passes.
    let pod = manifest(
        "Never",
        &format!(
            "  - name: app
    image: {}
    args: ['3500']
    startupProbe: {{exec: {{command: [echo, started]}}, periodSeconds: 1}}
    livenessProbe: {{exec: {{command: [echo, alive]}}, periodSeconds: 1, failureThreshold: 1}}
    readinessProbe: {{exec: {{command: [env]}}, periodSeconds: 1}}
",
            guests::SLEEP_P2
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            let ready = live.wait_for(|s| app(s).ready).await.expect("never ready");
            assert!(app(&ready).started);
            assert_eq!(ready.ready(), (1, 1));
            assert!(ready.is_ready());
            // Then it ends by itself: the test waits for that.
            live.wait_for(|s| app(s).exit().is_some()).await;
        })
        .await
        .expect("run");
    assert_eq!(run.exit_code("app"), Some(0), "{:?}", run.status());
    assert_eq!(run.restart_count("app"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_startup_probe_restarts_and_the_container_never_starts() {
    let pod = manifest(
        "Always",
        &worker(
            "app",
            "    startupProbe: {exec: {command: [cat, /data/never]}, periodSeconds: 1, failureThreshold: 2}
    livenessProbe: {exec: {command: [echo]}, periodSeconds: 1}",
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            let started = Cell::new(false);
            let restarted = live
                .wait_for(|s| {
                    started.set(started.get() || app(s).started || app(s).ready);
                    app(s).restart_count >= 1
                })
                .await;
            assert!(restarted.is_some(), "never restarted: {:?}", live.status());
            assert!(
                !started.get(),
                "counted as started before its startup probe passed"
            );
        })
        .await
        .expect("run");
    assert!(run.restart_count("app") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_tcp_socket_and_the_pod_ready_condition_with_it() {
    // `server` accepts three connections on 7000 and exits: the app is ready while it is there.
    let server = format!(
        "  - name: server
    image: {}
    args: [listen, '0.0.0.0:7000', --accept, '3']
",
        guests::TCP_P2
    );
    let probes =
        "    readinessProbe: {tcpSocket: {port: 7000}, periodSeconds: 1, failureThreshold: 1}";
    let pod = manifest("Never", &format!("{}{server}", worker("app", probes)));
    pod.run_with(DEADLINE, |live| async move {
        let ready = live.wait_for(|s| app(s).ready).await.expect("never ready");
        let condition = |s: &PodStatus, kind: &str| {
            s.conditions()
                .into_iter()
                .find(|c| c.type_ == kind)
                .map(|c| c.status)
        };
        assert_eq!(ready.ready(), (2, 2));
        // Both ready: the server (no probe) since it runs.
        assert_eq!(
            condition(&ready, "ContainersReady").as_deref(),
            Some("True")
        );
        let unready = live
            .wait_for(|s| {
                !app(s).ready && s.container("server").is_some_and(|c| c.exit().is_some())
            })
            .await
            .expect("still ready after the server left");
        assert!(app(&unready).is_running(), "unready is not restarted");
        assert_eq!(condition(&unready, "Ready").as_deref(), Some("False"));
        assert_eq!(unready.ready(), (0, 2));
    })
    .await
    .expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_get_probes_reach_the_guest_server() {
    let pod = manifest(
        "Always",
        &format!(
            "  - name: app
    image: {}
    args: ['0.0.0.0:8080']
    ports: [{{name: web, containerPort: 8080}}]
    readinessProbe: {{httpGet: {{path: /ready, port: web, httpHeaders: [{{name: X-Check, value: ready}}]}}, periodSeconds: 1}}
    livenessProbe: {{httpGet: {{port: 8081}}, periodSeconds: 1, failureThreshold: 2}}
",
            guests::HTTP_SERVER_P2
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            live.wait_for(|s| app(s).ready).await.expect("never ready");
            // Nothing listens on 8081: the liveness probe fails and restarts it.
            let restarted = live.wait_for(|s| app(s).restart_count >= 1).await;
            assert!(restarted.is_some(), "never restarted: {:?}", live.status());
        })
        .await
        .expect("run");
    // Whichever run the readiness check reached first (the liveness probe may restart the
    // first before its readiness check passed).
    let served: Vec<_> = (0..=run.restart_count("app"))
        .flat_map(|restart| run.logs_of_run("app", restart))
        .collect();
    assert!(
        served
            .iter()
            .any(|(_, line)| line.starts_with("served GET /ready")),
        "the server saw the readiness checks: {served:?}"
    );
}
