#!/usr/bin/env bash
# Builds what tests/tests/vm.rs boots: a Debian kernel and an initramfs holding busybox, the
# wasmpod binary (with its shared libraries), the guests, the pod manifests and tests/vm/init.
#
# Usage: build.sh OUT_DIR WASMPOD_BIN GUEST.wasm...
# Writes OUT_DIR/vmlinuz and OUT_DIR/initrd.gz. Debian packages are downloaded (apt-get
# download, never installed) into OUT_DIR/debs once and reused.
set -euo pipefail

out=$1
bin=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/debs"
out=$(cd "$out" && pwd)

# The kernel package linux-image-amd64 currently points at, e.g. linux-image-6.1.0-56-amd64.
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
    echo "build.sh: cannot resolve linux-image-amd64 (apt-get update?)" >&2
    exit 1
fi
(
    cd "$out/debs"
    for pkg in "$kpkg" busybox-static; do
        if ! ls "${pkg}"_*.deb >/dev/null 2>&1; then
            apt-get download "$pkg"
        fi
    done
)
kdeb=$(ls "$out/debs/${kpkg}"_*.deb | head -n1)
bdeb=$(ls "$out/debs"/busybox-static_*.deb | head -n1)

if [ ! -f "$out/vmlinuz" ] || [ "$kdeb" -nt "$out/vmlinuz" ]; then
    rm -rf "$out/kernel"
    dpkg-deb -x "$kdeb" "$out/kernel"
    cp "$out"/kernel/boot/vmlinuz-* "$out/vmlinuz.tmp"
    mv "$out/vmlinuz.tmp" "$out/vmlinuz"
    rm -rf "$out/kernel"
fi

root="$out/root"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,etc,guests,pods,lib64,lib/x86_64-linux-gnu,usr/bin}

dpkg-deb -x "$bdeb" "$out/busybox"
cp "$out/busybox/bin/busybox" "$root/bin/busybox"
rm -rf "$out/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# The debug binary without its debug info (164 MB -> a fraction) and the shared libraries it
# needs.
strip --strip-debug -o "$root/usr/bin/wasmpod" "$bin"
ldd "$bin" | awk '/=>/ {print $3} /^\s*\/lib64\// {print $1}' | while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# The loader, wherever ldd put it.
loader=$(ldd "$bin" | awk '/ld-linux/ {print $1}')
mkdir -p "$root$(dirname "$loader")"
cp -L "$loader" "$root$loader"

for guest in "$@"; do
    cp "$guest" "$root/guests/"
done
cp "$here"/pods/*.yaml "$root/pods/"
cp "$here/init" "$root/init"
chmod +x "$root/init"

# No pre-filled compile cache: the engine's compatibility hash, which keys the cache, includes
# the CPU features it detects, and TCG's CPU never matches the host's, so wasmpod compiles the
# guests in the VM (a few seconds).
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out/initrd.gz.tmp"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
rm -rf "$root"
