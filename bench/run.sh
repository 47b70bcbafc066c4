#!/usr/bin/env bash
# Runs the benchmarks under bench/ (agent, editor, kernel, pki, policy, validate, or those named as
# arguments); each prints its figures next to a baseline measured in the same run. Then renders
# bench/REPORT.md from what they handed over (bench/report.ts): one table per area, the machine, and
# each benchmark's output as printed. All of them run even when one could not measure (bench/agent
# and bench/kernel need the test bed); the exit status then names those.
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp -d "${TMPDIR:-/tmp}/clawker-bench-results.XXXXXX")
trap 'rm -rf "$results"' EXIT
export BENCH_RESULTS_DIR=$results

if (($#)); then areas=("$@"); else areas=(agent editor kernel pki policy validate); fi
failed=()
for area in "${areas[@]}"; do
  script="bench/$area.ts"
  if [[ ! -f $script ]]; then
    printf '[bench] no benchmark %s\n' "$script" >&2
    failed+=("$script")
    continue
  fi
  # What the run prints (stdout and stderr) is kept for the report, which shows it as printed.
  node --import tsx "$script" 2>&1 | tee "$results/$area.txt"
  ((PIPESTATUS[0] == 0)) || failed+=("$script")
done

node --import tsx bench/report.ts "$results" bench/REPORT.md "${areas[@]}" || failed+=(bench/report.ts)
if ((${#failed[@]})); then
  printf '[bench] could not measure: %s\n' "${failed[*]}" >&2
  exit 1
fi
