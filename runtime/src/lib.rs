//! wasmpod: Kubernetes pods of WebAssembly modules.
//!
//! A pod lives in one host process: one wasmtime [`Engine`], one `Store` per container, all on
//! one tokio runtime. Containers of a pod share the same host directories preopened at their
//! `mountPath`s and the pod's identity (`HOSTNAME`), and live and die together as Kubernetes
//! defines it: init containers first, one at a time, then the app containers together, each
//! restarted as `restartPolicy` says.
//!
//! The layers, each usable on its own:
//! - [`spec`]: a Kubernetes `v1` Pod manifest → a validated [`PodSpec`];
//! - [`Engine`]: compiles (through an on-disk cache) and runs guests;
//! - [`Sandbox`]: the CRI-shaped lifecycle API (create a sandbox, then create, start, wait,
//!   kill and remove containers in it by name);
//! - [`runner`]: composes a whole manifest on top of the sandbox, as `wasmpod run` does;
//! - [`harness`]: runs test pods of your modules in your own `cargo test`.

pub mod admission;
pub mod blocking;
pub mod control;
pub mod engine;
pub mod error;
pub mod harness;
pub mod host;
pub mod hostdir;
pub mod logs;
pub mod net;
pub mod oci;
pub mod pod;
pub mod runner;
pub mod spec;
pub mod status;
pub mod toolbox;
pub mod volume;
pub mod wasm;

pub use engine::{Engine, EngineConfig, ExitReason, ExitStatus, Image};
pub use error::{Error, ErrorKind, Result};
pub use pod::{ContainerConfig, ContainerState, ContainerStatus, Sandbox, SandboxConfig};
pub use spec::{PodSpec, RestartPolicy, SpecError};
pub use wasm::ImageKind;
