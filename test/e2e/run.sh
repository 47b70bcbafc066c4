#!/usr/bin/env bash
# End-to-end suite: Docker + cgroup v2 + eBPF on the test bed.
#
#   bash test/e2e/run.sh            (npm run test:e2e)
#
# 1. checks that the test bed is live (it does not install anything: bash test/testbed/provision.sh
#    does), failing with the name of every missing component;
# 2. builds the eBPF programs (make -C bpf);
# 3. runs test/e2e/*.test.ts with Node's test runner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BASE_IMAGE=clawker-testbed/debian:bookworm
say() { printf '[e2e] %s\n' "$*"; }

missing=()
if ! command -v docker >/dev/null; then
  missing+=("docker daemon (docker CLI not installed)")
elif ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  missing+=("docker daemon (not answering on /var/run/docker.sock)")
elif ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  missing+=("base image $BASE_IMAGE")
fi
awk '$3 == "cgroup2" && ($2 == "/sys/fs/cgroup/unified" || $2 == "/sys/fs/cgroup") { f = 1 } END { exit !f }' /proc/mounts \
  || missing+=("cgroup v2 mount (/sys/fs/cgroup/unified)")
awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts || missing+=("bpffs (/sys/fs/bpf)")
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v bpftool >/dev/null || missing+=("bpftool")
command -v clang >/dev/null || missing+=("clang")
command -v make >/dev/null || missing+=("make")
command -v node >/dev/null || missing+=("node")
[[ -x node_modules/.bin/tsx ]] || missing+=("tsx (run npm ci)")

if ((${#missing[@]})); then
  say "FAILED: test bed incomplete, missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  say "install and start it with: bash test/testbed/provision.sh (as root)" >&2
  exit 1
fi
say "test bed live: docker $(docker version --format '{{.Server.Version}}'), cgroup v2, bpffs, bpftool, clang"

say "building eBPF programs: make -C bpf"
make -C bpf || { say "FAILED: make -C bpf" >&2; exit 1; }

# The end-to-end suites, then the attacker's view (test/adversarial), then the faults (test/faults,
# last: they kill and restart components, the Docker daemon included).
shopt -s nullglob
FILES=(test/e2e/*.test.ts test/adversarial/*.test.ts test/faults/*.test.ts)
say "running ${#FILES[@]} test files: test/e2e, test/adversarial, test/faults"
exec node --import tsx --test --test-concurrency=1 "${FILES[@]}"
