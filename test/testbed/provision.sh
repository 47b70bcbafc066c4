#!/usr/bin/env bash
# Install and start the test bed on a Debian 12 machine, as root. Idempotent: run it as often as
# you like; a step that is already done is reported and skipped.
#
#   bash test/testbed/provision.sh
#
# What it sets up (facts: /work/shared/design/TESTBED.md):
#   1. Debian packages: Docker engine, clang/llvm, libbpf-dev, bpftool, debootstrap, Chromium, ...
#   2. cgroup v2 mounted beside the v1 hierarchies (hybrid) at /sys/fs/cgroup/unified, before dockerd
#   3. bpffs at /sys/fs/bpf
#   4. dockerd (cgroupfs driver), log in $CLAWKER_TESTBED_DIR/dockerd.log
#   5. a check that containers land in their own cgroup v2 (what the eBPF hooks attach to)
#   6. the local base image clawker-testbed/debian:bookworm (images/base/import-debian.sh)
#   7. code-server, via test/testbed/code-server.sh when that script exists
#   8. the journey user: a normal user with UID 1000 (the machine's own when it has one, else
#      clawker-user), in the docker group, without sudo; the non-root suites run as it
#
# Environment:
#   CLAWKER_TESTBED_DIR      state and caches, outside the repository (default /var/cache/clawker-testbed)
#   CLAWKER_DOCKERD_TIMEOUT  seconds to wait for dockerd to answer (default 60)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${CLAWKER_TESTBED_DIR:-/var/cache/clawker-testbed}"
CGROUP_ROOT=/sys/fs/cgroup
CGROUP2_HYBRID_DIR=/sys/fs/cgroup/unified
BPFFS_DIR=/sys/fs/bpf
DOCKER_SOCK=/var/run/docker.sock
DOCKER_PIDFILE=/var/run/docker.pid
DOCKERD_LOG="$STATE_DIR/dockerd.log"
DOCKERD_TIMEOUT="${CLAWKER_DOCKERD_TIMEOUT:-60}"
BASE_IMAGE=clawker-testbed/debian:bookworm

PACKAGES=(
  docker.io clang llvm libbpf-dev bpftool debootstrap chromium libkrb5-dev ripgrep iproute2
  build-essential curl ca-certificates ipset openssl unzip
  # needed by the above but only "recommended" (this workplace installs without recommends):
  xz-utils debian-archive-keyring iptables procps
)

step() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] FAILED: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "must run as root (mounts, dockerd, bpffs)"
mkdir -p "$STATE_DIR" || die "cannot create state dir $STATE_DIR"

# ---------------------------------------------------------------------------------------------
# 1. packages
# ---------------------------------------------------------------------------------------------
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_packages "${PACKAGES[@]}"
for cmd in dockerd docker clang llc make debootstrap; do
  command -v "$cmd" >/dev/null || die "package install did not provide '$cmd'"
done
[[ -x /usr/sbin/bpftool ]] || command -v bpftool >/dev/null || die "package install did not provide 'bpftool'"

# ---------------------------------------------------------------------------------------------
# helpers: mounts and dockerd
# ---------------------------------------------------------------------------------------------
# Mount point of the cgroup v2 hierarchy, or nothing.
cgroup2_mountpoint() {
  awk '$3 == "cgroup2" { print $2 }' /proc/mounts | grep -xE "$CGROUP2_HYBRID_DIR|$CGROUP_ROOT" | head -n1 || true
}
bpffs_mounted() { awk -v d="$BPFFS_DIR" '$2 == d && $3 == "bpf" { found = 1 } END { exit !found }' /proc/mounts; }
docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
dockerd_pid() {
  local pid
  if [[ -s "$DOCKER_PIDFILE" ]]; then
    pid="$(cat "$DOCKER_PIDFILE")"
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == dockerd ]]; then echo "$pid"; return; fi
  fi
  pgrep -x dockerd | head -n1 || true
}

stop_dockerd() {
  local pid i
  pid="$(dockerd_pid)"
  [[ -n "$pid" ]] || return 0
  step "dockerd: stopping pid $pid ($1)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    [[ -d "/proc/$pid" ]] || break
    sleep 0.5
  done
  [[ -d "/proc/$pid" ]] && die "dockerd (pid $pid) did not stop within 30 s"
  return 0
}

start_dockerd() {
  local pid i
  if docker_answers; then return 0; fi
  pid="$(dockerd_pid)"
  if [[ -z "$pid" ]]; then
    step "dockerd: starting (log: $DOCKERD_LOG)"
    # The cgroupfs driver puts containers at <hierarchy>/docker/<id>, in v1 and in v2 alike.
    # setsid + no inherited descriptors: dockerd outlives this script and its caller.
    setsid dockerd --exec-opt native.cgroupdriver=cgroupfs \
      </dev/null >>"$DOCKERD_LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE_DIR/dockerd.pid"
  else
    step "dockerd: pid $pid is running, waiting for it to answer"
  fi
  for ((i = 0; i < DOCKERD_TIMEOUT * 2; i++)); do
    if [[ -S "$DOCKER_SOCK" ]] && docker_answers; then
      step "dockerd: answering on $DOCKER_SOCK (Docker $(docker version --format '{{.Server.Version}}'))"
      return 0
    fi
    if [[ ! -d "/proc/$pid" ]]; then
      tail -n 25 "$DOCKERD_LOG" >&2 2>/dev/null || true
      die "Docker daemon (dockerd) exited while starting; log: $DOCKERD_LOG"
    fi
    sleep 0.5
  done
  tail -n 25 "$DOCKERD_LOG" >&2 2>/dev/null || true
  die "Docker daemon (dockerd) did not answer on $DOCKER_SOCK within ${DOCKERD_TIMEOUT} s; log: $DOCKERD_LOG"
}

# ---------------------------------------------------------------------------------------------
# 2. cgroup v2 (hybrid), before dockerd
# ---------------------------------------------------------------------------------------------
cg2="$(cgroup2_mountpoint)"
if [[ -n "$cg2" ]]; then
  step "cgroup v2: mounted at $cg2"
else
  # A dockerd started without the v2 hierarchy keeps putting containers only in v1: restart it.
  if docker_answers || [[ -n "$(dockerd_pid)" ]]; then
    stop_dockerd "it started before cgroup v2 was mounted"
  fi
  step "cgroup v2: mounting at $CGROUP2_HYBRID_DIR (beside the v1 hierarchies)"
  # Never unmount or replace the v1 hierarchies: the workplace uses the v1 memory controller.
  mkdir -p "$CGROUP2_HYBRID_DIR" || die "cgroup v2: cannot create $CGROUP2_HYBRID_DIR (is $CGROUP_ROOT a tmpfs with v1 hierarchies?)"
  mount -t cgroup2 none "$CGROUP2_HYBRID_DIR" || die "cgroup v2: mount -t cgroup2 at $CGROUP2_HYBRID_DIR failed"
  cg2="$(cgroup2_mountpoint)"
  [[ -n "$cg2" ]] || die "cgroup v2: mount reported success but /proc/mounts does not show it"
fi

# ---------------------------------------------------------------------------------------------
# 3. bpffs
# ---------------------------------------------------------------------------------------------
if bpffs_mounted; then
  step "bpffs: mounted at $BPFFS_DIR"
else
  step "bpffs: mounting at $BPFFS_DIR"
  mkdir -p "$BPFFS_DIR"
  mount -t bpf bpf "$BPFFS_DIR" || die "bpffs: mount -t bpf at $BPFFS_DIR failed"
  bpffs_mounted || die "bpffs: mount reported success but /proc/mounts does not show it"
fi

# ---------------------------------------------------------------------------------------------
# 4. dockerd
# ---------------------------------------------------------------------------------------------
if docker_answers; then
  step "dockerd: already answering (Docker $(docker version --format '{{.Server.Version}}'))"
else
  start_dockerd
fi

# ---------------------------------------------------------------------------------------------
# 5. base image (before the cgroup check, which needs an image to run)
# ---------------------------------------------------------------------------------------------
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  step "base image: $BASE_IMAGE present"
else
  step "base image: building $BASE_IMAGE"
  CLAWKER_TESTBED_DIR="$STATE_DIR" bash "$ROOT/images/base/import-debian.sh" "$BASE_IMAGE" \
    || die "base image: images/base/import-debian.sh could not build $BASE_IMAGE"
fi

# ---------------------------------------------------------------------------------------------
# 6. containers get their own cgroup v2 (the eBPF attach point)
# ---------------------------------------------------------------------------------------------
# Prints the container's cgroup v2 directory on the host, or nothing.
container_cgroup2_dir() {
  local cid pid rel
  cid="$(docker run -d --rm --label clawker-testbed.provision=1 "$BASE_IMAGE" sleep 30)" || return 1
  pid="$(docker inspect -f '{{.State.Pid}}' "$cid" 2>/dev/null || true)"
  rel="$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup" 2>/dev/null || true)"
  docker rm -f "$cid" >/dev/null 2>&1 || true
  if [[ "$rel" == */"$cid"* ]]; then echo "$cg2$rel"; fi
}
cg_dir="$(container_cgroup2_dir)" || die "Docker daemon cannot run a container from $BASE_IMAGE (log: $DOCKERD_LOG)"
if [[ -z "$cg_dir" ]]; then
  stop_dockerd "containers are not placed in a cgroup v2 (dockerd predates the v2 mount?)"
  start_dockerd
  cg_dir="$(container_cgroup2_dir)" || die "Docker daemon cannot run a container from $BASE_IMAGE (log: $DOCKERD_LOG)"
  [[ -n "$cg_dir" ]] || die "cgroup v2: containers are not placed in their own cgroup v2 under $cg2, even after restarting dockerd"
fi
step "cgroup v2: containers land in ${cg_dir%/*}/<id>"

# ---------------------------------------------------------------------------------------------
# 7. code-server (its own script, written separately)
# ---------------------------------------------------------------------------------------------
if [[ -x "$ROOT/test/testbed/code-server.sh" ]]; then
  step "code-server: running test/testbed/code-server.sh"
  "$ROOT/test/testbed/code-server.sh" || die "code-server: test/testbed/code-server.sh failed"
elif [[ -f "$ROOT/test/testbed/code-server.sh" ]]; then
  step "code-server: running test/testbed/code-server.sh (not executable, via bash)"
  bash "$ROOT/test/testbed/code-server.sh" || die "code-server: test/testbed/code-server.sh failed"
else
  step "code-server: test/testbed/code-server.sh not present, skipped"
fi

# ---------------------------------------------------------------------------------------------
# 8. the journey user: UID 1000, in the docker group, no sudo
# ---------------------------------------------------------------------------------------------
JOURNEY_UID=1000
journey_user="$(getent passwd "$JOURNEY_UID" | cut -d: -f1 || true)"
if [[ -z "$journey_user" ]]; then
  getent group "$JOURNEY_UID" >/dev/null || groupadd --gid "$JOURNEY_UID" clawker-user
  useradd --uid "$JOURNEY_UID" --gid "$JOURNEY_UID" --create-home --shell /bin/bash clawker-user
  journey_user=clawker-user
fi
journey_home="$(getent passwd "$JOURNEY_UID" | cut -d: -f6)"
[[ -d "$journey_home" ]] || { mkdir -p "$journey_home"; chown "$JOURNEY_UID:$(id -g "$journey_user")" "$journey_home"; }
id -nG "$journey_user" | tr ' ' '\n' | grep -qx docker || usermod -aG docker "$journey_user"
if command -v sudo >/dev/null && sudo -n -l -U "$journey_user" 2>/dev/null | grep -q 'may run'; then
  die "the journey user $journey_user (UID $JOURNEY_UID) may use sudo; the non-root suites need a user who cannot"
fi
[[ "$(runuser -u "$journey_user" -- docker version --format '{{.Server.Version}}' 2>/dev/null)" ]] \
  || die "the journey user $journey_user cannot use Docker (is it in the docker group? $(id "$journey_user"))"
step "journey user: $journey_user (UID $JOURNEY_UID, $(id -nG "$journey_user")), home $journey_home, no sudo"

step "test bed ready (state: $STATE_DIR)"
