import django.contrib.gis.db.models.fields
from django.db import migrations, models

# Zone parts carry their merchant's location and active flag, so delivering-to reads no
# merchant row for each covering zone (about 1,500 at a central bench point). Every part
# written takes them from its merchant (FOR SHARE: a merchant update in flight commits
# first, or waits for this one), and every merchant write that changes them (services,
# admin, raw SQL, an address moving the shop) writes them to its parts.
#
# The parts' one GiST index becomes two, for inner and for edge pieces: nine parts in
# ten are edge strips, and a point's inner pieces are found without walking them.

# Each part takes its merchant's columns as it is written. Replaced in migration 0007 by
# the zones' triggers writing them.
COPY_MERCHANT = """
CREATE FUNCTION merchants_deliveryzonepart_copy_merchant() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT m.location, m.is_active INTO NEW.merchant_location, NEW.merchant_is_active
    FROM merchants_merchant AS m WHERE m.id = NEW.merchant_id FOR SHARE;
    RETURN NEW;
END
$$;

CREATE TRIGGER merchants_deliveryzonepart_copy_merchant
BEFORE INSERT OR UPDATE OF merchant_id ON merchants_deliveryzonepart
FOR EACH ROW EXECUTE FUNCTION merchants_deliveryzonepart_copy_merchant();
"""

FORWARD = """
ALTER TABLE merchants_deliveryzonepart
    ADD COLUMN merchant_location geography(Point, 4326),
    ADD COLUMN merchant_is_active boolean;

UPDATE merchants_deliveryzonepart AS p
SET merchant_location = m.location, merchant_is_active = m.is_active
FROM merchants_merchant AS m WHERE m.id = p.merchant_id;

ALTER TABLE merchants_deliveryzonepart
    ALTER COLUMN merchant_location SET NOT NULL,
    ALTER COLUMN merchant_is_active SET NOT NULL;

{copy_merchant}
-- Parts exist for active zones only, so the zones' partial merchant index finds them.
CREATE FUNCTION merchants_merchant_push_to_parts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE merchants_deliveryzonepart
    SET merchant_location = NEW.location, merchant_is_active = NEW.is_active
    WHERE zone_id IN (SELECT z.id FROM merchants_deliveryzone AS z
                      WHERE z.merchant_id = NEW.id AND z.is_active);
    RETURN NULL;
END
$$;

-- No column list: a new address_id moves the location through a BEFORE trigger
-- without naming it.
CREATE TRIGGER merchants_merchant_push_to_parts
AFTER UPDATE ON merchants_merchant
FOR EACH ROW
WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active
      OR ST_AsBinary(OLD.location) IS DISTINCT FROM ST_AsBinary(NEW.location))
EXECUTE FUNCTION merchants_merchant_push_to_parts();

DROP INDEX merchants_deliveryzone_area_parts;
CREATE INDEX merchants_deliveryzone_area_inner
ON merchants_deliveryzonepart USING gist (shape) WHERE NOT on_edge;
CREATE INDEX merchants_deliveryzone_area_edges
ON merchants_deliveryzonepart USING gist (shape) WHERE on_edge;

ANALYZE merchants_deliveryzonepart;
"""

BACKWARD = """
DROP INDEX merchants_deliveryzone_area_inner;
DROP INDEX merchants_deliveryzone_area_edges;
CREATE INDEX merchants_deliveryzone_area_parts
ON merchants_deliveryzonepart USING gist (shape);
DROP TRIGGER merchants_merchant_push_to_parts ON merchants_merchant;
DROP FUNCTION merchants_merchant_push_to_parts();
DROP TRIGGER merchants_deliveryzonepart_copy_merchant ON merchants_deliveryzonepart;
DROP FUNCTION merchants_deliveryzonepart_copy_merchant();
ALTER TABLE merchants_deliveryzonepart
    DROP COLUMN merchant_location, DROP COLUMN merchant_is_active;
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0004_zone_parts")]

    operations = [
        migrations.RunSQL(
            FORWARD.format(copy_merchant=COPY_MERCHANT),
            BACKWARD,
            state_operations=[
                migrations.AddField(
                    model_name="deliveryzonepart",
                    name="merchant_location",
                    field=django.contrib.gis.db.models.fields.PointField(
                        geography=True, spatial_index=False, srid=4326
                    ),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name="deliveryzonepart",
                    name="merchant_is_active",
                    field=models.BooleanField(),
                    preserve_default=False,
                ),
            ],
        ),
    ]
