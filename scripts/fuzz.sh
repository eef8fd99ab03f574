#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz, docs/testing.md): configures and builds
# ./build-fuzz with clang (ASan+UBSan), seeds build-fuzz/corpus/<target>/
# from the shared conformance capture and tests/fuzz/seeds, then runs each
# target for SECONDS (default 20) one after another. The corpus grows across
# runs. Exits 1 if any target crashed, leaked, timed out or failed a check
# (the input is kept in build-fuzz/artifacts/<target>/; replay it with
# `build-fuzz/tests/fuzz/fuzz_<target> <file>`).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 3600 cbor
#   ANVIL_FUZZ_DIR  build dir (default ./build-fuzz)
#   ANVIL_FUZZ_CC / ANVIL_FUZZ_CXX  compilers (default clang-14 / clang++-14)
#   ANVIL_JOBS      build parallelism
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECONDS_EACH="${1:-20}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(json cbor bare wire ws_frame http_addressing ws_protocol)
FUZZ_DIR="${ANVIL_FUZZ_DIR:-$ANVIL_ROOT/build-fuzz}"
CC_BIN="${ANVIL_FUZZ_CC:-clang-14}"
CXX_BIN="${ANVIL_FUZZ_CXX:-clang++-14}"
command -v "$CXX_BIN" >/dev/null || die "$CXX_BIN not found (scripts/deps.sh installs clang-14)"

CC="$CC_BIN" CXX="$CXX_BIN" cmake -S "$ANVIL_ROOT" -B "$FUZZ_DIR" -G Ninja -DANVIL_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$FUZZ_DIR" -j "${ANVIL_JOBS:-$(nproc)}" --target "${TARGETS[@]/#/fuzz_}"

CORPUS="$FUZZ_DIR/corpus"
CAPTURES="$ANVIL_SHARED_DIR/rivet-ref/captures/conformance-run"
if command -v node >/dev/null && [ -f "$CAPTURES/http.txt" ]; then
  node "$ANVIL_ROOT/tests/fuzz/make_corpus.mjs" "$CAPTURES" "$CORPUS" >/dev/null
else
  log "no node or no capture at $CAPTURES: seeding from tests/fuzz/seeds only"
  mkdir -p "$CORPUS" && cp -r "$ANVIL_ROOT/tests/fuzz/seeds/." "$CORPUS/"
fi

failed=()
for t in "${TARGETS[@]}"; do
  bin="$FUZZ_DIR/tests/fuzz/fuzz_$t"
  mkdir -p "$CORPUS/$t" "$FUZZ_DIR/artifacts/$t" "$FUZZ_DIR/logs"
  logf="$FUZZ_DIR/logs/$t.log"
  rc=0
  # -timeout: one input taking over 10 s is a finding (a hang), as is
  # using over 2 GB; -max_len 64 KiB covers every seed and Rivet's
  # default message limit.
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$t/" "$CORPUS/$t" >"$logf" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf")
  corp=$(find "$CORPUS/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    log "fuzz_$t FAILED (exit $rc); log $logf, input in $FUZZ_DIR/artifacts/$t/"
    grep -E "ERROR|fuzz check failed|SUMMARY|Test unit written" "$logf" | head -n 10 >&2 || true
  else
    log "fuzz_$t ok: ${execs:-?} execs, ${rate:-?} exec/s, corpus $corp files, ${SECONDS_EACH}s"
  fi
done
[ ${#failed[@]} -eq 0 ] || die "fuzz targets failed: ${failed[*]}"
