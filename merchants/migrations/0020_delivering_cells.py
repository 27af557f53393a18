from importlib import import_module

import django.contrib.gis.db.models.fields
import django.contrib.postgres.fields.ranges
import django.db.models.deletion
from django.db import migrations, models

from merchants.zone_triggers import zone_copy_triggers, zone_copy_triggers_drop

_0004 = import_module("merchants.migrations.0004_zone_parts")
_0005 = import_module("merchants.migrations.0005_zone_parts_merchant")
_0006 = import_module("merchants.migrations.0006_zone_parts_nearest")
_0007 = import_module("merchants.migrations.0007_zone_parts_merchant_set")

# Zone coverage from a grid's cells (`merchants.models.DeliveryZoneCell`) instead of the
# zones' parts. Nine parts in ten were edge strips, a few centimetres wide, whose boxes
# (what a GiST index holds) span their whole edge: delivering-to's walk passed thousands
# of strips nowhere near the point, 1.5 to 2.4 ms of its time on the bench city. A point
# meets one row of each zone around it, in its cell, and most rows cover the whole cell.
CELLS_PER_DEGREE = 64
# A zone spanning more cells than this (raw SQL allows any size) gets one row for every
# cell: `ST_Covers` decides its points.
MAX_CELLS = 65_536

# The cell of a point: its column and row on the grid as one integer. `64 * x` is exact
# in binary floating point, so a point on a cell's west or south side is in that cell.
# Columns and rows stay within +-16384 (longitudes within +-180.1, latitudes within +-90).
# Plain SQL, inlined into a statement where it is used.
CELL_FUNCTION = f"""
CREATE FUNCTION merchants_zone_cell(point geometry) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (floor(ST_X(point) * {CELLS_PER_DEGREE})::integer + 16384) * 32768
           + floor(ST_Y(point) * {CELLS_PER_DEGREE})::integer + 16384
$$;
"""

# A zone's rows, from its area: `margin` as the parts measured it (migration 0004), the
# core and hull as buffers of it (round corners drawn with chords, at least 0.92 x margin
# from the area's boundary, and margin is twice the arc-chord gap), and a row for each
# cell of the hull's box that the hull meets. A cell's corners are multiples of a power
# of two, exact in floating point.
_N = CELLS_PER_DEGREE
CELLS_FUNCTION = f"""
CREATE FUNCTION merchants_zone_cells(area geography)
RETURNS TABLE (cell int4range, covered boolean, core geometry, hull geometry)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    planar geometry := area::geometry;
    margin double precision;
    core_area geometry;
    hull_area geometry;
BEGIN
    SELECT 2 * coalesce(max(ST_HausdorffDistance(
               edge.geom,
               ST_Segmentize(edge.geom::geography,
                             ST_Length(edge.geom::geography, false) / 8 + 0.001)::geometry)),
               0) + 1e-6
    INTO margin
    FROM ST_DumpSegments(planar) AS edge;
    hull_area := ST_Buffer(planar, margin, 'quad_segs=2');
    IF ST_XMax(planar) - ST_XMin(planar) >= 180 OR margin > 0.1
       OR (floor(ST_XMax(hull_area) * {_N}) - floor(ST_XMin(hull_area) * {_N}) + 1)
          * (floor(ST_YMax(hull_area) * {_N}) - floor(ST_YMin(hull_area) * {_N}) + 1)
          > {MAX_CELLS} THEN
        RETURN QUERY SELECT int4range(NULL, NULL), false, NULL::geometry, NULL::geometry;
        RETURN;
    END IF;
    core_area := ST_Buffer(planar, -margin, 'quad_segs=2');
    RETURN QUERY
        SELECT int4range(c.key, c.key, '[]'), c.covered,
               CASE WHEN NOT c.covered AND ST_Intersects(core_area, c.wide)
                    THEN ST_Intersection(core_area, c.wide) END,
               CASE WHEN NOT c.covered AND NOT ST_Covers(hull_area, c.wide)
                    THEN ST_Intersection(hull_area, c.wide) END
        FROM generate_series(floor(ST_XMin(hull_area) * {_N})::integer,
                             floor(ST_XMax(hull_area) * {_N})::integer) AS x,
             generate_series(floor(ST_YMin(hull_area) * {_N})::integer,
                             floor(ST_YMax(hull_area) * {_N})::integer) AS y,
             LATERAL (SELECT ST_MakeEnvelope(x / {_N}.0::float8, y / {_N}.0::float8,
                                             (x + 1) / {_N}.0::float8, (y + 1) / {_N}.0::float8,
                                             4326) AS box) AS b,
             LATERAL (SELECT merchants_zone_cell(ST_Point(ST_XMin(b.box), ST_YMin(b.box)))
                             AS key,
                             ST_Expand(b.box, 1 / {_N * 16}.0::float8) AS wide,
                             ST_Covers(core_area, b.box) AS covered) AS c
        WHERE ST_Intersects(hull_area, b.box);
END
$$;
"""  # noqa: S608 - numbers only

# The merchants of the zones `{zones}`, read FOR SHARE as migration 0007 explains.
MERCHANTS_OF = _0007.MERCHANTS_OF

# Adding the rows of the active ones of `{zones}`, a table of zone rows, beside `m`
# (`MERCHANTS_OF`). Rows written in bulk (the first fill, a COPY of many zones) go in the
# order of their cell, then of their merchant's geohash: a walk reads the rows of one
# cell, nearest merchants first, from a few pages instead of one page each.
CELLS_OF = """
    INSERT INTO merchants_deliveryzonecell
        (zone_id, merchant_id, delivery_fee, min_order_amount,
         merchant_location, merchant_is_active, cell, covered, core, hull)
    SELECT z.id, z.merchant_id, z.delivery_fee, z.min_order_amount,
           m.location, m.is_active, c.cell, c.covered, c.core, c.hull
    FROM {zones} AS z LEFT JOIN m ON m.id = z.merchant_id
    CROSS JOIN LATERAL merchants_zone_cells(z.area) AS c
    WHERE z.is_active{only}
    ORDER BY c.cell, ST_GeoHash(m.location::geometry)"""

# A merchant's location and active flag written to its zones' rows, as to the parts
# (migration 0005).
_PARTS_PUSH = _0005.FORWARD.split("{copy_merchant}")[1].split("DROP INDEX")[0]
_CELLS_PUSH = (
    _PARTS_PUSH.replace("merchants_deliveryzonepart", "merchants_deliveryzonecell")
    .replace("push_to_parts", "push_to_cells")
    .replace("-- Parts exist", "-- Rows exist")
)

# The zones of an update whose rows' columns changed (a renamed zone is not cut again),
# or whose id did (a zone removed and one added).
_RECUT = """
        SELECT n.id FROM new_zones AS n LEFT JOIN old_zones AS o ON o.id = n.id
        WHERE o.id IS NULL
           OR (n.is_active, n.merchant_id, n.delivery_fee, n.min_order_amount, ST_AsBinary(n.area))
              IS DISTINCT FROM
              (o.is_active, o.merchant_id, o.delivery_fee, o.min_order_amount, ST_AsBinary(o.area))"""

# Statement triggers with transition tables (merchants/zone_triggers.py): a COPY or a
# bulk insert of zones cuts them all in one statement. A changed zone's rows are deleted, then written again, in two
# statements: in one, the insert would meet the rows the delete has not yet removed.
# TRUNCATE of the zones (or of the merchants, cascading) empties the rows.
TRIGGERS = (
    zone_copy_triggers(
        name="cells",
        table="merchants_deliveryzonecell",
        add=f"""WITH {MERCHANTS_OF.format(zones="added_zones")}
    {CELLS_OF.format(zones="added_zones", only="")}""",
        change=f"""DELETE FROM merchants_deliveryzonecell
    WHERE zone_id IN ({_RECUT})
       OR zone_id IN (SELECT id FROM old_zones EXCEPT SELECT id FROM new_zones);
    WITH {MERCHANTS_OF.format(zones=f"new_zones WHERE id IN ({_RECUT})")}
    {CELLS_OF.format(zones="new_zones", only=f" AND z.id IN ({_RECUT})")}""",  # noqa: S608
    )
    + _CELLS_PUSH
)

# The walk of delivering-to: the cells holding the point, nearest merchant first (as
# migration 0006 explains), of active merchants only.
FILL = f"""
ALTER TABLE merchants_deliveryzonecell ADD COLUMN merchant_unit geometry
GENERATED ALWAYS AS (merchants_unit_vector(merchant_location)) STORED;

WITH {MERCHANTS_OF.format(zones="merchants_deliveryzone")}
{CELLS_OF.format(zones="merchants_deliveryzone", only="")};

CREATE INDEX merchants_deliveryzonecell_nearest
ON merchants_deliveryzonecell USING gist (cell, merchant_unit gist_geometry_ops_nd)
WHERE merchant_is_active;

ANALYZE merchants_deliveryzonecell;
"""  # noqa: S608 - fixed fragments only

# The parts' triggers and functions; the table goes with its model.
DROP_PARTS = """
DROP TRIGGER merchants_deliveryzone_parts_add ON merchants_deliveryzone;
DROP TRIGGER merchants_deliveryzone_parts_change ON merchants_deliveryzone;
DROP TRIGGER merchants_deliveryzone_parts_remove ON merchants_deliveryzone;
DROP TRIGGER merchants_merchant_push_to_parts ON merchants_merchant;
DROP FUNCTION merchants_deliveryzone_parts_add();
DROP FUNCTION merchants_deliveryzone_parts_change();
DROP FUNCTION merchants_deliveryzone_parts_remove();
DROP FUNCTION merchants_merchant_push_to_parts();
DROP FUNCTION merchants_zone_parts(geography);
"""

FORWARD = CELL_FUNCTION + CELLS_FUNCTION + TRIGGERS + FILL + DROP_PARTS

# Backwards, after the parts' table is made again by its model: the parts as migrations
# 0004 to 0007 left them, each step's own SQL, cut again from the zones.
_PARTS_NEAREST = "-- Stored:" + _0006.FORWARD.split("-- Stored:")[1]
BACKWARD = (
    zone_copy_triggers_drop(name="cells")
    + """
DROP TRIGGER merchants_merchant_push_to_cells ON merchants_merchant;
DROP FUNCTION merchants_merchant_push_to_cells();
DROP FUNCTION merchants_zone_cells(geography);
DROP FUNCTION merchants_zone_cell(geometry);
"""
    + _0004.PARTS_FUNCTION
    + _0004.TRIGGERS.format(
        parts_of_added=_0004.PARTS_OF.format(zones="added_zones"),
        parts_of_new=_0004.PARTS_OF.format(zones="new_zones"),
    )
    + _0005.COPY_MERCHANT
    + _PARTS_PUSH
    + _0007.FORWARD
    + f"""
WITH {MERCHANTS_OF.format(zones="merchants_deliveryzone")}
{_0007.PARTS_OF.format(zones="merchants_deliveryzone")};
"""
    + _PARTS_NEAREST.replace("DROP INDEX", "DROP INDEX IF EXISTS")
)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0019_merchant_shown_json")]

    operations = [
        migrations.CreateModel(
            name="DeliveryZoneCell",
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
                (
                    "merchant_location",
                    django.contrib.gis.db.models.fields.PointField(
                        geography=True, spatial_index=False, srid=4326
                    ),
                ),
                ("merchant_is_active", models.BooleanField()),
                ("cell", django.contrib.postgres.fields.ranges.IntegerRangeField()),
                ("covered", models.BooleanField()),
                (
                    "core",
                    django.contrib.gis.db.models.fields.GeometryField(
                        null=True, spatial_index=False, srid=4326
                    ),
                ),
                (
                    "hull",
                    django.contrib.gis.db.models.fields.GeometryField(
                        null=True, spatial_index=False, srid=4326
                    ),
                ),
                (
                    "zone",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="merchants.deliveryzone",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("zone", "cell"), name="zone_cell_unique")
                ],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.DeleteModel(name="DeliveryZonePart"),
    ]
