from django.db import migrations

# A merchant's delivery slots, in SQL: the slots list reads them and booking checks one
# against them, so "is this one of the merchant's current slots" has one answer. Built
# on `merchants_openings`, so open-or-closed and daylight-saving changes are decided
# where they are for everything else.
FUNCTIONS = """
-- The merchant's current slots starting within [t0, t1), seen at the instant `at`: each
-- opening cut from its start into slots of `slot_minutes` of real time, those that end
-- by its end; none overlapping a closure; starting at least `lead_minutes` after `at`
-- and less than `horizon_days` (of 24 hours) after it. No plan, no slots.
CREATE FUNCTION merchants_slots(
    m bigint, tz text, t0 timestamptz, t1 timestamptz, at timestamptz
) RETURNS TABLE (starts_at timestamptz, ends_at timestamptz, capacity integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH plan AS (
        SELECT make_interval(mins => p.slot_minutes) AS length, p.capacity,
               greatest(t0, at + make_interval(mins => p.lead_minutes)) AS first,
               least(t1, at + make_interval(hours => 24 * p.horizon_days)) AS last
        FROM merchants_slotplan p
        WHERE p.merchant_id = m
    )
    SELECT DISTINCT s.starts_at, s.starts_at + plan.length, plan.capacity
    FROM plan
    CROSS JOIN LATERAL merchants_openings(m, tz, plan.first, plan.last) o
    CROSS JOIN LATERAL generate_series(lower(o), upper(o) - plan.length, plan.length)
        AS s(starts_at)
    WHERE plan.first < plan.last
      AND s.starts_at >= plan.first AND s.starts_at < plan.last
      AND NOT EXISTS (
          SELECT 1 FROM merchants_closure c
          WHERE c.merchant_id = m
            AND c.period && tstzrange(s.starts_at, s.starts_at + plan.length)
      )
    ORDER BY s.starts_at
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION merchants_slots(bigint, text, timestamptz, timestamptz, timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0009_hours_closures_slots"),
    ]

    operations = [migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS)]
