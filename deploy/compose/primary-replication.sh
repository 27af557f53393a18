#!/bin/sh
# Runs once, when the primary's data directory is first created (docker-entrypoint-initdb.d):
# lets the replica stream WAL as the database owner, and keeps a slot so the primary holds
# the WAL the replica has not received yet, however long the replica is away.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >>"$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
  -c "SELECT pg_create_physical_replication_slot('replica_1')"
