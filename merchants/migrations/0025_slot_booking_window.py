import datetime

from django.db import migrations, models

# A slot's bookings keep the window they were booked for, so that bookings made under
# another cut of the hours (a plan of 30 minutes since made 60, hours shifted by 15
# minutes) count against the slots they overlap. A row is one window, `ends_at` joins the
# primary key: a 30-minute slot and a 60-minute one may start at the same instant.
#
# The rows written before knew only their start. Their orders knew the end (the orders
# table has kept `slot_ends_at` since orders/0007): a row is split among the windows its
# live orders (neither cancelled nor returned; a rejected order booked nothing) hold, the
# longest taking what the orders do not account for. A row no live order accounts for
# (none should be) takes the merchant's current slot length or, with no plan, the
# longest slot's.
LIVE_WINDOWS = """
SELECT o.merchant_id, o.slot_starts_at AS starts_at, o.slot_ends_at AS ends_at,
       count(*) AS n
FROM orders_order o
WHERE o.slot_starts_at IS NOT NULL
  AND o.status NOT IN ('rejected', 'cancelled', 'returned')
GROUP BY 1, 2, 3
"""

# The windows are written as new rows and the rows of starts alone deleted, not updated
# in place: updated, they would leave the new primary key unusable by the planner until
# every transaction older than the migration has ended (broken HOT chains).
FORWARD = [
    "ALTER TABLE merchants_slotbooking DROP CONSTRAINT merchants_slotbooking_pkey",
    f"""
    WITH live AS ({LIVE_WINDOWS}), legacy AS (
        SELECT b.merchant_id, b.starts_at, b.booked, coalesce(
            (SELECT max(live.ends_at) FROM live
             WHERE live.merchant_id = b.merchant_id AND live.starts_at = b.starts_at),
            b.starts_at + (SELECT make_interval(mins => p.slot_minutes)
                           FROM merchants_slotplan p WHERE p.merchant_id = b.merchant_id),
            b.starts_at + interval '240 minutes'
        ) AS ends_at
        FROM merchants_slotbooking b
    ), shorter AS (
        SELECT live.merchant_id, live.starts_at, live.ends_at, live.n
        FROM live
        JOIN legacy
          ON legacy.merchant_id = live.merchant_id AND legacy.starts_at = live.starts_at
         AND live.ends_at < legacy.ends_at
    )
    INSERT INTO merchants_slotbooking (merchant_id, starts_at, ends_at, booked)
    SELECT merchant_id, starts_at, ends_at, n FROM shorter
    UNION ALL
    SELECT legacy.merchant_id, legacy.starts_at, legacy.ends_at,
           greatest(legacy.booked - coalesce(
               (SELECT sum(shorter.n) FROM shorter
                WHERE shorter.merchant_id = legacy.merchant_id
                  AND shorter.starts_at = legacy.starts_at), 0), 0)
    FROM legacy
    """,  # noqa: S608 - a fixed fragment only
    "DELETE FROM merchants_slotbooking WHERE ends_at IS NULL",
    # The rows written check their merchant (a deferred foreign key) now: a table is not
    # altered with checks pending.
    "SET CONSTRAINTS ALL IMMEDIATE",
    "ALTER TABLE merchants_slotbooking ALTER COLUMN ends_at SET NOT NULL",
    "ALTER TABLE merchants_slotbooking ADD PRIMARY KEY (merchant_id, starts_at, ends_at)",
]

# Back: one row a start again, holding all that start's bookings.
BACKWARD = [
    "ALTER TABLE merchants_slotbooking DROP CONSTRAINT merchants_slotbooking_pkey",
    """
    WITH merged AS (
        DELETE FROM merchants_slotbooking b
        WHERE b.ends_at > (SELECT min(k.ends_at) FROM merchants_slotbooking k
                           WHERE k.merchant_id = b.merchant_id AND k.starts_at = b.starts_at)
        RETURNING b.merchant_id, b.starts_at, b.booked
    )
    UPDATE merchants_slotbooking b
    SET booked = b.booked + merged.booked
    FROM (SELECT merchant_id, starts_at, sum(booked) AS booked FROM merged GROUP BY 1, 2) merged
    WHERE b.merchant_id = merged.merchant_id AND b.starts_at = merged.starts_at
    """,
    "ALTER TABLE merchants_slotbooking ADD PRIMARY KEY (merchant_id, starts_at)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0024_zone_area_right_handed"),
        ("orders", "0007_order_slot"),
    ]

    operations = [
        migrations.AddField(
            model_name="slotbooking",
            name="ends_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AlterField(
                    model_name="slotbooking",
                    name="ends_at",
                    field=models.DateTimeField(),
                ),
                migrations.AlterField(
                    model_name="slotbooking",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "merchant_id",
                        "starts_at",
                        "ends_at",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="slotbooking",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("ends_at__gt", models.F("starts_at")),
                    (
                        "ends_at__lte",
                        models.F("starts_at") + models.Value(datetime.timedelta(minutes=240)),
                    ),
                ),
                name="slot_booking_window",
            ),
        ),
    ]
