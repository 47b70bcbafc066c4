#!/usr/bin/env bash
# Builds the supervisor's native helper: build.sh <out-dir>  →  <out-dir>/agentd_proc.node
# Node-API headers: $NODE_API_HEADERS (a folder holding node_api.h), else node_modules/node-api-headers/include
# of this repository. Compiler: $CC, else cc. Only libc and node_api.h are needed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out_dir="${1:?usage: build.sh <out-dir>}"
headers="${NODE_API_HEADERS:-$repo/node_modules/node-api-headers/include}"

if [[ ! -f "$headers/node_api.h" ]]; then
  echo "build.sh: no node_api.h in '$headers': run npm install (devDependency node-api-headers) or set NODE_API_HEADERS" >&2
  exit 1
fi
mkdir -p "$out_dir"
# -fvisibility=hidden: only the N-API entry points (marked for export by node_api.h) are visible.
"${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -Werror -fvisibility=hidden -shared -fPIC \
  -I "$headers" -o "$out_dir/agentd_proc.node" "$here/agentd_proc.c"
