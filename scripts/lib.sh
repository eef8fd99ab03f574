# Shared by the scripts: repository paths and small helpers. Sourced, not run.
ANVIL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ANVIL_SHARED_DIR="${ANVIL_SHARED_DIR:-$(cd "$ANVIL_ROOT/.." && pwd)/shared}"
ANVIL_BUILD_DIR="${ANVIL_BUILD_DIR:-$ANVIL_ROOT/build}"
ANVIL_RUN_DIR="${ANVIL_RUN_DIR:-$ANVIL_ROOT/.run}"
export ANVIL_ROOT ANVIL_SHARED_DIR ANVIL_BUILD_DIR ANVIL_RUN_DIR

log() { printf '[anvil] %s\n' "$*" >&2; }
die() { printf '[anvil] error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
