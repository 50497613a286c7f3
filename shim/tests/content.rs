//! Modules shipped as Wasm OCI layers, read from a real containerd's content store.
//!
//! containerd 1.6 (Debian's, which the tests run) cannot unpack such an image, so no task of
//! it can start there; the layers are still imported, and the container record that ctr or
//! CRI make before the task names the image: that is all the shim reads.

use std::path::Path;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::{Container, CreateContainerRequest};
use wasmpod_guests as guests;
use wasmpod_shim::bundle::{self, TaskKind};
use wasmpod_shim::layers::ContentStore;
use wasmpod_shim::runtime::{PodRuntime, Stdio, WasmpodRuntime};
use wasmpod_tests::containerd::{Containerd, RUNTIME, sandbox_spec};
use wasmpod_tests::wasm_layer_archives;

const NAMESPACE: &str = "default";

/// Records container `id` of `image` in containerd, as `ctr run` does before its task.
async fn record_container(containerd: &Containerd, id: &str, image: &str) {
    let channel = containerd_client::connect(containerd.socket())
        .await
        .expect("connect to containerd");
    let container = Container {
        id: id.into(),
        image: image.into(),
        runtime: Some(Runtime {
            name: RUNTIME.into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: b"{}".to_vec(),
        }),
        ..Container::default()
    };
    let mut request = tonic::Request::new(CreateContainerRequest {
        container: Some(container),
    });
    request
        .metadata_mut()
        .insert("containerd-namespace", NAMESPACE.parse().expect("header"));
    ContainersClient::new(channel)
        .create(request)
        .await
        .expect("create the container record");
}

#[test]
fn a_module_shipped_as_a_wasm_layer_is_read_from_the_content_store() {
    let containerd = Containerd::start();
    let layered = wasmpod::oci::OciImage::wasm_layer(
        Path::new(guests::HELLO_P2),
        "wasmpod.test/hello-layer:1",
    )
    .expect("image");
    let layered = containerd.import_with(NAMESPACE, &layered, &["--no-unpack", "--all-platforms"]);
    let rootfs = containerd.import_module(NAMESPACE, guests::HELLO_P1, "hello");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = ContentStore {
        address: containerd.socket().to_string_lossy().into_owned(),
        namespace: NAMESPACE.into(),
    };
    runtime.block_on(async {
        record_container(&containerd, "layered", &layered).await;
        record_container(&containerd, "plain", &rootfs).await;
        let layers = store.wasm_layers("layered").await.expect("read layers");
        let module = std::fs::read(guests::HELLO_P2).expect("module");
        assert_eq!(layers.len(), 1);
        assert!(
            layers[0] == module,
            "the layer is the module, byte for byte"
        );
        // An image whose module is a rootfs file has no Wasm layer.
        assert_eq!(store.wasm_layers("plain").await, Ok(Vec::new()));
        let missing = store.wasm_layers("nobody").await.expect_err("no record");
        assert!(missing.contains("container nobody"), "{missing}");
    });
}

/// Writes `dir/config.json` with `spec` and loads it as containerd would hand it over.
fn bundle(dir: &Path, id: &str, spec: serde_json::Value) -> TaskKind {
    std::fs::create_dir_all(dir.join("rootfs")).expect("bundle");
    std::fs::write(dir.join("config.json"), spec.to_string()).expect("config.json");
    bundle::load(id, dir).expect("bundle loads")
}

#[test]
fn a_container_whose_module_is_only_a_wasm_layer_runs() {
    // The archives `wasmpod run` runs in tests/tests/run.rs, byte for byte: one for each Wasm
    // OCI layer media type.
    let containerd = Containerd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let archives = wasm_layer_archives(dir.path());
    for archive in &archives {
        containerd.import_archive(
            NAMESPACE,
            &archive.path,
            &["--no-unpack", "--all-platforms"],
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let engine = wasmpod::Engine::new(wasmpod::EngineConfig {
            cache_dir: None,
            ..wasmpod::EngineConfig::default()
        })
        .expect("engine");
        let store = ContentStore {
            address: containerd.socket().to_string_lossy().into_owned(),
            namespace: NAMESPACE.into(),
        };
        let pods = WasmpodRuntime::new(
            engine,
            dir.path().join("pods"),
            Ok(None),
            Some(store.clone()),
        );
        let TaskKind::Sandbox(sandbox) =
            bundle(&dir.path().join("sb"), "sb", sandbox_spec("sb", "layered"))
        else {
            panic!("a sandbox bundle");
        };
        pods.create_sandbox(&sandbox).await.expect("sandbox");
        for (i, archive) in archives.iter().enumerate() {
            let id = format!("app{i}");
            let code = 7 + i as i32;
            let what = archive.media_type;
            record_container(&containerd, &id, &archive.name).await;
            // The shim reads the module `wasmpod run` reads from the archive.
            let layers = store.wasm_layers(&id).await.expect("read layers");
            let module = wasmpod::oci::read_module(&archive.path).expect("read the archive");
            assert!(layers.first() == Some(&module), "{what}: the same module");
            // The image's entrypoint names the module, but the rootfs is empty: the module is
            // the image's layer.
            let app = dir.path().join(&id);
            let TaskKind::Container(container) = bundle(
                &app,
                &id,
                serde_json::json!({
                    "ociVersion": "1.0.2",
                    "process": {
                        "args": ["/exit.wasm", code.to_string()],
                        "cwd": "/",
                        "user": {"uid": 0, "gid": 0}
                    },
                    "annotations": {
                        "io.kubernetes.cri.container-type": "container",
                        "io.kubernetes.cri.sandbox-id": "sb"
                    }
                }),
            ) else {
                panic!("a container bundle");
            };
            pods.create_container(&container, &Stdio::default(), &[], &app.join("rootfs"))
                .await
                .unwrap_or_else(|e| panic!("{what}: the module comes from the layer: {e}"));
            pods.start_container(&id).expect("start");
            let exit =
                tokio::time::timeout(std::time::Duration::from_secs(30), pods.wait_container(&id))
                    .await
                    .expect("the guest ends")
                    .expect("wait");
            assert_eq!(exit.code, code, "{what}: {exit:?}");
            pods.remove_container(&id).expect("remove");
        }
        pods.delete_sandbox().await.expect("delete sandbox");
    });
}
