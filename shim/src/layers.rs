//! Modules shipped as Wasm OCI layers.
//!
//! An image may carry its module as a layer of a Wasm media type instead of a file in a tar
//! layer (`wasmpod image build` writes the latter; Wasm OCI tooling the former). Such a layer
//! is never part of the rootfs (containerd either leaves it out or, like 1.6.20, refuses to
//! unpack the image), so, as runwasi does, the shim reads it from containerd's content store:
//! the task's container record names its image, the image its manifest, the manifest its
//! layers.

use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use tonic::transport::Channel;

/// Layer media types that are a module itself.
pub const WASM_LAYER_TYPES: [&str; 3] = [
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/wasm",
];
/// How long the content store may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// containerd's namespace header.
const NAMESPACE_HEADER: &str = "containerd-namespace";

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
        let mut manifest = self.read(&channel, &image.digest).await?;
        if let Some(digest) = manifest_of_index(&manifest)? {
            manifest = self.read(&channel, &digest).await?;
        }
        let mut layers = Vec::new();
        for digest in wasm_layer_digests(&manifest)? {
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

/// When `blob` is an image index, the digest of its Wasm manifest (its first one for the
/// `wasm` architecture, else its first); `None` for a manifest.
fn manifest_of_index(blob: &[u8]) -> Result<Option<String>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(blob).map_err(|e| format!("image manifest: {e}"))?;
    let Some(manifests) = json["manifests"].as_array() else {
        return Ok(None);
    };
    let chosen = manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == "wasm")
        .or_else(|| manifests.first())
        .ok_or("image index: no manifests")?;
    chosen["digest"]
        .as_str()
        .map(|d| Some(d.to_owned()))
        .ok_or_else(|| "image index: a manifest without a digest".to_owned())
}

/// The digests of the manifest's layers that are modules.
fn wasm_layer_digests(manifest: &[u8]) -> Result<Vec<String>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("image manifest: {e}"))?;
    Ok(json["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|layer| {
            layer["mediaType"]
                .as_str()
                .is_some_and(|t| WASM_LAYER_TYPES.contains(&t))
        })
        .filter_map(|layer| layer["digest"].as_str().map(str::to_owned))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasm_media_types_are_module_layers() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:aa"},
                {"mediaType": WASM_LAYER_TYPES[0], "digest": "sha256:bb"},
                {"mediaType": "application/wasm", "digest": "sha256:cc"},
            ]
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        assert_eq!(
            wasm_layer_digests(&bytes),
            Ok(vec!["sha256:bb".to_owned(), "sha256:cc".to_owned()])
        );
        assert_eq!(manifest_of_index(&bytes), Ok(None));
    }

    #[test]
    fn an_index_leads_to_its_wasm_manifest() {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"digest": "sha256:11", "platform": {"architecture": "amd64", "os": "linux"}},
                {"digest": "sha256:22", "platform": {"architecture": "wasm", "os": "wasip1"}},
            ]
        });
        let bytes = serde_json::to_vec(&index).expect("json");
        assert_eq!(manifest_of_index(&bytes), Ok(Some("sha256:22".to_owned())));
        assert!(manifest_of_index(b"not json").is_err());
    }
}
