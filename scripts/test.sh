#!/usr/bin/env bash
# README command 2: install, build, start local Postgres + Redis, run every
# test through ctest (GoogleTest units and integration, the SIGKILL crash
# test, the shared conformance suite, the browser test). Exit code = ctest's.
#   ANVIL_CTEST_ARGS   extra ctest arguments (e.g. "-R conformance")
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$ANVIL_ROOT/scripts/deps.sh"
"$ANVIL_ROOT/scripts/build.sh"
# Stop only the services this run started (none if they were already up).
ANVIL_SERVICES_STARTED=
trap '[ -z "$ANVIL_SERVICES_STARTED" ] || "$ANVIL_ROOT/scripts/services.sh" stop $ANVIL_SERVICES_STARTED' EXIT
services_env="$("$ANVIL_ROOT/scripts/services.sh" start)"
eval "$services_env"
rc=0
# shellcheck disable=SC2086
ctest --test-dir "$ANVIL_BUILD_DIR" --output-on-failure --timeout 1200 ${ANVIL_CTEST_ARGS:-} </dev/null || rc=$?
exit $rc
