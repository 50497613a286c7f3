//! Pieces of a warm start timed on their own, to tell where its time goes: what
//! `create_container` and `start_container` do besides the guest itself.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use wasmpod::Engine;

use crate::stats::Samples;

/// One timed piece of a warm start.
#[derive(Debug, Clone)]
pub struct Piece {
    /// What was timed.
    pub name: String,
    /// Its durations.
    pub samples: Samples,
}

/// Times, `iters` times each: `Engine::load_image` of each module answered from memory (what
/// `create_container` does on a warm engine: read the file, sha256 it for the cache key, look
/// it up), `Engine::new` next to a bare `wasmtime::Engine::new` with the same pooling
/// configuration (at most 20 times), a `spawn_blocking` round trip and a
/// [`wasmpod::blocking::unblocked`] call on a worker (`Sandbox::create` and `create_container`
/// each make one), and the file system work of one container in `scratch` (`create_dir_all` of its log
/// directory, `File::create` of its log file).
pub async fn pieces(
    engine: &Engine,
    modules: &[(&str, &Path)],
    scratch: &Path,
    iters: usize,
) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    for (name, module) in modules {
        let mut samples = Samples::default();
        for _ in 0..iters {
            let began = Instant::now();
            engine.load_image(module)?;
            samples.push(began.elapsed());
        }
        let size = std::fs::metadata(module)?.len();
        pieces.push(Piece {
            name: format!("load_image, in memory: {name} ({} KiB)", size / 1024),
            samples,
        });
    }

    // Each engine reserves its whole instance pool; a few suffice.
    let mut bare = Samples::default();
    let mut ours = Samples::default();
    for _ in 0..iters.min(20) {
        let began = Instant::now();
        let engine = crate::bare::engine()?;
        bare.push(began.elapsed());
        drop(engine);
        let config = wasmpod::EngineConfig {
            cache_dir: None,
            ..wasmpod::EngineConfig::for_one_pod()
        };
        let began = Instant::now();
        let engine = Engine::new(config)?;
        ours.push(began.elapsed());
        drop(engine);
    }
    pieces.push(Piece {
        name: "wasmtime::Engine::new, same pool config".into(),
        samples: bare,
    });
    pieces.push(Piece {
        name: "wasmpod Engine::new (+ linkers, ticker)".into(),
        samples: ours,
    });

    let mut samples = Samples::default();
    for _ in 0..iters {
        let began = Instant::now();
        tokio::task::spawn_blocking(|| ())
            .await
            .context("spawn_blocking")?;
        samples.push(began.elapsed());
    }
    pieces.push(Piece {
        name: "spawn_blocking round trip".into(),
        samples,
    });
    // On a worker thread, as the sandbox's calls run in a pod.
    let samples = tokio::spawn(async move {
        let mut samples = Samples::default();
        for _ in 0..iters {
            let began = Instant::now();
            wasmpod::blocking::unblocked(|| ()).await;
            samples.push(began.elapsed());
            tokio::task::yield_now().await;
        }
        samples
    })
    .await
    .context("join")?;
    pieces.push(Piece {
        name: "blocking::unblocked (block_in_place)".into(),
        samples,
    });

    let mut mkdir = Samples::default();
    let mut create = Samples::default();
    for i in 0..iters {
        let pod = scratch.join(format!("fs-{i}"));
        let pod_dir = wasmpod::pod::PodDir::new(&pod);
        let logs = pod_dir.log_dir("c");
        let began = Instant::now();
        std::fs::create_dir_all(&logs).context("create_dir_all")?;
        let made = Instant::now();
        std::fs::File::create(pod_dir.log_file("c", 0)).context("create log")?;
        create.push(made.elapsed());
        mkdir.push(made - began);
        std::fs::remove_dir_all(&pod).context("remove")?;
    }
    pieces.push(Piece {
        name: "create_dir_all <pod>/logs/<c>".into(),
        samples: mkdir,
    });
    pieces.push(Piece {
        name: "File::create <c>/0.log".into(),
        samples: create,
    });
    Ok(pieces)
}
