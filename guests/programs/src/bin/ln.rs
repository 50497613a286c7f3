//! `ln TARGET LINK`: creates a symbolic link `LINK` whose contents are `TARGET`, as `ln -s`.
//!
//! The target is not checked: it may dangle, or lead out of the preopened directory (which is
//! how a hostile guest plants an escape for whoever follows the link later). On error prints
//! `ln LINK: <error>` to stderr and exits 1; bad usage exits 2.

use std::ffi::{CString, c_char, c_int};

// wasi-libc's `symlink` (Rust's `std::os::wasi::fs::symlink_path` is still unstable): it
// resolves `LINK` against the preopens as every libc path call does.
#[allow(unsafe_code, reason = "declaring wasi-libc's symlink")]
unsafe extern "C" {
    fn symlink(target: *const c_char, link: *const c_char) -> c_int;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, link] = args.as_slice() else {
        eprintln!("ln: usage: ln TARGET LINK");
        std::process::exit(2);
    };
    let (Ok(c_target), Ok(c_link)) = (CString::new(target.as_str()), CString::new(link.as_str()))
    else {
        eprintln!("ln: arguments must not contain NUL");
        std::process::exit(2);
    };
    #[allow(unsafe_code, reason = "wasi-libc's symlink has no stable safe wrapper in std")]
    // SAFETY: both pointers are NUL-terminated strings that live across the call.
    let done = unsafe { symlink(c_target.as_ptr(), c_link.as_ptr()) };
    if done != 0 {
        eprintln!("ln {link}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
}
