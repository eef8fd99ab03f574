#!/usr/bin/env bash
# Configures and builds Anvil (Release, Ninja, ccache when present) into ./build.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmake -S "$ANVIL_ROOT" -B "$ANVIL_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${ANVIL_BUILD_TYPE:-Release}" >/dev/null
cmake --build "$ANVIL_BUILD_DIR" -j "${ANVIL_JOBS:-$(nproc)}"
