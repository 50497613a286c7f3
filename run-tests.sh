#!/usr/bin/env bash
# Runs every test of the workspace on a machine that has only the Rust toolchain (Debian or
# Ubuntu): installs what the tests need, then `cargo test --workspace` (extra arguments go to
# it, e.g. `./run-tests.sh -- --nocapture`).
#
# What the tests need beyond cargo:
#   wasm32-wasip1, wasm32-wasip2   the guests (rustup targets)
#   protoc                         the CRI client of the shim's end-to-end tests (k8s-cri)
#   containerd, runc               the shim's end-to-end tests (tests/tests/containerd.rs)
#   ip                             the host-layer tests' view of links and addresses
#   qemu-system-x86_64, cpio       the VM test of cgroup limits (tests/tests/vm.rs)
# Packages are installed with apt-get, through sudo when not root.
set -euo pipefail
cd "$(dirname "$0")"

rustup target add wasm32-wasip1 wasm32-wasip2

missing=()
need() {
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need protoc protobuf-compiler
need containerd containerd
need runc runc
need ip iproute2
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
if ((${#missing[@]})); then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

exec cargo test --workspace "$@"
