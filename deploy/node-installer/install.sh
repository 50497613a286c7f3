#!/bin/sh
# Installs containerd-shim-wasmpod-v1 on a node and adds the `wasmpod` runtime to containerd's
# CRI plugin: what the init container of node-installer.yaml's DaemonSet runs (privileged, the
# node's / mounted at $HOST_ROOT). Safe to run again: an unchanged shim is not copied, a config
# that has the runtime is not touched, and containerd is restarted only when its config
# changed (running pods keep running: their shims outlive a containerd restart).
#
# Settings (environment):
#   HOST_ROOT           the node's / (default /host)
#   SHIM                the shim to install (default: next to this script)
#   SHIM_DIR            where containerd finds its shims, on the node (default /usr/local/bin)
#   CONTAINERD_CONFIG   containerd's config, on the node (default /etc/containerd/config.toml)
#   RESTART_CONTAINERD  how containerd is restarted (default: systemctl, in the node's
#                       namespaces through nsenter; needs hostPID); "none" to leave it
set -eu

HOST_ROOT=${HOST_ROOT:-/host}
SHIM=${SHIM:-$(dirname "$0")/containerd-shim-wasmpod-v1}
SHIM_DIR=${SHIM_DIR:-/usr/local/bin}
CONTAINERD_CONFIG=${CONTAINERD_CONFIG:-/etc/containerd/config.toml}
RESTART_CONTAINERD=${RESTART_CONTAINERD:-nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd}

say() { echo "wasmpod-node-installer: $*"; }
fail() { echo "wasmpod-node-installer: $*" >&2; exit 1; }

[ -d "$HOST_ROOT" ] || fail "HOST_ROOT $HOST_ROOT is not a directory (mount the node's / there)"
[ -f "$SHIM" ] || fail "SHIM $SHIM does not exist"
case "$SHIM_DIR$CONTAINERD_CONFIG" in
  *..*) fail "SHIM_DIR and CONTAINERD_CONFIG must not contain '..'" ;;
esac

# 1. The shim: copied beside its destination, then renamed over it, so that a containerd
# starting a shim meanwhile finds the old binary or the new one, never half of one (running
# shims keep the file they started from).
target="$HOST_ROOT$SHIM_DIR/containerd-shim-wasmpod-v1"
mkdir -p "$HOST_ROOT$SHIM_DIR"
if [ -f "$target" ] && cmp -s "$SHIM" "$target"; then
  say "shim already installed at $SHIM_DIR"
else
  cp "$SHIM" "$target.new"
  chmod 755 "$target.new"
  mv -f "$target.new" "$target"
  say "shim installed at $SHIM_DIR"
fi

# 2. The runtime, in the form of the config's version: 3 (containerd 2.0 to 2.2) and 4 (2.3)
# name the CRI runtime plugin `io.containerd.cri.v1.runtime`; 2 (1.6, 1.7; 2.x migrates it)
# `io.containerd.grpc.v1.cri`. A node without a config file gets a version 2 one holding only
# the runtime: containerd's defaults stay in force for everything else.
config="$HOST_ROOT$CONTAINERD_CONFIG"
if [ -f "$config" ] && grep -Eq '^[[:space:]]*version[[:space:]]*=[[:space:]]*([3-9]|[1-9][0-9]+)([[:space:]]|#|$)' "$config"; then
  table="[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmpod]"
  key="  runtime_type = 'io.containerd.wasmpod.v1'
  container_annotations = ['io.kubernetes.container.ports']"
  pattern="^[[:space:]]*\[plugins\.['\"]io\.containerd\.cri\.v1\.runtime['\"]\.containerd\.runtimes\.['\"]?wasmpod['\"]?\]"
else
  table='[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmpod]'
  key='  runtime_type = "io.containerd.wasmpod.v1"
  container_annotations = ["io.kubernetes.container.ports"]'
  pattern="^[[:space:]]*\[plugins\.['\"]io\.containerd\.grpc\.v1\.cri['\"]\.containerd\.runtimes\.['\"]?wasmpod['\"]?\]"
fi
changed=no
if [ ! -f "$config" ]; then
  mkdir -p "$(dirname "$config")"
  printf 'version = 2\n\n%s\n%s\n' "$table" "$key" >"$config.new"
  mv -f "$config.new" "$config"
  changed=yes
  say "wrote $CONTAINERD_CONFIG with the wasmpod runtime"
elif grep -Eq "$pattern" "$config"; then
  say "$CONTAINERD_CONFIG already has the wasmpod runtime"
else
  # A new copy renamed over the old one: containerd never reads a half-written config.
  cp -p "$config" "$config.new"
  printf '\n# Added by the wasmpod node installer.\n%s\n%s\n' "$table" "$key" >>"$config.new"
  mv -f "$config.new" "$config"
  changed=yes
  say "added the wasmpod runtime to $CONTAINERD_CONFIG"
fi

# 3. containerd reads its config at start only.
if [ "$changed" = yes ]; then
  if [ "$RESTART_CONTAINERD" = none ]; then
    say "restart containerd to load the runtime"
  else
    sh -c "$RESTART_CONTAINERD" || fail "restarting containerd failed: $RESTART_CONTAINERD"
    say "containerd restarted"
  fi
fi
say "done"
