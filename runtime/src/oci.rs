//! OCI image archives: ship a module without a registry.
//!
//! [`Image::wasm`] makes the image of one module: a single uncompressed layer holding the
//! `.wasm` file at the root, whose config names it as the entrypoint (so `process.args[0]`,
//! which containerd composes from the entrypoint, names the module, as the shim expects).
//! [`Image::write_archive`] writes it as an OCI image layout tarball (`oci-layout`,
//! `index.json`, `blobs/sha256/...`), which `ctr images import` loads under the image's name
//! (the `io.containerd.image.name` annotation). [`read_module`] reads the module back from
//! such an archive, from a rootfs layer or from a Wasm layer
//! (`application/vnd.bytecodealliance.wasm.component.layer.v0+wasm`, `application/wasm`) as
//! other Wasm image tools write them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::wasm::ImageKind;

/// Media type of an uncompressed layer.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a layer that is a Wasm component (the Bytecode Alliance's convention).
pub const LAYER_WASM_COMPONENT: &str =
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
/// Media type of a layer that is a Wasm module.
pub const LAYER_WASM: &str = "application/wasm";
/// Media type of an image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an image config.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an image index.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation containerd takes an imported image's name from.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The annotation OCI tools take the reference (tag) from.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// An image archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The module is not WebAssembly.
    #[error("{path}: not a WebAssembly module or component")]
    NotWasm {
        /// The module.
        path: PathBuf,
    },
    /// The image name is not a valid reference.
    #[error("image name {name:?}: {message}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong.
        message: &'static str,
    },
    /// An archive read back is not what this module understands.
    #[error("{path}: {message}")]
    Invalid {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl OciError {
    /// The kind of this error.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            OciError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                crate::ErrorKind::NotFound
            }
            OciError::Io { .. } => crate::ErrorKind::Internal,
            OciError::NotWasm { .. } | OciError::BadName { .. } | OciError::Invalid { .. } => {
                crate::ErrorKind::InvalidArgument
            }
        }
    }
}

/// One file of an image's layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Its path in the rootfs, without the leading `/`.
    pub path: String,
    /// Its bytes.
    pub contents: Vec<u8>,
    /// Its mode (e.g. `0o644`).
    pub mode: u32,
}

/// A single-layer image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The full reference it is imported as (`docker.io/library/hello:latest`).
    pub name: String,
    /// The layer's files.
    pub files: Vec<ImageFile>,
    /// The config's `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// The config's `os`. Default: `linux`, so containerd unpacks it on a Linux node.
    pub os: String,
    /// The config's `architecture`. Default: this machine's, in Go's spelling (`amd64`).
    pub architecture: String,
    /// The config's `Labels`.
    pub labels: BTreeMap<String, String>,
    /// When set, the image's one layer is this module itself, of media type
    /// [`LAYER_WASM_COMPONENT`], as Wasm OCI tooling writes it, instead of a tar of `files`.
    pub module_layer: Option<Vec<u8>>,
}

impl Image {
    /// An empty image named `name` (normalised as [`normalize_name`] does) for this platform.
    pub fn new(name: &str) -> Result<Image, OciError> {
        Ok(Image {
            name: normalize_name(name)?,
            files: Vec::new(),
            entrypoint: Vec::new(),
            os: "linux".into(),
            architecture: go_arch().into(),
            labels: BTreeMap::new(),
            module_layer: None,
        })
    }

    /// The image of the module at `module`: the file at the rootfs' root, as the entrypoint.
    pub fn wasm(module: &Path, name: &str) -> Result<Image, OciError> {
        let contents = std::fs::read(module).map_err(|source| OciError::Io {
            op: "read",
            path: module.to_owned(),
            source,
        })?;
        let kind = ImageKind::detect(&contents).ok_or_else(|| OciError::NotWasm {
            path: module.to_owned(),
        })?;
        let file = module.file_name().map_or_else(
            || "module.wasm".to_owned(),
            |f| f.to_string_lossy().into_owned(),
        );
        let mut image = Image::new(name)?;
        image.entrypoint = vec![format!("/{file}")];
        image
            .labels
            .insert("io.wasmpod.module.kind".into(), kind.as_str().into());
        image.files.push(ImageFile {
            path: file,
            contents,
            mode: 0o644,
        });
        Ok(image)
    }

    /// The image of the module at `module` as Wasm OCI tooling ships one: the module is the
    /// layer (no rootfs), `wasm` its architecture, its file name the entrypoint.
    pub fn wasm_layer(module: &Path, name: &str) -> Result<Image, OciError> {
        let mut image = Image::wasm(module, name)?;
        image.module_layer = image.files.pop().map(|file| file.contents);
        image.os = "wasip1".into();
        image.architecture = "wasm".into();
        Ok(image)
    }

    /// Adds a file to the layer.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.push(ImageFile {
            path: path.trim_start_matches('/').to_owned(),
            contents: contents.into(),
            mode,
        });
        self
    }

    /// Sets the entrypoint.
    pub fn entrypoint<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Writes the image as an OCI image layout tarball at `out` (atomically: temp file +
    /// rename). Returns the manifest's digest (`sha256:...`).
    pub fn write_archive(&self, out: &Path) -> Result<String, OciError> {
        let io = |op| {
            move |source| OciError::Io {
                op,
                path: out.to_owned(),
                source,
            }
        };
        let (layer, layer_type) = match &self.module_layer {
            Some(module) => (module.clone(), LAYER_WASM_COMPONENT),
            None => (self.layer().map_err(io("build layer"))?, LAYER_TAR),
        };
        let layer_digest = digest(&layer);
        let mut config = json!({
            "architecture": self.architecture,
            "os": self.os,
            "config": {"Entrypoint": self.entrypoint},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "wasmpod image build"}],
        });
        if !self.labels.is_empty() {
            config["config"]["Labels"] = json!(self.labels);
        }
        let config = serde_json::to_vec(&config).map_err(|e| io("encode config")(e.into()))?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": descriptor(CONFIG, &config),
            "layers": [descriptor(layer_type, &layer)],
        });
        let manifest =
            serde_json::to_vec(&manifest).map_err(|e| io("encode manifest")(e.into()))?;
        let manifest_digest = digest(&manifest);
        let mut entry = descriptor(MANIFEST, &manifest);
        entry["annotations"] = json!({
            IMAGE_NAME_ANNOTATION: self.name,
            REF_NAME_ANNOTATION: tag_of(&self.name),
        });
        entry["platform"] = json!({"os": self.os, "architecture": self.architecture});
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]});
        let index = serde_json::to_vec(&index).map_err(|e| io("encode index")(e.into()))?;

        let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
            .map_err(io("create temp file in the directory of"))?;
        let mut archive = tar::Builder::new(tmp.as_file());
        let entries: [(&str, &[u8]); 5] = [
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("index.json", &index),
            (&blob_path(&layer_digest), &layer),
            (&blob_path(&digest(&config)), &config),
            (&blob_path(&manifest_digest), &manifest),
        ];
        for (path, bytes) in entries {
            append(&mut archive, path, bytes, 0o644).map_err(io("write"))?;
        }
        archive.finish().map_err(io("write"))?;
        drop(archive);
        tmp.persist(out)
            .map_err(|e| io("rename temp file to")(e.error))?;
        Ok(manifest_digest)
    }

    /// The layer: an uncompressed tar of the files.
    fn layer(&self) -> std::io::Result<Vec<u8>> {
        let mut layer = tar::Builder::new(Vec::new());
        for file in &self.files {
            append(&mut layer, &file.path, &file.contents, file.mode)?;
        }
        layer.into_inner()
    }
}

/// Reads the module an image archive holds: the manifest's Wasm layer, or else the file its
/// entrypoint names in its rootfs layers. Returns the module's bytes.
pub fn read_module(archive: &Path) -> Result<Vec<u8>, OciError> {
    let bytes = std::fs::read(archive).map_err(|source| OciError::Io {
        op: "read",
        path: archive.to_owned(),
        source,
    })?;
    module_in_archive(&bytes, archive)
}

/// Whether `bytes` start like a tar archive (the `ustar` magic of POSIX and GNU tar).
pub fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar")
}

/// [`read_module`] of an archive already read; `archive` names it in errors.
pub fn module_in_archive(bytes: &[u8], archive: &Path) -> Result<Vec<u8>, OciError> {
    let invalid = |message: String| OciError::Invalid {
        path: archive.to_owned(),
        message,
    };
    let read_error = |source| OciError::Io {
        op: "read",
        path: archive.to_owned(),
        source,
    };
    let blobs: BTreeMap<String, Vec<u8>> = tar_files(bytes, |_| true)
        .map_err(read_error)?
        .into_iter()
        .collect();
    let json = |path: &str| -> Result<serde_json::Value, OciError> {
        let bytes = blobs
            .get(path)
            .ok_or_else(|| invalid(format!("{path} is missing")))?;
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("{path}: {e}")))
    };
    let blob = |digest: &serde_json::Value| -> Result<&Vec<u8>, OciError> {
        let digest = digest.as_str().unwrap_or_default();
        blobs
            .get(&blob_path(digest))
            .ok_or_else(|| invalid(format!("blob {digest} is missing")))
    };
    let index = json("index.json")?;
    let manifest_digest = &index["manifests"][0]["digest"];
    if !manifest_digest.is_string() {
        return Err(invalid("index.json lists no image manifest".into()));
    }
    let manifest: serde_json::Value = serde_json::from_slice(blob(manifest_digest)?)
        .map_err(|e| invalid(format!("manifest: {e}")))?;
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    if let Some(wasm) = layers.iter().find(|l| {
        matches!(
            l["mediaType"].as_str(),
            Some(LAYER_WASM | LAYER_WASM_COMPONENT)
        )
    }) {
        return blob(&wasm["digest"]).cloned();
    }
    let config: serde_json::Value = serde_json::from_slice(blob(&manifest["config"]["digest"])?)
        .map_err(|e| invalid(format!("config: {e}")))?;
    let entrypoint = config["config"]["Entrypoint"][0]
        .as_str()
        .ok_or_else(|| invalid("the image has neither a Wasm layer nor an entrypoint".into()))?;
    let wanted = entrypoint.trim_start_matches('/');
    for layer in layers.iter().rev() {
        let found = tar_files(blob(&layer["digest"])?.as_slice(), |path| path == wanted)
            .map_err(read_error)?;
        if let Some((_, bytes)) = found.into_iter().next() {
            return Ok(bytes);
        }
    }
    Err(invalid(format!(
        "the entrypoint {entrypoint:?} is in no layer"
    )))
}

/// The files of tar archive `archive` whose paths (without a leading `./` or `/`) `wanted`
/// accepts, with their contents, in the order they appear.
///
/// What comes out is bounded by the archive's own size: an entry's contents are bytes of the
/// archive, except a GNU sparse file's holes, which its header makes up as zeros. A header may
/// claim gigabytes of holes in a kilobyte of archive; such an entry (no image needs one) is an
/// error, before any of it is read.
fn tar_files(
    archive: &[u8],
    mut wanted: impl FnMut(&str) -> bool,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut budget = archive.len() as u64;
    let mut files = Vec::new();
    for entry in tar::Archive::new(archive).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if wanted(path) {
            let size = entry.size();
            if size > budget {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("entry {path} claims {size} bytes, more than the archive holds"),
                ));
            }
            let mut bytes = Vec::new();
            (&mut entry).take(size).read_to_end(&mut bytes)?;
            budget -= bytes.len() as u64;
            files.push((path.to_owned(), bytes));
        }
    }
    Ok(files)
}

/// Completes an image reference as Docker does: `hello` → `docker.io/library/hello:latest`,
/// `me/app:1` → `docker.io/me/app:1`; a name whose first part has a `.` or `:` (or is
/// `localhost`) names its registry.
pub fn normalize_name(name: &str) -> Result<String, OciError> {
    let bad = |message| OciError::BadName {
        name: name.to_owned(),
        message,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_uppercase()) {
        return Err(bad("must be lowercase without spaces"));
    }
    let (first, _) = name.split_once('/').unwrap_or(("", name));
    let has_registry = first.contains('.') || first.contains(':') || first == "localhost";
    let mut full = if has_registry {
        name.to_owned()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && !last.contains('@') {
        full.push_str(":latest");
    }
    Ok(full)
}

fn tag_of(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map_or("latest", |(_, tag)| tag)
}

/// Go's name of this machine's architecture, as image configs spell it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()})
}

fn append<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    archive.append_data(&mut header, path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn names_are_completed_as_docker_does() {
        let n = |s| normalize_name(s).expect("valid");
        assert_eq!(n("hello"), "docker.io/library/hello:latest");
        assert_eq!(n("me/app:1"), "docker.io/me/app:1");
        assert_eq!(n("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(n("ghcr.io/a/b:v2"), "ghcr.io/a/b:v2");
        assert!(normalize_name("").is_err());
        assert!(normalize_name("Hello").is_err());
    }

    #[test]
    fn a_wasm_image_round_trips_through_its_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("hello.wasm");
        std::fs::write(&module, MODULE).expect("write");
        let image = Image::wasm(&module, "hello:1").expect("image");
        assert_eq!(image.entrypoint, ["/hello.wasm"]);
        let out = dir.path().join("hello.tar");
        let digest = image.write_archive(&out).expect("write archive");
        assert!(digest.starts_with("sha256:"), "{digest}");
        assert_eq!(read_module(&out).expect("read back"), MODULE);

        // The layout containerd expects.
        let mut names = Vec::new();
        let mut index = String::new();
        let file = std::fs::File::open(&out).expect("open");
        for entry in tar::Archive::new(file).entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            if path == "index.json" {
                entry.read_to_string(&mut index).expect("read");
            }
            names.push(path);
        }
        assert!(names.contains(&"oci-layout".to_owned()), "{names:?}");
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with("blobs/sha256/"))
                .count(),
            3
        );
        let index: serde_json::Value = serde_json::from_str(&index).expect("json");
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(
            entry["annotations"][IMAGE_NAME_ANNOTATION],
            "docker.io/library/hello:1"
        );
        assert_eq!(entry["annotations"][REF_NAME_ANNOTATION], "1");
    }

    #[test]
    fn not_wasm_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("bad.wasm");
        std::fs::write(&module, b"#!/bin/sh\n").expect("write");
        let error = Image::wasm(&module, "bad").expect_err("not wasm");
        assert!(matches!(error, OciError::NotWasm { .. }), "{error}");
        assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument);
        let missing = Image::wasm(&dir.path().join("nope.wasm"), "x").expect_err("missing");
        assert_eq!(missing.kind(), crate::ErrorKind::NotFound);
    }

    #[test]
    fn a_wasm_layer_is_read_back() {
        // An archive as Wasm OCI tools write it: the module itself is the layer.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": descriptor(CONFIG, &config),
            "layers": [descriptor(LAYER_WASM, MODULE)],
        }))
        .expect("json");
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [descriptor(MANIFEST, &manifest)],
        }))
        .expect("json");
        let out = dir.path().join("wasm-layer.tar");
        let file = std::fs::File::create(&out).expect("create");
        let mut archive = tar::Builder::new(file);
        for (path, bytes) in [
            ("index.json".to_owned(), index.as_slice()),
            (blob_path(&digest(&manifest)), manifest.as_slice()),
            (blob_path(&digest(&config)), config.as_slice()),
            (blob_path(&digest(MODULE)), MODULE),
        ] {
            append(&mut archive, &path, bytes, 0o644).expect("append");
        }
        archive.finish().expect("finish");
        drop(archive);
        assert_eq!(read_module(&out).expect("read"), MODULE);
    }

    /// A GNU sparse entry claiming `real_size` bytes (octal), all but the last a hole (zeros
    /// the reader makes up), in a 2 KiB archive.
    fn sparse_archive(path: &str, data_at: &[u8; 12], real_size: &[u8; 12]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).expect("path");
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_size(1);
        header.set_mode(0o644);
        let gnu = header.as_gnu_mut().expect("a GNU header");
        // One byte of data at `data_at` (octal), the end: everything before it is a hole.
        gnu.sparse[0].offset = *data_at;
        gnu.sparse[0].numbytes = *b"00000000001\0";
        gnu.realsize = *real_size;
        header.set_cksum();
        let mut archive = header.as_bytes().to_vec();
        archive.extend_from_slice(b"{");
        archive.resize(2048, 0);
        archive
    }

    #[test]
    fn a_sparse_entry_expanding_beyond_the_archive_is_refused() {
        // 8 GiB of zeros out of 2 KiB used to be read into memory (this archive is
        // fuzz/corpus/oci_archive/sparse-bomb.tar).
        let bomb = sparse_archive("index.json", b"77777777776\0", b"77777777777\0");
        let error = module_in_archive(&bomb, Path::new("bomb.tar")).expect_err("refused");
        assert!(
            error.to_string().contains("more than the archive holds"),
            "{error}"
        );
        // A sparse entry within the archive's size is still read.
        let small = sparse_archive("index.json", b"00000000007\0", b"00000000010\0");
        let files = tar_files(&small, |_| true).expect("read");
        assert_eq!(
            files,
            [("index.json".to_owned(), b"\0\0\0\0\0\0\0{".to_vec())]
        );
    }
}
