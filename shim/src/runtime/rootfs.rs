//! A container's rootfs: the snapshot mounts containerd hands over in `Create`, mounted at the
//! bundle's `rootfs` (a shim v2 mounts them itself), then the bundle's file binds onto it
//! (`/etc/hosts`...); all unmounted at `Delete`.

use std::path::{Path, PathBuf};

use wasmpod::hostdir::HostDir;

use crate::bundle::FileBind;
use crate::error::TaskError;

/// One mount of a rootfs, as containerd describes it (`overlay` with `lowerdir=...`, `bind`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsMount {
    /// Filesystem type.
    pub typ: String,
    /// Source.
    pub source: String,
    /// Mount options.
    pub options: Vec<String>,
}

/// Mounts `mounts` at `target`, in order, then bind-mounts each of `files` onto the rootfs,
/// resolved beneath it (an image's links never lead a mount out of it: see
/// [`HostDir::bind_file`]). Without mounts, `target` is used as it is (a bundle whose rootfs
/// is a plain directory). On error, what was mounted is unmounted again.
pub fn mount(mounts: &[RootfsMount], files: &[FileBind], target: &Path) -> Result<(), TaskError> {
    if !mounts.is_empty() {
        std::fs::create_dir_all(target)
            .map_err(|e| TaskError::io("create directory", target, e))?;
    }
    for m in mounts {
        let typ = Some(m.typ.as_str()).filter(|t| !t.is_empty());
        let source = Some(m.source.as_str()).filter(|s| !s.is_empty());
        if let Err(e) = containerd_shim::mount::mount_rootfs(typ, source, &m.options, target) {
            let _ = unmount(target);
            return Err(TaskError::Mount {
                path: target.to_owned(),
                message: e.to_string(),
            });
        }
    }
    if files.is_empty() {
        return Ok(());
    }
    let bound = HostDir::open(target).and_then(|root| {
        files.iter().try_for_each(|file| {
            root.bind_file(&file.destination, &file.source, file.read_only)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "bind {} to /{}: {e}",
                            file.source.display(),
                            file.destination.display()
                        ),
                    )
                })
        })
    });
    if let Err(e) = bound {
        let _ = unmount(target);
        return Err(TaskError::Mount {
            path: target.to_owned(),
            message: e.to_string(),
        });
    }
    Ok(())
}

/// `umount2`'s `UMOUNT_NOFOLLOW`.
const UMOUNT_NOFOLLOW: i32 = 8;

/// Unmounts everything at or below `target`.
pub fn unmount(target: &Path) -> Result<(), TaskError> {
    let path: PathBuf = target.to_owned();
    let Some(text) = path.to_str() else {
        return Err(TaskError::Mount {
            path,
            message: "the path is not UTF-8".into(),
        });
    };
    // Deepest first, from mountinfo; a link never leads an unmount elsewhere.
    containerd_shim::mount::umount_recursive(Some(text), UMOUNT_NOFOLLOW).map_err(|e| {
        TaskError::Mount {
            path: path.clone(),
            message: e.to_string(),
        }
    })
}
