//! Eviction when an emptyDir grows past its `sizeLimit`.

use std::sync::Arc;
use std::time::Duration;

use super::Pod;
use crate::spec::{VolumeSource, VolumeSpec};

/// Evicts the pod, as kubelet does, when an emptyDir grows past its `sizeLimit`: the pod
/// fails with reason `Evicted` and its containers are killed at once. Writes are not refused
/// on the way (a volume is a plain host directory); the limit is checked every `interval`.
pub(super) async fn evict_on_size_limits(
    pod: Arc<Pod>,
    volumes: Vec<VolumeSpec>,
    interval: Duration,
) {
    let limited: Vec<(String, u64)> = volumes
        .into_iter()
        .filter_map(|v| match v.source {
            VolumeSource::EmptyDir {
                size_limit: Some(limit),
                ..
            } => Some((v.name, limit)),
            _ => None,
        })
        .collect();
    if limited.is_empty() {
        return;
    }
    loop {
        tokio::time::sleep(interval).await;
        for (name, limit) in &limited {
            let Some(dir) = pod.sandbox.volume_dir(name) else {
                continue;
            };
            let used = crate::blocking::unblocked(move || dir.disk_usage()).await;
            if used > *limit {
                let message = format!(
                    "Usage of EmptyDir volume {name:?} exceeds the limit {:?}",
                    crate::admission::format_bytes(*limit)
                );
                tracing::warn!(volume = name, used, limit, "evicting the pod");
                pod.end("Evicted", message);
                pod.shutdown.kill();
                return;
            }
        }
    }
}
