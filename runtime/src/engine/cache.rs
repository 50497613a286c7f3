//! The compile cache: compiled artifacts on disk, content-addressed, never trusted blindly.
//!
//! An entry's key is the sha256 of the engine's compatibility hash (wasmtime version, target,
//! settings) followed by the sha256 of the wasm bytes, so a different engine never reads another
//! engine's artifact. Each entry is two files, both written atomically (temp file + rename):
//! `KEY.cwasm`, the artifact, and `KEY.sha256`, the digest of the artifact. An entry is loaded
//! (by mmap) only when the artifact's digest matches; a missing, stale or corrupt entry is
//! compiled again and rewritten. Entries are trusted as much as the cache directory is: it must
//! be writable only by the user running wasmpod.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::image::compile_error;
use super::{ImageError, ImageKind};

/// Counters of what the cache did, for tests and `wasmpod` debug output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from memory (a module already loaded by this process).
    pub memory_hits: u64,
    /// Loads answered from a verified disk entry.
    pub disk_hits: u64,
    /// Loads that compiled (no usable entry).
    pub compiled: u64,
    /// Disk entries found corrupt or unreadable and replaced.
    pub rejected: u64,
}

/// A compiled guest, before linking.
pub(crate) enum Compiled {
    Module(wasmtime::Module),
    Component(Component),
}

/// The on-disk compile cache of one engine.
#[derive(Debug)]
pub struct CompileCache {
    engine: wasmtime::Engine,
    dir: Option<PathBuf>,
    engine_hash: [u8; 32],
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
    rejected: AtomicU64,
}

/// Feeds `Hash` output into sha256, to fingerprint the engine's compatibility hash.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl CompileCache {
    pub(crate) fn new(engine: wasmtime::Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            engine_hash: hasher.0.finalize().into(),
            engine,
            dir,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// The cache directory, if artifacts are kept on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_memory_hit(&self) {
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// The entry key of `wasm`: hex sha256 of the engine hash and the bytes' digest.
    pub(crate) fn key(&self, wasm: &[u8]) -> String {
        let mut key = Sha256::new();
        key.update(self.engine_hash);
        key.update(Sha256::digest(wasm));
        hex::encode(key.finalize())
    }

    /// The compiled form of `wasm` (whose entry key is `key`), from disk when a verified entry
    /// exists, else compiled and stored. Blocking: call it off the async threads.
    pub(crate) fn get_or_compile(
        &self,
        key: &str,
        wasm: &[u8],
        kind: ImageKind,
        path: &Path,
    ) -> Result<Compiled, ImageError> {
        if let Some(dir) = &self.dir {
            match self.load(dir, key, kind) {
                Ok(Some(compiled)) => {
                    self.disk_hits.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(module = %path.display(), key, "compile cache hit");
                    return Ok(compiled);
                }
                Ok(None) => {}
                Err(reason) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(module = %path.display(), key, %reason, "compile cache entry rejected, recompiling");
                }
            }
        }
        tracing::debug!(module = %path.display(), key, "compile cache miss, compiling");
        let compiled = compile(&self.engine, kind, wasm).map_err(|e| compile_error(path, &e))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(dir) = &self.dir {
            let stored = compiled
                .serialize()
                .and_then(|artifact| store(dir, key, &artifact).map_err(wasmtime::Error::from));
            if let Err(e) = stored {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write compile cache entry");
            }
        }
        Ok(compiled)
    }

    /// A verified entry, `Ok(None)` when there is none, `Err(reason)` when one exists but is
    /// unusable (corrupt, truncated, from another engine).
    fn load(&self, dir: &Path, key: &str, kind: ImageKind) -> Result<Option<Compiled>, String> {
        let artifact_path = dir.join(format!("{key}.cwasm"));
        let artifact = match fs::read(&artifact_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("read {}: {e}", artifact_path.display())),
        };
        let expected = fs::read_to_string(dir.join(format!("{key}.sha256")))
            .map_err(|e| format!("read digest: {e}"))?;
        if hex::encode(Sha256::digest(&artifact)) != expected.trim() {
            return Err("artifact digest mismatch".into());
        }
        drop(artifact);
        deserialize_file(&self.engine, kind, &artifact_path)
            .map(Some)
            .map_err(|e| format!("{e:#}"))
    }
}

/// Writes both files of an entry atomically, digest first.
fn store(dir: &Path, key: &str, artifact: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let digest = hex::encode(Sha256::digest(artifact));
    write_atomic(dir, &format!("{key}.sha256"), digest.as_bytes())?;
    write_atomic(dir, &format!("{key}.cwasm"), artifact)
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

fn compile(engine: &wasmtime::Engine, kind: ImageKind, wasm: &[u8]) -> wasmtime::Result<Compiled> {
    Ok(match kind {
        ImageKind::Module => Compiled::Module(wasmtime::Module::from_binary(engine, wasm)?),
        ImageKind::Component => Compiled::Component(Component::from_binary(engine, wasm)?),
    })
}

impl Compiled {
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Compiled::Module(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        }
    }
}

fn deserialize_file(
    engine: &wasmtime::Engine,
    kind: ImageKind,
    path: &Path,
) -> wasmtime::Result<Compiled> {
    #[expect(
        unsafe_code,
        reason = "wasmtime can only load precompiled artifacts through unsafe deserialize"
    )]
    // SAFETY: the file is an entry of our cache whose sha256 matched the digest written with it
    // (so it is an artifact this build of wasmpod wrote), and wasmtime checks that its header
    // matches this engine's version and settings. The cache directory is the user's own; a
    // local attacker able to write there between the check and the mmap is out of scope.
    let compiled = unsafe {
        match kind {
            ImageKind::Module => {
                Compiled::Module(wasmtime::Module::deserialize_file(engine, path)?)
            }
            ImageKind::Component => Compiled::Component(Component::deserialize_file(engine, path)?),
        }
    };
    Ok(compiled)
}
