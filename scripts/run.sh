#!/usr/bin/env bash
# README command 1: install, build, start local Postgres + Redis, run
# `anvil serve` (default 127.0.0.1:6420, data in ./data). Extra arguments go
# to `anvil serve` (e.g. --listen 127.0.0.1:7000 --data-dir /var/lib/anvil).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$ANVIL_ROOT/scripts/deps.sh"
"$ANVIL_ROOT/scripts/build.sh"
eval "$("$ANVIL_ROOT/scripts/services.sh" start)"
trap '"$ANVIL_ROOT/scripts/services.sh" stop' EXIT
cd "$ANVIL_ROOT"
"$ANVIL_BUILD_DIR/tools/anvil" serve "$@"
