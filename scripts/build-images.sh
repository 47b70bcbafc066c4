#!/usr/bin/env bash
# Build the firewall stack's images from this checkout:
#   clawker-coredns:latest       images/coredns (CoreDNS + dnsbpf, the binary built here with Go)
#   clawker-controlplane:latest  images/controlplane (Node, dist/controlplane.js, bpfman)
# (the tags are those the CLI runs by default; CLAWKER_COREDNS_IMAGE / CLAWKER_CONTROLPLANE_IMAGE
# choose others, below).
#
#   bash scripts/build-images.sh [--only coredns|controlplane] [--force] [--verbose]
#   bash scripts/build-images.sh --binaries-only [--arch amd64|arm64|all]
#   npm run images -- [same flags]
#
# Two steps. First the files a .vsix ships are made here: dist/controlplane.js (esbuild) and the
# static Linux binaries dist/engine/linux-<arch>/{bpfman,coredns} (Go, CGO off, -trimpath, no VCS
# stamp: the same sources give the same bytes). Then `clawker firewall build` (dist/cli.js) builds
# the images on the engine from exactly those files, as a user's `clawker firewall up` does from the
# installed extension (src/platform/docker/stackImages.ts): one way to build them, whoever asks.
# --binaries-only makes the binaries alone, no bundle, no image (scripts/package.mjs, which makes
# its own production bundles: --arch all).
#
# Environment:
#   CLAWKER_BASE_IMAGE  the base of both images (default: each Dockerfile's pinned upstream image).
#                       Without a registry (the test bed):
#                       CLAWKER_BASE_IMAGE=clawker-testbed/debian:bookworm (images/base/import-debian.sh).
#   CLAWKER_COREDNS_IMAGE, CLAWKER_CONTROLPLANE_IMAGE
#                       the tags to build (default clawker-coredns:latest, clawker-controlplane:latest):
#                       the same variables choose the images the CLI runs, so a build under other
#                       tags leaves the default images alone. The test suites build under their own
#                       tags (test/e2e/stackImages.ts: clawker-coredns:e2e, clawker-controlplane:e2e),
#                       and test/mutation/datapath.ts builds mutants under clawker-*:mutant-<name>.
#   DOCKER_HOST and the rest of the engine's resolution apply as to every clawker command.
#
# Needs: Go (go.mod's version), make and clang (bpf/), Node with node_modules (npm ci), a Docker
# engine (any builder).
#
# Each image carries the label dev.clawker.build.inputs: a hash of everything it is built from
# (Dockerfile, binaries, bundle, base image and build arguments). When the image already has the
# hash of the current inputs it is not built again (--force builds anyway); the compilers still
# run every time, but warm they take about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[images] %s\n' "$*"; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

ONLY=""
FORCE=0
VERBOSE=0
BINARIES_ONLY=0
ARCH=""
while (($#)); do
  case "$1" in
    --only) (($# >= 2)) || die "--only needs a value: coredns or controlplane"; ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    --arch) (($# >= 2)) || die "--arch needs a value: amd64, arm64 or all"; ARCH="$2"; shift 2 ;;
    --arch=*) ARCH="${1#--arch=}"; shift ;;
    --binaries-only) BINARIES_ONLY=1; shift ;;
    --force) FORCE=1; shift ;;
    --verbose) VERBOSE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$ONLY" in
  "" | coredns | controlplane) ;;
  *) die "--only takes coredns or controlplane, not '$ONLY'" ;;
esac
command -v go >/dev/null || die "Go not found: bpfman and CoreDNS are compiled on this machine (install Go, the version in images/coredns/go.mod)"
HOST_ARCH="$(go env GOARCH)"
case "$ARCH" in
  "") ARCHES=("$HOST_ARCH") ;;
  all) ARCHES=(amd64 arm64) ;;
  amd64 | arm64) ARCHES=("$ARCH") ;;
  *) die "--arch takes amd64, arm64 or all, not '$ARCH'" ;;
esac

# run_step NAME HINT COMMAND...: runs COMMAND (an argument list, never a string) with its output in
# a log; on failure shows the end of the log and stops, naming the step and what to do.
run_step() {
  local name="$1" hint="$2" start=$SECONDS log
  shift 2
  say "$name"
  if ((VERBOSE)); then
    "$@" >&2 || die "step failed: $name. $hint"
  else
    log="$(mktemp "${TMPDIR:-/tmp}/clawker-images-step.XXXXXX.log")"
    if ! "$@" >"$log" 2>&1; then
      tail -n 40 "$log" | sed 's/^/  | /' >&2
      die "step failed: $name (full output: $log). $hint"
    fi
    rm -f "$log"
  fi
  say "  ok ($((SECONDS - start)) s)"
}

# A static binary: the image's libc is not the build machine's.
require_static() {
  if command -v readelf >/dev/null && [[ "$(readelf -l "$1" 2>/dev/null || true)" == *"program interpreter"* ]]; then
    die "$1 is dynamically linked (was it built with cgo?): remove it and run again"
  fi
}

build_binaries() {
  local arch="$1" out="dist/engine/linux-$1"
  mkdir -p "$out"
  if [[ -z "$ONLY" || "$ONLY" == coredns ]]; then
    run_step "go build $out/coredns (minutes when Go's build cache is cold)" \
      "Check that 'go build ./...' works in images/coredns (Go version in go.mod, Go module proxy or a filled module cache)." \
      env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOFLAGS=-buildvcs=false go -C images/coredns build -trimpath -ldflags='-s -w' -o "$ROOT/$out/coredns" ./cmd/coredns-clawker
    require_static "$out/coredns"
  fi
  if [[ -z "$ONLY" || "$ONLY" == controlplane ]]; then
    # The datapath object is the same for every architecture (clang -target bpf, little-endian on both).
    run_step "make -C bpf bpfman (linux/$arch)" \
      "make -C bpf bpfman needs clang, libbpf-dev, linux-libc-dev and Go (bpf/Makefile)." \
      env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" make -C bpf BUILD="build/linux-$arch" "build/linux-$arch/bpfman"
    cp "bpf/build/linux-$arch/bpfman" "$out/bpfman"
    require_static "$out/bpfman"
  fi
}

START=$SECONDS
for arch in "${ARCHES[@]}"; do build_binaries "$arch"; done
if ((BINARIES_ONLY)); then
  say "binaries in dist/engine/ for ${ARCHES[*]} in $((SECONDS - START)) s"
  exit 0
fi
# The bundles the images and the CLI that builds them are made of (the packager makes its own,
# production ones: it asks for the binaries only).
command -v node >/dev/null || die "node not found: the control-plane bundle is built with esbuild (install Node 20 or later)"
[[ -d node_modules/esbuild ]] || die "node_modules/esbuild missing: run npm ci"
run_step "esbuild dist/ (node scripts/build.mjs)" "Fix the build errors shown (npm run build shows the same)." node scripts/build.mjs
[[ -s dist/controlplane.js && -s dist/cli.js ]] || die "node scripts/build.mjs did not write dist/controlplane.js and dist/cli.js"

# Images are global to the engine: one build at a time (e2e suites run in parallel processes;
# whoever waits finds the images up to date).
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/clawker-build-images.lock"
  if ! flock -n 9; then
    say "waiting for another build-images run to finish"
    flock 9
  fi
fi
# Envoy is not built: `firewall up` pulls it (or the test bed's stand-in is named).
for image in controlplane coredns; do
  [[ -z "$ONLY" || "$ONLY" == "$image" ]] || continue
  args=(firewall build --only "$image")
  ((FORCE)) && args+=(--force)
  say "clawker ${args[*]} (base image: ${CLAWKER_BASE_IMAGE:-as in the Dockerfile})"
  set +e
  node dist/cli.js "${args[@]}" 2>&1 | sed 's/^/  /'
  status="${PIPESTATUS[0]}"
  set -e
  ((status == 0)) || die "clawker ${args[*]} failed (exit $status): see its output above"
done
say "done in $((SECONDS - START)) s"
