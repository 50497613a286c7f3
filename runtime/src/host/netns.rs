//! The pod's network namespace: a new one with `lo` up, or an existing one (what CRI hands the
//! shim), held by a file descriptor and entered thread by thread.
//!
//! A namespace made here lives as long as its descriptor and the threads in it: it is never
//! bind-mounted, so it cannot outlive the pod process, even after a crash.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use super::HostError;

/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// A network namespace.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    /// Whether wasmpod made it (rather than joining one it was given).
    created: bool,
}

impl NetNs {
    /// A fresh network namespace with `lo` up. Made on a short-lived thread, so the calling
    /// thread stays where it is.
    pub fn create() -> Result<NetNs, HostError> {
        let made = std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<OwnedFd, HostError> {
                    #[expect(
                        unsafe_code,
                        reason = "unshare changes the calling thread's namespaces"
                    )]
                    // SAFETY: this thread was spawned for this alone and ends right after;
                    // only its network namespace changes (no CLONE_FS/FILES/VM sharing is
                    // touched), so no other thread's view of the process changes.
                    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }
                        .map_err(|e| HostError::io("unshare", "CLONE_NEWNET", e.into()))?;
                    let fd = open_ns("/proc/thread-self/ns/net")?;
                    set_up("lo")?;
                    Ok(fd)
                })
                .join()
        });
        let fd = made.map_err(|_| {
            HostError::io(
                "unshare",
                "thread",
                std::io::Error::other("thread panicked"),
            )
        })??;
        Ok(NetNs { fd, created: true })
    }

    /// The network namespace at `path` (`/var/run/netns/NAME`, `/proc/PID/ns/net`).
    pub fn open(path: &Path) -> Result<NetNs, HostError> {
        let fd = open_ns(path)?;
        let fs = rustix::fs::fstatfs(&fd).map_err(|e| HostError::io("statfs", path, e.into()))?;
        if fs.f_type != NSFS_MAGIC {
            return Err(HostError::NotANamespace {
                path: path.to_owned(),
            });
        }
        Ok(NetNs { fd, created: false })
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<NetNs, HostError> {
        Ok(NetNs {
            fd: open_ns("/proc/thread-self/ns/net")?,
            created: false,
        })
    }

    /// Whether wasmpod made this namespace.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Moves the calling thread into this namespace. Threads it starts afterwards are born in
    /// it; sockets it opens belong to it.
    pub fn enter(&self) -> Result<(), HostError> {
        rustix::thread::move_into_link_name_space(self.fd.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| HostError::io("setns", "network namespace", e.into()))
    }

    /// The namespace's identity (its nsfs inode), as `ip netns identify` / `lsns` show it.
    pub fn inode(&self) -> u64 {
        rustix::fs::fstat(&self.fd).map_or(0, |st| st.st_ino)
    }

    /// `/proc/PID/fd/N` for this namespace, for tools that take a namespace file.
    pub fn proc_path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn open_ns(path: impl AsRef<Path>) -> Result<OwnedFd, HostError> {
    let path = path.as_ref();
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| HostError::io("open namespace", path, e))
}

/// Sets interface `name` up, in the calling thread's network namespace.
fn set_up(name: &str) -> Result<(), HostError> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .map_err(|e| HostError::io("socket", name, e.into()))?;
    let mut request = ifreq(name)?;
    ioctl(&socket, libc::SIOCGIFFLAGS, &mut request, name)?;
    #[expect(unsafe_code, reason = "ifreq is a C union")]
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    unsafe {
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    ioctl(&socket, libc::SIOCSIFFLAGS, &mut request, name)
}

fn ifreq(name: &str) -> Result<libc::ifreq, HostError> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(HostError::io(
            "interface",
            name,
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        ));
    }
    #[expect(unsafe_code, reason = "ifreq is a plain C struct")]
    // SAFETY: all-zero bytes are a valid `ifreq` (an empty name and a zero union).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

fn ioctl(
    socket: &OwnedFd,
    request: libc::Ioctl,
    ifreq: &mut libc::ifreq,
    name: &str,
) -> Result<(), HostError> {
    use std::os::fd::AsRawFd;
    #[expect(unsafe_code, reason = "interface ioctls have no safe wrapper")]
    // SAFETY: `socket` is an open socket, `ifreq` a valid, NUL-terminated request that lives
    // for the call, and SIOCGIFFLAGS/SIOCSIFFLAGS read and write only that struct.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), request, ifreq as *mut libc::ifreq) };
    if result < 0 {
        return Err(HostError::io(
            "ioctl",
            name,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
