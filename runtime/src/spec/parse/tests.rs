//! Tests of the whole pipeline: real manifests in, [`PodSpec`](crate::spec::PodSpec)s out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parse_pod_file;
use super::test_support::{
    assert_uuid, container, err, mount_pod, ok, pod, pod_with_container, strings,
};
use crate::spec::{
    ContainerSpec, MountSpec, Resources, RestartPolicy, SpecError, VolumeSource, VolumeSpec,
};

const DRY_RUN: &str = "\
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: demo
  name: demo
spec:
  containers:
  - image: hello.wasm
    name: demo
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
";

const GET_OUTPUT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/default-container: web
  creationTimestamp: "2024-05-01T10:00:00Z"
  generateName: web-7d9f8b6c5-
  generation: 1
  labels:
    app: web
    pod-template-hash: 7d9f8b6c5
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:labels:
          .: {}
          f:app: {}
    manager: kube-controller-manager
    operation: Update
    time: "2024-05-01T10:00:00Z"
  name: web-7d9f8b6c5-x2x8k
  namespace: prod
  ownerReferences:
  - apiVersion: apps/v1
    blockOwnerDeletion: true
    controller: true
    kind: ReplicaSet
    name: web-7d9f8b6c5
    uid: 0b6f5a52-3c1e-4b8e-9a51-2f0c7c1d9e11
  resourceVersion: "123456"
  uid: 5f2d0c9e-8a3b-4f1e-b0a4-6c2e9d7f1a20
spec:
  containers:
  - args:
    - --port=8080
    image: web.wasm
    imagePullPolicy: IfNotPresent
    name: web
    ports:
    - containerPort: 8080
      name: http
      protocol: TCP
    resources:
      limits:
        cpu: 500m
        memory: 128Mi
      requests:
        cpu: 250m
        memory: 64Mi
    securityContext:
      allowPrivilegeEscalation: false
      capabilities:
        drop:
        - ALL
      privileged: false
      readOnlyRootFilesystem: true
      runAsNonRoot: true
      runAsUser: 1000
      seccompProfile:
        type: RuntimeDefault
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /data
      name: data
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: node-1
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext:
    fsGroup: 2000
    runAsGroup: 3000
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  - effect: NoExecute
    key: node.kubernetes.io/unreachable
    operator: Exists
    tolerationSeconds: 300
  volumes:
  - emptyDir: {}
    name: data
status:
  conditions:
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:02Z"
    observedGeneration: 1
    status: "True"
    type: PodReadyToStartContainers
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:00Z"
    status: "True"
    type: Initialized
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:02Z"
    status: "True"
    type: Ready
  containerStatuses:
  - allocatedResources:
      cpu: 250m
      memory: 64Mi
    containerID: containerd://4f1c2b
    image: docker.io/library/web:1.0
    imageID: docker.io/library/web@sha256:0123abcd
    lastState: {}
    name: web
    ready: true
    resources:
      limits:
        cpu: 500m
        memory: 128Mi
      requests:
        cpu: 250m
        memory: 64Mi
    restartCount: 0
    started: true
    state:
      running:
        startedAt: "2024-05-01T10:00:01Z"
    user:
      linux:
        gid: 0
        supplementalGroups:
        - 0
        uid: 1000
    volumeMounts:
    - mountPath: /data
      name: data
  hostIP: 10.0.0.5
  hostIPs:
  - ip: 10.0.0.5
  observedGeneration: 1
  phase: Running
  podIP: 10.244.1.7
  podIPs:
  - ip: 10.244.1.7
  qosClass: Burstable
  startTime: "2024-05-01T10:00:00Z"
"#;

#[test]
fn kubectl_dry_run_manifest() {
    let spec = ok(DRY_RUN);
    assert_eq!(spec.name, "demo");
    assert_eq!(spec.namespace, "default");
    assert_eq!(spec.hostname, "demo");
    assert_eq!(
        spec.labels,
        BTreeMap::from([("run".to_string(), "demo".to_string())])
    );
    assert!(spec.annotations.is_empty());
    assert_eq!(spec.restart_policy, RestartPolicy::Always);
    assert_eq!(spec.termination_grace_period, Duration::from_secs(30));
    assert_eq!(spec.active_deadline, None);
    assert!(spec.init_containers.is_empty());
    assert!(spec.volumes.is_empty());
    assert_eq!(
        spec.containers,
        vec![ContainerSpec {
            name: "demo".to_string(),
            image: "hello.wasm".to_string(),
            module: PathBuf::from("/pods/hello.wasm"),
            rootfs: None,
            read_only_rootfs: false,
            argv: strings(&["hello.wasm"]),
            env: Vec::new(),
            working_dir: None,
            mounts: Vec::new(),
            resources: Resources::default(),
            ports: Vec::new(),
            post_start: None,
            pre_stop: None,
            sidecar: false,
            probes: Default::default(),
        }]
    );
    assert_uuid(&spec.uid);
}

#[test]
fn kubectl_get_output_manifest() {
    let spec = ok(GET_OUTPUT);
    assert_eq!(spec.name, "web-7d9f8b6c5-x2x8k");
    assert_eq!(spec.namespace, "prod");
    assert_eq!(spec.uid, "5f2d0c9e-8a3b-4f1e-b0a4-6c2e9d7f1a20");
    assert_eq!(spec.hostname, "web-7d9f8b6c5-x2x8k");
    assert_eq!(spec.labels.len(), 2);
    assert_eq!(
        spec.annotations
            .get("kubectl.kubernetes.io/default-container"),
        Some(&"web".to_string())
    );
    assert_eq!(
        spec.volumes,
        vec![VolumeSpec {
            name: "data".to_string(),
            source: VolumeSource::EmptyDir {
                memory: false,
                size_limit: None
            },
        }]
    );
    let web = container(&spec);
    assert_eq!(web.argv, strings(&["web.wasm", "--port=8080"]));
    assert_eq!(web.ports, vec![8080]);
    assert_eq!(
        web.mounts,
        vec![MountSpec {
            volume: "data".to_string(),
            mount_path: "/data".to_string(),
            read_only: false,
            sub_path: None,
        }]
    );
    assert_eq!(
        web.resources,
        Resources {
            memory_request: Some(64 << 20),
            memory_limit: Some(128 << 20),
            cpu_request: Some(250),
            cpu_limit: Some(500),
        }
    );
}

#[test]
fn json_manifest() {
    let json = r#"{
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "demo", "namespace": "jobs", "uid": "u-1"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "/opt/main.wasm", "command": ["main", "-v"]}]
            }
        }"#;
    let spec = ok(json);
    assert_eq!(spec.namespace, "jobs");
    assert_eq!(spec.uid, "u-1");
    assert_eq!(spec.restart_policy, RestartPolicy::Never);
    assert_eq!(container(&spec).module, PathBuf::from("/opt/main.wasm"));
    assert_eq!(container(&spec).argv, strings(&["main", "-v"]));
}

#[test]
fn parse_pod_file_reads_and_resolves_against_its_directory() {
    let dir = std::env::temp_dir().join(format!("wasmpod-spec-test-{}", std::process::id()));
    let write =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("pod.yaml"), DRY_RUN));
    assert!(write.is_ok(), "{write:?}");
    let spec = parse_pod_file(&dir.join("pod.yaml"));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = spec.map_err(|e| e.to_string());
    assert_eq!(
        spec.map(|s| s.containers[0].module.clone()),
        Ok(dir.join("hello.wasm"))
    );
}

#[test]
fn parse_pod_file_reports_unreadable_files() {
    assert_eq!(
        parse_pod_file(Path::new("/nonexistent/pod.yaml")),
        Err(SpecError::new(
            "",
            "read /nonexistent/pod.yaml: No such file or directory"
        ))
    );
}

#[test]
fn error_messages_are_lowercase() {
    let errors = [
        err(&pod_with_container("imagee: x")),
        err(&pod_with_container("securityContext: {privileged: true}")),
        err(&pod("containers: []")),
        err(&mount_pod("[{name: nope, mountPath: /x}]")),
        err("apiVersion: v1\nkind: Service\n"),
    ];
    for e in errors {
        let message = e.split_once(": ").map_or("", |(_, m)| m);
        assert!(message.starts_with(|c: char| !c.is_uppercase()), "{e}");
    }
}
