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
#   containerd of Debian trixie and sid (1.7, 2.1): the shim's end-to-end tests run against
#   each of them too, after the system's; they are downloaded with apt-get into
#   target/containerd/<suite> (dpkg -x), never installed
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
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
if ((${#missing[@]})); then
    echo "installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# The containerds of Debian's newer suites, unpacked where the tests find them.
containerd_of() {
    local suite=$1 root=target/containerd/$1
    if [ ! -x "$root/usr/bin/containerd" ]; then
        local apt=(-o "Dir::Etc::sourcelist=$PWD/$root/apt/sources.list"
            -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$PWD/$root/apt/lists"
            -o "Dir::Cache=$PWD/$root/apt/cache" -o APT::Sandbox::User=root)
        mkdir -p "$root/apt/lists/partial" "$root/apt/cache/archives/partial" "$root/deb"
        echo "deb http://deb.debian.org/debian $suite main" >"$root/apt/sources.list"
        {
            "${sudo[@]}" apt-get -qq "${apt[@]}" update
            (cd "$root/deb" && "${sudo[@]}" apt-get -qq "${apt[@]}" download containerd)
            "${sudo[@]}" dpkg -x "$root"/deb/containerd_*.deb "$root"
        } >&2
    fi
    echo "$PWD/$root/usr/bin"
}

extra=()
if command -v apt-get >/dev/null 2>&1; then
    for suite in trixie sid; do
        extra+=("$(containerd_of "$suite")")
    done
else
    echo "no apt-get: the shim's end-to-end tests run against the system's containerd only" >&2
fi

cargo test --workspace "$@"

# The shim's end-to-end tests again, against each newer containerd (first on PATH: the test
# harness runs the containerd and ctr it finds there).
for bin in "${extra[@]}"; do
    echo "== the shim's end-to-end tests against $("$bin/containerd" --version)"
    PATH="$bin:$PATH" cargo test -p wasmpod-tests --test containerd "$@"
    PATH="$bin:$PATH" cargo test -p containerd-shim-wasmpod-v1 --test content "$@"
done
