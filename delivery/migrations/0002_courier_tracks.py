from django.db import migrations

# Every ping is kept: about 35 million rows a day at 400 pings a second, so the track is
# partitioned by UTC day. Retention drops whole partitions (no DELETE, no bloat); a BRIN
# index on time suits rows that arrive in time order; the btree (courier_id, recorded_at)
# serves one courier's track over a window. No foreign key to delivery_courier: its check
# would lock the courier row on the busiest write, and orphaned points age out anyway.
# Storage is real (4 bytes): a tenth of a degree or a centimetre is far finer than a phone's
# fix.
FORWARD = """
CREATE TABLE delivery_courierping (
    courier_id bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    location geography(Point, 4326) NOT NULL,
    heading real,
    speed_mps real,
    accuracy_m real
) PARTITION BY RANGE (recorded_at);

CREATE INDEX delivery_courierping_recorded_brin
    ON delivery_courierping USING brin (recorded_at);
CREATE INDEX delivery_courierping_courier_time
    ON delivery_courierping (courier_id, recorded_at);

-- A ping never fails for want of a partition: days nobody prepared land here, and the
-- next `delivery_courierping_partitions_ensure` moves them into their own day.
CREATE TABLE delivery_courierping_default PARTITION OF delivery_courierping DEFAULT;

-- The partitions of `days` UTC days from `first`, those missing only. Each is built
-- beside the table, given the default partition's rows of its day, then attached:
-- ATTACH takes a lock that lets pings go on, where CREATE ... PARTITION OF would block them.
CREATE FUNCTION delivery_courierping_partitions_ensure(first date, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    name text;
    lo timestamptz;
    hi timestamptz;
    made integer := 0;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        day := first + i;
        name := 'delivery_courierping_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE delivery_courierping INCLUDING ALL)', name);
        EXECUTE format(
            'WITH moved AS (DELETE FROM delivery_courierping_default'
            ' WHERE recorded_at >= %L AND recorded_at < %L RETURNING *)'
            ' INSERT INTO %I SELECT * FROM moved', lo, hi, name);
        EXECUTE format(
            'ALTER TABLE delivery_courierping ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            name, lo, hi);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;

-- Drops the day partitions that end at or before `before` and deletes the default
-- partition's older rows; answers the number of partitions dropped.
CREATE FUNCTION delivery_courierping_prune(before timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'delivery_courierping'::regclass
          AND c.relname ~ '^delivery_courierping_p[0-9]{8}$'
          AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
              <= before
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM delivery_courierping_default WHERE recorded_at < before;
    RETURN dropped;
END
$$;

SELECT delivery_courierping_partitions_ensure((now() AT TIME ZONE 'UTC')::date - 1, 9);
"""

BACKWARD = """
DROP FUNCTION delivery_courierping_prune(timestamptz);
DROP FUNCTION delivery_courierping_partitions_ensure(date, integer);
DROP TABLE delivery_courierping;
"""


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
