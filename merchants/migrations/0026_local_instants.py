from django.db import migrations

# A merchant's local wall-clock times (its intervals' ends, a local date's midnight) as
# instants: the first instant its zone's clock shows that time, or a later one. Read by
# `timestamp AT TIME ZONE zone` alone, a time the clocks skip in spring was read as if
# they had not moved yet, an hour after the skip (an interval opening at 02:30 in Berlin
# opened at 03:30 CEST, closed from 03:00 while the clock showed its hours), so intervals
# apart on the clock could overlap in real time and their slots with them; and a time the
# clocks repeat in autumn was read as its second showing (an interval opening at 02:30
# was closed through the first). Read as the first instant the clock reaches the time,
# a later local time is never an earlier instant: intervals apart on the clock stay
# apart, and each is open for the real time the clock takes from its opening to its
# closing.


def _openings(read) -> str:
    """Migration 0009's `merchants_openings`, each local time (`local`) read by
    `read(local)`: forward by `merchants_local_instant`, back by `AT TIME ZONE` alone."""
    closes = read(
        "d.day + i.closes"
        " + CASE WHEN i.closes <= i.opens THEN interval '1 day' ELSE interval '0' END"
    )
    return f"""
CREATE OR REPLACE FUNCTION merchants_openings(m bigint, tz text, t0 timestamptz, t1 timestamptz)
RETURNS SETOF tstzrange LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH days AS (
        SELECT (t0 AT TIME ZONE tz)::date + k AS day
        FROM generate_series(-2, (t1 AT TIME ZONE tz)::date - (t0 AT TIME ZONE tz)::date) k
    ),
    bounds AS (
        SELECT {read("d.day + i.opens")} AS opens_at, {closes} AS closes_at
        FROM days d
        JOIN merchants_openinginterval i
          ON i.merchant_id = m AND i.weekday = extract(isodow FROM d.day)::int - 1
        UNION ALL
        SELECT {read("d.day::timestamp")}, {read("(d.day + 1)::timestamp")}
        FROM days d
        WHERE NOT EXISTS (SELECT 1 FROM merchants_openinginterval i WHERE i.merchant_id = m)
    )
    SELECT tstzrange(opens_at, greatest(opens_at, closes_at))
    FROM bounds
    WHERE opens_at < t1 AND closes_at > t0
$$;
"""  # noqa: S608 - fixed fragments only


FORWARD = """
-- The instant the clocks of `tz` move past a local time `local` they skip (spring):
-- the first instant its clock shows `local` or later. `local AT TIME ZONE tz` reads
-- `local` at the offset before the move, less than the move's length after it; reading
-- it at the offset after (that instant less the move) falls before it. The move is found
-- by the minute: offsets and moves are whole minutes.
CREATE FUNCTION merchants_skipped_local_instant(local timestamp, tz text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(min(i), local AT TIME ZONE tz)
    FROM generate_series(
        (local AT TIME ZONE tz) - ((local AT TIME ZONE tz) AT TIME ZONE tz - local),
        local AT TIME ZONE tz,
        interval '1 minute') i
    WHERE i AT TIME ZONE tz >= local
$$;

-- The first instant the clock of `tz` shows the local time `local` or a later one:
-- - read as the time three hours before it plus three real hours, where that reading
--   shows `local`: the instant itself when the clocks do not move in those hours, and
--   the first showing of a time they repeat (autumn) when they go back in them (no
--   zone's clocks go back by three hours or more);
-- - else read at its own offset, where that reading shows it: a time shown once, after
--   the clocks moved in those hours (America/Santiago's go back at midnight itself);
-- - else, a time the clocks skip (spring): the instant they move past it.
-- Inlined by the planner (no sub-select): the common case costs three readings where
-- `AT TIME ZONE` alone costs one, a fraction of a microsecond.
CREATE FUNCTION merchants_local_instant(local timestamp, tz text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN ((local - interval '3 hours') AT TIME ZONE tz + interval '3 hours')
             AT TIME ZONE tz = local
        THEN (local - interval '3 hours') AT TIME ZONE tz + interval '3 hours'
        WHEN (local AT TIME ZONE tz) AT TIME ZONE tz = local THEN local AT TIME ZONE tz
        ELSE merchants_skipped_local_instant(local, tz)
    END
$$;

-- As migration 0009's, each end read by `merchants_local_instant`: an opening lasts the
-- real time the clock takes from its opening to its closing, none for an interval the
-- spring's move skips whole.
""" + _openings(lambda local: f"merchants_local_instant({local}, tz)")  # noqa: S608

# The kept periods (migration 0011) were read from the openings as they were.
REFRESH = """
UPDATE merchants_merchant
SET open_periods = merchants_open_periods(
    id, timezone, lower(open_periods_span), upper(open_periods_span))
WHERE open_periods_span IS NOT NULL
"""

BACKWARD = (
    _openings(lambda local: f"({local}) AT TIME ZONE tz")
    + """
DROP FUNCTION merchants_local_instant(timestamp, text);
DROP FUNCTION merchants_skipped_local_instant(timestamp, text);
"""
)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0025_slot_booking_window")]

    operations = [migrations.RunSQL(FORWARD + REFRESH, BACKWARD + REFRESH)]
