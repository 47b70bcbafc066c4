#!/usr/bin/env bash
# Every test suite, in order: unit, mutation (the incremental Stryker pass, fails below 90%), end to
# end (Docker + eBPF), editor (code-server).
# Runs all of them even when one fails, then exits non-zero naming every suite that failed, and
# prints the totals of Node's test runner over all suites as one closing line.
# (`npm test`; the test bed must be up: bash test/testbed/provision.sh)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUITES=(test:unit test:mutation test:e2e test:editor)
failed=()
passed_tests=0
failed_tests=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for suite in "${SUITES[@]}"; do
  printf '\n[run-all] ===== npm run %s =====\n' "$suite"
  start=$SECONDS
  npm run --silent "$suite" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # Each run of Node's test runner ends with a summary (# pass N / # fail N); a suite may run it
  # more than once (the editor suite runs a second code-server), so the summaries are added up.
  p=$(grep -E '^# pass [0-9]+$' "$log" | awk '{s += $3; n++} END {if (n) print s}')
  f=$(grep -E '^# fail [0-9]+$' "$log" | awk '{s += $3; n++} END {if (n) print s}')
  passed_tests=$((passed_tests + ${p:-0}))
  failed_tests=$((failed_tests + ${f:-0}))
  if [ "$rc" -eq 0 ] && [ -n "$p" ]; then
    printf '[run-all] %s passed (%ss)\n' "$suite" "$((SECONDS - start))"
  else
    [ -n "$p" ] || printf '[run-all] %s ran no test\n' "$suite" >&2
    printf '[run-all] %s FAILED (exit %s, %ss)\n' "$suite" "$rc" "$((SECONDS - start))" >&2
    failed+=("$suite")
  fi
done

if ((${#failed[@]})); then
  printf '\n[run-all] FAILED suites: %s\n' "${failed[*]}" >&2
  printf '%s passed, %s failed\n' "$passed_tests" "$((failed_tests > 0 ? failed_tests : ${#failed[@]}))"
  exit 1
fi
printf '\n[run-all] all suites passed: %s\n' "${SUITES[*]}"
printf '%s passed, %s failed\n' "$passed_tests" "$failed_tests"
