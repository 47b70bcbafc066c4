#!/usr/bin/env bash
# Every test suite, in order: unit, end to end (Docker + eBPF), editor (code-server).
# Runs all of them even when one fails, then exits non-zero naming every suite that failed.
# (`npm test`; the test bed must be up: bash test/testbed/provision.sh)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUITES=(test:unit test:e2e test:editor)
failed=()
for suite in "${SUITES[@]}"; do
  printf '\n[run-all] ===== npm run %s =====\n' "$suite"
  start=$SECONDS
  if npm run --silent "$suite"; then
    printf '[run-all] %s passed (%ss)\n' "$suite" "$((SECONDS - start))"
  else
    rc=$?
    printf '[run-all] %s FAILED (exit %s, %ss)\n' "$suite" "$rc" "$((SECONDS - start))" >&2
    failed+=("$suite")
  fi
done

if ((${#failed[@]})); then
  printf '\n[run-all] FAILED suites: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '\n[run-all] all suites passed: %s\n' "${SUITES[*]}"
