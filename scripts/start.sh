#!/usr/bin/env bash
# `npm start`: the packaged extension in a real VS Code (code-server) on a folder, with a private
# profile under .testbed/. Usage: npm start [-- FOLDER]   (default: this repository)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FOLDER=$(realpath "${1:-$ROOT}")
PORT=${CLAWKER_PORT:-8080}
STATE=$ROOT/.testbed/start

step() { printf '==> %s\n' "$*"; }
fail() { printf 'clawker start: %s\n' "$*" >&2; exit 1; }

[ -d "$FOLDER" ] || fail "no such folder: $FOLDER"
step "code-server (installed once)"
CODE_SERVER=$(bash test/testbed/code-server.sh | sed -n 's/^\[code-server\] ready: //p' | tail -n 1)
[ -x "$CODE_SERVER" ] || fail "code-server is not installed; run: bash test/testbed/code-server.sh"
# The firewall stack's own images (CoreDNS with dnsbpf, the control plane with the eBPF datapath) and
# the agent image are built on the engine by the extension itself, from the files of the package,
# the first time the firewall starts (and again only when those files change). Their bases are
# pinned upstream images; a machine without a registry (this test bed) builds on its imported Debian.
mkdir -p "$STATE"
if docker info >/dev/null 2>&1; then
  if [ -z "${CLAWKER_BASE_IMAGE:-}" ] && docker image inspect clawker-testbed/debian:bookworm >/dev/null 2>&1 \
    && ! docker image inspect node:22-bookworm-slim >/dev/null 2>&1; then
    export CLAWKER_BASE_IMAGE=clawker-testbed/debian:bookworm
    step "images will be built on the local base $CLAWKER_BASE_IMAGE (no registry here)"
  fi
else
  printf 'clawker start: warning: Docker is not reachable: the editor starts, but agents and the firewall cannot run until it is\n' >&2
fi
step "packaging the extension"
npm run --silent package >/dev/null
step "installing dist/clawker.vsix into $STATE"
mkdir -p "$STATE/user/User" "$STATE/extensions"
# A private profile that asks nothing of the network (no gallery, updates or telemetry); kept if edited.
[ -f "$STATE/user/User/settings.json" ] || cat >"$STATE/user/User/settings.json" <<'JSON'
{
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "workbench.enableExperiments": false
}
JSON
"$CODE_SERVER" --user-data-dir "$STATE/user" --extensions-dir "$STATE/extensions" --install-extension dist/clawker.vsix --force >/dev/null
step "open http://127.0.0.1:$PORT/?folder=$FOLDER   (Ctrl+C stops it)"
exec "$CODE_SERVER" --auth none --bind-addr "127.0.0.1:$PORT" --user-data-dir "$STATE/user" --extensions-dir "$STATE/extensions" \
  --disable-telemetry --disable-update-check "$FOLDER"
