#!/usr/bin/env bash
# Editor tests: the packaged extension in a real VS Code (code-server), driven by Chromium, on the
# real firewall stack.
#
#   bash test/editor/run.sh            (npm run test:editor)
#
# 1. checks the test bed (code-server, chromium, tsx, playwright-core, Docker), failing with the name
#    of every missing component (install them with: bash test/testbed/provision.sh, npm ci);
# 2. packages the extension: npm run package -> dist/clawker.vsix;
# 3. installs the .vsix into a fresh extensions dir, asserting that it installed;
# 4. copies the fixture workspaces (test/editor/fixtures/workspace/ for the smoke test,
#    test/editor/fixtures/stack-workspace/ for the flow test) to a temp dir;
# 5. brings up the firewall stack and the agent `dev` of the stack workspace (test/editor/stack.ts,
#    which keeps running, holding the stack, until the end);
# 6. serves the workspaces with code-server on a free loopback port, with the stack's CLAWKER_*
#    environment (so the extension host and the CLI it runs use that stack);
# 7. runs test/editor/*.test.ts (Playwright + headless Chromium) against it, one file at a time, in
#    the order of their names: flow (the blocked-domain flow), learn (learn mode), smoke, verbs (the
#    agent verbs; it stops and restarts dev, so it comes last);
# 8. a second code-server with Docker unreachable (test/editor/cold/);
# 9. the journey user (UID 1000, docker group, no sudo): installs the .vsix itself, its CLI brings up
#    a stack and the agent (stack.ts --as-user), code-server runs as that user with only that
#    user's environment, and flow.test.ts runs again against it (every process of that code-server
#    must be the user's). CLAWKER_EDITOR_TESTS="user" runs only this phase's test.
# code-server and the stack are always stopped at the end; a stack that cannot be brought up or torn
# down fails the run. Outputs (screenshots, code-server.log, stack.log, browser console) go to
# test-results/editor/. Each phase says how long it took.
#
# Environment:
#   CLAWKER_TESTBED_DIR      where test/testbed/code-server.sh installed code-server
#                            (default /var/cache/clawker-testbed)
#   CODE_SERVER              code-server executable (default: the test bed's)
#   CHROMIUM                 Chromium executable (default /usr/bin/chromium)
#   CLAWKER_EDITOR_VSIX      use this .vsix instead of packaging dist/clawker.vsix (for debugging the
#                            driver against another extension); CLAWKER_EDITOR_EXTENSION_ID then
#                            names its id (default clawker.clawker-vscode)
#   CLAWKER_EDITOR_TIMEOUT   seconds the smoke test waits for a diagnostic (default 60)
#   CLAWKER_EDITOR_STACK_TIMEOUT  seconds the stack may take to come up (default 1800: a cold
#                            machine compiles CoreDNS and builds the agent image)
#   CLAWKER_EDITOR_TESTS     space-separated names of the test files to run (e.g. "learn verbs" runs
#                            test/editor/learn.test.ts and verbs.test.ts); default: all of them
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"

STATE_DIR="${CLAWKER_TESTBED_DIR:-/var/cache/clawker-testbed}"
CODE_SERVER="${CODE_SERVER:-$STATE_DIR/code-server/node_modules/.bin/code-server}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
RESULTS="$ROOT/test-results/editor"
FIXTURE="$ROOT/test/editor/fixtures/workspace"
STACK_FIXTURE="$ROOT/test/editor/fixtures/stack-workspace"
STACK_TIMEOUT="${CLAWKER_EDITOR_STACK_TIMEOUT:-1800}"
EXTENSION_ID="${CLAWKER_EDITOR_EXTENSION_ID:-clawker.clawker-vscode}"

say() { printf '[editor] %s\n' "$*"; }
die() { printf '[editor] FAILED: %s\n' "$*" >&2; exit 1; }
T0=$SECONDS
PHASES=()
phase_start() { PHASE_NAME="$1"; PHASE_T=$SECONDS; say "--- $1"; }
phase_end() { PHASES+=("$PHASE_NAME: $((SECONDS - PHASE_T)) s"); say "$PHASE_NAME took $((SECONDS - PHASE_T)) s"; }

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
[[ -f "$STACK_FIXTURE/.clawker.yaml" ]] || missing+=("fixture $STACK_FIXTURE/.clawker.yaml")
if ! command -v docker >/dev/null; then
  missing+=("docker (docker CLI not installed; bash test/testbed/provision.sh)")
elif ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  missing+=("docker daemon (not answering on /var/run/docker.sock; bash test/testbed/provision.sh)")
fi
if ((${#missing[@]})); then
  say "FAILED: editor test bed incomplete, missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
WORK="$(mktemp -d /tmp/clawker-editor.XXXXXX)"
# The stack's sweep removes the temp dirs of runs whose process is gone (killed runs).
echo "$$" >"$WORK/run.pid"
CS_PID=""
STACK_PID=""
USER_STACK_PID=""
UWORK=""
stop_code_server() {
  if [[ -n "$CS_PID" ]] && kill -0 "$CS_PID" 2>/dev/null; then
    # code-server was started in its own process group (setsid): stop the group, i.e. it and the
    # extension host, language server and terminals it spawned.
    kill -TERM -- "-$CS_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$CS_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$CS_PID" 2>/dev/null || true
  fi
  CS_PID=""
}
# Stops the stack (stack.ts tears it down on SIGTERM); non-zero if the teardown left something.
stop_stack() {
  [[ -n "$STACK_PID" ]] || return 0
  local code=0 t=$SECONDS log="${1:-stack.log}"
  if kill -0 "$STACK_PID" 2>/dev/null; then
    say "tearing the stack down"
    kill -TERM "$STACK_PID" 2>/dev/null || true
  fi
  wait "$STACK_PID" || code=$?
  STACK_PID=""
  grep -E '^\[stack\] (teardown|stopping)' "$RESULTS/$log" || true
  if ((code != 0)); then
    sed -n '/teardown left things behind/,$p' "$RESULTS/$log" >&2
    say "FAILED: the stack process exited $code (log: test-results/editor/$log)" >&2
  fi
  PHASES+=("stack teardown: $((SECONDS - t)) s")
  return "$code"
}
cleanup() {
  local rc=$?
  stop_code_server
  stop_stack || { ((rc != 0)) || rc=1; }
  if [[ -n "$USER_STACK_PID" ]]; then
    STACK_PID="$USER_STACK_PID" USER_STACK_PID=""
    stop_stack user-stack.log || { ((rc != 0)) || rc=1; }
  fi
  [[ -z "$UWORK" ]] || rm -rf "$UWORK"
  rm -rf "$WORK"
  ((${#PHASES[@]} == 0)) || say "phases: $(printf '%s, ' "${PHASES[@]}")total $((SECONDS - T0)) s"
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
phase_start "package"
if [[ -n "${CLAWKER_EDITOR_VSIX:-}" ]]; then
  VSIX="$(readlink -f "$CLAWKER_EDITOR_VSIX")"
  say "using $VSIX (CLAWKER_EDITOR_VSIX), not packaging"
else
  VSIX="$ROOT/dist/clawker.vsix"
  say "packaging: npm run package"
  rm -f "$VSIX"
  npm run --silent package || die "npm run package failed"
fi
[[ -s "$VSIX" ]] || die "no extension package at $VSIX"
phase_end

# ---------------------------------------------------------------------------------------------
# 3. install the .vsix
# ---------------------------------------------------------------------------------------------
phase_start "install the extension"
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
phase_end

# ---------------------------------------------------------------------------------------------
# 4. workspaces
# ---------------------------------------------------------------------------------------------
WORKSPACE="$WORK/workspace"
STACK_WORKSPACE="$WORK/stack-workspace"
mkdir -p "$WORKSPACE" "$STACK_WORKSPACE"
cp -a "$FIXTURE/." "$WORKSPACE/"
cp -a "$STACK_FIXTURE/." "$STACK_WORKSPACE/"

# ---------------------------------------------------------------------------------------------
# 5. the firewall stack and the agent (stack.ts keeps running, holding them, until stop_stack)
# ---------------------------------------------------------------------------------------------
phase_start "stack up"
STACK_STATE="$WORK/stack"
mkdir -p "$STACK_STATE"
say "bringing up the firewall stack and agent dev (log: test-results/editor/stack.log)"
node --import tsx test/editor/stack.ts serve "$STACK_STATE" "$STACK_WORKSPACE" --parent "$$" \
  </dev/null >"$RESULTS/stack.log" 2>&1 &
STACK_PID=$!
deadline=$((SECONDS + STACK_TIMEOUT))
while [[ ! -e "$STACK_STATE/ready" ]]; do
  if [[ -e "$STACK_STATE/failed" ]] || ! kill -0 "$STACK_PID" 2>/dev/null; then
    grep -v '^\[images\]' "$RESULTS/stack.log" | tail -n 40 >&2
    die "the firewall stack could not be brought up (log: test-results/editor/stack.log)"
  fi
  ((SECONDS < deadline)) || die "the firewall stack was not up within $STACK_TIMEOUT s (log: test-results/editor/stack.log)"
  sleep 1
done
grep -E '^\[stack\] ' "$RESULTS/stack.log" || true
# The stack's CLAWKER_* variables: code-server, hence the extension host and the CLI it runs, use them.
# shellcheck source=/dev/null
source "$STACK_STATE/stack.env"
phase_end

# ---------------------------------------------------------------------------------------------
# 6. code-server
# ---------------------------------------------------------------------------------------------
# Serves WORKSPACE with code-server on a free loopback port (sets CS_PID and URL); LOG names its log.
# Extra environment for the extension host comes from the caller's environment.
serve_code_server() {
  # A 4th argument `with-trust` keeps workspace trust on (the folder opens in Restricted Mode first).
  local workspace="$1" user_dir="$2" log="$3" trust=(--disable-workspace-trust)
  [[ "${4:-}" != with-trust ]] || trust=()
  PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  URL="http://127.0.0.1:$PORT"
  say "starting code-server on $URL for $workspace (log: test-results/editor/$log)"
  # CS_AS (uid:gid) runs it as that user: setpriv execs, so $! stays code-server's pid and group.
  # With CS_AS, the environment is exactly CS_ENV (env -i): nothing of root's reaches the user's editor.
  local as=()
  [[ -z "${CS_AS:-}" ]] || as=(setpriv "--reuid=${CS_AS%%:*}" "--regid=${CS_AS##*:}" --init-groups env -i "${CS_ENV[@]}")
  setsid "${as[@]}" "$CODE_SERVER" --config "${CS_CONFIG:-$WORK/config.yaml}" --auth none --bind-addr "127.0.0.1:$PORT" \
    --user-data-dir "$user_dir" --extensions-dir "${CS_EXT_DIR:-$EXT_DIR}" \
    --disable-telemetry --disable-update-check "${trust[@]}" \
    "$workspace" </dev/null >"$RESULTS/$log" 2>&1 &
  CS_PID=$!
  echo "$CS_PID" >"$WORK/code-server.pid" # a killed run's code-server is stopped by the next run's sweep
  local up=0
  for _ in $(seq 1 120); do
    if node -e 'require("http").get(process.argv[1],r=>process.exit(r.statusCode===200?0:1)).on("error",()=>process.exit(1))' \
      "$URL/healthz" 2>/dev/null; then up=1; break; fi
    kill -0 "$CS_PID" 2>/dev/null || break
    sleep 0.5
  done
  if ((!up)); then
    tail -n 30 "$RESULTS/$log" >&2 || true
    kill -0 "$CS_PID" 2>/dev/null || die "code-server exited while starting (log: test-results/editor/$log)"
    die "code-server did not answer on $URL/healthz within 60 s (log: test-results/editor/$log)"
  fi
  say "code-server answering (pid $CS_PID)"
}

phase_start "code-server start"
serve_code_server "$WORKSPACE" "$USER_DIR" code-server.log
phase_end

# ---------------------------------------------------------------------------------------------
# 7. the browser tests, one file at a time (each opens its own window)
# ---------------------------------------------------------------------------------------------
phase_start "browser tests"
TESTS=()
if [[ -n "${CLAWKER_EDITOR_TESTS:-}" ]]; then
  for name in $CLAWKER_EDITOR_TESTS; do
    [[ "$name" != cold && "$name" != user ]] || continue # phases 8 and 9
    [[ -f "test/editor/$name.test.ts" ]] || die "CLAWKER_EDITOR_TESTS names '$name': no test/editor/$name.test.ts"
    TESTS+=("test/editor/$name.test.ts")
  done
else
  TESTS=(test/editor/*.test.ts)
fi
say "test files: ${TESTS[*]:-none}"
rc=0
set +e
((${#TESTS[@]} == 0)) || CLAWKER_EDITOR_URL="$URL" CLAWKER_EDITOR_WORKSPACE="$WORKSPACE" CLAWKER_EDITOR_RESULTS="$RESULTS" \
  CLAWKER_EDITOR_CHROMIUM="$CHROMIUM" CLAWKER_EDITOR_STACK_INFO="$STACK_STATE/stack.json" \
  node --import tsx --test --test-concurrency=1 "${TESTS[@]}"
rc=$?
set -e
phase_end

# ---------------------------------------------------------------------------------------------
# 8. the editor with nothing set up: an untrusted folder without .clawker.yaml, Docker unreachable
#    (a second code-server, with workspace trust on)
# ---------------------------------------------------------------------------------------------
if [[ -z "${CLAWKER_EDITOR_TESTS:-}" || " $CLAWKER_EDITOR_TESTS " == *" cold "* ]]; then
  phase_start "cold editor"
  stop_code_server
  COLD_WORKSPACE="$WORK/cold-workspace" COLD_USER="$WORK/cold-user"
  mkdir -p "$COLD_WORKSPACE" "$COLD_USER/User" "$WORK/cold-data"
  cp "$USER_DIR/User/settings.json" "$COLD_USER/User/settings.json"
  echo "A project without .clawker.yaml" >"$COLD_WORKSPACE/README.md"
  DOCKER_HOST="unix://$WORK/nonexistent.sock" CLAWKER_DATA_DIR="$WORK/cold-data" \
    serve_code_server "$COLD_WORKSPACE" "$COLD_USER" code-server-cold.log with-trust
  set +e
  CLAWKER_EDITOR_URL="$URL" CLAWKER_EDITOR_WORKSPACE="$COLD_WORKSPACE" CLAWKER_EDITOR_RESULTS="$RESULTS" \
    CLAWKER_EDITOR_CHROMIUM="$CHROMIUM" node --import tsx --test test/editor/cold/*.test.ts
  cold_rc=$?
  set -e
  ((rc != 0)) || rc=$cold_rc
  phase_end
fi
# ---------------------------------------------------------------------------------------------
# 9. the editor as the journey user: the stack and the agent brought up by that user's CLI, the
#    .vsix installed by that user, code-server run as that user (UID 1000, in the docker group, no
#    sudo; provision.sh adds it), and the flow test again: the Agents view, a block, the quick fix
# ---------------------------------------------------------------------------------------------
if [[ -z "${CLAWKER_EDITOR_TESTS:-}" || " $CLAWKER_EDITOR_TESTS " == *" user "* ]]; then
  phase_start "editor as the journey user"
  stop_code_server
  JUSER="$(getent passwd 1000 | cut -d: -f1)"
  [[ -n "$JUSER" ]] || die "no journey user (UID 1000): bash test/testbed/provision.sh adds it"
  id -nG "$JUSER" | tr ' ' '\n' | grep -qx docker || die "the journey user $JUSER is not in the docker group"
  JGID="$(id -g "$JUSER")"
  # Named clawker-editor.* with run.pid, like WORK: a killed run's is swept.
  UWORK="$(mktemp -d /tmp/clawker-editor.user.XXXXXX)"
  echo "$$" >"$UWORK/run.pid"
  mkdir -p "$UWORK/stack/home" "$UWORK/extensions" "$UWORK/user-data/User" "$UWORK/stack" "$UWORK/xdg-config" "$UWORK/xdg-data"
  cp "$USER_DIR/User/settings.json" "$UWORK/user-data/User/settings.json"
  chmod 0755 "$UWORK"
  chown -R "1000:$JGID" "$UWORK"
  as_user() { runuser -u "$JUSER" -- env -i HOME="$UWORK/stack/home" PATH=/usr/bin:/bin XDG_CONFIG_HOME="$UWORK/xdg-config" XDG_DATA_HOME="$UWORK/xdg-data" "$@"; }
  as_user mkdir -p "$UWORK/workspace"
  as_user cp -a "$STACK_FIXTURE/." "$UWORK/workspace/"
  as_user "$CODE_SERVER" --config "$UWORK/config.yaml" --user-data-dir "$UWORK/user-data" --extensions-dir "$UWORK/extensions" \
    --install-extension "$VSIX" >"$RESULTS/install-extension-user.log" 2>&1 || { cat "$RESULTS/install-extension-user.log" >&2; die "$JUSER could not install $VSIX"; }
  say "bringing up the journey user's stack and agent (log: test-results/editor/user-stack.log)"
  node --import tsx test/editor/stack.ts serve "$UWORK/stack" "$UWORK/workspace" --parent "$$" --as-user "$JUSER" \
    </dev/null >"$RESULTS/user-stack.log" 2>&1 &
  USER_STACK_PID=$!
  deadline=$((SECONDS + STACK_TIMEOUT))
  while [[ ! -e "$UWORK/stack/ready" ]]; do
    if [[ -e "$UWORK/stack/failed" ]] || ! kill -0 "$USER_STACK_PID" 2>/dev/null; then
      tail -n 40 "$RESULTS/user-stack.log" >&2
      die "the journey user's stack could not be brought up (log: test-results/editor/user-stack.log)"
    fi
    ((SECONDS < deadline)) || die "the journey user's stack was not up within $STACK_TIMEOUT s"
    sleep 1
  done
  # Its CLAWKER_* variables and HOME, for code-server (hence the extension host and its CLI) only.
  user_env=()
  while IFS= read -r line; do user_env+=("$line"); done < <(node -e 'for (const [k, v] of Object.entries(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).env)) console.log(`${k}=${v}`)' "$UWORK/stack/stack.json")
  CS_ENV=("${user_env[@]}" XDG_CONFIG_HOME="$UWORK/xdg-config" XDG_DATA_HOME="$UWORK/xdg-data" PATH=/usr/bin:/bin)
  CS_AS="1000:$JGID" CS_CONFIG="$UWORK/config.yaml" CS_EXT_DIR="$UWORK/extensions" \
    serve_code_server "$UWORK/workspace" "$UWORK/user-data" code-server-user.log
  cs_uid="$(stat -c %u "/proc/$CS_PID")"
  [[ "$cs_uid" == 1000 ]] || die "code-server runs as UID $cs_uid, not the journey user's 1000"
  say "code-server runs as $JUSER (UID $cs_uid)"
  set +e
  CLAWKER_EDITOR_URL="$URL" CLAWKER_EDITOR_WORKSPACE="$UWORK/workspace" CLAWKER_EDITOR_RESULTS="$RESULTS" \
    CLAWKER_EDITOR_CHROMIUM="$CHROMIUM" CLAWKER_EDITOR_STACK_INFO="$UWORK/stack/stack.json" \
    node --import tsx --test test/editor/flow.test.ts
  user_rc=$?
  set -e
  # Every process of the extension (its host, the language server, the CLI it ran) was the user's.
  session="$(ps -o uid=,pid=,args= -s "$CS_PID")"
  # code-server, its server process and the extension host at least: an empty listing proves nothing.
  (($(wc -l <<<"$session") >= 3)) || { say "FAILED: the journey user's code-server session lists too few processes:" >&2; printf '%s\n' "$session" >&2; user_rc=1; }
  foreign="$(awk '$1 != 1000' <<<"$session" || true)"
  if [[ -n "$foreign" ]]; then
    say "FAILED: processes of the journey user's code-server not running as UID 1000:" >&2
    printf '%s\n' "$foreign" >&2
    user_rc=1
  fi
  ((rc != 0)) || rc=$user_rc
  phase_end
fi
if ((rc == 0)); then
  say "passed (screenshots: test-results/editor/)"
else
  say "FAILED (exit $rc); screenshots and logs: test-results/editor/" >&2
fi
exit "$rc"
