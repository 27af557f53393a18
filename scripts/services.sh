#!/usr/bin/env bash
# Project-local PostGIS and Redis whose data lives under .local/ in the checkout.
# Usage: scripts/services.sh start|stop|status
# When DATABASE_URL or REDIS_URL is set, the matching service is external and left alone.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOCAL_DIR=${GEOMARKET_LOCAL_DIR:-$ROOT/.local}
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
PG_DB=${PG_DB:-geomarket}
PG_USER=${PG_USER:-geomarket}
PG_PASSWORD=${PG_PASSWORD:-geomarket}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_DATA=$LOCAL_DIR/postgres/data
PG_RUN=$LOCAL_DIR/postgres/run
PG_LOG=$LOCAL_DIR/postgres/postgres.log
REDIS_DIR=$LOCAL_DIR/redis

say() { printf '%s\n' "$*"; }

# PostgreSQL refuses to run as root, so a root caller runs it as the postgres OS user.
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

psql_admin() {
  as_pg_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$(pg_owner)" "$@"
}

pg_start() {
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    say "PostgreSQL server binaries not found; run 'make setup' first." >&2
    exit 1
  fi
  mkdir -p "$LOCAL_DIR/postgres" "$PG_RUN"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$LOCAL_DIR/postgres"; fi
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    say "Creating PostgreSQL cluster in $PG_DATA"
    as_pg_owner "$PG_BIN/initdb" -D "$PG_DATA" -U "$(pg_owner)" --auth-local=peer \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PG_DATA/postgresql.conf" <<CONF
# GeoMarket project-local cluster
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 512MB
effective_cache_size = 4GB
random_page_cost = 1.1
fsync = on
synchronous_commit = on
max_wal_size = 4GB
log_min_duration_statement = -1
CONF
  fi
  if pg_running; then
    say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    if ! as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null; then
      say "PostgreSQL failed to start (is port $PG_PORT taken? set PG_PORT). Log:" >&2
      tail -n 5 "$PG_LOG" >&2
      exit 1
    fi
    say "PostgreSQL started on 127.0.0.1:$PG_PORT"
  fi
  pg_bootstrap
}

# Idempotent: the role, the database, and the extensions in template1 so that the
# test databases created from it have PostGIS without needing superuser rights.
pg_bootstrap() {
  psql_admin -d postgres <<SQL
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$PG_USER', '$PG_PASSWORD')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
  for db in template1 "$PG_DB"; do
    psql_admin -d "$db" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pg_trgm;"
  done
}

pg_stop() {
  if pg_running; then
    as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    say "PostgreSQL stopped"
  else
    say "PostgreSQL is not running"
  fi
}

redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

redis_running() { redis_cli ping 2>/dev/null | grep -q PONG; }

redis_start() {
  if ! command -v redis-server >/dev/null; then
    say "redis-server not found; run 'make setup' first." >&2
    exit 1
  fi
  if redis_running; then
    say "Redis already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  mkdir -p "$REDIS_DIR"
  # appendonly keeps queued Celery messages across a Redis restart.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
    --appendonly yes --save "" --protected-mode yes
  for _ in $(seq 1 50); do redis_running && break; sleep 0.1; done
  redis_running || { say "Redis failed to start; see $REDIS_DIR/redis.log" >&2; exit 1; }
  say "Redis started on 127.0.0.1:$REDIS_PORT"
}

redis_stop() {
  if redis_running; then
    redis_cli shutdown nosave >/dev/null 2>&1 || true
    say "Redis stopped"
  else
    say "Redis is not running"
  fi
}

case "${1:-}" in
  start)
    if [ -n "${DATABASE_URL:-}" ]; then say "DATABASE_URL is set: using it, no local PostgreSQL"; else pg_start; fi
    if [ -n "${REDIS_URL:-}" ]; then say "REDIS_URL is set: using it, no local Redis"; else redis_start; fi
    ;;
  stop)
    if [ -z "${DATABASE_URL:-}" ]; then pg_stop; fi
    if [ -z "${REDIS_URL:-}" ]; then redis_stop; fi
    ;;
  status)
    if pg_running; then say "PostgreSQL: running on 127.0.0.1:$PG_PORT"; else say "PostgreSQL: stopped"; fi
    if redis_running; then say "Redis: running on 127.0.0.1:$REDIS_PORT"; else say "Redis: stopped"; fi
    ;;
  *)
    say "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
