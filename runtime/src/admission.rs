//! Gang admission: a pod fits the node as one unit, or nothing of it starts.
//!
//! The pod's effective request is Kubernetes' formula, per resource:
//! `max(largest init container request, sum of app container requests)` (init containers run
//! one at a time, before the app containers). A [`Node`] holds what it offers and what the pods
//! it admitted hold; an [`Admission`] gives its share back when dropped.

use std::sync::{Arc, Mutex, PoisonError};

use crate::error::ErrorKind;
use crate::spec::{ContainerSpec, PodSpec};

/// Memory (bytes) and CPU (millicores).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quantities {
    /// Bytes of memory.
    pub memory: u64,
    /// Millicores of CPU.
    pub cpu_millis: u64,
}

impl Quantities {
    fn fits_in(self, free: Quantities) -> bool {
        self.memory <= free.memory && self.cpu_millis <= free.cpu_millis
    }
}

impl std::fmt::Display for Quantities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory {}, cpu {}",
            format_bytes(self.memory),
            format_millis(self.cpu_millis)
        )
    }
}

/// The pod does not fit the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pod {pod:?} does not fit the node: it requests {requested}; the node has {free} free (of {capacity})"
)]
pub struct AdmissionError {
    /// The pod.
    pub pod: String,
    /// Its effective request.
    pub requested: Quantities,
    /// What the node had free.
    pub free: Quantities,
    /// What the node offers in all.
    pub capacity: Quantities,
}

impl AdmissionError {
    pub(crate) fn kind(&self) -> ErrorKind {
        ErrorKind::ResourceExhausted
    }
}

/// The pod's effective request: `max(largest init request, sum of app requests)`.
pub fn effective_request(spec: &PodSpec) -> Quantities {
    let request = |c: &ContainerSpec| Quantities {
        memory: c.resources.memory_request.unwrap_or(0),
        cpu_millis: c.resources.cpu_request.unwrap_or(0),
    };
    let apps = spec
        .containers
        .iter()
        .map(request)
        .fold(Quantities::default(), |a, b| Quantities {
            memory: a.memory.saturating_add(b.memory),
            cpu_millis: a.cpu_millis.saturating_add(b.cpu_millis),
        });
    spec.init_containers
        .iter()
        .map(request)
        .fold(apps, |a, b| Quantities {
            memory: a.memory.max(b.memory),
            cpu_millis: a.cpu_millis.max(b.cpu_millis),
        })
}

/// What a node offers pods, and what the pods it admitted hold.
#[derive(Debug)]
pub struct Node {
    capacity: Quantities,
    allocated: Mutex<Quantities>,
}

impl Node {
    /// A node offering `capacity`.
    pub fn new(capacity: Quantities) -> Arc<Node> {
        Arc::new(Node {
            capacity,
            allocated: Mutex::default(),
        })
    }

    /// This machine: its memory (`MemTotal`) and its CPUs.
    pub fn this_machine() -> Arc<Node> {
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(u64::MAX);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        Node::new(Quantities {
            memory,
            cpu_millis: cpus * 1000,
        })
    }

    /// What the node offers in all.
    pub fn capacity(&self) -> Quantities {
        self.capacity
    }

    /// Admits `spec` if its effective request fits what is free; the [`Admission`] holds the
    /// share until dropped.
    pub fn admit(self: &Arc<Self>, spec: &PodSpec) -> Result<Admission, AdmissionError> {
        let requested = effective_request(spec);
        let mut allocated = self
            .allocated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let free = Quantities {
            memory: self.capacity.memory.saturating_sub(allocated.memory),
            cpu_millis: self
                .capacity
                .cpu_millis
                .saturating_sub(allocated.cpu_millis),
        };
        if !requested.fits_in(free) {
            return Err(AdmissionError {
                pod: spec.name.clone(),
                requested,
                free,
                capacity: self.capacity,
            });
        }
        allocated.memory += requested.memory;
        allocated.cpu_millis += requested.cpu_millis;
        Ok(Admission {
            node: self.clone(),
            held: requested,
        })
    }
}

/// A pod's share of a node; given back on drop.
#[derive(Debug)]
pub struct Admission {
    node: Arc<Node>,
    held: Quantities,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut allocated = self
            .node
            .allocated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        allocated.memory = allocated.memory.saturating_sub(self.held.memory);
        allocated.cpu_millis = allocated.cpu_millis.saturating_sub(self.held.cpu_millis);
    }
}

/// Bytes as Kubernetes would print them: `2560Mi`, `3Gi`, or plain bytes.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    if bytes >= 1 << 20 {
        return format!("{:.1}Mi", bytes as f64 / f64::from(1u32 << 20));
    }
    bytes.to_string()
}

fn format_millis(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ContainerSpec, Resources};

    fn pod(init: &[u64], apps: &[u64]) -> PodSpec {
        let container = |i: usize, memory: &u64| {
            let mut c = ContainerSpec::new(format!("c{i}"), "x.wasm");
            c.resources = Resources {
                memory_request: Some(*memory),
                cpu_request: Some(100),
                ..Resources::default()
            };
            c
        };
        PodSpec {
            name: "p".into(),
            namespace: "default".into(),
            uid: "u".into(),
            labels: Default::default(),
            annotations: Default::default(),
            hostname: "p".into(),
            init_containers: init
                .iter()
                .enumerate()
                .map(|(i, m)| container(i, m))
                .collect(),
            containers: apps
                .iter()
                .enumerate()
                .map(|(i, m)| container(i + 10, m))
                .collect(),
            volumes: vec![],
            restart_policy: Default::default(),
            termination_grace_period: std::time::Duration::from_secs(30),
            active_deadline: None,
        }
    }

    const GI: u64 = 1 << 30;

    #[test]
    fn effective_request_is_max_of_init_and_app_sum() {
        let q = effective_request(&pod(&[4 * GI, GI], &[GI, GI]));
        assert_eq!(q.memory, 4 * GI);
        let q = effective_request(&pod(&[GI], &[GI, GI, GI]));
        assert_eq!(q.memory, 3 * GI);
        assert_eq!(q.cpu_millis, 300);
    }

    #[test]
    fn three_one_gib_modules_refuse_two_and_a_half_gib_and_fit_three() {
        let three = pod(&[], &[GI, GI, GI]);
        let small = Node::new(Quantities {
            memory: 5 * GI / 2,
            cpu_millis: 4000,
        });
        let err = small.admit(&three).expect_err("does not fit");
        assert_eq!(
            err.to_string(),
            "pod \"p\" does not fit the node: it requests memory 3Gi, cpu 300m; \
             the node has memory 2560Mi, cpu 4 free (of memory 2560Mi, cpu 4)"
        );
        let node = Node::new(Quantities {
            memory: 3 * GI,
            cpu_millis: 4000,
        });
        let admitted = node.admit(&three).expect("fits");
        assert!(node.admit(&pod(&[], &[GI])).is_err(), "the node is full");
        drop(admitted);
        assert!(node.admit(&three).is_ok(), "the share came back");
    }
}
