//! `containerd-shim-wasmpod-v1`: the containerd shim v2 of wasmpod (runtime type
//! `io.containerd.wasmpod.v1`), so Kubernetes runs pods of WebAssembly modules through a
//! RuntimeClass with `handler: wasmpod`.
//!
//! One shim process serves one pod and *is* the pod's host process: `start` groups tasks by
//! their `io.kubernetes.cri.sandbox-id` annotation, so every container of a pod reaches the
//! shim its sandbox started. The sandbox (infra) container becomes a wasmpod
//! [`Sandbox`](wasmpod::Sandbox) — its pause binary never runs — and each Wasm container a
//! container of it, running in the shim on one tokio runtime.
//!
//! Layers, each in its own module:
//! - [`bootstrap`]: process start (host layer entered before any thread), containerd-shim's
//!   `start`/`delete`/serve actions;
//! - [`task`]: the task API mapped onto a [`runtime::PodRuntime`], generic so it is tested
//!   against a stub;
//! - [`runtime`]: the real runtime over wasmpod, stdio FIFOs, rootfs mounts;
//! - [`bundle`]: a bundle's OCI spec → sandbox or container requests;
//! - [`events`]: task events published to containerd;
//! - [`layers`]: modules shipped as Wasm OCI layers, read from containerd's content store;
//! - [`error`]: errors and their one mapping onto ttrpc codes.

pub mod bootstrap;
pub mod bundle;
pub mod error;
pub mod events;
pub mod layers;
pub mod runtime;
pub mod task;

pub use bootstrap::{RUNTIME_ID, run};
