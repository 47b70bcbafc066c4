#!/usr/bin/env bash
# Runs every benchmark under bench/; each prints its figures next to a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in bench/*.ts; do
  node --import tsx "$script"
done
