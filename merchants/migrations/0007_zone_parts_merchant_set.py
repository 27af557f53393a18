from importlib import import_module

from django.db import migrations

_0004 = import_module("merchants.migrations.0004_zone_parts")
_0005 = import_module("merchants.migrations.0005_zone_parts_merchant")

# The zones' statement triggers write each part's merchant columns themselves, from one
# join, instead of a row trigger reading the merchant for every part (about 60 us a
# part, 1.5 ms a zone). The merchants are read FOR SHARE: a merchant update in flight
# commits first (and its values are the ones copied), or waits for the zones' write,
# whose parts its own trigger then updates. A zone written before its merchant (the
# foreign key is deferred) fails on the columns' NOT NULL rather than losing its parts.
MERCHANTS_OF = """
    m AS MATERIALIZED (
        SELECT id, location, is_active FROM merchants_merchant
        WHERE id IN (SELECT merchant_id FROM {zones}) FOR SHARE
    )"""

PARTS_OF = """
    INSERT INTO merchants_deliveryzonepart
        (zone_id, merchant_id, delivery_fee, min_order_amount,
         merchant_location, merchant_is_active, on_edge, shape)
    SELECT z.id, z.merchant_id, z.delivery_fee, z.min_order_amount,
           m.location, m.is_active, part.on_edge, part.shape
    FROM {zones} AS z LEFT JOIN m ON m.id = z.merchant_id
    CROSS JOIN LATERAL merchants_zone_parts(z.area) AS part
    WHERE z.is_active"""

FORWARD = f"""
DROP TRIGGER merchants_deliveryzonepart_copy_merchant ON merchants_deliveryzonepart;
DROP FUNCTION merchants_deliveryzonepart_copy_merchant();

CREATE OR REPLACE FUNCTION merchants_deliveryzone_parts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH {MERCHANTS_OF.format(zones="added_zones")}
    {PARTS_OF.format(zones="added_zones")};
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION merchants_deliveryzone_parts_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only zones whose parts' columns changed are cut again: a renamed zone is not.
    WITH recut AS (
        SELECT n.id FROM new_zones AS n JOIN old_zones AS o ON o.id = n.id
        WHERE (n.is_active, n.merchant_id, n.delivery_fee, n.min_order_amount,
               ST_AsBinary(n.area))
              IS DISTINCT FROM
              (o.is_active, o.merchant_id, o.delivery_fee, o.min_order_amount,
               ST_AsBinary(o.area))
    ), cut AS (
        DELETE FROM merchants_deliveryzonepart WHERE zone_id IN (SELECT id FROM recut)
    ), {MERCHANTS_OF.format(zones="new_zones WHERE id IN (SELECT id FROM recut)")}
    {PARTS_OF.format(zones="new_zones")} AND z.id IN (SELECT id FROM recut);
    RETURN NULL;
END
$$;
"""  # noqa: S608 - fixed fragments only

# Backwards: 0004's functions (each CREATE OR REPLACE, the triggers kept) and 0005's
# row trigger again.
BACKWARD = (
    _0004.TRIGGERS.format(
        parts_of_added=_0004.PARTS_OF.format(zones="added_zones"),
        parts_of_new=_0004.PARTS_OF.format(zones="new_zones"),
    )
    .split("CREATE TRIGGER")[0]
    .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    + _0005.COPY_MERCHANT
)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0006_zone_parts_nearest")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
