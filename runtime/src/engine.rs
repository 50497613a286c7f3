//! The process's one wasmtime [`Engine`](wasmtime::Engine), its linkers, and running a guest.
//!
//! One engine per process: async (every guest is a future on the tokio runtime), epoch
//! interruption (a ticker thread advances the epoch; every store yields to the scheduler at each
//! tick, so a spinning guest never starves its neighbours), and the pooling instance allocator.
//! Core modules (wasip1 commands) and components (wasip2 commands) are told apart by their bytes;
//! a component that exports `wasi:http/incoming-handler` is a service (see [`Engine::serve`]).

mod cache;
mod image;
mod limits;
mod outgoing;
mod run;
mod serve;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cache::Compiled;
pub use cache::{CacheStats, CompileCache};
pub use image::Image;
pub use limits::{CPU_PERIOD, OutOfMemory, Usage};
pub use run::{
    EXIT_KILLED, EXIT_START_ERROR, EXIT_TRAP, ExitReason, ExitStatus, GuestIo, Invocation,
    MAX_HANDLES, Preopen,
};
pub use serve::{ServiceConfig, ServiceLimits, ServiceListeners};
pub(crate) use store::StoreData;

pub use crate::wasm::ImageKind;

use crate::error::{Error, ErrorKind, Result};
use crate::hostdir::HostDir;

/// A module could not be read, recognised or compiled.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file does not exist or cannot be read.
    #[error("read module {path}: {source}")]
    Read {
        /// The module's path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly binary.
    #[error("{path}: not a WebAssembly module or component")]
    NotWasm {
        /// The module's path.
        path: PathBuf,
    },
    /// An OCI image archive whose module cannot be found or read.
    #[error("{0}")]
    Archive(#[from] crate::oci::OciError),
    /// wasmtime refused to compile or link it.
    #[error("{path}: {message}")]
    Compile {
        /// The module's path.
        path: PathBuf,
        /// wasmtime's explanation, on one line.
        message: String,
    },
}

impl ImageError {
    /// The kind of this error: a missing module is `NotFound`, one that is no Wasm or does not
    /// compile is `InvalidArgument`, one that cannot be read is `Internal`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            ImageError::Read { .. } => ErrorKind::Internal,
            ImageError::Archive(error) => error.kind(),
            ImageError::NotWasm { .. } | ImageError::Compile { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// How the engine is set up. Every default is documented on its field.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled artifacts are kept. Default: `$XDG_CACHE_HOME/wasmpod` (or
    /// `~/.cache/wasmpod`); `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How often the epoch advances; every running guest yields to the scheduler at each tick.
    /// Default: 10 ms.
    pub epoch_tick: Duration,
    /// How many instances (and linear memories) the pooling allocator reserves room for, across
    /// every pod of the process. Default: 1000 (a process of one pod:
    /// [`EngineConfig::for_one_pod`]).
    pub pool_instances: u32,
    /// The largest linear memory a guest may have. Default: 4 GiB.
    pub max_memory_size: usize,
    /// The memory cap of a container without `resources.limits.memory`. Default: 1 GiB.
    pub default_memory_limit: u64,
    /// Epoch interruption: every guest yields at each tick, can be hard-stopped while it
    /// computes, and can be CPU-throttled. Turning it off is for measuring its cost only: a
    /// spinning guest then holds its thread and cannot be stopped. Default: true.
    pub epoch_interruption: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cache_dir: default_cache_dir(),
            epoch_tick: Duration::from_millis(10),
            pool_instances: 1000,
            max_memory_size: 4 << 30,
            default_memory_limit: 1 << 30,
            epoch_interruption: true,
        }
    }
}

/// How many linear memories (and tables) one module may define: the pooling allocator's
/// default is one, which refuses multi-memory modules the wasmtime CLI runs.
const MAX_PER_MODULE: u32 = 16;

/// How many instances the pool of a process holding one pod reserves room for
/// ([`EngineConfig::for_one_pod`]): the pod's containers, their hooks and the commands exec'd
/// into them, a component counting for several core instances.
pub const ONE_POD_INSTANCES: u32 = 256;

impl EngineConfig {
    /// The engine of a process that holds one pod (`wasmpod run`, the shim): the defaults
    /// with a pool of [`ONE_POD_INSTANCES`]. Reserving the pool is most of `Engine::new`'s
    /// cost (about 2 ms for the default 1000 instances), paid at every pod's start.
    pub fn for_one_pod() -> Self {
        EngineConfig {
            pool_instances: ONE_POD_INSTANCES,
            ..EngineConfig::default()
        }
    }
}

/// `$XDG_CACHE_HOME/wasmpod`, else `$HOME/.cache/wasmpod`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from_env = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("XDG_CACHE_HOME")
        .or_else(|| from_env("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("wasmpod"))
}

/// The process's engine: wasmtime engine, linkers for both kinds of guests, compile cache and
/// the epoch ticker. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    wasmtime: wasmtime::Engine,
    module_linker: wasmtime::Linker<StoreData>,
    component_linker: wasmtime::component::Linker<StoreData>,
    cache: CompileCache,
    /// Images this process already loaded, by cache key: restarts and further pods skip the disk.
    images: Mutex<LoadedImages>,
    /// The built-in toolbox, once an exec asked for it. A mutex, not a once-cell: the first
    /// of many concurrent execs compiles it while the others wait, instead of each compiling.
    toolbox: Mutex<Option<Image>>,
    default_memory_limit: u64,
    epoch_interruption: bool,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for EngineInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// The memory cap of a guest whose container sets no limit.
    pub fn default_memory_limit(&self) -> u64 {
        self.inner.default_memory_limit
    }

    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: EngineConfig) -> Result<Self> {
        raise_descriptor_limit();
        // A GC heap takes a slot of the memory pool: room for one beside each instance's
        // memory. Multi-memory modules and several tables per module are as welcome as under
        // the wasmtime CLI (the pool's defaults allow one of each).
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_core_instances(config.pool_instances)
            .total_component_instances(config.pool_instances)
            .total_memories(config.pool_instances.saturating_mul(2))
            .total_gc_heaps(config.pool_instances)
            .total_tables(config.pool_instances)
            .total_stacks(config.pool_instances)
            .max_memories_per_module(MAX_PER_MODULE)
            .max_tables_per_module(MAX_PER_MODULE)
            .max_memory_size(config.max_memory_size);
        // Every proposal the wasmtime CLI of this version enables by default is on: wasmtime's
        // own defaults (its `gc` and `threads` cargo features are built in), as the CLI's are.
        let mut wasm = wasmtime::Config::new();
        wasm.epoch_interruption(config.epoch_interruption)
            .wasm_component_model(true)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let wasmtime = wasmtime::Engine::new(&wasm).map_err(Error::Engine)?;

        let mut module_linker = wasmtime::Linker::new(&wasmtime);
        wasmtime_wasi::p1::add_to_linker_async(&mut module_linker, |data: &mut StoreData| {
            &mut data.wasi
        })
        .map_err(Error::Engine)?;
        let mut component_linker = wasmtime::component::Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker).map_err(Error::Engine)?;
        // The pod's virtual network replaces wasmtime-wasi's `wasi:sockets/tcp`.
        component_linker.allow_shadowing(true);
        crate::net::add_to_linker(&mut component_linker).map_err(Error::Engine)?;
        component_linker.allow_shadowing(false);
        // `wasi:http` for services and for commands that make HTTP requests.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut component_linker)
            .map_err(Error::Engine)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        if config.epoch_interruption {
            spawn_ticker(wasmtime.clone(), config.epoch_tick, ticker_stop.clone())?;
        }
        let cache = CompileCache::new(wasmtime.clone(), config.cache_dir);
        Ok(Engine {
            inner: Arc::new(EngineInner {
                wasmtime,
                module_linker,
                component_linker,
                cache,
                images: Mutex::default(),
                toolbox: Mutex::default(),
                default_memory_limit: config.default_memory_limit,
                epoch_interruption: config.epoch_interruption,
                ticker_stop,
            }),
        })
    }

    /// The compile cache.
    pub fn cache(&self) -> &CompileCache {
        &self.inner.cache
    }

    /// Reads, compiles (through the cache) and links the guest at `path`. Blocking: async
    /// callers run it on a blocking thread.
    pub fn load_image(&self, path: &Path) -> Result<Image, ImageError> {
        let file = std::fs::File::open(path).map_err(|source| ImageError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load_file(file, path)
    }

    /// [`Engine::load_image`] of the guest at `path` inside `root` (an image's root
    /// filesystem), resolved beneath it: neither `..` nor a link in the image leads out of it.
    pub fn load_image_in(&self, root: &HostDir, path: &Path) -> Result<Image, ImageError> {
        let relative = path.strip_prefix("/").unwrap_or(path);
        let file = root
            .open_file(relative)
            .map_err(|source| ImageError::Read {
                path: root.path().join(relative),
                source,
            })?;
        self.load_file(file, &root.path().join(relative))
    }

    /// Loads the guest from the open `file`; `path` names it in messages.
    fn load_file(&self, file: std::fs::File, path: &Path) -> Result<Image, ImageError> {
        let cache = &self.inner.cache;
        let images = || {
            self.inner
                .images
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        // A file this process already loaded and that has not changed since (same inode, size,
        // mtime and ctime) is not read and hashed again.
        let identity = FileIdentity::of(&file);
        let known = identity
            .as_ref()
            .and_then(|identity| images().by_file.get(identity).cloned());
        if let Some(image) = known {
            cache.count_memory_hit();
            return Ok(image);
        }
        let (wasm, kind) = read_wasm(file, path)?;
        let key = cache.key(&wasm);
        // Bound first: the lock must be released before the branch takes it again.
        let known = images().by_key.get(&key).cloned();
        if let Some(image) = known {
            cache.count_memory_hit();
            if let Some(identity) = identity {
                images().by_file.insert(identity, image.clone());
            }
            return Ok(image);
        }
        let image = match cache.get_or_compile(&key, &wasm, kind, path)? {
            Compiled::Module(m) => Image::link_module(&self.inner.module_linker, &m, path)?,
            Compiled::Component(c) => {
                Image::link_component(&self.inner.component_linker, &c, path)?
            }
        };
        let mut loaded = images();
        loaded.by_key.insert(key, image.clone());
        if let Some(identity) = identity {
            loaded.by_file.insert(identity, image.clone());
        }
        Ok(image)
    }

    /// The built-in toolbox ([`crate::toolbox`]): compiled through the cache (so once per
    /// machine), linked once per engine. Blocking on first use.
    pub fn toolbox(&self) -> Result<Image, ImageError> {
        let mut toolbox = self
            .inner
            .toolbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(image) = toolbox.as_ref() {
            return Ok(image.clone());
        }
        let wasm = crate::toolbox::TOOLBOX;
        let path = Path::new("wasmpod-toolbox.wasm");
        let kind = ImageKind::detect(wasm).ok_or_else(|| ImageError::NotWasm {
            path: path.to_owned(),
        })?;
        let key = self.inner.cache.key(wasm);
        let image = match self.inner.cache.get_or_compile(&key, wasm, kind, path)? {
            Compiled::Module(m) => Image::link_module(&self.inner.module_linker, &m, path)?,
            Compiled::Component(c) => {
                Image::link_component(&self.inner.component_linker, &c, path)?
            }
        };
        *toolbox = Some(image.clone());
        Ok(image)
    }

    /// Compiles `path` into the disk cache without keeping it: `wasmpod compile`.
    pub fn precompile(&self, path: &Path) -> Result<ImageKind, ImageError> {
        let file = std::fs::File::open(path).map_err(|source| ImageError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (wasm, kind) = read_wasm(file, path)?;
        let key = self.inner.cache.key(&wasm);
        self.inner.cache.get_or_compile(&key, &wasm, kind, path)?;
        Ok(kind)
    }

    /// Makes every running guest reach its epoch deadline (and yield) at its next check,
    /// instead of at the next tick.
    pub(crate) fn interrupt_all(&self) {
        self.inner.wasmtime.increment_epoch();
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }
}

/// The images a process loaded: by cache key (content), and by the file they came from.
#[derive(Default)]
struct LoadedImages {
    by_key: HashMap<String, Image>,
    by_file: HashMap<FileIdentity, Image>,
}

/// What tells a file apart from any other file or version of it: device, inode, size, and
/// modification and change times (ctime cannot be set back by a writer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of(file: &std::fs::File) -> Option<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().ok()?;
        Some(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// The bytes of the guest in `file` (named `path`) and its kind. It is a module, a component,
/// or an OCI image archive holding one (`wasmpod image build`'s output, `docker save` of a
/// Wasm image).
fn read_wasm(mut file: std::fs::File, path: &Path) -> Result<(Vec<u8>, ImageKind), ImageError> {
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut wasm).map_err(|source| ImageError::Read {
        path: path.to_owned(),
        source,
    })?;
    if crate::oci::is_tar(&wasm) {
        wasm = crate::oci::module_in_archive(&wasm, path)?;
    }
    let kind = ImageKind::detect(&wasm).ok_or_else(|| ImageError::NotWasm {
        path: path.to_owned(),
    })?;
    Ok((wasm, kind))
}

/// Raises this process's soft limit on open descriptors to its hard limit, as Go programs and
/// containerd do: every container's open files are the one pod process's descriptors (each
/// container is capped at [`MAX_HANDLES`](run::MAX_HANDLES)), and a soft limit of 1024 would be
/// reached by one busy container.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%error, "cannot raise the open file limit");
        }
    }
}

/// Advances the engine's epoch every `tick` until `stop` is set. The thread holds a clone of the
/// engine, which only keeps its code alive; `EngineInner::drop` stops it.
fn spawn_ticker(engine: wasmtime::Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<()> {
    std::thread::Builder::new()
        .name("wasmpod-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(drop)
        .map_err(|e| Error::io("spawn thread", "wasmpod-epoch", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_cached_engine() -> Engine {
        Engine::new(EngineConfig {
            cache_dir: None,
            ..EngineConfig::default()
        })
        .expect("engine")
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_changed_one_is() {
        let engine = memory_cached_engine();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("guest.wasm");
        let hello = std::fs::read(wasmpod_guests::HELLO_P1).expect("hello");
        std::fs::write(&path, &hello).expect("write");
        engine.load_image(&path).expect("first load");
        engine.load_image(&path).expect("second load");
        let stats = engine.cache().stats();
        assert_eq!((stats.compiled, stats.memory_hits), (1, 1));

        std::fs::write(&path, std::fs::read(wasmpod_guests::EXIT_P1).expect("exit"))
            .expect("rewrite");
        engine.load_image(&path).expect("changed file");
        assert_eq!(engine.cache().stats().compiled, 2, "a new file is compiled");

        std::fs::write(&path, &hello).expect("write back");
        engine.load_image(&path).expect("old content again");
        let stats = engine.cache().stats();
        assert_eq!(
            (stats.compiled, stats.memory_hits),
            (2, 2),
            "known content is found by its digest"
        );
    }

    #[test]
    fn a_module_in_a_rootfs_is_read_beneath_it() {
        let engine = memory_cached_engine();
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
        std::fs::copy(wasmpod_guests::HELLO_P1, rootfs.join("bin/hello.wasm")).expect("module");
        std::fs::copy(wasmpod_guests::HELLO_P1, dir.path().join("host.wasm")).expect("host");
        std::os::unix::fs::symlink("bin/hello.wasm", rootfs.join("app.wasm")).expect("link");
        std::os::unix::fs::symlink("../host.wasm", rootfs.join("out.wasm")).expect("link");
        std::os::unix::fs::symlink(dir.path().join("host.wasm"), rootfs.join("abs.wasm"))
            .expect("link");
        let root = HostDir::open(&rootfs).expect("open");
        for inside in ["app.wasm", "/app.wasm", "bin/hello.wasm"] {
            engine
                .load_image_in(&root, Path::new(inside))
                .unwrap_or_else(|e| panic!("{inside}: {e}"));
        }
        for outside in [
            "out.wasm",
            "abs.wasm",
            "../host.wasm",
            "bin/../../host.wasm",
        ] {
            let error = engine
                .load_image_in(&root, Path::new(outside))
                .expect_err(outside);
            assert!(
                matches!(&error, ImageError::Read { source, .. } if crate::hostdir::is_escape(source)),
                "{outside}: {error}"
            );
        }
    }
}
