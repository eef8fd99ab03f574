#!/usr/bin/env bash
# Installs everything Anvil needs on Debian 12: the toolchain and libraries,
# PostgreSQL and Redis, Chromium (browser test), clang 14 with libFuzzer
# (libclang-rt-14-dev; scripts/fuzz.sh), bubblewrap (the GrowQR process sandbox),
# libnghttp2-dev (HTTP/2 over TLS, gateway/h2_session.cpp),
# Node.js (only if missing),
# and the npm packages of the shared reference harness and the browser test.
# Idempotent. ANVIL_SKIP_APT=1 skips apt.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(build-essential cmake ninja-build ccache pkg-config libboost-all-dev capnproto libcapnp-dev
  librocksdb-dev libpqxx-dev libcpprest-dev libhiredis-dev libspdlog-dev libfmt-dev libgtest-dev
  libsqlite3-dev nlohmann-json3-dev libjemalloc-dev libnghttp2-dev libssl-dev postgresql redis-server chromium openssl curl ca-certificates
  clang-14 libclang-rt-14-dev bubblewrap nats-server)

if [ "${ANVIL_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node may come from NodeSource (which conflicts with Debian's npm): only
  # install Debian's when there is no node at all.
  command -v node >/dev/null || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if [ ! -d "$ANVIL_SHARED_DIR/rivet-ref" ]; then
  die "shared reference harness not found at $ANVIL_SHARED_DIR/rivet-ref (set ANVIL_SHARED_DIR)"
fi
if [ ! -f "$ANVIL_SHARED_DIR/rivet-ref/node_modules/rivetkit/package.json" ]; then
  # `npm ci` when the lock allows it; the shared lock was written with
  # omit-lockfile-registry-resolved and lacks other platforms' optional
  # packages, which `npm ci` rejects. `npm install --no-save` then installs
  # the same versions (rivetkit is pinned) without touching the shared lock.
  log "npm ci in $ANVIL_SHARED_DIR/rivet-ref"
  (cd "$ANVIL_SHARED_DIR/rivet-ref" &&
    { npm ci --no-audit --no-fund --loglevel=error 2>/dev/null ||
      { log "npm ci refused the lock file: npm install --no-save"; npm install --no-save --no-audit --no-fund --loglevel=error; }; })
  [ -f "$ANVIL_SHARED_DIR/rivet-ref/node_modules/rivetkit/package.json" ] || die "rivetkit was not installed in $ANVIL_SHARED_DIR/rivet-ref"
fi
if [ -f "$ANVIL_ROOT/tests/browser/package.json" ] && [ ! -d "$ANVIL_ROOT/tests/browser/node_modules/playwright-core" ]; then
  # `npm install` (not `npm ci`): lock files written with this machine's npm
  # config omit other platforms' optional packages, which `npm ci` rejects.
  log "npm install in tests/browser"
  (cd "$ANVIL_ROOT/tests/browser" && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
