//! Eviction when an emptyDir grows past its `sizeLimit`.

use std::path::Path;
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
            let Some(path) = pod.sandbox.volume_path(name) else {
                continue;
            };
            let used = tokio::task::spawn_blocking(move || dir_size(&path))
                .await
                .unwrap_or(0);
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

/// The bytes of every file under `dir`, symlinks not followed.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) if meta.is_file() => meta.len(),
            _ => 0,
        })
        .sum()
}
