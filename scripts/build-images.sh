#!/usr/bin/env bash
# Build the firewall stack's images from this checkout:
#   clawker-coredns:latest       images/coredns (CoreDNS + dnsbpf, the binary built here with Go)
#   clawker-controlplane:latest  images/controlplane (Node, dist/controlplane.js, bpf/build/bpfman)
# (the tags are those the CLI runs by default; CLAWKER_COREDNS_IMAGE / CLAWKER_CONTROLPLANE_IMAGE
# choose others, below).
#
#   bash scripts/build-images.sh [--only coredns|controlplane] [--force] [--verbose]
#   npm run images -- [same flags]
#
# Environment:
#   CLAWKER_BASE_IMAGE  passed to both Dockerfiles as BASE_IMAGE (default: the Dockerfiles' own
#                       defaults, the pinned upstream images). Without a registry (the test bed):
#                       CLAWKER_BASE_IMAGE=clawker-testbed/debian:bookworm (images/base/import-debian.sh).
#   CLAWKER_COREDNS_IMAGE, CLAWKER_CONTROLPLANE_IMAGE
#                       the tags to build (default clawker-coredns:latest, clawker-controlplane:latest):
#                       the same variables choose the images the CLI runs, so a build under other
#                       tags leaves the default images alone. The test suites build under their own
#                       tags (test/e2e/stackImages.ts: clawker-coredns:e2e, clawker-controlplane:e2e),
#                       and test/mutation/datapath.ts builds mutants under clawker-*:mutant-<name>.
#   CLAWKER_DOCKER      the docker client to build with (default: the first one on PATH that has
#                       BuildKit; see pick_docker below).
#
# Needs: Go (go.mod's version), make and clang (bpf/), Node with node_modules (npm ci), a Docker
# engine with BuildKit (18.09+).
#
# Each image carries the label dev.clawker.build.inputs: a hash of everything it is built from
# (Dockerfile, binaries, bundle, base image and build arguments). When the image already has the
# hash of the current inputs it is not built again (--force builds anyway); the compilers still
# run every time, but warm they take about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COREDNS_TAG="${CLAWKER_COREDNS_IMAGE:-clawker-coredns:latest}"
CONTROLPLANE_TAG="${CLAWKER_CONTROLPLANE_IMAGE:-clawker-controlplane:latest}"
INPUTS_LABEL=dev.clawker.build.inputs

say() { printf '[images] %s\n' "$*"; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

ONLY=""
FORCE=0
VERBOSE=0
while (($#)); do
  case "$1" in
    --only) (($# >= 2)) || die "--only needs a value: coredns or controlplane"; ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
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

BASE_IMAGE="${CLAWKER_BASE_IMAGE:-}"
# An image reference, nothing else (it is only ever passed as one argument, but a typo should fail here).
if [[ -n "$BASE_IMAGE" && ! "$BASE_IMAGE" =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]]; then
  die "CLAWKER_BASE_IMAGE is not an image reference: '$BASE_IMAGE'"
fi
# A tag to build: name[:tag], no digest (a digest names an image, it cannot be built).
for tag in "$COREDNS_TAG" "$CONTROLPLANE_TAG"; do
  [[ "$tag" =~ ^[A-Za-z0-9][A-Za-z0-9._/:-]*$ ]] \
    || die "not a tag to build (CLAWKER_COREDNS_IMAGE / CLAWKER_CONTROLPLANE_IMAGE): '$tag'"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/clawker-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

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

# A docker client that builds with BuildKit. The coredns Dockerfile needs BuildKit: the prebuilt
# binary is chosen by `FROM ${BINARY_STAGE}`, and only BuildKit skips the Go build stage that is
# then unused (the classic builder runs every stage, and would need a Go image). Docker clients
# before 23 have BuildKit built in (DOCKER_BUILDKIT=1); 23 and later hand `docker build` to the
# buildx plugin and refuse DOCKER_BUILDKIT=1 without it. A machine can have both: Debian's
# docker.io puts a 20.10 client in /usr/bin, and a newer client without buildx may come first on PATH.
pick_docker() {
  local candidate version
  if [[ -n "${CLAWKER_DOCKER:-}" ]]; then
    DOCKER="$CLAWKER_DOCKER"
    return 0
  fi
  while IFS= read -r candidate; do
    [[ -x "$candidate" ]] || continue
    if "$candidate" buildx version >/dev/null 2>&1; then
      DOCKER="$candidate"
      return 0
    fi
    version="$("$candidate" --version 2>/dev/null)" || continue # "Docker version 20.10.24+dfsg1, build …"
    if [[ "$version" =~ ^Docker\ version\ ([0-9]+)\. ]] && ((BASH_REMATCH[1] < 23)); then
      DOCKER="$candidate"
      return 0
    fi
  done < <(type -ap docker; printf '%s\n' /usr/bin/docker)
  return 1
}

# The hash of an image's inputs: the lines on stdin, the build arguments and the base image's id.
inputs_hash() {
  {
    cat
    printf 'build-arg %s\n' "${BUILD_ARGS[@]}"
    if [[ -n "$BASE_IMAGE" ]]; then
      printf 'base-id %s\n' "$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || echo absent)"
    fi
  } | sha256sum | cut -c1-64
}

# build_image TAG CONTEXT HASH WHAT: docker build with BuildKit, unless TAG already has HASH.
build_image() {
  local tag="$1" context="$2" hash="$3" what="$4" current
  current="$("$DOCKER" image inspect --format "{{index .Config.Labels \"$INPUTS_LABEL\"}}" "$tag" 2>/dev/null || true)"
  if ((!FORCE)) && [[ "$current" == "$hash" ]]; then
    say "$tag is up to date (inputs ${hash:0:12}); --force rebuilds it"
    return 0
  fi
  local hint="Read the docker build output above."
  if [[ -n "$BASE_IMAGE" ]] && ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE is not present locally: docker build will try to pull it"
    hint+=" Without a registry, import a base image (bash images/base/import-debian.sh) and set CLAWKER_BASE_IMAGE=clawker-testbed/debian:bookworm."
  fi
  run_step "docker build $tag ($what)" "$hint" \
    env DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain \
    "${BUILD_ARGS[@]/#/--build-arg=}" --label "$INPUTS_LABEL=$hash" -t "$tag" "$context"
  say "$tag built: $("$DOCKER" image inspect --format '{{.Id}} {{.Size}}' "$tag" | awk '{ printf "%s, %d MB", substr($1, 8, 12), $2 / 1e6 }')"
}

base_args() {
  BUILD_ARGS=()
  if [[ -n "$BASE_IMAGE" ]]; then BUILD_ARGS+=("BASE_IMAGE=$BASE_IMAGE"); fi
}

build_coredns() {
  command -v go >/dev/null || die "Go not found: CoreDNS is compiled on this machine (install Go, the version in images/coredns/go.mod)"
  # -buildvcs=false: the binary must not change with every commit of the repository (it would
  # defeat the inputs hash); -trimpath keeps it independent of the checkout's path.
  run_step "go build images/coredns/dist/coredns-clawker (minutes when Go's build cache is cold)" \
    "Check that 'go build ./...' works in images/coredns (Go version in go.mod, Go module proxy or a filled module cache)." \
    env CGO_ENABLED=0 GOFLAGS=-buildvcs=false go -C images/coredns build -trimpath -ldflags='-s -w' -o dist/coredns-clawker ./cmd/coredns-clawker

  base_args
  # BINARY_STAGE=prebuilt takes dist/coredns-clawker. GO_IMAGE=scratch: the Go stage is not built
  # then, but BuildKit still parses every FROM, and the Dockerfile's GO_IMAGE default is not a valid
  # reference until its digest is pinned.
  BUILD_ARGS+=("BINARY_STAGE=prebuilt" "GO_IMAGE=scratch")
  local hash
  hash="$(cd images/coredns && sha256sum Dockerfile dist/coredns-clawker | sed 's/^/file /' | inputs_hash)"
  build_image "$COREDNS_TAG" images/coredns "$hash" "context images/coredns"
}

build_controlplane() {
  command -v node >/dev/null || die "node not found: the control-plane bundle is built with esbuild (install Node 20)"
  [[ -d node_modules/esbuild ]] || die "node_modules/esbuild missing: run npm ci"
  command -v go >/dev/null || die "Go not found: bpfman is compiled on this machine (install Go, the version in images/controlplane/bpfman/go.mod)"
  run_step "esbuild dist/controlplane.js (node scripts/build.mjs)" \
    "Fix the build errors shown (npm run build shows the same)." \
    node scripts/build.mjs
  [[ -s dist/controlplane.js ]] || die "node scripts/build.mjs did not write dist/controlplane.js (is the controlplane entry in scripts/build.mjs?)"
  run_step "make -C bpf bpfman" \
    "make -C bpf bpfman needs clang, libbpf-dev, linux-libc-dev and Go (bpf/Makefile)." \
    env CGO_ENABLED=0 make -C bpf bpfman
  # The image's libc need not be the build machine's: bpfman must be static (it is built with
  # CGO_ENABLED=0; a binary left by an earlier cgo build would not be rebuilt by make).
  if command -v readelf >/dev/null; then
    local headers
    headers="$(readelf -l bpf/build/bpfman 2>/dev/null || true)"
    if [[ "$headers" == *"program interpreter"* ]]; then
      die "bpf/build/bpfman is dynamically linked: remove it and run again (it is rebuilt with CGO_ENABLED=0)"
    fi
  fi

  local context="$WORK/controlplane"
  mkdir -p "$context"
  cp images/controlplane/Dockerfile "$context/Dockerfile"
  cp dist/controlplane.js "$context/controlplane.js"
  cp bpf/build/bpfman "$context/bpfman"
  base_args
  local hash
  hash="$(cd "$context" && sha256sum Dockerfile controlplane.js bpfman | sed 's/^/file /' | inputs_hash)"
  build_image "$CONTROLPLANE_TAG" "$context" "$hash" "images/controlplane/Dockerfile, controlplane.js, bpfman"
}

START=$SECONDS
pick_docker || die "no docker client with BuildKit found on PATH (nor /usr/bin/docker): install Debian's docker.io (its 20.10 client has BuildKit built in) or the buildx plugin, or set CLAWKER_DOCKER"
"$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "the Docker daemon does not answer ($DOCKER version): start dockerd (the test bed: bash test/testbed/provision.sh)"
say "building with $DOCKER (BuildKit), base image: ${BASE_IMAGE:-as in each Dockerfile}"

# Images are global to the engine: one build at a time (e2e suites run in parallel processes;
# whoever waits finds the images up to date).
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/clawker-build-images.lock"
  if ! flock -n 9; then
    say "waiting for another build-images run to finish"
    flock 9
  fi
fi

if [[ -z "$ONLY" || "$ONLY" == coredns ]]; then build_coredns; fi
if [[ -z "$ONLY" || "$ONLY" == controlplane ]]; then build_controlplane; fi
say "done in $((SECONDS - START)) s"
