#!/usr/bin/env bash
# README command 1: install, build, start local Postgres + Redis, run
# `anvil serve` (default 127.0.0.1:6420, data in ./data). Extra arguments go
# to `anvil serve` (e.g. --listen 127.0.0.1:7000 --data-dir /var/lib/anvil).
# ANVIL_POSTGRES_URL / ANVIL_REDIS_URL are exported for the node.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$ANVIL_ROOT/scripts/deps.sh"
"$ANVIL_ROOT/scripts/build.sh"
ANVIL_SERVICES_STARTED=
trap '[ -z "$ANVIL_SERVICES_STARTED" ] || "$ANVIL_ROOT/scripts/services.sh" stop $ANVIL_SERVICES_STARTED' EXIT
services_env="$("$ANVIL_ROOT/scripts/services.sh" start)"
eval "$services_env"
cd "$ANVIL_ROOT"
# Not exec: the EXIT trap stops the services once anvil has exited. SIGINT /
# SIGTERM sent to this script are passed on to anvil (graceful shutdown).
"$ANVIL_BUILD_DIR/tools/anvil" serve "$@" &
anvil_pid=$!
trap 'kill -TERM "$anvil_pid" 2>/dev/null || true' INT TERM
rc=0
while :; do
  wait "$anvil_pid" && rc=0 || rc=$?
  kill -0 "$anvil_pid" 2>/dev/null || break  # wait returns early when a trapped signal arrives
done
exit $rc
