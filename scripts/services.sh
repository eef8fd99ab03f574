#!/usr/bin/env bash
# A private PostgreSQL 15 and Redis on 127.0.0.1 for Anvil, with their data
# under .run/. Usage: services.sh start|stop [pg] [redis]|status|env
#   ANVIL_PG_PORT (default 54329), ANVIL_REDIS_PORT (default 63799)
#   ANVIL_PG_DIR  (default .run/pg, or a directory under /var/tmp when the
#                  `postgres` user cannot reach .run/, e.g. a clone in /root)
# `start` prints shell lines for eval: the connection URLs, and
# ANVIL_SERVICES_STARTED naming the services this call started (so callers
# stop only what they started). Only the PIDs in the services' own pid files
# (.run/pg/postmaster.pid, .run/redis/redis.pid) are ever signalled.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${ANVIL_PG_PORT:-54329}"
REDIS_PORT="${ANVIL_REDIS_PORT:-63799}"
REDIS_DIR="$ANVIL_RUN_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"

as_root_user() { [ "$(id -u)" = 0 ]; }
pg_run() {  # PostgreSQL refuses to run as root: run its tools as `postgres`.
  if as_root_user; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_dir() {
  if [ -n "${ANVIL_PG_DIR:-}" ]; then echo "$ANVIL_PG_DIR"; return; fi
  mkdir -p "$ANVIL_RUN_DIR"
  if ! as_root_user || runuser -u postgres -- test -x "$ANVIL_RUN_DIR" 2>/dev/null; then
    echo "$ANVIL_RUN_DIR/pg"
  else
    # `postgres` cannot traverse to .run/ (e.g. the clone is under /root).
    echo "/var/tmp/anvil-pg-$(printf '%s' "$ANVIL_RUN_DIR" | md5sum | cut -c1-12)"
  fi
}
PG_DIR="$(pg_dir)"

env_lines() {
  echo "export ANVIL_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_PORT/anvil"
  echo "export ANVIL_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

pg_running() { [ -n "$PG_BIN" ] && [ -f "$PG_DIR/PG_VERSION" ] && pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; }
redis_pid() { [ -f "$REDIS_PIDFILE" ] && cat "$REDIS_PIDFILE"; }
redis_running() { local pid; pid="$(redis_pid)" && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

stop_pg() {
  if pg_running; then
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

stop_redis() {
  local pid
  pid="$(redis_pid 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$REDIS_PIDFILE"
}

started=()
start() {
  # On failure, stop whatever this call started, and nothing else.
  trap 'rc=$?; if [ $rc != 0 ]; then for s in "${started[@]}"; do stop_$s; done; fi' EXIT

  [ -n "$PG_BIN" ] || die "PostgreSQL is not installed (run scripts/deps.sh)"
  command -v redis-server >/dev/null || die "redis-server is not installed (run scripts/deps.sh)"

  if ! pg_running; then
    if [ ! -f "$PG_DIR/PG_VERSION" ]; then
      mkdir -p "$PG_DIR"
      if as_root_user; then chown postgres:postgres "$PG_DIR"; fi
      chmod 700 "$PG_DIR"
      pg_run "$PG_BIN/initdb" -D "$PG_DIR" -U postgres --auth=trust -E UTF8 >/dev/null ||
        die "initdb failed in $PG_DIR"
    fi
    if as_root_user; then chown -R postgres:postgres "$PG_DIR"; fi
    # Sockets in /tmp (writable by postgres); TCP on 127.0.0.1 only.
    if ! pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp" start >/dev/null; then
      tail -20 "$PG_DIR/server.log" >&2 || true
      die "PostgreSQL did not start on 127.0.0.1:$PG_PORT (log: $PG_DIR/server.log)"
    fi
    started+=(pg)
  fi
  pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='anvil'" | grep -q 1 ||
    pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres anvil

  mkdir -p "$REDIS_DIR"
  if ! redis_running; then
    rm -f "$REDIS_PIDFILE"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly no
    started+=(redis)
    local ok=0
    for _ in $(seq 100); do
      if redis_running && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then ok=1; break; fi
      sleep 0.1
    done
    if [ $ok != 1 ]; then
      tail -20 "$REDIS_DIR/redis.log" >&2 || true
      die "Redis did not start on 127.0.0.1:$REDIS_PORT (log: $REDIS_DIR/redis.log)"
    fi
  fi
  log "postgres on 127.0.0.1:$PG_PORT (data $PG_DIR), redis on 127.0.0.1:$REDIS_PORT (pid $(redis_pid))"
  env_lines
  echo "export ANVIL_SERVICES_STARTED='${started[*]}'"
}

stop() {
  local which=("$@")
  [ ${#which[@]} -gt 0 ] || which=(pg redis)
  for s in "${which[@]}"; do
    case "$s" in
      pg) stop_pg ;;
      redis) stop_redis ;;
      *) die "unknown service: $s" ;;
    esac
  done
  log "stopped: ${which[*]}"
}

status() {
  if pg_running; then
    echo "postgres: running (pid $(head -1 "$PG_DIR/postmaster.pid"), postgresql://postgres@127.0.0.1:$PG_PORT/anvil, data $PG_DIR)"
  else
    echo "postgres: not running"
  fi
  if redis_running; then
    echo "redis: running (pid $(redis_pid), redis://127.0.0.1:$REDIS_PORT)"
  else
    echo "redis: not running"
  fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start) start ;;
  stop) stop "$@" ;;
  status) status ;;
  env) env_lines ;;
  *) die "usage: services.sh start|stop [pg] [redis]|status|env" ;;
esac
