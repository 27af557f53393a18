from django.db import migrations

# Delivering-to walks the parts nearest merchant first and stops after `limit`
# merchants, instead of finding every zone covering the point (about 1,500 at a central
# bench point) and ranking them all. A geography `<->` walk costs a lot per entry it
# passes, so the order comes from the merchant's location as a point on the unit sphere
# in 3D: the straight-line (chord) distance between two such points grows with their
# great-circle distance, so the 3D walk (`<<->>`, planar and cheap) visits merchants in
# the order of the sphere distance. The index's second column, the part's shape, keeps
# the walk to subtrees whose parts may contain the point, so a point few zones cover
# costs little too. Only active merchants' parts are indexed; the walk reads no other.
FORWARD = """
CREATE FUNCTION merchants_unit_vector(location geography) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path FROM CURRENT AS $$
    SELECT ST_MakePoint(cos(radians(ST_Y(location::geometry)))
                        * cos(radians(ST_X(location::geometry))),
                        cos(radians(ST_Y(location::geometry)))
                        * sin(radians(ST_X(location::geometry))),
                        sin(radians(ST_Y(location::geometry))))
$$;

-- Stored: the walk reads it for every part it passes (the function costs ~20 us a call).
ALTER TABLE merchants_deliveryzonepart ADD COLUMN merchant_unit geometry
GENERATED ALWAYS AS (merchants_unit_vector(merchant_location)) STORED;

DROP INDEX merchants_deliveryzone_area_inner;
DROP INDEX merchants_deliveryzone_area_edges;
CREATE INDEX merchants_deliveryzone_area_nearest
ON merchants_deliveryzonepart USING gist (merchant_unit gist_geometry_ops_nd, shape)
WHERE merchant_is_active;

ANALYZE merchants_deliveryzonepart;
"""

BACKWARD = """
DROP INDEX merchants_deliveryzone_area_nearest;
ALTER TABLE merchants_deliveryzonepart DROP COLUMN merchant_unit;
DROP FUNCTION merchants_unit_vector(geography);
CREATE INDEX merchants_deliveryzone_area_inner
ON merchants_deliveryzonepart USING gist (shape) WHERE NOT on_edge;
CREATE INDEX merchants_deliveryzone_area_edges
ON merchants_deliveryzonepart USING gist (shape) WHERE on_edge;
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0005_zone_parts_merchant")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
