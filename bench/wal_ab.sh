#!/bin/bash
# The WAL laid out ahead of the writes (--wal-preallocate on) against
# RocksDB's own WAL (off), the same binary alternating on fresh data
# directories: open-loop cold starts at 5,000/s (section (c)), closed-loop
# cold starts and HTTP actions (section (a)). Writes one JSON line per run to
# bench/results-wal-prealloc.jsonl and prints a summary.
#   RUNS=10 (open-loop pairs), RUNS_OTHER=3, PORT=6495
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${ANVIL_BIN:-$here/../build/tools/anvil}
lg=${ANVIL_LOADGEN:-$here/../build/tools/bench/anvil-loadgen}
port=${PORT:-6495}
out=$here/results-wal-prealloc.jsonl
: > "$out"

one() {  # mode kind
  local dir pid r base=http://127.0.0.1:$port/api/rivet
  dir=$(mktemp -d /tmp/anvil-walab-XXXXXX)
  "$bin" serve --listen 127.0.0.1:$port --data-dir "$dir" --log-level warn --wal-preallocate "$1" > "$dir.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health > /dev/null && break; sleep 0.1; done
  case $2 in
    cold_open) r=$("$lg" cold --base $base --conc 32 --count 25000 --rate 5000 --seconds 60 2> /dev/null | tail -1) ;;
    cold_closed) r=$("$lg" cold --base $base --conc 32 --count 10000 --seconds 60 2> /dev/null | tail -1) ;;
    http) r=$("$lg" http --base $base --conc 64 --seconds 6 --actors 1000 2> /dev/null | tail -1) ;;
  esac
  echo "{\"mode\":\"$1\",\"kind\":\"$2\",\"r\":$r}" >> "$out"
  kill "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$dir" "$dir.log"
}

for _ in $(seq "${RUNS:-10}"); do for m in off on; do one $m cold_open; done; done
for _ in $(seq "${RUNS_OTHER:-3}"); do for m in off on; do one $m cold_closed; one $m http; done; done

python3 - "$out" << 'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for kind in ["cold_open", "cold_closed", "http"]:
    for m in ["off", "on"]:
        rs = [r["r"] for r in rows if r["kind"] == kind and r["mode"] == m]
        if not rs:
            continue
        p99 = sorted(r["p99_ms"] for r in rs)
        print(f"{kind:11} {m:3} runs {len(rs):2}  ops/s med {st.median(r['per_second'] for r in rs):8.0f}  "
              f"p50 med {st.median(r['p50_ms'] for r in rs):.3f}  p99 med {st.median(p99):.3f} "
              f"(min {p99[0]:.3f}, max {p99[-1]:.3f}, {sum(x < 2 for x in p99)} under 2 ms)  "
              f"p99.9 med {st.median(r['p999_ms'] for r in rs):.2f}")
PY
