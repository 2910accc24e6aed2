#!/usr/bin/env bash
# scripts/demo.sh - `make demo`: on a fresh Debian/Ubuntu machine install what is missing
# (scripts/install-deps.sh), build libp2p.h with the whole stack and build/bin/demo
# (examples/demo.c), then run it: two hosts on 127.0.0.1 connect, identify each other, ping
# and echo, and say what happened. Exit status: the demo's (0 = everything worked).
set -euo pipefail
cd "$(dirname "$0")/.."
need=(gcc make python3 libsodium-dev libbearssl-dev libnanopb-dev)
for p in "${need[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "demo: $p is missing: running scripts/install-deps.sh"
    bash scripts/install-deps.sh
    break
  fi
done
make --no-print-directory -s build/bin/demo
echo
exec build/bin/demo
