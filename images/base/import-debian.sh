#!/usr/bin/env bash
# Build a minimal Debian root filesystem with debootstrap and import it into the local Docker
# engine as a base image. Nothing is pulled from a container registry: the test bed has none.
#
#   bash images/base/import-debian.sh [TAG]      (default TAG: clawker-testbed/debian:bookworm)
#
# Environment:
#   DEBIAN_SUITE     suite to bootstrap                 (default: bookworm)
#   DEBIAN_MIRROR    Debian mirror                      (default: http://deb.debian.org/debian)
#   IMPORT_CACHE_DIR where the rootfs tarball is kept, so a removed image is re-imported without
#                    running debootstrap again          (default: ${CLAWKER_TESTBED_DIR:-/var/cache/clawker-testbed}/images)
#   FORCE=1          re-import even if TAG exists, and rebuild the rootfs tarball
#
# Dockerfiles in images/ take `ARG BASE_IMAGE` defaulting to the real pinned upstream image (for
# users); the test bed passes `--build-arg BASE_IMAGE=clawker-testbed/debian:bookworm`.
set -euo pipefail

TAG="${1:-clawker-testbed/debian:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${IMPORT_CACHE_DIR:-${CLAWKER_TESTBED_DIR:-/var/cache/clawker-testbed}/images}"
TARBALL="$CACHE_DIR/debian-$SUITE-minbase-$(dpkg --print-architecture 2>/dev/null || uname -m).tar"

say() { printf '[import-debian] %s\n' "$*"; }
die() { printf '[import-debian] ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker CLI not found (install docker.io)"
docker info >/dev/null 2>&1 || die "Docker daemon not answering on /var/run/docker.sock"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG already present"
  exit 0
fi

mkdir -p "$CACHE_DIR"
if [[ "${FORCE:-0}" == 1 || ! -s "$TARBALL" ]]; then
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
  ROOTFS="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  cleanup() {
    # A failed debootstrap can leave proc/sys mounted inside the target: unmount, never delete through.
    awk -v r="$ROOTFS/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l || true
    rm -rf --one-file-system "$ROOTFS" "$TARBALL.partial"
  }
  trap cleanup EXIT
  say "debootstrap --variant=minbase $SUITE from $MIRROR (about 30 s)"
  if ! debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE_DIR/debootstrap.log" >&2 || true
    die "debootstrap failed (full log: $CACHE_DIR/debootstrap.log)"
  fi
  # Smaller image: package lists and caches are fetched again by any `apt-get update` in a build.
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
else
  say "reusing rootfs tarball $TARBALL"
fi

say "docker import -> $TAG"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --change "LABEL org.opencontainers.image.description=\"debootstrap --variant=minbase $SUITE, imported locally by images/base/import-debian.sh\"" \
  "$TARBALL" "$TAG" >/dev/null
docker image inspect "$TAG" >/dev/null 2>&1 || die "docker import did not produce $TAG"
say "$TAG imported"
