//! Host directories held open, and paths resolved beneath them.
//!
//! A volume is a host directory that guests write to: any path inside it may be a symlink a
//! guest planted (`up -> ../../../../tmp`), and may change between two system calls. So a
//! path under a volume is never joined onto the volume's host path and handed to `std::fs`.
//! The volume's directory is opened once, as a [`HostDir`], and every path under it (a
//! `subPath`, a `workingDir`, a file the harness reads, the emptyDir size walk) is resolved
//! beneath that open directory by cap-std: `openat2` with `RESOLVE_BENEATH` where the kernel has
//! it, component by component otherwise. A symlink is followed only while it stays beneath
//! the directory; `..` never climbs out of it; a missing directory is created the same way.
//! What a guest finally gets is the open directory itself (see [`HostDir::proc_path`]), never
//! a path that could be re-resolved to somewhere else.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::Dir;

/// An open host directory. Cheap to clone: clones share the one file descriptor.
#[derive(Debug, Clone)]
pub struct HostDir {
    dir: Arc<Dir>,
    /// Where it was when it was opened: for messages only, never opened again.
    path: PathBuf,
}

impl HostDir {
    /// Opens the host directory at `path` itself, following symlinks: for a directory the
    /// pod's owner names (a `hostPath`, the pod directory), never for a path under a volume.
    pub fn open(path: &Path) -> io::Result<HostDir> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(HostDir {
            dir: Arc::new(dir),
            path: path.to_owned(),
        })
    }

    /// Makes directory `name` in `parent` (a directory others may write to, such as
    /// `/dev/shm`), or takes the one a crashed run of the same pod left there, and opens it
    /// without following a link; it must be a directory owned by this process's user, which in
    /// a sticky directory nobody else can rename or replace.
    pub fn create_own(parent: &Path, name: &str) -> io::Result<HostDir> {
        use rustix::fs::{Mode, OFlags};
        let parent_fd = rustix::fs::open(
            parent,
            OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::PATH,
            Mode::empty(),
        )?;
        match rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let fd = rustix::fs::openat(
            &parent_fd,
            name,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )?;
        let stat = rustix::fs::fstat(&fd)?;
        if stat.st_uid != rustix::process::geteuid().as_raw() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the directory exists and belongs to another user",
            ));
        }
        Ok(HostDir {
            dir: Arc::new(Dir::from_std_file(std::fs::File::from(fd))),
            path: parent.join(name),
        })
    }

    /// Opens the directory at `relative` beneath this one. Fails if the path, through `..` or
    /// a symlink, leads out of this directory (see [`is_escape`]), or is not a directory.
    pub fn open_dir(&self, relative: &Path) -> io::Result<HostDir> {
        let dir = if is_here(relative) {
            self.dir.try_clone()?
        } else {
            self.dir.open_dir(relative)?
        };
        Ok(HostDir {
            dir: Arc::new(dir),
            path: self.path.join(relative),
        })
    }

    /// Opens the directory at `relative` beneath this one, creating it and its missing
    /// parents beneath this one first, as `mkdir -p` would. Nothing is ever created outside:
    /// each directory is made relative to its parent's open descriptor, and a symlink leading
    /// out fails the whole call.
    pub fn create_dir(&self, relative: &Path) -> io::Result<HostDir> {
        let created = if is_here(relative) {
            Ok(())
        } else {
            self.dir.create_dir_all(relative)
        };
        match (created, self.open_dir(relative)) {
            (_, Ok(dir)) => Ok(dir),
            // Nothing there: why it could not be made.
            (Err(create), Err(open)) if open.kind() == io::ErrorKind::NotFound => Err(create),
            // A link leading out, or a loop, makes mkdir fail with EEXIST; opening tells why.
            (_, Err(open)) => Err(open),
        }
    }

    /// Writes a new file at `relative` beneath this directory with `contents` and permission
    /// bits `mode`, its missing parents made beneath this directory first. The file must not
    /// exist (nothing is overwritten, no link followed at its name).
    pub fn write_new(&self, relative: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
        use cap_std::fs::{OpenOptions, OpenOptionsExt as _, PermissionsExt as _};
        use std::io::Write as _;
        let parent = match relative.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => self.create_dir(parent)?,
            _ => self.clone(),
        };
        let name = relative
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut file = parent.dir.open_with(
            name,
            OpenOptions::new().write(true).create_new(true).mode(mode),
        )?;
        file.write_all(contents)?;
        // The umask narrowed the mode at creation: set it as asked.
        file.set_permissions(cap_std::fs::Permissions::from_mode(mode))
    }

    /// Opens the file at `relative` beneath this directory for reading.
    pub fn open_file(&self, relative: &Path) -> io::Result<std::fs::File> {
        Ok(self.dir.open(relative)?.into_std())
    }

    /// Whether `relative` beneath this directory is a regular file (links followed while they
    /// stay beneath it).
    pub fn is_file(&self, relative: &Path) -> bool {
        self.dir.is_file(relative)
    }

    /// Bind-mounts the host file `source` over the file at `relative` beneath this directory
    /// (a container's rootfs), as a runtime mounts `/etc/hosts` or the termination log into
    /// an image: the missing parents and an empty mount point are created beneath this
    /// directory first; a link in the image is followed only while it stays beneath it, and
    /// the target must be a regular file (never a FIFO or a device the image planted: it is
    /// opened `O_PATH`, so opening it has no effect). The mount is made on the opened file
    /// (`/proc/self/fd/N`), never on a path resolved again, and is private (nothing it
    /// propagates). Read-only when `read_only`. Needs `CAP_SYS_ADMIN`.
    pub fn bind_file(&self, relative: &Path, source: &Path, read_only: bool) -> io::Result<()> {
        use rustix::mount::{MountFlags, MountPropagationFlags};
        if let Some(parent) = relative.parent() {
            self.create_dir(parent)?;
        }
        match self.dir.open_with(
            relative,
            cap_std::fs::OpenOptions::new().write(true).create_new(true),
        ) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let target = self.open_path(relative)?;
        if !rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&target)?.st_mode).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mount point is not a regular file",
            ));
        }
        let proc_path = |fd: &rustix::fd::OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::mount::mount_bind(source, proc_path(&target).as_str())?;
        // From here on the mount exists: the path now opens the bind mount's root.
        let mounted = self.open_path(relative)?;
        let finished = rustix::mount::mount_change(
            proc_path(&mounted).as_str(),
            MountPropagationFlags::PRIVATE,
        )
        .and_then(|()| match read_only {
            true => rustix::mount::mount_remount(
                proc_path(&mounted).as_str(),
                MountFlags::BIND | MountFlags::RDONLY,
                "",
            ),
            false => Ok(()),
        });
        if let Err(e) = finished {
            let _ = rustix::mount::unmount(
                proc_path(&mounted).as_str(),
                rustix::mount::UnmountFlags::DETACH,
            );
            return Err(e.into());
        }
        Ok(())
    }

    /// `relative` beneath this directory opened `O_PATH` (no effect on what it is), links
    /// followed only while they stay beneath it; the kernel's `openat2` `RESOLVE_BENEATH`.
    fn open_path(&self, relative: &Path) -> io::Result<rustix::fd::OwnedFd> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        Ok(rustix::fs::openat2(
            &*self.dir,
            relative,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    /// Reads at most `limit` bytes of the regular file at `relative` beneath this directory
    /// (a file of an image: it is opened non-blocking, so a FIFO planted there is refused
    /// instead of hanging the reader). `Ok(None)` when there is no such file.
    pub fn read_regular(&self, relative: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
        use cap_std::fs::OpenOptionsExt as _;
        use std::io::Read as _;
        let opened = self.dir.open_with(
            relative,
            cap_std::fs::OpenOptions::new().read(true).custom_flags(
                (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32,
            ),
        );
        let file = match opened {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            opened => opened?.into_std(),
        };
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    /// Reads the file at `relative` beneath this directory.
    pub fn read(&self, relative: &Path) -> io::Result<Vec<u8>> {
        self.dir.read(relative)
    }

    /// Where the directory was when it was opened (for messages: the directory may have been
    /// moved since, and this path may now name something else).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path that opens exactly this directory, whatever happened to its name since:
    /// `/proc/self/fd/N` is a magic link to the open file itself, not a path resolved again.
    /// Valid while this `HostDir` (or a clone) lives; for APIs that only take a path
    /// (wasmtime-wasi's `preopened_dir`).
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }

    /// The bytes of the regular files beneath this directory, symlinks not followed, however
    /// deep the tree. Entries that vanish or cannot be read while it walks are skipped.
    pub fn disk_usage(&self) -> u64 {
        // A walk that held every ancestor open would need as many descriptors as the tree is
        // deep, and one that opened each directory by its path from the top would exceed
        // PATH_MAX; so each directory is opened by its path from an anchor, and a directory
        // whose path from its anchor grew long becomes the anchor of its children.
        const REBASE_AFTER: usize = 1024;
        let mut total = 0u64;
        let mut pending: Vec<(Arc<Dir>, PathBuf)> = vec![(self.dir.clone(), PathBuf::new())];
        while let Some((anchor, relative)) = pending.pop() {
            let dir = if is_here(&relative) {
                anchor.clone()
            } else {
                match anchor.open_dir(&relative) {
                    Ok(dir) => Arc::new(dir),
                    Err(_) => continue,
                }
            };
            let Ok(entries) = dir.entries() else {
                continue;
            };
            let rebase = relative.as_os_str().len() > REBASE_AFTER;
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if meta.is_file() {
                    total = total.saturating_add(meta.len());
                } else if meta.is_dir() {
                    let name = entry.file_name();
                    if rebase {
                        pending.push((dir.clone(), PathBuf::from(name)));
                    } else {
                        pending.push((anchor.clone(), relative.join(name)));
                    }
                }
            }
        }
        total
    }
}

/// Removes the directory tree at `path` (`rm -rf`): links are removed, never followed, and a
/// tree of any depth is removed with a bounded stack and a bounded number of open
/// descriptors (a guest can nest directories far deeper than `std::fs::remove_dir_all`, which
/// recurses and holds a descriptor per level, survives). `path` itself may be a link, which is
/// removed. A missing `path` is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a path to remove",
        ));
    };
    let parent = match Dir::open_ambient_dir(parent, cap_std::ambient_authority()) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        opened => opened?,
    };
    match parent.symlink_metadata(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) if !meta.is_dir() => return parent.remove_file(name),
        Ok(_) => {}
    }
    empty(&parent.open_dir(name)?)?;
    parent.remove_dir(name)
}

/// Removes everything in `root`. Walks depth-first holding the open directories of the
/// current branch; a directory found deeper than `MAX_DEPTH` is first moved up into `root`
/// (a rename within the tree), so the branch, and the descriptors it holds, stay short.
fn empty(root: &Dir) -> io::Result<()> {
    const MAX_DEPTH: usize = 32;
    let mut moved = 0u64;
    let mut relists = 64u32;
    // The branch being emptied: each directory with its name in the one before it.
    let mut branch: Vec<(Dir, std::ffi::OsString)> = Vec::new();
    loop {
        let here = branch.last().map_or(root, |(dir, _)| dir);
        let mut child = None;
        for entry in here.entries()? {
            let entry = entry?;
            let name = entry.file_name();
            if !entry.file_type()?.is_dir() {
                here.remove_file(&name)?;
            } else if branch.len() < MAX_DEPTH {
                child = Some((entry.open_dir()?, name));
                break;
            } else {
                moved += 1;
                let to = format!(".wasmpod-removing-{moved}");
                here.rename(&name, root, &to)?;
            }
        }
        match child {
            Some(child) => branch.push(child),
            None => match branch.pop() {
                Some((dir, name)) => {
                    let parent = branch.last().map_or(root, |(dir, _)| dir);
                    match parent.remove_dir(&name) {
                        // A listing that ran while entries were removed may have missed one:
                        // list the directory again (a bounded number of times).
                        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty && relists > 0 => {
                            relists -= 1;
                            branch.push((dir, name));
                        }
                        removed => removed?,
                    }
                }
                None => return Ok(()),
            },
        }
    }
}

/// Whether `error` is cap-std's refusal of a path that leads out of its directory (through
/// `..`, an absolute path, or a symlink).
pub fn is_escape(error: &io::Error) -> bool {
    // cap-primitives reports every escape, whichever way it was detected (openat2's EXDEV,
    // its own component walk), as this one error.
    error.kind() == io::ErrorKind::PermissionDenied
        && error.to_string().contains("outside of the filesystem")
}

fn is_here(relative: &Path) -> bool {
    relative
        .components()
        .all(|c| matches!(c, std::path::Component::CurDir))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A volume with a planted escape, next to a directory outside it that must stay untouched.
    fn planted() -> (tempfile::TempDir, HostDir) {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("volume/inside")).expect("volume");
        std::fs::create_dir_all(root.path().join("outside")).expect("outside");
        std::fs::write(root.path().join("outside/secret"), "host").expect("secret");
        symlink("../outside", root.path().join("volume/up")).expect("relative link");
        symlink(root.path().join("outside"), root.path().join("volume/abs")).expect("abs link");
        symlink("inside", root.path().join("volume/in")).expect("inner link");
        let volume = HostDir::open(&root.path().join("volume")).expect("open");
        (root, volume)
    }

    #[test]
    fn links_and_dotdot_out_of_the_directory_are_refused() {
        let (root, volume) = planted();
        for path in ["up", "up/x", "abs", "abs/x", "..", "inside/../..", "/tmp"] {
            let error = volume.open_dir(Path::new(path)).expect_err(path);
            assert!(is_escape(&error), "{path}: {error}");
            let error = volume.create_dir(Path::new(path)).expect_err(path);
            assert!(is_escape(&error), "{path}: {error}");
        }
        let error = volume.read(Path::new("up/secret")).expect_err("read");
        assert!(is_escape(&error), "{error}");
        let outside: Vec<_> = std::fs::read_dir(root.path().join("outside"))
            .expect("outside")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(outside, ["secret"], "nothing is created outside");
    }

    #[test]
    fn links_inside_the_directory_are_followed_and_directories_created() {
        let (root, volume) = planted();
        let made = volume.create_dir(Path::new("in/a/b")).expect("create");
        assert!(root.path().join("volume/inside/a/b").is_dir());
        std::fs::write(root.path().join("volume/inside/a/b/f"), "x").expect("write");
        let opened = std::fs::read_to_string(made.proc_path().join("f")).expect("through fd");
        assert_eq!(opened, "x");
        assert_eq!(volume.read(Path::new("in/a/b/f")).expect("read"), b"x");
        assert!(volume.open_dir(Path::new(".")).is_ok());
    }

    #[test]
    fn the_open_directory_is_kept_when_its_name_is_swapped_for_a_link() {
        let (root, volume) = planted();
        let dir = volume.open_dir(Path::new("inside")).expect("open");
        let volume_path = root.path().join("volume");
        std::fs::rename(volume_path.join("inside"), volume_path.join("moved")).expect("rename");
        symlink("../outside", volume_path.join("inside")).expect("swap");
        std::fs::write(volume_path.join("moved/mine"), "v").expect("write");
        let seen = std::fs::read_to_string(dir.proc_path().join("mine")).expect("read");
        assert_eq!(
            seen, "v",
            "the fd still names the directory that was opened"
        );
    }

    #[test]
    fn remove_tree_removes_links_not_their_targets_at_any_depth() {
        let (root, volume) = planted();
        let base = root.path().join("volume");
        let mut dir = volume.open_dir(Path::new("inside")).expect("inside");
        for _ in 0..5000 {
            dir = dir.create_dir(Path::new("d")).expect("deep");
        }
        dir.dir.write("deep", "x").expect("deep file");
        drop(dir);
        remove_tree(&base).expect("remove");
        assert!(!base.exists());
        assert_eq!(
            std::fs::read_to_string(root.path().join("outside/secret")).expect("secret"),
            "host"
        );
        remove_tree(&base).expect("a missing tree is no error");
        let link = root.path().join("link");
        symlink(root.path().join("outside"), &link).expect("link");
        remove_tree(&link).expect("remove a link");
        assert!(root.path().join("outside/secret").exists() && !link.exists());
    }

    #[test]
    fn disk_usage_counts_files_at_any_depth_and_skips_links() {
        let (root, volume) = planted();
        let base = root.path().join("volume");
        std::fs::write(base.join("inside/a"), vec![0u8; 100]).expect("a");
        // Deeper than PATH_MAX from the top: made by descending through open directories.
        let mut dir = volume.open_dir(Path::new("inside")).expect("inside");
        let name = "d".repeat(200);
        for _ in 0..40 {
            dir = dir.create_dir(Path::new(&name)).expect("deep");
        }
        dir.dir.write("deep", vec![0u8; 7]).expect("deep file");
        // `up` leads to `outside/secret` (4 bytes): not counted.
        assert_eq!(volume.disk_usage(), 107);
    }

    /// Unmounts what a test bound, whatever the test's outcome.
    struct Unmount(Vec<PathBuf>);

    impl Drop for Unmount {
        fn drop(&mut self) {
            for path in &self.0 {
                let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }

    fn is_mount_point(path: &Path) -> bool {
        let text = path.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .any(|line| line.split(' ').nth(4) == Some(text.as_str()))
    }

    #[test]
    fn bind_file_mounts_a_host_file_into_a_rootfs() {
        let root = tempfile::tempdir().expect("tempdir");
        let rootfs = root.path().join("rootfs");
        std::fs::create_dir(&rootfs).expect("rootfs");
        let hosts = root.path().join("etc-hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n169.254.64.99 db.internal\n").expect("hosts");
        let log = root.path().join("termination-log");
        std::fs::write(&log, "").expect("log");
        let dir = HostDir::open(&rootfs).expect("open");
        let _unmount = Unmount(vec![
            rootfs.join("etc/hosts"),
            rootfs.join("dev/termination-log"),
        ]);

        dir.bind_file(Path::new("etc/hosts"), &hosts, true)
            .expect("bind hosts");
        dir.bind_file(Path::new("dev/termination-log"), &log, false)
            .expect("bind log");

        assert!(is_mount_point(&rootfs.join("etc/hosts")));
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/hosts")).expect("read"),
            "127.0.0.1 localhost\n169.254.64.99 db.internal\n"
        );
        let write = std::fs::write(rootfs.join("etc/hosts"), "changed");
        assert_eq!(
            write.map_err(|e| e.raw_os_error()),
            Err(Some(rustix::io::Errno::ROFS.raw_os_error())),
            "a read-only bind refuses writes"
        );
        std::fs::write(rootfs.join("dev/termination-log"), "bye").expect("write log");
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "bye");
    }

    #[test]
    fn bind_file_never_mounts_outside_the_rootfs() {
        let root = tempfile::tempdir().expect("tempdir");
        let rootfs = root.path().join("rootfs");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(rootfs.join("etc")).expect("rootfs");
        std::fs::create_dir(&outside).expect("outside");
        std::fs::write(outside.join("secret"), "host").expect("secret");
        symlink("../outside", rootfs.join("up")).expect("relative link");
        symlink(&outside, rootfs.join("abs")).expect("absolute link");
        symlink("../../outside/secret", rootfs.join("etc/resolv.conf")).expect("file link");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            rootfs.join("etc/hosts"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .expect("fifo");
        let source = root.path().join("source");
        std::fs::write(&source, "mounted").expect("source");
        let dir = HostDir::open(&rootfs).expect("open");
        let _unmount = Unmount(vec![
            outside.join("hosts"),
            outside.join("secret"),
            rootfs.join("etc/hosts"),
        ]);

        for planted in ["up/hosts", "abs/hosts", "etc/resolv.conf", "up/new/hosts"] {
            let error = dir
                .bind_file(Path::new(planted), &source, false)
                .expect_err(planted);
            assert!(
                is_escape(&error)
                    || error.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()),
                "{planted}: {error}"
            );
        }
        // A FIFO the image planted is refused without being opened (which would block).
        let fifo = dir.bind_file(Path::new("etc/hosts"), &source, false);
        assert_eq!(fifo.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));

        let names: Vec<_> = std::fs::read_dir(&outside)
            .expect("outside")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["secret"], "nothing was created outside");
        assert_eq!(
            std::fs::read_to_string(outside.join("secret")).expect("secret"),
            "host"
        );
        assert!(!is_mount_point(&outside.join("secret")));
        assert!(!is_mount_point(&rootfs.join("etc/hosts")));
    }
}
