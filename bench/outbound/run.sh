#!/usr/bin/env bash
# Runs the outbound HTTP measurement: one server process (FakeHttpServer,
# /slow answers after 100 ms), then each client in its own process so thread
# counts and RSS are the client's alone.
#   bench/outbound/run.sh [build-dir] [concurrency] [sequential]
set -euo pipefail
BUILD=${1:-build}
N=${2:-10000}
SEQ=${3:-2000}
BIN="$BUILD/bench/outbound/outbound_bench"
[ -x "$BIN" ] || { echo "build it first: ninja -C $BUILD outbound_bench" >&2; exit 1; }

echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "command: $0 $BUILD $N $SEQ"

coproc SERVER { exec "$BIN" serve --delay-ms 100 --threads 2; }
read -r _ PORT <&"${SERVER[0]}"
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT

for client in beast cpprest; do
  "$BIN" client --client "$client" --port "$PORT" --concurrency "$N" --sequential "$SEQ" --threads 2
  sleep 2  # let the previous run's sockets leave the server
done
