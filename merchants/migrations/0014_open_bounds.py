from django.db import migrations, models

# A geo answer shows each merchant's open state: the first period it is open in from now
# to 14 days on. Read from the kept multirange (migration 0011) that is an `unnest` and an
# intersection a merchant, about 20 us, 2 ms of a delivering-to answer of 100 merchants.
# Read from the same periods' bounds in order, `[start, end, start, end, ...]`, it is a
# binary search (`width_bucket`) and two subscripts. The bounds are a generated column of
# the kept periods, so they cannot differ from them.
#
# Bounds in a list say which instants are in only if every period is [start, end): the
# openings are, the 14-day window is, and so are the closures, which the constraint below
# now holds them to (every closure written by the API already was).
FORWARD = """
CREATE FUNCTION merchants_period_bounds(periods tstzmultirange) RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(bound ORDER BY bound), '{}')
    FROM unnest(periods) r, unnest(ARRAY[lower(r), upper(r)]) bound
$$;

ALTER TABLE merchants_merchant ADD COLUMN open_bounds timestamptz[]
GENERATED ALWAYS AS (merchants_period_bounds(open_periods)) STORED;

-- The bounds of the periods the merchant is open in within [t0, t1): the kept ones while
-- they span the window (as `merchants_open_within` decides), else those of
-- `merchants_open_periods` itself. Inlined by the planner.
CREATE FUNCTION merchants_open_bounds(
    bounds timestamptz[], span tstzrange, m bigint, tz text, t0 timestamptz, t1 timestamptz
) RETURNS timestamptz[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN span @> tstzrange(t0, t1) THEN bounds
                ELSE merchants_period_bounds(merchants_open_periods(m, tz, t0, t1)) END
$$;
"""

BACKWARD = """
DROP FUNCTION merchants_open_bounds(
    timestamptz[], tstzrange, bigint, text, timestamptz, timestamptz);
ALTER TABLE merchants_merchant DROP COLUMN open_bounds;
DROP FUNCTION merchants_period_bounds(tstzmultirange);
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0013_slot_plan_bounds")]

    operations = [
        migrations.AddConstraint(
            model_name="closure",
            constraint=models.CheckConstraint(
                condition=models.Q(period__lower_inc=True, period__upper_inc=False),
                name="closure_half_open",
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
