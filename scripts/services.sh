#!/usr/bin/env bash
# Project-local PostGIS and two Redis servers whose data lives under .local/ in the checkout:
# the cache (answers, rate limits, task results), kept in memory only, and the Celery
# broker, whose append-only file keeps queued messages across a restart. Writing every
# cached answer to an append-only file cost more CPU and disk than serving it.
# PostgreSQL's files move out of the checkout when its server cannot reach it (pg_home).
# Usage: scripts/services.sh start|stop|status|ports|pg-home   (REPLICA=1 start: a replica
#   too; PGBOUNCER=1 start: PgBouncer too; ports: the ports it uses, NAME=PORT lines)
#   pg-home prints the directory where this checkout's PostgreSQL files live, created and
#   owned by the user the server runs as; tests that run clusters of their own use it too.
# When DATABASE_URL or REDIS_URL is set, the matching service is external and left alone
# (with REDIS_URL set and no CELERY_BROKER_URL, that Redis is the broker as well).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOCAL_DIR=$(realpath -m "${GEOMARKET_LOCAL_DIR:-$ROOT/.local}")
# The default ports (scripts/ports.env), for those not set in the environment.
while IFS='=' read -r name value; do
  if [[ $name =~ ^[A-Z_]+$ && -z ${!name:-} ]]; then declare "$name=$value"; fi
done <scripts/ports.env
REDIS_BROKER_PORT=${REDIS_BROKER_PORT:-$((REDIS_PORT + 1))}
PG_DB=${PG_DB:-geomarket}
PG_USER=${PG_USER:-geomarket}
PG_PASSWORD=${PG_PASSWORD:-geomarket}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
REDIS_DIR=$LOCAL_DIR/redis
REDIS_BROKER_DIR=$LOCAL_DIR/redis-broker

say() { printf '%s\n' "$*"; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A service is this checkout's only by its pid file. Something else answering on the port
# (left by a checkout deleted while its services ran, or another project's) would
# otherwise be taken for it: a PgBouncer with another checkout's credentials, a Redis
# with another checkout's data.
port_free_or_fail() {
  local name=$1 port=$2 variable=$3
  if listening "$port"; then
    say "$name: 127.0.0.1:$port is taken by a process this checkout did not start; stop it, or set $variable." >&2
    exit 1
  fi
}

# PostgreSQL refuses to run as root, so a root caller runs it as the postgres OS user,
# from / since that user may not be allowed into the checkout.
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

# Tells this checkout's directories outside it apart from other checkouts': a hash of
# its .local path.
local_dir_key() { printf '%s' "$LOCAL_DIR" | sha256sum | cut -c1-12; }

# The one rule for where this checkout's PostgreSQL files may live. Under .local/, unless
# the server runs as the postgres OS user (a root caller) and that user cannot enter
# $LOCAL_DIR: a checkout in a home directory of mode 0700, such as /root. Then under
# /var/lib/geomarket/, in a directory of its own per checkout (its name, and a hash of
# the .local path), which lasts across reboots as a database should. Once a cluster is
# there it stays there, even if the checkout becomes reachable later.
pg_home() {
  if [ "$(id -u)" != 0 ]; then
    echo "$LOCAL_DIR/postgres"
    return
  fi
  local key outside
  key=$(basename "$ROOT")-$(local_dir_key)
  outside=/var/lib/geomarket/$key/postgres
  mkdir -p "$LOCAL_DIR"
  if [ ! -s "$outside/data/PG_VERSION" ] && runuser -u postgres -- test -x "$LOCAL_DIR" 2>/dev/null; then
    echo "$LOCAL_DIR/postgres"
  else
    echo "$outside"
  fi
}

# Creates $PG_HOME for the server's user, with every directory above it searchable.
pg_home_prepare() {
  if [ "$PG_HOME" != "$LOCAL_DIR/postgres" ]; then
    install -d -m 0755 "$(dirname "$(dirname "$PG_HOME")")" "$(dirname "$PG_HOME")"
    # Says which checkout the directory belongs to, for whoever finds it.
    printf '%s\n' "$LOCAL_DIR" >"$(dirname "$PG_HOME")/checkout"
  fi
  mkdir -p "$PG_HOME"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PG_HOME"; fi
}

# Where a cluster's Unix socket goes: RUN, unless the socket's path there would pass the
# 107 bytes Linux allows one (a checkout under a long path, run as its owner): then a
# short directory of this checkout's own under /tmp, NAME telling the clusters apart.
socket_dir() {
  local run=$1 name=$2 LC_ALL=C
  if [ $((${#run} + ${#PG_SOCKET_FILE})) -le 107 ]; then
    echo "$run"
  else
    echo "/tmp/geomarket-$(local_dir_key)-$name"
  fi
}
PG_SOCKET_FILE=/.s.PGSQL.65535

PG_HOME=$(pg_home)
PG_DATA=$PG_HOME/data
PG_RUN=$(socket_dir "$PG_HOME/run" primary)
PG_LOG=$PG_HOME/postgres.log

# A cluster (the primary or the replica) by its data directory.
cluster_running() { [ -f "$1/postmaster.pid" ] && as_pg_owner "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# cluster_start NAME DATA LOG PORT PORT-VARIABLE TIMEOUT RUN
cluster_start() {
  local name=$1 data=$2 log=$3 port=$4 variable=$5 timeout=$6 run=$7
  if cluster_running "$data"; then
    # The fourth line of the pid file is the port it listens on.
    local running_port
    running_port=$(as_pg_owner sed -n 4p "$data/postmaster.pid")
    if [ "$running_port" = "$port" ]; then
      say "$name already running on 127.0.0.1:$port"
      return
    fi
    # Started before its port moved (scripts/ports.env), or with another PG_PORT.
    say "$name runs on port $running_port; restarting it on $port"
    cluster_stop "$name" "$data"
  fi
  # The port and socket directory given here win over those the cluster's configuration
  # was written with.
  as_pg_owner mkdir -p "$run"
  if ! as_pg_owner "$PG_BIN/pg_ctl" -D "$data" -l "$log" -o "-p $port -k $run" -w -t "$timeout" start >/dev/null; then
    say "$name failed to start (is port $port taken? set $variable). Log:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  say "$name started on 127.0.0.1:$port"
}

cluster_stop() {
  if cluster_running "$2"; then
    as_pg_owner "$PG_BIN/pg_ctl" -D "$2" -m fast -w stop >/dev/null
    say "$1 stopped"
  else
    say "$1 is not running"
  fi
}

pg_running() { cluster_running "$PG_DATA"; }

psql_admin() {
  as_pg_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$(pg_owner)" "$@"
}

pg_start() {
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    say "PostgreSQL server binaries not found; run 'make setup' first." >&2
    exit 1
  fi
  pg_home_prepare
  as_pg_owner mkdir -p "$PG_RUN"
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
  cluster_start PostgreSQL "$PG_DATA" "$PG_LOG" "$PG_PORT" PG_PORT 60 "$PG_RUN"
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

pg_stop() { cluster_stop PostgreSQL "$PG_DATA"; }

# A streaming replica of the primary above (REPLICA=1, or `make replica`), for the read
# routing and its tests: made once with pg_basebackup -R, on REPLICA_PORT, its files beside
# the primary's (pg_home). A replication slot keeps the WAL it has not received yet, up to
# max_slot_wal_keep_size, so a stopped replica catches up instead of being rebuilt, and
# cannot fill the primary's disk. The first base backup copies every database (gigabytes
# where the bench databases live).
REPLICA_PORT=${REPLICA_PORT:-$((PG_PORT + 1))}
REPLICA_HOME=$PG_HOME/replica
REPLICA_DATA=$REPLICA_HOME/data
REPLICA_RUN=$(socket_dir "$REPLICA_HOME/run" replica)
REPLICA_LOG=$REPLICA_HOME/postgres.log
REPLICA_SLOT=geomarket_replica

replica_running() { cluster_running "$REPLICA_DATA"; }

replica_create() {
  say "Creating the replica in $REPLICA_DATA from the primary (a base backup)"
  # Peer authentication on the socket, for the cluster's superuser (initdb's default).
  if ! grep -Eq '^local[[:space:]]+replication[[:space:]]+all[[:space:]]+peer' "$PG_DATA/pg_hba.conf"; then
    echo "local replication all peer" | as_pg_owner tee -a "$PG_DATA/pg_hba.conf" >/dev/null
  fi
  psql_admin -d postgres <<SQL
ALTER SYSTEM SET max_slot_wal_keep_size = '8GB';
SELECT pg_reload_conf() \gset
SELECT pg_drop_replication_slot('$REPLICA_SLOT')
WHERE EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$REPLICA_SLOT') \gexec
SQL
  as_pg_owner rm -rf "$REPLICA_DATA.partial"
  as_pg_owner "$PG_BIN/pg_basebackup" -h "$PG_RUN" -p "$PG_PORT" -U "$(pg_owner)" \
    -D "$REPLICA_DATA.partial" -R -X stream -C -S "$REPLICA_SLOT" --checkpoint=fast
  # The copy carries the primary's settings; later lines win.
  as_pg_owner tee -a "$REPLICA_DATA.partial/postgresql.conf" >/dev/null <<CONF
# GeoMarket replica
port = $REPLICA_PORT
unix_socket_directories = '$REPLICA_RUN'
shared_buffers = 128MB
hot_standby = on
# Reads that conflict with replayed cleanup wait this long before being cancelled.
max_standby_streaming_delay = 5s
CONF
  as_pg_owner mv "$REPLICA_DATA.partial" "$REPLICA_DATA"
}

replica_start() {
  pg_running || { say "The replica needs the primary running" >&2; exit 1; }
  as_pg_owner mkdir -p "$REPLICA_HOME" "$REPLICA_RUN"
  if [ ! -s "$REPLICA_DATA/PG_VERSION" ]; then replica_create; fi
  # It streams from the primary's socket and port of today, whatever it was made with.
  as_pg_owner sed -i -E "/^primary_conninfo/ { s/ port=[0-9]+/ port=$PG_PORT/; s| host=''[^']*''| host=''$PG_RUN''| }" \
    "$REPLICA_DATA/postgresql.auto.conf"
  # The replica tests hold replay back, as a lagging replica (new test databases are
  # copies of template1, and reach the replica with the grant).
  psql_admin -d template1 -c "GRANT EXECUTE ON FUNCTION pg_wal_replay_pause(), pg_wal_replay_resume(), pg_reload_conf() TO $PG_USER"
  # And delay it, as an operator delays a replica (recovery_min_apply_delay).
  psql_admin -d postgres -c "GRANT ALTER SYSTEM ON PARAMETER recovery_min_apply_delay TO $PG_USER"
  cluster_start "PostgreSQL replica" "$REPLICA_DATA" "$REPLICA_LOG" "$REPLICA_PORT" REPLICA_PORT 120 "$REPLICA_RUN"
}

replica_stop() {
  if [ -s "$REPLICA_DATA/PG_VERSION" ]; then cluster_stop "PostgreSQL replica" "$REPLICA_DATA"; fi
}

replica_status() {
  if replica_running; then
    say "PostgreSQL replica: running on 127.0.0.1:$REPLICA_PORT"
  elif [ -s "$REPLICA_DATA/PG_VERSION" ]; then
    say "PostgreSQL replica: stopped"
  fi
}

# PgBouncer in transaction mode in front of the primary (PGBOUNCER=1, or `make pgbouncer`),
# on PGBOUNCER_PORT, its files beside the primary's (pg_home). Every database name is
# forwarded to the primary, so test databases go through it too. Clients log in as the app
# role with its password: the userlist holds the role's SCRAM secret, read from the
# cluster at each start, which PgBouncer also logs in to the primary with. It keeps
# server-side prepared statements across transactions (max_prepared_statements, 1.21 and
# later: scripts/system-packages.sh builds it where Debian's is older). Startup options
# cannot pass it, so its server connections get jit=off as they open (connect_query).
PGBOUNCER_PORT=${PGBOUNCER_PORT:-$((PG_PORT + 2))}
PGBOUNCER_HOME=$PG_HOME/pgbouncer
PGBOUNCER_PID=$PGBOUNCER_HOME/pgbouncer.pid
PGBOUNCER_MIN_VERSION=1.21

pgbouncer_bin() { PATH=/usr/local/bin:$PATH:/usr/sbin command -v pgbouncer || true; }

pgbouncer_running() { [ -f "$PGBOUNCER_PID" ] && as_pg_owner kill -0 "$(cat "$PGBOUNCER_PID")" 2>/dev/null; }

pgbouncer_configure() {
  local secret
  secret=$(psql_admin -d postgres -At -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$PG_USER'")
  as_pg_owner mkdir -p "$PGBOUNCER_HOME"
  printf '"%s" "%s"\n' "$PG_USER" "$secret" | as_pg_owner tee "$PGBOUNCER_HOME/userlist.txt" >/dev/null
  as_pg_owner chmod 0600 "$PGBOUNCER_HOME/userlist.txt"
  as_pg_owner tee "$PGBOUNCER_HOME/pgbouncer.ini" >/dev/null <<CONF
[databases]
* = host=127.0.0.1 port=$PG_PORT connect_query='SET jit = off'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGBOUNCER_HOME/userlist.txt
pool_mode = transaction
max_prepared_statements = 200
; Per database: each test worker's database has a pool of its own.
default_pool_size = 40
max_client_conn = 2000
; Idle server connections go back to PostgreSQL soon: test databases come and go.
server_idle_timeout = 30
stats_users = $PG_USER
admin_users = $PG_USER
logfile = $PGBOUNCER_HOME/pgbouncer.log
pidfile = $PGBOUNCER_PID
CONF
}

pgbouncer_start() {
  local bin version
  bin=$(pgbouncer_bin)
  version=$([ -n "$bin" ] && "$bin" --version | awk 'NR == 1 {print $2}')
  if [ -z "$version" ] || [ "$(printf '%s\n%s\n' "$PGBOUNCER_MIN_VERSION" "$version" | sort -V | head -n 1)" != "$PGBOUNCER_MIN_VERSION" ]; then
    say "PgBouncer $PGBOUNCER_MIN_VERSION or newer not found${version:+ (found $version)}; run 'make setup' first." >&2
    exit 1
  fi
  pg_running || { say "PgBouncer needs the primary running" >&2; exit 1; }
  pgbouncer_configure
  if pgbouncer_running && ! listening "$PGBOUNCER_PORT"; then
    # Started before its port moved (scripts/ports.env): a reload keeps the old port.
    say "PgBouncer runs on another port; restarting it on $PGBOUNCER_PORT"
    pgbouncer_stop
  fi
  if pgbouncer_running; then
    # The role's password may have changed.
    as_pg_owner kill -HUP "$(cat "$PGBOUNCER_PID")"
    say "PgBouncer already running on 127.0.0.1:$PGBOUNCER_PORT"
    return
  fi
  port_free_or_fail PgBouncer "$PGBOUNCER_PORT" PGBOUNCER_PORT
  if ! as_pg_owner "$bin" -q -d "$PGBOUNCER_HOME/pgbouncer.ini"; then
    say "PgBouncer failed to start (is port $PGBOUNCER_PORT taken? set PGBOUNCER_PORT). Log:" >&2
    tail -n 5 "$PGBOUNCER_HOME/pgbouncer.log" >&2
    exit 1
  fi
  # With -d the command returns once it has forked, which may be before the daemon
  # listens: a client right after it was refused.
  for _ in $(seq 1 100); do
    listening "$PGBOUNCER_PORT" && break
    sleep 0.05
  done
  if ! listening "$PGBOUNCER_PORT"; then
    say "PgBouncer did not listen on 127.0.0.1:$PGBOUNCER_PORT within 5 s. Log:" >&2
    tail -n 5 "$PGBOUNCER_HOME/pgbouncer.log" >&2
    exit 1
  fi
  say "PgBouncer $version started on 127.0.0.1:$PGBOUNCER_PORT (transaction pooling)"
}

pgbouncer_stop() {
  if pgbouncer_running; then
    as_pg_owner kill -TERM "$(cat "$PGBOUNCER_PID")"
    for _ in $(seq 1 50); do pgbouncer_running || break; sleep 0.1; done
    say "PgBouncer stopped"
  fi
}

pgbouncer_status() {
  if pgbouncer_running; then
    say "PgBouncer: running on 127.0.0.1:$PGBOUNCER_PORT"
  elif [ -f "$PGBOUNCER_HOME/pgbouncer.ini" ]; then
    say "PgBouncer: stopped"
  fi
}

redis_cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

redis_running() { redis_cli "$1" ping 2>/dev/null | grep -q PONG; }

# This checkout's Redis in DIR: its pid file names a live process.
redis_ours() { [ -f "$1/redis.pid" ] && kill -0 "$(cat "$1/redis.pid")" 2>/dev/null; }

# redis_start NAME PORT PORT-VARIABLE DIR PERSISTENCE-OPTIONS...
redis_start() {
  local name=$1 port=$2 variable=$3 dir=$4
  shift 4
  if ! command -v redis-server >/dev/null; then
    say "redis-server not found; run 'make setup' first." >&2
    exit 1
  fi
  if redis_ours "$dir"; then
    if redis_running "$port"; then
      say "Redis ($name) already running on 127.0.0.1:$port"
      return
    fi
    # Started before its port moved (scripts/ports.env), or with another REDIS_PORT: two
    # servers must not share its files.
    say "Redis ($name) runs on another port; restarting it on $port"
    redis_kill "$dir"
  fi
  port_free_or_fail "Redis ($name)" "$port" "$variable"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --protected-mode yes "$@"
  for _ in $(seq 1 50); do redis_running "$port" && break; sleep 0.1; done
  redis_running "$port" || { say "Redis ($name) failed to start; see $dir/redis.log" >&2; exit 1; }
  say "Redis ($name) started on 127.0.0.1:$port"
}

# Stops this checkout's Redis in DIR by its pid, on whatever port it listens.
redis_kill() {
  local pid
  pid=$(cat "$1/redis.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "Redis in $1 (pid $pid) did not stop" >&2
  exit 1
}

redis_stop() {
  local name=$1 port=$2 dir=$3
  if redis_ours "$dir" && redis_running "$port"; then
    redis_cli "$port" shutdown nosave >/dev/null 2>&1 || true
    say "Redis ($name) stopped"
  elif redis_ours "$dir"; then
    redis_kill "$dir"
    say "Redis ($name) stopped (it ran on another port)"
  else
    say "Redis ($name) is not running"
  fi
}

redis_status() {
  local name=$1 port=$2 dir=$3
  if redis_ours "$dir" && redis_running "$port"; then
    say "Redis ($name): running on 127.0.0.1:$port"
  elif listening "$port"; then
    say "Redis ($name): stopped; 127.0.0.1:$port is taken by a process this checkout did not start"
  else
    say "Redis ($name): stopped"
  fi
}

case "${1:-}" in
  start)
    if [ -n "${DATABASE_URL:-}" ]; then say "DATABASE_URL is set: using it, no local PostgreSQL"; else pg_start; fi
    if [ "${REPLICA:-0}" = 1 ] && [ -z "${DATABASE_URL:-}" ]; then replica_start; fi
    if [ "${PGBOUNCER:-0}" = 1 ] && [ -z "${DATABASE_URL:-}" ]; then pgbouncer_start; fi
    if [ -n "${REDIS_URL:-}" ]; then
      say "REDIS_URL is set: using it, no local Redis"
    else
      redis_start cache "$REDIS_PORT" REDIS_PORT "$REDIS_DIR" --save "" --appendonly no
      redis_start broker "$REDIS_BROKER_PORT" REDIS_BROKER_PORT "$REDIS_BROKER_DIR" --save "" --appendonly yes
    fi
    ;;
  stop)
    if [ -z "${DATABASE_URL:-}" ]; then pgbouncer_stop; fi
    if [ -z "${DATABASE_URL:-}" ]; then replica_stop; fi
    if [ -z "${DATABASE_URL:-}" ]; then pg_stop; fi
    if [ -z "${REDIS_URL:-}" ]; then
      redis_stop cache "$REDIS_PORT" "$REDIS_DIR"
      redis_stop broker "$REDIS_BROKER_PORT" "$REDIS_BROKER_DIR"
    fi
    ;;
  ports)
    for name in PG_PORT REPLICA_PORT PGBOUNCER_PORT REDIS_PORT REDIS_BROKER_PORT; do
      echo "$name=${!name}"
    done
    ;;
  pg-home)
    pg_home_prepare
    echo "$PG_HOME"
    ;;
  status)
    if pg_running; then say "PostgreSQL: running on 127.0.0.1:$PG_PORT"; else say "PostgreSQL: stopped"; fi
    replica_status
    pgbouncer_status
    redis_status cache "$REDIS_PORT" "$REDIS_DIR"
    redis_status broker "$REDIS_BROKER_PORT" "$REDIS_BROKER_DIR"
    ;;
  *)
    say "usage: $0 start|stop|status|ports|pg-home" >&2
    exit 2
    ;;
esac
