from django.db import migrations

# `radians()` of a longitude or latitude as small as 5e-324 (a valid coordinate a client
# may send) underflows to zero, and PostgreSQL's float multiplication raises on that, so
# delivering-to answered 400 for a point its parameters accept. Coordinates under 1e-300
# degrees are taken as 0: the vector differs by far less than a float's precision, so the
# values stored in `merchant_unit` (none of which raised) stay exactly what this gives.
FORWARD = """
CREATE OR REPLACE FUNCTION merchants_unit_vector(location geography) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path FROM CURRENT AS $$
    SELECT ST_MakePoint(cos(radians(lat)) * cos(radians(lng)),
                        cos(radians(lat)) * sin(radians(lng)),
                        sin(radians(lat)))
    FROM (SELECT CASE WHEN abs(ST_X(location::geometry)) < 1e-300 THEN 0
                      ELSE ST_X(location::geometry) END AS lng,
                 CASE WHEN abs(ST_Y(location::geometry)) < 1e-300 THEN 0
                      ELSE ST_Y(location::geometry) END AS lat) AS degrees
$$;
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION merchants_unit_vector(location geography) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path FROM CURRENT AS $$
    SELECT ST_MakePoint(cos(radians(ST_Y(location::geometry)))
                        * cos(radians(ST_X(location::geometry))),
                        cos(radians(ST_Y(location::geometry)))
                        * sin(radians(ST_X(location::geometry))),
                        sin(radians(ST_Y(location::geometry))))
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0007_zone_parts_merchant_set")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
