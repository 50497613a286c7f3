//! The middle row: wasmpod's `Engine::run` on the two images, without a sandbox.
//!
//! The same store setup every container gets (memory limiter, CPU accounting, epoch callback,
//! pod network, WASI context), but no pod directory, log files, image lookup or
//! `spawn_blocking`: the gap between this row and the bare one is the engine's, the gap between
//! this row and the warm start is the sandbox's. Stdout signals its first write, as in the bare
//! baseline.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmpod::engine::{GuestIo, Invocation};
use wasmpod::{Engine, Image, PodSpec};

use crate::FIRST_OUTPUT_DEADLINE;
use crate::bare::FirstWrite;

/// The pod's containers as loaded images with their argv and env.
#[derive(Debug)]
pub struct EngineRun {
    guests: Vec<Guest>,
}

#[derive(Debug)]
struct Guest {
    image: Image,
    argv: Vec<String>,
    env: Vec<(String, String)>,
}

impl EngineRun {
    /// Loads the images of `spec`'s containers on `engine` (not measured).
    pub fn new(engine: &Engine, spec: &PodSpec) -> Result<Self> {
        let guests = (spec.containers.iter())
            .map(|c| {
                Ok(Guest {
                    image: engine.load_image(&c.module)?,
                    argv: c.argv.clone(),
                    env: vec![("HOSTNAME".to_owned(), spec.hostname.clone())],
                })
            })
            .collect::<Result<_>>()?;
        Ok(EngineRun { guests })
    }

    /// Runs every guest, each on its own task, until each wrote its first output; the time that
    /// took. Their ends are awaited afterwards, not measured.
    pub async fn start_once(&self, engine: &Engine) -> Result<Duration> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let began = Instant::now();
        let tasks: Vec<_> = (self.guests.iter().enumerate())
            .map(|(i, guest)| {
                // A fresh one per run, as every container start gets (own usage counters,
                // network handle).
                let invocation = Invocation {
                    argv: guest.argv.clone(),
                    env: guest.env.clone(),
                    ..Invocation::default()
                };
                let io = GuestIo {
                    stdout: Box::new(FirstWrite::new(i, tx.clone())),
                    stderr: GuestIo::discard().stderr,
                };
                let (engine, image) = (engine.clone(), guest.image.clone());
                tokio::spawn(async move {
                    engine
                        .run(&image, invocation, io, CancellationToken::new())
                        .await
                })
            })
            .collect();
        drop(tx);
        let mut first = vec![None; self.guests.len()];
        while first.iter().any(Option::is_none) {
            let (i, at) = tokio::time::timeout(FIRST_OUTPUT_DEADLINE, rx.recv())
                .await
                .context("Engine::run: no output before the deadline")?
                .context("Engine::run: guests ended without writing")?;
            first[i] = Some(at);
        }
        let running = first.into_iter().flatten().max().unwrap_or(began);
        for task in tasks {
            let exit = task.await.context("join guest task")?;
            ensure!(exit.success(), "Engine::run: {exit:?}");
        }
        Ok(running - began)
    }
}
