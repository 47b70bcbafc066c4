#!/usr/bin/env bash
# Runs every benchmark under bench/ (agent, editor, kernel, pki, policy, validate); each prints its
# figures next to a baseline measured in the same run. All of them run even when one could not
# measure (bench/agent and bench/kernel need the test bed); the exit status then names those.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
for script in bench/*.ts; do
  node --import tsx "$script" || failed+=("$script")
done
if ((${#failed[@]})); then
  printf '[bench] could not measure: %s\n' "${failed[*]}" >&2
  exit 1
fi
