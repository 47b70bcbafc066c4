#!/usr/bin/env bash
# Install code-server (a real VS Code served to a browser) for the editor smoke test, offline.
# Idempotent: a complete install of the pinned version is verified and kept.
#
#   bash test/testbed/code-server.sh        (as root; also run by test/testbed/provision.sh)
#
# Facts this follows: /work/shared/design/TESTBED.md ("A real VS Code, offline: code-server").
#   - Debian packages: libkrb5-dev (kerberos native module), ripgrep (stands in for the ripgrep binary
#     that @vscode/ripgrep would download from GitHub), chromium (the browser the test drives), and the
#     native-module toolchain (make, g++, python3).
#   - code-server's own postinstall runs `npm install` in lib/vscode and lib/vscode/extensions,
#     which builds native modules (node-gyp, against this Node's headers) and runs @vscode/ripgrep's
#     postinstall. That one downloads a release asset unless its download cache already holds it:
#     we pre-seed the cache with Debian's rg packed under the expected name.
#   - npm 11 has an install-script policy (`allowScripts`). Today it only warns ("npm warn
#     install-scripts ... not yet covered by allowScripts"); a later npm blocks. The install directory
#     gets its own package.json whose allowScripts approves code-server and argon2, and the one npm
#     command below allows the nested installs inside code-server's vendored tree (whose package.json
#     we do not own) with npm_config_dangerously_allow_all_scripts. If the install scripts did not run
#     anyway, `npm rebuild code-server argon2` runs them. Either way the result is verified, never assumed.
#
# Result: $CLAWKER_TESTBED_DIR/code-server/node_modules/.bin/code-server (the last line printed is
# "[code-server] ready: <path>").
#
# Environment:
#   CLAWKER_TESTBED_DIR   state and caches outside the repository (default /var/cache/clawker-testbed)
set -euo pipefail

CODE_SERVER_VERSION=4.100.3
# Pinned by code-server 4.100.3's lib/vscode/npm-shrinkwrap.json, and the ripgrep release its
# lib/postinstall.js asks for. Checked after the install (bin/rg must exist).
VSCODE_RIPGREP_VERSION=1.15.11
RIPGREP_ASSET_VERSION=v13.0.0-10

STATE_DIR="${CLAWKER_TESTBED_DIR:-/var/cache/clawker-testbed}"
INSTALL_DIR="$STATE_DIR/code-server"
CS_PKG="$INSTALL_DIR/node_modules/code-server"
CS_BIN="$INSTALL_DIR/node_modules/.bin/code-server"
MARKER="$INSTALL_DIR/.installed-$CODE_SERVER_VERSION"
ARGON2_NODE="$INSTALL_DIR/node_modules/argon2/lib/binding/napi-v3/argon2.node"
LOG="$INSTALL_DIR/install.log"

PACKAGES=(libkrb5-dev ripgrep chromium build-essential python3 ca-certificates)

step() { printf '[code-server] %s\n' "$*"; }
die() { printf '[code-server] FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
installed_version() {
  [[ -f "$CS_PKG/package.json" ]] || return 0
  node -p "require(process.argv[1]).version" "$CS_PKG/package.json" 2>/dev/null || true
}

# Prints what is missing from a complete install, nothing when it is complete.
install_problems() {
  local v
  v="$(installed_version)"
  [[ "$v" == "$CODE_SERVER_VERSION" ]] || { echo "code-server package (found '${v:-none}', want $CODE_SERVER_VERSION)"; return; }
  [[ -x "$CS_BIN" ]] || echo "$CS_BIN"
  [[ -f "$ARGON2_NODE" ]] || echo "argon2 native module"
  [[ -d "$CS_PKG/lib/vscode/node_modules" ]] || echo "lib/vscode/node_modules (code-server's postinstall did not run)"
  [[ -x "$CS_PKG/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ]] || echo "lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
  [[ -f "$CS_PKG/lib/vscode/node_modules/node-pty/build/Release/pty.node" ]] || echo "node-pty native module"
  [[ -e "$CS_PKG/lib/vscode/node_modules.asar" ]] || echo "lib/vscode/node_modules.asar link"
  [[ -d "$CS_PKG/lib/vscode/extensions/node_modules" ]] || echo "lib/vscode/extensions/node_modules"
  return 0
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Start code-server on a free port with throwaway dirs, wait for /healthz, stop it.
smoke_start() {
  local port tmp pid i ok=0
  port="$(free_port)"
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/ws"
  XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
    "$CS_BIN" --config "$tmp/config.yaml" --auth none --bind-addr "127.0.0.1:$port" --user-data-dir "$tmp/u" --extensions-dir "$tmp/e" \
    --disable-telemetry --disable-update-check --disable-workspace-trust "$tmp/ws" \
    </dev/null >"$tmp/log" 2>&1 &
  pid=$!
  for ((i = 0; i < 120; i++)); do
    if node -e 'require("http").get(process.argv[1],r=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))' \
      "http://127.0.0.1:$port/healthz" 2>/dev/null; then ok=1; break; fi
    [[ -d "/proc/$pid" ]] || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ((ok)); then
    rm -rf "$tmp"
    step "start check: served /healthz on 127.0.0.1:$port"
  else
    tail -n 30 "$tmp/log" >&2 || true
    die "code-server did not answer on 127.0.0.1:$port/healthz within 60 s (log: $tmp/log)"
  fi
}

[[ "$(id -u)" == 0 ]] || die "must run as root (apt-get, npm postinstall as root)"
command -v node >/dev/null || die "node is not installed (code-server $CODE_SERVER_VERSION needs Node 20)"
command -v npm >/dev/null || die "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$node_major" == 20 ]] || die "code-server $CODE_SERVER_VERSION needs Node 20, this is Node $(node -v)"

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_packages "${PACKAGES[@]}"
[[ -x /usr/bin/rg ]] || die "ripgrep: /usr/bin/rg missing after installing the ripgrep package"
[[ -x /usr/bin/chromium ]] || die "chromium: /usr/bin/chromium missing after installing the chromium package"
for cmd in make g++ python3; do command -v "$cmd" >/dev/null || die "'$cmd' missing (needed to build code-server's native modules)"; done

# ---------------------------------------------------------------------------------------------
# 2. code-server from npm
# ---------------------------------------------------------------------------------------------
problems="$(install_problems)"
if [[ -z "$problems" && -f "$MARKER" ]]; then
  step "code-server $CODE_SERVER_VERSION already installed in $INSTALL_DIR"
else
  if [[ -n "$(installed_version)" ]]; then
    step "existing install in $INSTALL_DIR is incomplete or another version ($(tr '\n' ';' <<<"$problems")): reinstalling"
  fi
  rm -rf "$INSTALL_DIR"
  mkdir -p "$INSTALL_DIR/tmp"

  # npm 11 install-script policy for the top-level packages (see the header).
  cat >"$INSTALL_DIR/package.json" <<EOF
{
  "name": "clawker-testbed-code-server",
  "private": true,
  "description": "code-server for the Clawker editor smoke test (test/testbed/code-server.sh)",
  "allowScripts": {
    "code-server@$CODE_SERVER_VERSION": true,
    "argon2": true
  }
}
EOF

  # Pre-seed @vscode/ripgrep's download cache ($TMPDIR/vscode-ripgrep-cache-<pkg version>/<asset>)
  # with Debian's rg, as the tarball its postinstall would download.
  case "$(uname -m)" in
    x86_64) rg_target=x86_64-unknown-linux-musl ;;
    aarch64 | arm64) rg_target=aarch64-unknown-linux-musl ;;
    *) die "ripgrep: no pre-seed mapping for architecture $(uname -m)" ;;
  esac
  rg_cache="$INSTALL_DIR/tmp/vscode-ripgrep-cache-$VSCODE_RIPGREP_VERSION"
  mkdir -p "$rg_cache" "$INSTALL_DIR/tmp/rg"
  cp /usr/bin/rg "$INSTALL_DIR/tmp/rg/rg"
  tar -C "$INSTALL_DIR/tmp/rg" -czf "$rg_cache/ripgrep-$RIPGREP_ASSET_VERSION-$rg_target.tar.gz" rg
  step "ripgrep: pre-seeded $rg_cache with Debian's $(/usr/bin/rg --version | head -n1)"

  # node-gyp needs this Node's headers; it would download them otherwise.
  node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  if [[ -z "${npm_config_nodedir:-}" && -f "$node_prefix/include/node/node.h" ]]; then
    export npm_config_nodedir="$node_prefix"
  fi

  step "installing code-server@$CODE_SERVER_VERSION from npm into $INSTALL_DIR (about 1 minute; log: $LOG)"
  start=$SECONDS
  # unsafe_perm: code-server's postinstall refuses to run as root without it. yes: node-pty's
  # postinstall runs `npx node-gyp`, which otherwise stops at npx's prompt (this machine's npmrc says
  # yes=false). foreground_scripts: the scripts' output goes to the log.
  npm_env=(
    TMPDIR="$INSTALL_DIR/tmp" npm_config_unsafe_perm=true npm_config_yes=true
    npm_config_dangerously_allow_all_scripts=true npm_config_foreground_scripts=true
  )
  if ! (cd "$INSTALL_DIR" && env "${npm_env[@]}" \
    npm install --no-audit --no-fund code-server@"$CODE_SERVER_VERSION") >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    die "npm install code-server@$CODE_SERVER_VERSION failed (full log: $LOG)"
  fi
  step "npm install finished in $((SECONDS - start)) s"
  grep -E '^npm warn install-scripts' "$LOG" | sed 's/^/[code-server]   /' || true

  # The install scripts must have run. If npm's script policy skipped them, run them ourselves.
  if [[ ! -d "$CS_PKG/lib/vscode/node_modules" || ! -f "$ARGON2_NODE" ]]; then
    step "install scripts of code-server/argon2 did not run (npm script policy?): npm rebuild code-server argon2"
    if ! (cd "$INSTALL_DIR" && env "${npm_env[@]}" npm_config_ignore_scripts=false \
      npm rebuild code-server argon2) >>"$LOG" 2>&1; then
      tail -n 40 "$LOG" >&2
      die "npm rebuild code-server argon2 failed (full log: $LOG)"
    fi
  fi

  problems="$(install_problems)"
  if [[ -n "$problems" ]]; then
    tail -n 40 "$LOG" >&2
    die "code-server install incomplete, missing: $(tr '\n' ';' <<<"$problems") (log: $LOG)"
  fi
  rm -rf "$INSTALL_DIR/tmp"
  touch "$MARKER"
  step "code-server $CODE_SERVER_VERSION installed"
fi

# --config and XDG_*: code-server writes a default config file (with a password) where it finds none,
# and its logs under $XDG_DATA_HOME/code-server; keep both out of the home directory.
cfg_tmp="$(mktemp -d)"
version_line="$(XDG_DATA_HOME="$cfg_tmp" XDG_CONFIG_HOME="$cfg_tmp" "$CS_BIN" --config "$cfg_tmp/config.yaml" --version 2>/dev/null | grep -E '^[0-9]+\.[0-9]+\.[0-9]+ ' | head -n1)" \
  || die "'$CS_BIN --version' failed"
rm -rf "$cfg_tmp"
[[ "$version_line" == "$CODE_SERVER_VERSION "* ]] || die "'$CS_BIN --version' says '$version_line', want $CODE_SERVER_VERSION"
step "version: $version_line"
smoke_start
step "ready: $CS_BIN"
