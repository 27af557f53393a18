#!/bin/sh
# A hot standby of `db`: the first start copies the primary with pg_basebackup -R, which
# writes standby.signal and primary_conninfo; every later start just resumes streaming.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h db -U "$POSTGRES_USER" -d "$POSTGRES_DB"; do sleep 1; done
  PGPASSWORD=$POSTGRES_PASSWORD pg_basebackup -h db -U "$POSTGRES_USER" -D "$PGDATA" \
    -R -X stream -S replica_1 --checkpoint=fast
  chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on
