#!/usr/bin/env bash
# The C++ test suite under a sanitizer (docs/testing.md): `asan` builds
# ./build-asan with -DANVIL_SANITIZE=address (ASan + UBSan, leaks checked,
# UB aborts), `tsan` builds ./build-tsan with -DANVIL_SANITIZE=thread, then
# runs ctest there with Postgres and Redis up, leaving out the tests labelled
# e2e (node, browser, fuzz: tests/CMakeLists.txt). Exit code = ctest's.
#   scripts/sanitize.sh asan|tsan [ctest args...]   e.g. scripts/sanitize.sh asan -R Value
#   ANVIL_SANITIZE_TARGETS  build only these targets (e.g. "value_test")
#   ANVIL_JOBS              build parallelism
#   ANVIL_SKIP_SERVICES=1   do not start Postgres/Redis (already up, or not needed)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kind="${1:-}"
shift || true
case "$kind" in
  asan) san=address ;;
  tsan) san=thread ;;
  *) die "usage: scripts/sanitize.sh asan|tsan [ctest args...]" ;;
esac
dir="${ANVIL_SANITIZE_DIR:-$ANVIL_ROOT/build-$kind}"

cmake -S "$ANVIL_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_SANITIZE="$san" >/dev/null
# shellcheck disable=SC2086
cmake --build "$dir" -j "${ANVIL_JOBS:-$(nproc)}" ${ANVIL_SANITIZE_TARGETS:+--target $ANVIL_SANITIZE_TARGETS}

supp="$ANVIL_ROOT/tests/sanitizers"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp/lsan.supp}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp}"

ANVIL_SERVICES_STARTED=
if [ "${ANVIL_SKIP_SERVICES:-0}" != 1 ]; then
  trap '[ -z "$ANVIL_SERVICES_STARTED" ] || "$ANVIL_ROOT/scripts/services.sh" stop $ANVIL_SERVICES_STARTED' EXIT
  services_env="$("$ANVIL_ROOT/scripts/services.sh" start)"
  eval "$services_env"
fi
rc=0
ctest --test-dir "$dir" --output-on-failure --timeout 1800 -LE e2e "$@" </dev/null || rc=$?
exit $rc
