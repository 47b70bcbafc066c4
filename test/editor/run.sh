#!/usr/bin/env bash
# Editor smoke test: the packaged extension in a real VS Code (code-server), driven by Chromium.
#
#   bash test/editor/run.sh            (npm run test:editor)
#
# 1. checks the test bed (code-server, chromium, tsx, playwright-core), failing with the name of
#    every missing component (install them with: bash test/testbed/code-server.sh, npm ci);
# 2. packages the extension: npm run package -> dist/clawker.vsix;
# 3. installs the .vsix into a fresh extensions dir, asserting that it installed;
# 4. copies test/editor/fixtures/workspace/ to a temp dir and serves it with code-server on a free
#    loopback port;
# 5. runs test/editor/*.test.ts (Playwright + headless Chromium) against it.
# code-server is always stopped at the end. Outputs (screenshots, code-server.log, browser console)
# go to test-results/editor/.
#
# Environment:
#   CLAWKER_TESTBED_DIR      where test/testbed/code-server.sh installed code-server
#                            (default /var/cache/clawker-testbed)
#   CODE_SERVER              code-server executable (default: the test bed's)
#   CHROMIUM                 Chromium executable (default /usr/bin/chromium)
#   CLAWKER_EDITOR_VSIX      use this .vsix instead of packaging dist/clawker.vsix (for debugging the
#                            driver against another extension); CLAWKER_EDITOR_EXTENSION_ID then
#                            names its id (default clawker.clawker-vscode)
#   CLAWKER_EDITOR_TIMEOUT   seconds the test waits for a diagnostic (default 60)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"

STATE_DIR="${CLAWKER_TESTBED_DIR:-/var/cache/clawker-testbed}"
CODE_SERVER="${CODE_SERVER:-$STATE_DIR/code-server/node_modules/.bin/code-server}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
RESULTS="$ROOT/test-results/editor"
FIXTURE="$ROOT/test/editor/fixtures/workspace"
EXTENSION_ID="${CLAWKER_EDITOR_EXTENSION_ID:-clawker.clawker-vscode}"

say() { printf '[editor] %s\n' "$*"; }
die() { printf '[editor] FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. test bed
# ---------------------------------------------------------------------------------------------
missing=()
[[ -x "$CODE_SERVER" ]] || missing+=("code-server ($CODE_SERVER not found; install: bash test/testbed/code-server.sh)")
[[ -x "$CHROMIUM" ]] || missing+=("chromium ($CHROMIUM not found; install: apt-get install chromium, or bash test/testbed/code-server.sh)")
command -v node >/dev/null || missing+=("node")
[[ -x node_modules/.bin/tsx ]] || missing+=("tsx (node_modules/.bin/tsx; run npm ci)")
[[ -f node_modules/playwright-core/package.json ]] || missing+=("playwright-core (node_modules/playwright-core; run npm ci)")
[[ -f "$FIXTURE/.clawker.yaml" ]] || missing+=("fixture $FIXTURE/.clawker.yaml")
if ((${#missing[@]})); then
  say "FAILED: editor test bed incomplete, missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
WORK="$(mktemp -d /tmp/clawker-editor.XXXXXX)"
CS_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$CS_PID" ]] && kill -0 "$CS_PID" 2>/dev/null; then
    # code-server was started in its own process group (setsid): stop the group, i.e. it and the
    # extension host, language server and terminals it spawned.
    kill -TERM -- "-$CS_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$CS_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$CS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# code-server writes a default config (with a password) and its logs under the XDG dirs: keep them
# in the temp dir, not in the home directory.
export XDG_CONFIG_HOME="$WORK/xdg-config" XDG_DATA_HOME="$WORK/xdg-data"
cs() { "$CODE_SERVER" --config "$WORK/config.yaml" "$@"; }

say "code-server: $(cs --version 2>/dev/null | grep -E '^[0-9]+\.' | head -n1) ($CODE_SERVER)"
say "chromium: $("$CHROMIUM" --version 2>/dev/null || echo '?') ($CHROMIUM)"

# ---------------------------------------------------------------------------------------------
# 2. package
# ---------------------------------------------------------------------------------------------
if [[ -n "${CLAWKER_EDITOR_VSIX:-}" ]]; then
  VSIX="$(readlink -f "$CLAWKER_EDITOR_VSIX")"
  say "using $VSIX (CLAWKER_EDITOR_VSIX), not packaging"
else
  VSIX="$ROOT/dist/clawker.vsix"
  say "packaging: npm run package"
  start=$SECONDS
  rm -f "$VSIX"
  npm run --silent package || die "npm run package failed"
  say "packaged in $((SECONDS - start)) s"
fi
[[ -s "$VSIX" ]] || die "no extension package at $VSIX"

# ---------------------------------------------------------------------------------------------
# 3. install the .vsix
# ---------------------------------------------------------------------------------------------
EXT_DIR="$WORK/extensions"
USER_DIR="$WORK/user-data"
mkdir -p "$EXT_DIR" "$USER_DIR/User"
# No network: no gallery queries, update checks, experiments or recommendations; no welcome page.
cat >"$USER_DIR/User/settings.json" <<'EOF'
{
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none"
}
EOF
say "installing $(basename "$VSIX") into $EXT_DIR"
if ! cs --user-data-dir "$USER_DIR" --extensions-dir "$EXT_DIR" --install-extension "$VSIX" \
  >"$RESULTS/install-extension.log" 2>&1; then
  cat "$RESULTS/install-extension.log" >&2
  die "code-server --install-extension $VSIX exited non-zero"
fi
if ! grep -qi 'successfully installed' "$RESULTS/install-extension.log"; then
  cat "$RESULTS/install-extension.log" >&2
  die "code-server --install-extension did not report success for $VSIX"
fi
listed="$(cs --user-data-dir "$USER_DIR" --extensions-dir "$EXT_DIR" --list-extensions --show-versions 2>/dev/null)"
grep -qi "^$EXTENSION_ID@" <<<"$listed" \
  || die "extension $EXTENSION_ID not listed after install (listed: ${listed:-nothing})"
say "installed: $(grep -i "^$EXTENSION_ID@" <<<"$listed")"

# ---------------------------------------------------------------------------------------------
# 4. workspace + code-server
# ---------------------------------------------------------------------------------------------
WORKSPACE="$WORK/workspace"
mkdir -p "$WORKSPACE"
cp -a "$FIXTURE/." "$WORKSPACE/"
PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
URL="http://127.0.0.1:$PORT"
say "starting code-server on $URL for $WORKSPACE (log: test-results/editor/code-server.log)"
setsid "$CODE_SERVER" --config "$WORK/config.yaml" --auth none --bind-addr "127.0.0.1:$PORT" \
  --user-data-dir "$USER_DIR" --extensions-dir "$EXT_DIR" \
  --disable-telemetry --disable-update-check --disable-workspace-trust \
  "$WORKSPACE" </dev/null >"$RESULTS/code-server.log" 2>&1 &
CS_PID=$!
start=$SECONDS
up=0
for _ in $(seq 1 120); do
  if node -e 'require("http").get(process.argv[1],r=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))' \
    "$URL/healthz" 2>/dev/null; then up=1; break; fi
  kill -0 "$CS_PID" 2>/dev/null || break
  sleep 0.5
done
if ((!up)); then
  tail -n 30 "$RESULTS/code-server.log" >&2 || true
  kill -0 "$CS_PID" 2>/dev/null || die "code-server exited while starting (log: test-results/editor/code-server.log)"
  die "code-server did not answer on $URL/healthz within 60 s (log: test-results/editor/code-server.log)"
fi
say "code-server answering after $((SECONDS - start)) s (pid $CS_PID)"

# ---------------------------------------------------------------------------------------------
# 5. the browser test
# ---------------------------------------------------------------------------------------------
say "running test/editor/*.test.ts"
set +e
CLAWKER_EDITOR_URL="$URL" CLAWKER_EDITOR_WORKSPACE="$WORKSPACE" CLAWKER_EDITOR_RESULTS="$RESULTS" \
  CLAWKER_EDITOR_CHROMIUM="$CHROMIUM" \
  node --import tsx --test test/editor/*.test.ts
rc=$?
set -e
if ((rc == 0)); then
  say "passed (screenshots: test-results/editor/)"
else
  say "FAILED (exit $rc); screenshots and logs: test-results/editor/" >&2
fi
exit "$rc"
