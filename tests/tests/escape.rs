//! The attacker who controls a manifest and its guests, under `wasmpod run` with the default
//! host layer: a guest plants symlinks in a shared volume, later containers' `subPath` and
//! `workingDir` go through them. None of them may see or touch a host file outside the volume.

use std::path::Path;

use wasmpod_guests as guests;
use wasmpod_tests::{Wasmpod, terminated, terminated_message};

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A link target that climbs from anywhere to `/` and then down to `dir`: relative, so a
/// guest may create it.
fn climbing_to(dir: &Path) -> String {
    "../".repeat(64) + dir.to_str().expect("utf-8 path").trim_start_matches('/')
}

#[test]
fn links_planted_by_a_guest_never_lead_a_later_subpath_or_working_dir_out_of_the_volume() {
    let wasmpod = Wasmpod::new();
    let host = tempfile::tempdir().expect("tempdir");
    let outside = host.path().join("outside");
    std::fs::create_dir_all(outside.join("somedir")).expect("outside");
    std::fs::write(outside.join("somedir/secret"), "host secret\n").expect("secret");
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: escape}}
spec:
  restartPolicy: Never
  volumes: [{{name: data, emptyDir: {{}}}}]
  initContainers:
  - name: plant
    image: {ln}
    args: ["{up}", "/data/up"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: plant-inside
    image: {ln}
    args: [".", "/data/inside"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
  - name: reader
    image: {cat}
    workingDir: /data/up/somedir
    args: ["secret"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: writer
    image: {write}
    workingDir: /data/up/somedir
    args: ["planted", "pwned"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: subpath
    image: {write}
    args: ["/x/planted", "pwned"]
    volumeMounts: [{{name: data, mountPath: /x, subPath: up/made}}]
  - name: neighbour
    image: {write}
    workingDir: /data/inside/work
    args: ["note", "inside is fine"]
    volumeMounts: [{{name: data, mountPath: /data}}]
"#,
        ln = guests::LN_P1,
        up = climbing_to(&outside),
        cat = guests::CAT_P2,
        write = guests::WRITE_P1,
    );
    let out = wasmpod.run_json(&manifest, &["--rm"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let status = out.json();
    assert_eq!(terminated(&status, "plant"), (0, "Completed".into()));
    for (name, what) in [
        ("reader", "workingDir \"/data/up/somedir\""),
        ("writer", "workingDir \"/data/up/somedir\""),
        ("subpath", "subPath \"up/made\""),
    ] {
        assert_eq!(
            terminated(&status, name).1,
            "StartError",
            "{name}: {status}"
        );
        let message = terminated_message(&status, name);
        assert!(
            message.contains(what) && message.contains("leads out of"),
            "{name}: {message}"
        );
        assert!(out.lines_of(name).is_empty(), "{name} never ran");
    }
    assert_eq!(terminated(&status, "neighbour"), (0, "Completed".into()));
    assert!(!out.stdout.contains("host secret") && !out.stderr.contains("host secret"));
    assert_eq!(listing(&outside), ["somedir"], "nothing created outside");
    assert_eq!(listing(&outside.join("somedir")), ["secret"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("somedir/secret")).expect("secret"),
        "host secret\n"
    );
}
