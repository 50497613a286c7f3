//! Native sidecars and lifecycle hooks, run by the runner as kubelet runs them: sidecars start
//! in order with the init containers (each started, its postStart hook done, before the next
//! init container), run beside the app containers, restart whatever their exit, and stop after
//! the app containers in reverse order; a postStart hook runs before its container counts as
//! started and its failure kills the container; a preStop httpGet reaches the guest.

use std::path::Path;
use std::time::Duration;

use wasmpod::harness::{LivePod, PodBuilder};
use wasmpod::status::{ContainerRecord, Phase, PodStatus, State};
use wasmpod_guests as guests;

const DEADLINE: Duration = Duration::from_secs(60);

/// A pod manifest: `restartPolicy`, an emptyDir `data`, the guest programs' directory as
/// hostPath `guests` (hooks exec its modules, as a Linux pod's hooks run its image's tools),
/// then `rest` (the container lists, YAML indented by two).
fn manifest(restart_policy: &str, rest: &str) -> PodBuilder {
    let guests_dir = Path::new(guests::WRITE_P1)
        .parent()
        .expect("the guests' directory");
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: lifecycle}}
spec:
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: 5
  volumes:
  - {{name: data, emptyDir: {{}}}}
  - {{name: guests, hostPath: {{path: {guests}, type: Directory}}}}
{rest}",
        guests = guests_dir.display(),
    );
    PodBuilder::from_yaml(&yaml)
        .expect("manifest")
        .backoff_base(Duration::from_millis(10))
}

/// The mounts every container of these pods has: `data` at `/data`, the guests at `/guests`.
const MOUNTS: &str = "volumeMounts: [{name: data, mountPath: /data}, {name: guests, mountPath: /guests, readOnly: true}]";

/// An exec hook appending `line` to `/data/order.txt`.
fn note(line: &str) -> String {
    format!("{{exec: {{command: [/guests/write.wasm, --append, /data/order.txt, '{line}']}}}}")
}

/// A sidecar `name` that works until its termination request (then exits `code`), with
/// postStart hook `post` (YAML), noting its preStop hook in `/data/order.txt`.
fn sidecar(name: &str, code: i32, post: &str) -> String {
    format!(
        "  - name: {name}
    image: {image}
    args: [/data/{name}.out, '{code}']
    restartPolicy: Always
    {MOUNTS}
    lifecycle: {{postStart: {post}, preStop: {pre}}}
",
        image = guests::GRACEFUL_P1,
        pre = note(&format!("{name} stopping")),
    )
}

fn container<'a>(status: &'a PodStatus, name: &str) -> &'a ContainerRecord {
    status.container(name).expect("the container's status")
}

/// An app container `app` that works until its termination request (then notes it in
/// `/data/app.out`), with `lifecycle` (YAML fields, indented by four).
fn app(lifecycle: &str) -> String {
    format!(
        "  - name: app
    image: {graceful}
    args: [/data/app.out]
    {MOUNTS}
{lifecycle}
",
        graceful = guests::GRACEFUL_P1,
    )
}

/// Waits until container `name` was restarted `times` times.
async fn wait_restarted(live: &LivePod, name: &str, times: u32) {
    let restarted = live
        .wait_for(|s| container(s, name).restart_count >= times)
        .await;
    assert!(
        restarted.is_some(),
        "{name} never restarted: {:?}",
        live.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_start_in_order_and_stop_after_the_app_containers_in_reverse() {
    // The first sidecar's postStart hook waits for `/data/go`, which the test writes only once
    // it saw the sidecar running and `check`, the plain init container after it, not started;
    // `check` fails without `/data/go`.
    let pod = manifest(
        "Never",
        &format!(
            "  initContainers:
{first}  - name: check
    image: {cat}
    args: [/data/go]
    {MOUNTS}
{second}  containers:
  - name: app
    image: {write}
    args: [--append, /data/order.txt, app ran]
    {MOUNTS}
",
            first = sidecar(
                "first",
                1,
                "{exec: {command: [/guests/cat.wasm, --wait-ms, '30000', /data/go]}}"
            ),
            second = sidecar("second", 0, &note("second started")),
            cat = guests::CAT_P1,
            write = guests::WRITE_P1,
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            let first = live.wait_for(|s| container(s, "first").is_running()).await;
            let first = first.expect("the first sidecar runs");
            assert!(!container(&first, "first").started, "{first:?}");
            assert!(
                matches!(container(&first, "check").state, State::Waiting { .. }),
                "{first:?}"
            );
            let said = live
                .exec("first", ["/guests/write.wasm", "/data/go", "go"])
                .await
                .expect("exec");
            assert_eq!(said.exit.code, 0, "{said:?}");
            // The pod runs to its end by itself.
            live.wait_for(|s| s.phase == Phase::Succeeded).await;
        })
        .await
        .expect("run");
    assert_eq!(run.stdout("check"), "go\n");
    assert_eq!(
        run.read_file("data", "order.txt").expect("order file"),
        "second started\napp ran\nsecond stopping\nfirst stopping\n",
        "the second sidecar stopped (its preStop, then its end) before the first's preStop"
    );
    for name in ["first", "second"] {
        assert_eq!(
            run.read_file("data", &format!("{name}.out"))
                .as_deref()
                .ok(),
            Some("terminated: TERM\n"),
            "{name} was asked to stop"
        );
    }
    assert_eq!(
        run.phase(),
        Phase::Succeeded,
        "the app containers decide the phase; a sidecar's exit 1 does not"
    );
    assert_eq!(run.exit_code("first"), Some(1));
    assert_eq!(
        run.restart_count("first"),
        0,
        "a stopped sidecar is not restarted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_restarts_whatever_the_pods_policy_and_counts_in_ready() {
    let pod = manifest(
        "Never",
        &format!(
            "  initContainers:
  - name: flaky
    image: {exit}
    args: ['0']
    restartPolicy: Always
  containers:
{app}",
            exit = guests::EXIT_P1,
            app = app(""),
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            wait_restarted(&live, "flaky", 2).await;
            let status = live.status();
            assert_eq!(status.ready().1, 2, "READY counts the sidecar: {status:?}");
            assert!(container(&status, "app").is_running());
        })
        .await
        .expect("run");
    assert!(run.restart_count("flaky") >= 2);
    assert_eq!(run.restart_count("app"), 0);
    assert_eq!(run.exit_code("app"), Some(0), "the app stopped gracefully");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_post_start_hook_kills_the_container_before_it_counts_as_started() {
    let pod = manifest(
        "OnFailure",
        &format!(
            "  containers:\n{}",
            app("    lifecycle: {postStart: {exec: {command: [cat, /data/missing]}}}")
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            wait_restarted(&live, "app", 2).await;
        })
        .await
        .expect("run");
    assert!(run.restart_count("app") >= 2);
    let killed = run.read_file("data", "app.out").expect("app.out");
    assert!(
        killed.starts_with("terminated: TERM\n"),
        "each run was asked to stop: {killed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_start_completes_before_the_container_is_started() {
    // The hook takes a while; the container runs meanwhile but is not started.
    let pod = manifest(
        "Never",
        &format!(
            "  containers:\n{}",
            app(
                "    lifecycle: {postStart: {exec: {command: [/guests/cat.wasm, --wait-ms, '30000', /data/go]}}}"
            )
        ),
    );
    pod.run_with(DEADLINE, |live| async move {
        let running = live.wait_for(|s| container(s, "app").is_running()).await;
        let running = running.expect("the app runs");
        assert!(!container(&running, "app").started, "{running:?}");
        assert!(!running.is_ready());
        let said = live
            .exec("app", ["/guests/write.wasm", "/data/go", "go"])
            .await
            .expect("exec");
        assert_eq!(said.exit.code, 0, "{said:?}");
        let ready = live
            .wait_ready()
            .await
            .expect("ready once the hook is done");
        assert!(container(&ready, "app").started);
    })
    .await
    .expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_stop_http_get_reaches_the_guest() {
    // The server ignores termination requests but serves two requests, then exits: the
    // test's and the preStop hook's, which alone ends it before the grace period.
    let pod = manifest(
        "Never",
        &format!(
            "  containers:
  - name: web
    image: {server}
    args: ['0.0.0.0:8080', --requests, '2']
    ports: [{{name: http, containerPort: 8080}}]
    lifecycle: {{preStop: {{httpGet: {{port: http, path: /quit}}}}}}
",
            server = guests::HTTP_SERVER_P2,
        ),
    );
    let run = pod
        .run_with(DEADLINE, |live| async move {
            let request = http::Request::get("/hello").body(bytes::Bytes::new());
            let response = live.request(8080, request.expect("request")).await;
            assert_eq!(response.expect("response").status(), 200);
            live.terminate();
        })
        .await
        .expect("run");
    let served = run.stdout("web");
    assert!(
        served.contains("served GET /hello"),
        "{served}: {:?}",
        run.status()
    );
    assert!(served.contains("served GET /quit"), "{served}");
    assert_eq!(run.exit_code("web"), Some(0), "it was not hard-stopped");
}
