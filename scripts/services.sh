#!/usr/bin/env bash
# A private PostgreSQL 15 and Redis on 127.0.0.1 for Anvil, with their data
# under .run/. Usage: services.sh start|stop|status|env
#   ANVIL_PG_PORT (default 54329), ANVIL_REDIS_PORT (default 63799)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${ANVIL_PG_PORT:-54329}"
REDIS_PORT="${ANVIL_REDIS_PORT:-63799}"
PG_DIR="$ANVIL_RUN_DIR/pg"
REDIS_DIR="$ANVIL_RUN_DIR/redis"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"

pg_run() {  # PostgreSQL refuses to run as root: run its tools as `postgres`.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

env_lines() {
  echo "export ANVIL_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_PORT/anvil"
  echo "export ANVIL_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

start() {
  [ -n "$PG_BIN" ] || die "PostgreSQL is not installed (scripts/deps.sh)"
  mkdir -p "$ANVIL_RUN_DIR"
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
    pg_run "$PG_BIN/initdb" -D "$PG_DIR" -U postgres --auth=trust >/dev/null
  fi
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_DIR"
  if ! pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp" start >/dev/null
  fi
  pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='anvil'" | grep -q 1 ||
    pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres anvil
  mkdir -p "$REDIS_DIR"
  if ! { [ -f "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; }; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly no
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  log "postgres on 127.0.0.1:$PG_PORT, redis on 127.0.0.1:$REDIS_PORT"
  env_lines
}

stop() {
  if [ -n "$PG_BIN" ] && [ -f "$PG_DIR/postmaster.pid" ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$REDIS_DIR/redis.pid" ]; then
    kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    rm -f "$REDIS_DIR/redis.pid"
  fi
  log "services stopped"
}

status() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" status 2>/dev/null | head -1 || echo "postgres: not running"
  if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then echo "redis: running"; else echo "redis: not running"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_lines ;;
  *) die "usage: services.sh start|stop|status|env" ;;
esac
