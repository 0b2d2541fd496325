# Sourced by the container and install checks: podman with runc and cgroupfs,
# file events, ulimits no higher than this shell's hard limits (runc cannot
# raise them; crun and the systemd cgroup manager do not work here), and the
# clone's own image store in .cache/container/storage, so an image left in
# the machine's store by an earlier run cannot stand in for a step that no
# longer works.
#
#   source tests/container/podman-env.sh; podman_env ROOT TMP
#   ensure_base_image     # localhost/sockagent-bookworm-min:latest
#
# Needs root, podman, runc and mmdebstrap (install_podman_tools installs them).
SOCKAGENT_BASE_IMAGE=localhost/sockagent-bookworm-min:latest

install_podman_tools() {
  local missing=() tool
  for tool in podman runc mmdebstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    echo "container tools: installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# podman_env ROOT TMP: writes containers.conf and storage.conf into TMP (which
# the caller removes) and exports them.
podman_env() {
  local root=$1 tmp=$2 nofile
  PODMAN_CACHE=${SOCKAGENT_CONTAINER_CACHE:-$root/.cache/container}
  mkdir -p "$PODMAN_CACHE/storage"
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  # (nproc above 4096 is refused here even under the hard limit.)
  cat >"$tmp/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  cat >"$tmp/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_CACHE/storage"
runroot = "$tmp/run"
CONF
  export CONTAINERS_CONF=$tmp/containers.conf
  export CONTAINERS_STORAGE_CONF=$tmp/storage.conf
}

# ensure_base_image: a Debian 12 minbase from this machine's own apt sources
# (mmdebstrap, then podman import), unless the store has it. The tarball
# stays in .cache/container/bookworm-min.tar. Call after podman_env.
ensure_base_image() {
  podman image exists "$SOCKAGENT_BASE_IMAGE" && return 0
  local tar=$PODMAN_CACHE/bookworm-min.tar
  if [ ! -s "$tar" ]; then
    echo "base image: mmdebstrap bookworm minbase"
    # --format: mmdebstrap picks the format from the file name otherwise, and
    # "x.tar.part" would be written as a directory.
    mmdebstrap --variant=minbase --mode=root --format=tar bookworm \
      "$tar.part" /etc/apt/sources.list.d/debian.sources >"$tar.log" 2>&1 \
      || { tail -n 30 "$tar.log" >&2; echo "FAIL: mmdebstrap" >&2; return 1; }
    [ -f "$tar.part" ] || { echo "FAIL: mmdebstrap wrote no tar file" >&2; return 1; }
    mv "$tar.part" "$tar"
  fi
  echo "base image: podman import"
  podman import --change 'CMD ["/bin/bash"]' "$tar" "$SOCKAGENT_BASE_IMAGE" >/dev/null
}
