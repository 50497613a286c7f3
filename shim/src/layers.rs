//! Modules shipped as Wasm OCI layers.
//!
//! An image may carry its module as a layer of a Wasm media type instead of a file in a tar
//! layer (`wasmpod image build` writes the latter; Wasm OCI tooling the former). Such a layer
//! is never part of the rootfs (containerd either leaves it out or, like 1.6.20, refuses to
//! unpack the image), so, as runwasi does, the shim reads it from containerd's content store:
//! the task's container record names its image, the image its manifest, the manifest its
//! layers. Which manifest of an index and which layers are the module, `wasmpod run` decides
//! alike for an image archive: both ask [`wasmpod::oci`].

use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use oci_spec::image::{ImageIndex, ImageManifest, MediaType};
use tonic::transport::Channel;
use wasmpod::oci::{choose_manifest, wasm_layers};

/// How long the content store may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// containerd's namespace header.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// Media type of a Docker manifest list: an image index by another name.
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// containerd's content store, as seen from one namespace.
#[derive(Debug, Clone)]
pub struct ContentStore {
    /// containerd's gRPC socket (the shim's `-address`).
    pub address: String,
    /// The namespace of the shim's tasks.
    pub namespace: String,
}

impl ContentStore {
    /// The Wasm layers of container `id`'s image, in manifest order: empty when the image has
    /// none (its module is a file of the rootfs) or the container has no image.
    pub async fn wasm_layers(&self, id: &str) -> Result<Vec<Vec<u8>>, String> {
        tokio::time::timeout(TIMEOUT, self.read_wasm_layers(id))
            .await
            .map_err(|_| format!("containerd did not answer within {TIMEOUT:?}"))?
    }

    async fn read_wasm_layers(&self, id: &str) -> Result<Vec<Vec<u8>>, String> {
        let channel = containerd_client::connect(&self.address)
            .await
            .map_err(|e| format!("connect to containerd at {}: {e}", self.address))?;
        let container = ContainersClient::new(channel.clone())
            .get(self.request(GetContainerRequest { id: id.to_owned() })?)
            .await
            .map_err(|e| format!("container {id}: {}", e.message()))?
            .into_inner()
            .container
            .ok_or_else(|| format!("container {id}: no record"))?;
        if container.image.is_empty() {
            return Ok(Vec::new());
        }
        let image = ImagesClient::new(channel.clone())
            .get(self.request(GetImageRequest {
                name: container.image.clone(),
            })?)
            .await
            .map_err(|e| format!("image {}: {}", container.image, e.message()))?
            .into_inner()
            .image
            .and_then(|image| image.target)
            .ok_or_else(|| format!("image {}: no target", container.image))?;
        let blob = self.read(&channel, &image.digest).await?;
        let manifest = match image_document(&image.media_type, &blob)? {
            ImageDocument::Manifest(manifest) => *manifest,
            ImageDocument::Index(digest) => parse_manifest(&self.read(&channel, &digest).await?)?,
        };
        let mut layers = Vec::new();
        for digest in wasm_layer_digests(&manifest) {
            layers.push(self.read(&channel, &digest).await?);
        }
        Ok(layers)
    }

    /// The blob `digest`, whole.
    async fn read(&self, channel: &Channel, digest: &str) -> Result<Vec<u8>, String> {
        let mut stream = ContentClient::new(channel.clone())
            .read(self.request(ReadContentRequest {
                digest: digest.to_owned(),
                offset: 0,
                size: 0,
            })?)
            .await
            .map_err(|e| format!("read {digest}: {}", e.message()))?
            .into_inner();
        let mut blob = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|e| format!("read {digest}: {}", e.message()))?
        {
            blob.extend_from_slice(&chunk.data);
        }
        Ok(blob)
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>, String> {
        let mut request = tonic::Request::new(message);
        let namespace = self
            .namespace
            .parse()
            .map_err(|_| format!("namespace {:?} is not a header value", self.namespace))?;
        request.metadata_mut().insert(NAMESPACE_HEADER, namespace);
        Ok(request)
    }
}

/// What an image's target is.
#[derive(Debug, PartialEq)]
enum ImageDocument {
    /// An image manifest.
    Manifest(Box<ImageManifest>),
    /// An image index (or Docker manifest list), and the digest of the manifest of it that
    /// [`choose_manifest`] chooses.
    Index(String),
}

/// The image target `blob`, of media type `media_type`.
fn image_document(media_type: &str, blob: &[u8]) -> Result<ImageDocument, String> {
    let is_index =
        MediaType::from(media_type) == MediaType::ImageIndex || media_type == DOCKER_MANIFEST_LIST;
    if !is_index {
        return parse_manifest(blob).map(|manifest| ImageDocument::Manifest(Box::new(manifest)));
    }
    let index: ImageIndex =
        serde_json::from_slice(blob).map_err(|e| format!("image index: {e}"))?;
    let chosen = choose_manifest(&index).ok_or("image index: no manifests")?;
    Ok(ImageDocument::Index(chosen.digest().to_string()))
}

/// The image manifest `blob`.
fn parse_manifest(blob: &[u8]) -> Result<ImageManifest, String> {
    serde_json::from_slice(blob).map_err(|e| format!("image manifest: {e}"))
}

/// The digests of the manifest's layers that are modules, in manifest order.
fn wasm_layer_digests(manifest: &ImageManifest) -> Vec<String> {
    wasm_layers(manifest)
        .map(|layer| layer.digest().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmpod::oci::WASM_LAYER_MEDIA_TYPES;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:x}").repeat(64))
    }

    fn layer(media_type: &str, n: u8) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": digest(n), "size": 1})
    }

    #[test]
    fn a_manifest_leads_to_its_wasm_layers_of_every_wasm_media_type() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": layer("application/vnd.oci.image.config.v1+json", 1),
            "layers": [
                layer("application/vnd.oci.image.layer.v1.tar", 2),
                layer(WASM_LAYER_MEDIA_TYPES[0], 3),
                layer(WASM_LAYER_MEDIA_TYPES[1], 4),
                layer(WASM_LAYER_MEDIA_TYPES[2], 5),
            ]
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let document = image_document("application/vnd.oci.image.manifest.v1+json", &bytes)
            .expect("a manifest");
        let ImageDocument::Manifest(manifest) = document else {
            panic!("{document:?} is not a manifest");
        };
        assert_eq!(
            wasm_layer_digests(&manifest),
            [digest(3), digest(4), digest(5)]
        );
        assert!(image_document("application/vnd.oci.image.manifest.v1+json", b"{}").is_err());
    }

    #[test]
    fn an_index_leads_to_its_wasm_manifest() {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(1),
                 "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(2),
                 "size": 1, "platform": {"architecture": "wasm", "os": "wasip1"}},
            ]
        });
        let bytes = serde_json::to_vec(&index).expect("json");
        for media_type in [
            "application/vnd.oci.image.index.v1+json",
            DOCKER_MANIFEST_LIST,
        ] {
            assert_eq!(
                image_document(media_type, &bytes),
                Ok(ImageDocument::Index(digest(2)))
            );
        }
        let empty = br#"{"schemaVersion":2,"manifests":[]}"#;
        let error = image_document("application/vnd.oci.image.index.v1+json", empty)
            .expect_err("no manifests");
        assert!(error.contains("no manifests"), "{error}");
        assert!(image_document("application/vnd.oci.image.index.v1+json", b"not json").is_err());
    }
}
