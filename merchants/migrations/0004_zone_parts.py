import django.contrib.gis.db.models.fields
import django.db.models.deletion
from django.db import migrations, models

# The pieces of `merchants.models.DeliveryZonePart`, from one zone's area.
#
# `margin`, in degrees, is twice the widest gap between an edge as a great-circle arc
# (sampled at eighths of its length with ST_Segmentize, which follows the sphere as
# ST_Covers on geography does) and the same edge as a straight line in degrees, plus
# 1e-6° (about 0.1 m) for rounding. Inner pieces are the planar area shrunk by
# `margin` (round corners drawn with chords, so at least 0.92 × margin from the
# boundary), cut into pieces of at most 16 vertices; edge pieces are each edge widened
# by `margin` on every side (square ends). A zone the planar view cannot stand for,
# across the antimeridian (and so around a pole) or with arcs more than 0.05° from
# their chords, gets one edge piece covering the globe: ST_Covers decides every point.
PARTS_FUNCTION = """
CREATE FUNCTION merchants_zone_parts(area geography)
RETURNS TABLE (on_edge boolean, shape geometry)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    planar geometry := area::geometry;
    margin double precision;
BEGIN
    SELECT 2 * coalesce(max(ST_HausdorffDistance(
               edge.geom,
               ST_Segmentize(edge.geom::geography,
                             ST_Length(edge.geom::geography, false) / 8 + 0.001)::geometry)),
               0) + 1e-6
    INTO margin
    FROM ST_DumpSegments(planar) AS edge;
    IF ST_XMax(planar) - ST_XMin(planar) >= 180 OR margin > 0.1 THEN
        RETURN QUERY SELECT true, ST_MakeEnvelope(-180, -90, 180, 90, 4326);
        RETURN;
    END IF;
    RETURN QUERY
        SELECT false, piece
        FROM ST_Subdivide(ST_Buffer(planar, -margin, 'quad_segs=2'), 16) AS piece
        UNION ALL
        SELECT true, ST_Buffer(edge.geom, margin, 'endcap=square')
        FROM ST_DumpSegments(planar) AS edge;
END
$$;
"""

# Adding the parts of the active ones of `zones`, a table of zone rows.
PARTS_OF = """
    INSERT INTO merchants_deliveryzonepart
        (zone_id, merchant_id, delivery_fee, min_order_amount, on_edge, shape)
    SELECT z.id, z.merchant_id, z.delivery_fee, z.min_order_amount, part.on_edge, part.shape
    FROM {zones} AS z CROSS JOIN LATERAL merchants_zone_parts(z.area) AS part
    WHERE z.is_active"""

# Statement triggers with transition tables: a COPY or a bulk insert of zones cuts
# them all in one statement.
TRIGGERS = """
CREATE FUNCTION merchants_deliveryzone_parts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {parts_of_added};
    RETURN NULL;
END
$$;

CREATE FUNCTION merchants_deliveryzone_parts_change() RETURNS trigger
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
    )
    {parts_of_new} AND z.id IN (SELECT id FROM recut);
    RETURN NULL;
END
$$;

CREATE FUNCTION merchants_deliveryzone_parts_remove() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM merchants_deliveryzonepart
    WHERE zone_id IN (SELECT id FROM removed_zones);
    RETURN NULL;
END
$$;

CREATE TRIGGER merchants_deliveryzone_parts_add
AFTER INSERT ON merchants_deliveryzone REFERENCING NEW TABLE AS added_zones
FOR EACH STATEMENT EXECUTE FUNCTION merchants_deliveryzone_parts_add();

CREATE TRIGGER merchants_deliveryzone_parts_change
AFTER UPDATE ON merchants_deliveryzone REFERENCING OLD TABLE AS old_zones NEW TABLE AS new_zones
FOR EACH STATEMENT EXECUTE FUNCTION merchants_deliveryzone_parts_change();

CREATE TRIGGER merchants_deliveryzone_parts_remove
AFTER DELETE ON merchants_deliveryzone REFERENCING OLD TABLE AS removed_zones
FOR EACH STATEMENT EXECUTE FUNCTION merchants_deliveryzone_parts_remove();
"""

# The zones there already, then the index, built once over all of them.
FILL = """
{parts_of_zones};

CREATE INDEX merchants_deliveryzone_area_parts
ON merchants_deliveryzonepart USING gist (shape);

ANALYZE merchants_deliveryzonepart;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS merchants_deliveryzone_parts_add ON merchants_deliveryzone;
DROP TRIGGER IF EXISTS merchants_deliveryzone_parts_change ON merchants_deliveryzone;
DROP TRIGGER IF EXISTS merchants_deliveryzone_parts_remove ON merchants_deliveryzone;
DROP FUNCTION IF EXISTS merchants_deliveryzone_parts_add();
DROP FUNCTION IF EXISTS merchants_deliveryzone_parts_change();
DROP FUNCTION IF EXISTS merchants_deliveryzone_parts_remove();
DROP FUNCTION IF EXISTS merchants_zone_parts(geography);
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0003_zone_merchant_fee_idx")]

    operations = [
        migrations.CreateModel(
            name="DeliveryZonePart",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("merchant_id", models.BigIntegerField()),
                ("delivery_fee", models.DecimalField(decimal_places=2, max_digits=8)),
                ("min_order_amount", models.DecimalField(decimal_places=2, max_digits=10)),
                ("on_edge", models.BooleanField()),
                (
                    "shape",
                    django.contrib.gis.db.models.fields.GeometryField(
                        spatial_index=False, srid=4326
                    ),
                ),
                (
                    "zone",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="merchants.deliveryzone",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(
            PARTS_FUNCTION
            + TRIGGERS.format(
                parts_of_added=PARTS_OF.format(zones="added_zones"),
                parts_of_new=PARTS_OF.format(zones="new_zones"),
            )
            + FILL.format(parts_of_zones=PARTS_OF.format(zones="merchants_deliveryzone")),
            BACKWARD,
        ),
    ]
