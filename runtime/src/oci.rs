//! OCI image archives: ship a module without a registry, and read one back.
//!
//! [`OciImage::wasm`] makes the image of one module: a single uncompressed layer holding the
//! `.wasm` file at the root, whose config names it as the entrypoint (so `process.args[0]`,
//! which containerd composes from the entrypoint, names the module, as the shim expects).
//! [`OciImage::wasm_layer`] makes the image as Wasm OCI tooling ships one: the layer is the
//! module itself. [`OciImage::write_archive`] writes either as an OCI image layout tarball
//! (`oci-layout`, `index.json`, `blobs/sha256/...`), which `ctr images import` loads under the
//! image's name (the `io.containerd.image.name` annotation).
//!
//! [`read_module`] reads the module back from such an archive (`docker save` and `ctr export`
//! write the same layout). What an image's module is, is decided here once, for the runner and
//! for the shim (which reads the same documents from containerd's content store):
//! - of an index's manifests, [`choose_manifest`] takes the first for the `wasm` architecture,
//!   else the first;
//! - of a manifest's layers, [`wasm_layers`] are those of one of the
//!   [`WASM_LAYER_MEDIA_TYPES`]: the first is the module;
//! - an image without one has its module as a file of its rootfs layers, the one its
//!   entrypoint names.
//!
//! The documents are `oci-spec`'s image types, written and read alike.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest,
    HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder,
    ImageManifest, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder,
    RootFsBuilder, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

use crate::wasm::ImageKind;

/// Media type of a layer that is a Wasm component (the Bytecode Alliance's convention): what
/// [`OciImage::wasm_layer`] writes.
pub const LAYER_WASM_COMPONENT: &str =
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
/// Media type of a layer that is a Wasm module (the CNCF TAG Runtime's Wasm OCI artifact).
pub const LAYER_WASM_CONTENT: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// Media type of a layer that is a Wasm module (the plain Wasm media type).
pub const LAYER_WASM: &str = "application/wasm";
/// Layer media types whose layer is a module itself (not a tar of files).
pub const WASM_LAYER_MEDIA_TYPES: [&str; 3] =
    [LAYER_WASM_COMPONENT, LAYER_WASM_CONTENT, LAYER_WASM];
/// The annotation containerd takes an imported image's name from.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The annotation OCI tools take the reference (tag) from.
pub const REF_NAME_ANNOTATION: &str = ANNOTATION_REF_NAME;

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
    /// The image's documents could not be encoded (its parts make no valid OCI image).
    #[error("{path}: encode the image: {message}")]
    Encode {
        /// The archive.
        path: PathBuf,
        /// What went wrong, on one line.
        message: String,
    },
    /// An archive read back is not what this module understands.
    #[error("{path}: {message}")]
    Invalid {
        /// The archive.
        path: PathBuf,
        /// What is wrong, on one line.
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
            OciError::Io { .. } | OciError::Encode { .. } => crate::ErrorKind::Internal,
            OciError::NotWasm { .. } | OciError::BadName { .. } | OciError::Invalid { .. } => {
                crate::ErrorKind::InvalidArgument
            }
        }
    }
}

/// Whether a layer of media type `media_type` is a module itself: one of
/// [`WASM_LAYER_MEDIA_TYPES`].
pub fn is_wasm_layer(media_type: &MediaType) -> bool {
    WASM_LAYER_MEDIA_TYPES.contains(&media_type.as_ref())
}

/// The layers of `manifest` that are modules, in manifest order: the first is the image's
/// module.
pub fn wasm_layers(manifest: &ImageManifest) -> impl Iterator<Item = &Descriptor> {
    manifest
        .layers()
        .iter()
        .filter(|layer| is_wasm_layer(layer.media_type()))
}

/// The manifest of `index` that wasmpod runs: the first whose platform's architecture is
/// `wasm`, else the first. `None` when the index lists none.
pub fn choose_manifest(index: &ImageIndex) -> Option<&Descriptor> {
    let manifests = index.manifests();
    manifests
        .iter()
        .find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == Arch::Wasm)
        })
        .or_else(|| manifests.first())
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

/// A single-layer image, to write as an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciImage {
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
    /// `module_layer_type`, as Wasm OCI tooling writes it, instead of a tar of `files`.
    pub module_layer: Option<Vec<u8>>,
    /// The media type of `module_layer`. Default: [`LAYER_WASM_COMPONENT`]. Any of
    /// [`WASM_LAYER_MEDIA_TYPES`] reads back as the module.
    pub module_layer_type: String,
}

impl OciImage {
    /// An empty image named `name` (normalised as [`normalize_name`] does) for this platform.
    pub fn new(name: &str) -> Result<OciImage, OciError> {
        Ok(OciImage {
            name: normalize_name(name)?,
            files: Vec::new(),
            entrypoint: Vec::new(),
            os: "linux".into(),
            architecture: go_arch().into(),
            labels: BTreeMap::new(),
            module_layer: None,
            module_layer_type: LAYER_WASM_COMPONENT.into(),
        })
    }

    /// The image of the module at `module`: the file at the rootfs' root, as the entrypoint.
    pub fn wasm(module: &Path, name: &str) -> Result<OciImage, OciError> {
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
        let mut image = OciImage::new(name)?;
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
    /// layer (no rootfs), of media type [`LAYER_WASM_COMPONENT`], `wasm` its architecture,
    /// its file name the entrypoint.
    pub fn wasm_layer(module: &Path, name: &str) -> Result<OciImage, OciError> {
        OciImage::wasm_layer_as(module, name, LAYER_WASM_COMPONENT)
    }

    /// [`OciImage::wasm_layer`] with a layer of media type `media_type` (one of
    /// [`WASM_LAYER_MEDIA_TYPES`] for wasmpod to read it back).
    pub fn wasm_layer_as(
        module: &Path,
        name: &str,
        media_type: &str,
    ) -> Result<OciImage, OciError> {
        let mut image = OciImage::wasm(module, name)?;
        image.module_layer = image.files.pop().map(|file| file.contents);
        image.module_layer_type = media_type.to_owned();
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
    /// rename). Returns the manifest's digest (`sha256:...`). The same image gives the same
    /// archive, byte for byte.
    pub fn write_archive(&self, out: &Path) -> Result<String, OciError> {
        let io = |op| {
            move |source| OciError::Io {
                op,
                path: out.to_owned(),
                source,
            }
        };
        let (layer, layer_type) = match &self.module_layer {
            Some(module) => (
                module.clone(),
                MediaType::from(self.module_layer_type.as_str()),
            ),
            None => (
                self.layer().map_err(io("build layer"))?,
                MediaType::ImageLayer,
            ),
        };
        let layout = self
            .layout(layer, layer_type)
            .map_err(|message| OciError::Encode {
                path: out.to_owned(),
                message: one_line(&message),
            })?;

        let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
            .map_err(io("create temp file in the directory of"))?;
        let mut archive = tar::Builder::new(tmp.as_file());
        append(&mut archive, "oci-layout", &layout.oci_layout, 0o644).map_err(io("write"))?;
        append(&mut archive, "index.json", &layout.index, 0o644).map_err(io("write"))?;
        for (digest, bytes) in &layout.blobs {
            append(&mut archive, &blob_path(digest), bytes, 0o644).map_err(io("write"))?;
        }
        archive.finish().map_err(io("write"))?;
        drop(archive);
        tmp.persist(out)
            .map_err(|e| io("rename temp file to")(e.error))?;
        Ok(layout.manifest.to_string())
    }

    /// The image's documents and blobs around its one layer, encoded.
    fn layout(&self, layer: Vec<u8>, layer_type: MediaType) -> Result<Layout, String> {
        let layer = Blob::of(layer_type, layer)?;
        let mut config = ConfigBuilder::default().entrypoint(self.entrypoint.clone());
        if !self.labels.is_empty() {
            config = config.labels(
                self.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            );
        }
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::from(self.architecture.as_str()))
            .os(Os::from(self.os.as_str()))
            .config(config.build().map_err(|e| format!("config: {e}"))?)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(vec![layer.digest.to_string()])
                    .build()
                    .map_err(|e| format!("rootfs: {e}"))?,
            )
            .history(vec![
                HistoryBuilder::default()
                    .created_by("wasmpod image build")
                    .build()
                    .map_err(|e| format!("history: {e}"))?,
            ])
            .build()
            .map_err(|e| format!("config: {e}"))?;
        let config = Blob::of(MediaType::ImageConfig, to_json(&config)?)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.descriptor())
            .layers(vec![layer.descriptor()])
            .build()
            .map_err(|e| format!("manifest: {e}"))?;
        let manifest = Blob::of(MediaType::ImageManifest, to_json(&manifest)?)?;
        let platform = PlatformBuilder::default()
            .architecture(Arch::from(self.architecture.as_str()))
            .os(Os::from(self.os.as_str()))
            .build()
            .map_err(|e| format!("platform: {e}"))?;
        let entry = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(manifest.digest.clone())
            .size(manifest.bytes.len() as u64)
            .annotations(HashMap::from([
                (IMAGE_NAME_ANNOTATION.to_owned(), self.name.clone()),
                (
                    REF_NAME_ANNOTATION.to_owned(),
                    tag_of(&self.name).to_owned(),
                ),
            ]))
            .platform(platform)
            .build()
            .map_err(|e| format!("index entry: {e}"))?;
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![entry])
            .build()
            .map_err(|e| format!("index: {e}"))?;
        let oci_layout = OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()
            .map_err(|e| format!("oci-layout: {e}"))?;
        Ok(Layout {
            oci_layout: to_json(&oci_layout)?,
            index: to_json(&index)?,
            manifest: manifest.digest.clone(),
            blobs: vec![
                (layer.digest, layer.bytes),
                (config.digest, config.bytes),
                (manifest.digest, manifest.bytes),
            ],
        })
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

/// An image's files besides its layout's blobs directory, and its blobs.
struct Layout {
    oci_layout: Vec<u8>,
    index: Vec<u8>,
    /// The digest of the manifest (one of `blobs`).
    manifest: Digest,
    blobs: Vec<(Digest, Vec<u8>)>,
}

/// A blob of an image and what its descriptor says of it.
struct Blob {
    media_type: MediaType,
    digest: Digest,
    bytes: Vec<u8>,
}

impl Blob {
    fn of(media_type: MediaType, bytes: Vec<u8>) -> Result<Blob, String> {
        let digest = Sha256Digest::from_str(&hex::encode(Sha256::digest(&bytes)))
            .map_err(|e| format!("digest: {e}"))?;
        Ok(Blob {
            media_type,
            digest: digest.into(),
            bytes,
        })
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.bytes.len() as u64,
            self.digest.clone(),
        )
    }
}

/// `value` as compact JSON with every object's keys sorted (through a `serde_json::Value`,
/// whose maps are ordered): oci-spec keeps labels and annotations in `HashMap`s, whose order
/// would change the bytes, and so the digests, of the same image from one run to the next.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_value(value)
        .and_then(|value| serde_json::to_vec(&value))
        .map_err(|e| e.to_string())
}

/// Reads the module an image archive holds: the chosen manifest's first Wasm layer, or else
/// the file its entrypoint names in its rootfs layers. Returns the module's bytes.
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

/// [`read_module`] of an archive already read; `archive` names it in errors. Everything wrong
/// with the bytes is [`OciError::Invalid`], with a one-line message.
pub fn module_in_archive(bytes: &[u8], archive: &Path) -> Result<Vec<u8>, OciError> {
    let invalid = |message: String| OciError::Invalid {
        path: archive.to_owned(),
        message: one_line(&message),
    };
    let blobs: BTreeMap<String, Vec<u8>> = tar_files(bytes, |_| true)
        .map_err(|e| invalid(format!("not a readable tar archive: {e}")))?
        .into_iter()
        .collect();
    let blob = |descriptor: &Descriptor| -> Result<&[u8], OciError> {
        let digest = descriptor.digest();
        blobs
            .get(&blob_path(digest))
            .map(Vec::as_slice)
            .ok_or_else(|| invalid(format!("blob {digest} is missing")))
    };
    let index = blobs
        .get("index.json")
        .ok_or_else(|| invalid("index.json is missing".into()))?;
    let index: ImageIndex = parse("index.json", index).map_err(invalid)?;
    let chosen = choose_manifest(&index)
        .ok_or_else(|| invalid("index.json lists no image manifest".into()))?;
    let manifest: ImageManifest =
        parse(&format!("manifest {}", chosen.digest()), blob(chosen)?).map_err(invalid)?;
    if let Some(layer) = wasm_layers(&manifest).next() {
        return blob(layer).map(<[u8]>::to_vec);
    }
    let config = manifest.config();
    let config: ImageConfiguration =
        parse(&format!("config {}", config.digest()), blob(config)?).map_err(invalid)?;
    let entrypoint = config
        .config()
        .as_ref()
        .and_then(|c| c.entrypoint().as_ref())
        .and_then(|argv| argv.first())
        .ok_or_else(|| invalid("the image has neither a Wasm layer nor an entrypoint".into()))?;
    let wanted = entrypoint.trim_start_matches('/');
    for layer in manifest.layers().iter().rev() {
        let found = tar_files(blob(layer)?, |path| path == wanted)
            .map_err(|e| invalid(format!("layer {}: {e}", layer.digest())))?;
        if let Some((_, bytes)) = found.into_iter().next_back() {
            return Ok(bytes);
        }
    }
    Err(invalid(format!(
        "the entrypoint {entrypoint:?} is in no layer"
    )))
}

/// `bytes` as the JSON document `what` is.
fn parse<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what}: {e}"))
}

/// `text` with every run of whitespace (newlines included) folded into one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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

fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
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
    use serde_json::json;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";
    /// What a linux/amd64 image's entrypoint would be: no module.
    const NATIVE: &[u8] = b"\x7fELF\x02\x01\x01\0native";
    const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

    // Archives written by hand, from JSON, independently of `OciImage`: what other tools write.

    fn sha(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    fn desc(media_type: &str, bytes: &[u8]) -> serde_json::Value {
        json!({"mediaType": media_type, "digest": sha(bytes), "size": bytes.len()})
    }

    fn blob(bytes: &[u8]) -> String {
        format!("blobs/sha256/{}", hex::encode(Sha256::digest(bytes)))
    }

    /// A tar of `files`.
    fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut archive = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive
                .append_data(&mut header, path, bytes.as_slice())
                .expect("append");
        }
        archive.into_inner().expect("tar")
    }

    /// One image of a test archive's index.
    struct Manifest {
        os: &'static str,
        architecture: &'static str,
        entrypoint: Option<&'static str>,
        /// Media type and bytes of each layer.
        layers: Vec<(&'static str, Vec<u8>)>,
    }

    /// An OCI image layout tarball whose index lists `manifests`, in order.
    fn layout(manifests: &[Manifest]) -> Vec<u8> {
        let mut files = vec![(
            "oci-layout".to_owned(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )];
        let mut entries = Vec::new();
        for m in manifests {
            let mut config = json!({
                "architecture": m.architecture,
                "os": m.os,
                "rootfs": {
                    "type": "layers",
                    "diff_ids": m.layers.iter().map(|(_, b)| sha(b)).collect::<Vec<_>>(),
                },
            });
            if let Some(entrypoint) = m.entrypoint {
                config["config"] = json!({"Entrypoint": [entrypoint]});
            }
            let config = serde_json::to_vec(&config).expect("json");
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": desc(CONFIG, &config),
                "layers": m.layers.iter().map(|(t, b)| desc(t, b)).collect::<Vec<_>>(),
            }))
            .expect("json");
            let mut entry = desc(MANIFEST, &manifest);
            entry["platform"] = json!({"os": m.os, "architecture": m.architecture});
            entries.push(entry);
            for (_, bytes) in &m.layers {
                files.push((blob(bytes), bytes.clone()));
            }
            files.push((blob(&config), config));
            files.push((blob(&manifest), manifest));
        }
        let index = json!({"schemaVersion": 2, "manifests": entries});
        files.push((
            "index.json".to_owned(),
            serde_json::to_vec(&index).expect("json"),
        ));
        tar_of(&files)
    }

    fn read(archive: &[u8]) -> Result<Vec<u8>, OciError> {
        module_in_archive(archive, Path::new("test.tar"))
    }

    #[test]
    fn a_layer_of_each_wasm_media_type_is_the_module() {
        for media_type in [
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
            "application/vnd.wasm.content.layer.v1+wasm",
            "application/wasm",
        ] {
            // After a rootfs layer without the module, and no entrypoint: only the Wasm layer
            // can be the module.
            let archive = layout(&[Manifest {
                os: "wasip1",
                architecture: "wasm",
                entrypoint: None,
                layers: vec![
                    (
                        TAR_LAYER,
                        tar_of(&[("README".into(), b"no module here".to_vec())]),
                    ),
                    (media_type, MODULE.to_vec()),
                ],
            }]);
            assert_eq!(read(&archive).expect(media_type), MODULE, "{media_type}");
        }
    }

    #[test]
    fn an_index_leads_to_its_wasm_manifest_even_when_it_is_not_the_first() {
        let native = || Manifest {
            os: "linux",
            architecture: "amd64",
            entrypoint: Some("/app"),
            layers: vec![(TAR_LAYER, tar_of(&[("app".into(), NATIVE.to_vec())]))],
        };
        let wasm = || Manifest {
            os: "wasip1",
            architecture: "wasm",
            entrypoint: Some("/app.wasm"),
            layers: vec![(LAYER_WASM, MODULE.to_vec())],
        };
        assert_eq!(read(&layout(&[native(), wasm()])).expect("read"), MODULE);
        assert_eq!(read(&layout(&[wasm(), native()])).expect("read"), MODULE);
        // Without a wasm one, the first is the image.
        assert_eq!(read(&layout(&[native()])).expect("read"), NATIVE);
    }

    #[test]
    fn a_rootfs_layer_with_an_entrypoint_is_read() {
        let archive = layout(&[Manifest {
            os: "linux",
            architecture: "amd64",
            entrypoint: Some("/bin/hello.wasm"),
            layers: vec![
                (
                    TAR_LAYER,
                    tar_of(&[("bin/hello.wasm".into(), b"an older version".to_vec())]),
                ),
                (
                    TAR_LAYER,
                    tar_of(&[
                        ("README".into(), b"hello".to_vec()),
                        ("./bin/hello.wasm".into(), MODULE.to_vec()),
                    ]),
                ),
            ],
        }]);
        // The upper layer's file is the rootfs'.
        assert_eq!(read(&archive).expect("read"), MODULE);
    }

    #[test]
    fn malformed_archives_are_invalid_with_one_line_messages() {
        let file = |path: &str, bytes: &[u8]| (path.to_owned(), bytes.to_vec());
        let index_of = |manifest: &[u8]| {
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "manifests": [desc(MANIFEST, manifest)],
            }))
            .expect("json")
        };
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest_with = |layers: serde_json::Value| {
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "config": desc(CONFIG, config),
                "layers": layers,
            }))
            .expect("json")
        };
        let mut bad_header = vec![0xff_u8; 1024];
        bad_header[257..262].copy_from_slice(b"ustar");
        let no_wasm = manifest_with(json!([]));
        let entrypoint_config = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app.wasm"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let not_a_tar = vec![0xff_u8; 1024];
        let in_no_layer = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": desc(CONFIG, entrypoint_config),
            "layers": [desc(TAR_LAYER, &tar_of(&[file("other", b"x")]))],
        }))
        .expect("json");
        let bad_layer = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": desc(CONFIG, entrypoint_config),
            "layers": [desc(TAR_LAYER, &not_a_tar)],
        }))
        .expect("json");
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("a corrupt tar header", bad_header, "not a readable tar archive"),
            (
                "no index",
                tar_of(&[file("oci-layout", b"{}")]),
                "index.json is missing",
            ),
            (
                "an index that is no JSON",
                tar_of(&[file("index.json", b"not json\n\n")]),
                "index.json: ",
            ),
            (
                "an index that is no image index",
                tar_of(&[file("index.json", b"{\n  \"manifests\": 7\n}\n")]),
                "index.json: ",
            ),
            (
                "an empty index",
                tar_of(&[file("index.json", br#"{"schemaVersion":2,"manifests":[]}"#)]),
                "index.json lists no image manifest",
            ),
            (
                "a digest that is no digest",
                tar_of(&[file(
                    "index.json",
                    br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../etc/passwd","size":1}]}"#,
                )]),
                "index.json: ",
            ),
            (
                "a missing manifest",
                tar_of(&[file("index.json", &index_of(b"{}"))]),
                "is missing",
            ),
            (
                "a manifest that is no JSON",
                tar_of(&[
                    file("index.json", &index_of(b"[1, 2")),
                    (blob(b"[1, 2"), b"[1, 2".to_vec()),
                ]),
                "manifest sha256:",
            ),
            (
                "neither a Wasm layer nor an entrypoint",
                tar_of(&[
                    file("index.json", &index_of(&no_wasm)),
                    (blob(&no_wasm), no_wasm.clone()),
                    (blob(config), config.to_vec()),
                ]),
                "neither a Wasm layer nor an entrypoint",
            ),
            (
                "an entrypoint in no layer",
                tar_of(&[
                    file("index.json", &index_of(&in_no_layer)),
                    (blob(&in_no_layer), in_no_layer.clone()),
                    (blob(entrypoint_config), entrypoint_config.to_vec()),
                    (
                        blob(&tar_of(&[file("other", b"x")])),
                        tar_of(&[file("other", b"x")]),
                    ),
                ]),
                "the entrypoint \"/app.wasm\" is in no layer",
            ),
            (
                "a layer that is no tar",
                tar_of(&[
                    file("index.json", &index_of(&bad_layer)),
                    (blob(&bad_layer), bad_layer.clone()),
                    (blob(entrypoint_config), entrypoint_config.to_vec()),
                    (blob(&not_a_tar), not_a_tar.clone()),
                ]),
                "layer sha256:",
            ),
        ];
        for (what, archive, expected) in cases {
            let error = read(&archive).expect_err(what);
            assert!(
                matches!(error, OciError::Invalid { .. }),
                "{what}: {error:?}"
            );
            assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument, "{what}");
            let message = error.to_string();
            assert!(!message.contains('\n'), "{what}: {message:?}");
            assert!(
                message.starts_with("test.tar: ") && message.contains(expected),
                "{what}: {message:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn the_shared_choices_of_manifest_and_layers() {
        assert_eq!(
            WASM_LAYER_MEDIA_TYPES,
            [
                "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
                "application/vnd.wasm.content.layer.v1+wasm",
                "application/wasm",
            ]
        );
        let index: ImageIndex = serde_json::from_value(json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": MANIFEST, "digest": sha(b"1"), "size": 1,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": MANIFEST, "digest": sha(b"2"), "size": 1},
                {"mediaType": MANIFEST, "digest": sha(b"3"), "size": 1,
                 "platform": {"architecture": "wasm", "os": "wasip1"}},
                {"mediaType": MANIFEST, "digest": sha(b"4"), "size": 1,
                 "platform": {"architecture": "wasm", "os": "wasip2"}},
            ],
        }))
        .expect("index");
        let chosen = choose_manifest(&index).expect("a manifest");
        assert_eq!(chosen.digest().to_string(), sha(b"3"));
        let mut natives = index.clone();
        natives.set_manifests(index.manifests()[..2].to_vec());
        let chosen = choose_manifest(&natives).expect("a manifest");
        assert_eq!(chosen.digest().to_string(), sha(b"1"));
        natives.set_manifests(Vec::new());
        assert!(choose_manifest(&natives).is_none());

        let manifest: ImageManifest = serde_json::from_value(json!({
            "schemaVersion": 2,
            "config": desc(CONFIG, b"{}"),
            "layers": [
                desc(TAR_LAYER, b"a"),
                desc(WASM_LAYER_MEDIA_TYPES[0], b"b"),
                desc("application/vnd.oci.image.layer.v1.tar+gzip", b"c"),
                desc(WASM_LAYER_MEDIA_TYPES[1], b"d"),
                desc(WASM_LAYER_MEDIA_TYPES[2], b"e"),
            ],
        }))
        .expect("manifest");
        let digests: Vec<String> = wasm_layers(&manifest)
            .map(|l| l.digest().to_string())
            .collect();
        assert_eq!(digests, [sha(b"b"), sha(b"d"), sha(b"e")]);
    }

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

    /// The entries of the tar at `path`, by name.
    fn entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
        let bytes = std::fs::read(path).expect("read archive");
        tar_files(&bytes, |_| true)
            .expect("a tar")
            .into_iter()
            .collect()
    }

    fn json_of(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn a_wasm_image_round_trips_through_its_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("hello.wasm");
        std::fs::write(&module, MODULE).expect("write");
        let image = OciImage::wasm(&module, "hello:1").expect("image");
        assert_eq!(image.entrypoint, ["/hello.wasm"]);
        let out = dir.path().join("hello.tar");
        let digest = image.write_archive(&out).expect("write archive");
        assert!(digest.starts_with("sha256:"), "{digest}");
        assert_eq!(read_module(&out).expect("read back"), MODULE);

        // The layout containerd expects.
        let files = entries(&out);
        assert_eq!(json_of(&files["oci-layout"])["imageLayoutVersion"], "1.0.0");
        assert_eq!(
            files
                .keys()
                .filter(|n| n.starts_with("blobs/sha256/"))
                .count(),
            3
        );
        let index = json_of(&files["index.json"]);
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(entry["mediaType"], MANIFEST);
        assert_eq!(
            entry["annotations"][IMAGE_NAME_ANNOTATION],
            "docker.io/library/hello:1"
        );
        assert_eq!(entry["annotations"][REF_NAME_ANNOTATION], "1");
        assert_eq!(
            entry["platform"],
            json!({"os": "linux", "architecture": go_arch()})
        );
        let manifest = json_of(&files[&format!("blobs/{}", digest.replace(':', "/"))]);
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["config"]["mediaType"], CONFIG);
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], TAR_LAYER, "an uncompressed tar layer");
        let config_digest = manifest["config"]["digest"].as_str().expect("digest");
        let config = json_of(&files[&format!("blobs/{}", config_digest.replace(':', "/"))]);
        assert_eq!(
            config,
            json!({
                "architecture": go_arch(),
                "os": "linux",
                "config": {
                    "Entrypoint": ["/hello.wasm"],
                    "Labels": {"io.wasmpod.module.kind": "module"},
                },
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
                "history": [{"created_by": "wasmpod image build"}],
            })
        );

        // The same image, the same archive.
        let again = dir.path().join("again.tar");
        assert_eq!(image.write_archive(&again).expect("write"), digest);
        assert!(std::fs::read(&again).ok() == std::fs::read(&out).ok());
    }

    #[test]
    fn an_image_with_each_wasm_layer_media_type_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("app.wasm");
        std::fs::write(&module, MODULE).expect("write");
        let default = OciImage::wasm_layer(&module, "app").expect("image");
        assert_eq!(default.module_layer_type, LAYER_WASM_COMPONENT);
        for media_type in WASM_LAYER_MEDIA_TYPES {
            let image = OciImage::wasm_layer_as(&module, "app", media_type).expect("image");
            let out = dir.path().join("app.tar");
            let digest = image.write_archive(&out).expect("write archive");
            assert_eq!(
                read_module(&out).expect("read back"),
                MODULE,
                "{media_type}"
            );
            let files = entries(&out);
            let index = json_of(&files["index.json"]);
            assert_eq!(
                index["manifests"][0]["platform"],
                json!({"os": "wasip1", "architecture": "wasm"})
            );
            let manifest = json_of(&files[&format!("blobs/{}", digest.replace(':', "/"))]);
            assert_eq!(manifest["layers"][0]["mediaType"], media_type);
            assert_eq!(manifest["layers"][0]["digest"], sha(MODULE));
        }
    }

    #[test]
    fn not_wasm_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("bad.wasm");
        std::fs::write(&module, b"#!/bin/sh\n").expect("write");
        let error = OciImage::wasm(&module, "bad").expect_err("not wasm");
        assert!(matches!(error, OciError::NotWasm { .. }), "{error}");
        assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument);
        let missing = OciImage::wasm(&dir.path().join("nope.wasm"), "x").expect_err("missing");
        assert_eq!(missing.kind(), crate::ErrorKind::NotFound);
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
