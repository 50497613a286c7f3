//! The baseline: the same two guests started with plain wasmtime and wasmtime-wasi, no wasmpod.
//!
//! The engine is set up as wasmpod's (`runtime/src/engine.rs`): async, epoch interruption with a
//! 10 ms ticker, the pooling allocator with the same limits, the component model. Both guests
//! are compiled and pre-linked once (`InstancePre` for the wasip1 module, `CommandPre` for the
//! wasip2 component). Each start then does what any embedder must do and nothing more: a new
//! `Store` per guest with a fresh `WasiCtx` (the same argv and env wasmpod gives it) whose
//! stdout signals its first write, instantiated and run on its own tokio task, until both guests
//! wrote.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use wasmtime::component::{Component, Linker as ComponentLinker, ResourceTable};
use wasmtime::{InstancePre, Linker, Module, Store};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::FIRST_OUTPUT_DEADLINE;

/// Store data of the wasip2 guest, as the wasmtime-wasi docs write it.
struct P2Data {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for P2Data {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Plain wasmtime, ready to start the pair of guests.
pub struct Bare {
    engine: wasmtime::Engine,
    module: InstancePre<WasiP1Ctx>,
    component: CommandPre<P2Data>,
    module_argv0: String,
    component_argv0: String,
    hostname: String,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Bare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bare").finish_non_exhaustive()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Bare {
    /// Compiles and pre-links the wasip1 `module` and the wasip2 `component` (not measured).
    /// Each gets its file name as argv and `HOSTNAME=hostname`, as wasmpod gives them.
    pub fn new(module: &Path, component: &Path, hostname: &str) -> Result<Self> {
        let engine = engine()?;
        let mut module_linker = Linker::<WasiP1Ctx>::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut module_linker, |cx| cx)?;
        let module_pre = module_linker
            .instantiate_pre(&Module::from_file(&engine, module)?)
            .map_err(|e| e.context("link the wasip1 module"))?;
        let mut component_linker = ComponentLinker::<P2Data>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker)?;
        let component_pre = CommandPre::new(
            component_linker
                .instantiate_pre(&Component::from_file(&engine, component)?)
                .map_err(|e| e.context("link the wasip2 component"))?,
        )?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), ticker_stop.clone())?;
        Ok(Bare {
            engine,
            module: module_pre,
            component: component_pre,
            module_argv0: file_name(module),
            component_argv0: file_name(component),
            hostname: hostname.to_owned(),
            ticker_stop,
        })
    }

    /// Starts both guests until each wrote its first output; the time that took. The guests'
    /// ends are awaited afterwards, outside the measurement.
    pub async fn start_once(&self) -> Result<Duration> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let began = Instant::now();

        let wasi = self
            .wasi(&self.module_argv0, FirstWrite::new(0, tx.clone()))
            .build_p1();
        let mut store = Store::new(&self.engine, wasi);
        store.epoch_deadline_async_yield_and_update(1);
        let pre = self.module.clone();
        let module_task = tokio::spawn(async move {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        });

        let wasi = self
            .wasi(&self.component_argv0, FirstWrite::new(1, tx))
            .build();
        let data = P2Data {
            ctx: wasi,
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, data);
        store.epoch_deadline_async_yield_and_update(1);
        let pre = self.component.clone();
        let component_task = tokio::spawn(async move {
            let command = pre.instantiate_async(&mut store).await?;
            let result = command.wasi_cli_run().call_run(&mut store).await?;
            result.map_err(|()| wasmtime::Error::msg("the wasip2 guest returned an error"))
        });

        let mut first = [None; 2];
        while first.iter().any(Option::is_none) {
            let (index, at) = tokio::time::timeout(FIRST_OUTPUT_DEADLINE, rx.recv())
                .await
                .context("bare guests: no output before the deadline")?
                .context("bare guests ended without writing")?;
            first[index] = Some(at);
        }
        let running = first.into_iter().flatten().max().unwrap_or(began);
        let elapsed = running - began;

        for (name, task) in [("module", module_task), ("component", component_task)] {
            match task.await.context("join guest task")? {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<I32Exit>().is_some_and(|e| e.0 == 0) => {}
                Err(e) => return Err(e.context(format!("bare {name} failed")).into()),
            }
        }
        Ok(elapsed)
    }

    fn wasi(&self, argv0: &str, stdout: FirstWrite) -> WasiCtxBuilder {
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&[argv0])
            .env("HOSTNAME", &self.hostname)
            .stdout(stdout);
        builder
    }
}

/// A wasmtime engine set up as wasmpod's `Engine::new` does it for a pod process.
pub(crate) fn engine() -> Result<wasmtime::Engine> {
    let defaults = wasmpod::EngineConfig::for_one_pod();
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_core_instances(defaults.pool_instances)
        .total_component_instances(defaults.pool_instances)
        .total_memories(defaults.pool_instances)
        .total_tables(defaults.pool_instances)
        .total_stacks(defaults.pool_instances)
        .max_memory_size(defaults.max_memory_size);
    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Ok(wasmtime::Engine::new(&config)?)
}

/// Advances the epoch every 10 ms (wasmpod's default tick) until `stop` is set.
fn spawn_ticker(engine: wasmtime::Engine, stop: Arc<AtomicBool>) -> Result<()> {
    let tick = wasmpod::EngineConfig::default().epoch_tick;
    std::thread::Builder::new()
        .name("bare-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .context("spawn the epoch ticker")?;
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// A guest's stdout that reports `(index, when)` on its first write and discards everything.
#[derive(Clone)]
pub(crate) struct FirstWrite {
    index: usize,
    tx: mpsc::UnboundedSender<(usize, Instant)>,
    fired: Arc<AtomicBool>,
}

impl FirstWrite {
    pub(crate) fn new(index: usize, tx: mpsc::UnboundedSender<(usize, Instant)>) -> Self {
        FirstWrite {
            index,
            tx,
            fired: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl IsTerminal for FirstWrite {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for FirstWrite {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for FirstWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if !buf.is_empty() && !self.fired.swap(true, Ordering::Relaxed) {
            // The receiver is gone only once the measurement is over.
            let _ = self.tx.send((self.index, Instant::now()));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
