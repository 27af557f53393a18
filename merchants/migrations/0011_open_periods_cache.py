from django.db import migrations

# Testing `merchants_open_at` costs tens of microseconds a merchant, and a statement
# calling it pays for planning its body again: about 0.7 ms on a products/nearby that
# reads a handful of merchants in 0.4 ms. Each merchant row therefore keeps what that
# function answers over a window of days (`open_periods` over `open_periods_span`),
# written by `merchants.services.merchant_open_periods_refresh`; inside the window a test
# is one multirange lookup, outside it (a window gone stale) the function is asked again,
# so a late refresh costs time, never correctness.
FORWARD = """
ALTER TABLE merchants_merchant
    ADD COLUMN open_periods tstzmultirange,
    ADD COLUMN open_periods_span tstzrange;

-- When the merchant is open within [t0, t1): its kept periods when they span the window,
-- else `merchants_open_periods` itself. Inlined by the planner (one CASE expression), so
-- the function runs only for a stale window.
CREATE FUNCTION merchants_open_within(
    periods tstzmultirange, span tstzrange, m bigint, tz text, t0 timestamptz, t1 timestamptz
) RETURNS tstzmultirange LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN span @> tstzrange(t0, t1)
                THEN periods * tstzmultirange(tstzrange(t0, t1))
                ELSE merchants_open_periods(m, tz, t0, t1) END
$$;

-- `merchants_open_at`, answered from the kept periods when they span `at`.
CREATE FUNCTION merchants_open_at_kept(
    periods tstzmultirange, span tstzrange, m bigint, tz text, at timestamptz
) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN span @> at THEN periods @> at ELSE merchants_open_at(m, tz, at) END
$$;
"""

BACKWARD = """
DROP FUNCTION merchants_open_at_kept(tstzmultirange, tstzrange, bigint, text, timestamptz);
DROP FUNCTION merchants_open_within(
    tstzmultirange, tstzrange, bigint, text, timestamptz, timestamptz);
ALTER TABLE merchants_merchant DROP COLUMN open_periods, DROP COLUMN open_periods_span;
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0010_slots")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
