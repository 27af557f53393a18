from importlib import import_module

from django.db import migrations

# `merchants_unit_vector` of delivering-to's point is computed when the statement is
# planned, twice (the walk's distance and its order). With `SET search_path` a SQL
# function is never inlined: each call ran through the SQL function executor, which
# parses and plans its body, about 0.2 ms of the statement's 1.3 ms of planning on the
# bench city. Without it, and with PostGIS's names spelled with their schema (what the
# setting was for: a restore runs with an empty search path), the planner inlines the
# body and folds it to a constant. Nor is a STRICT function whose body is not strict
# (the CASE) inlined; the body gives NULL for a NULL point all the same. The formula is
# 0008's, so the stored `merchant_unit` values stay exactly what it gives.
FORWARD = """
DO $migration$
DECLARE
    postgis text := (SELECT extnamespace::regnamespace::text FROM pg_extension
                     WHERE extname = 'postgis');
BEGIN
    EXECUTE format($function$
CREATE OR REPLACE FUNCTION merchants_unit_vector(location geography) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $body$
    SELECT %1$s.ST_MakePoint(
        cos(radians(CASE WHEN abs(%1$s.ST_Y(location::%1$s.geometry)) < 1e-300 THEN 0
                         ELSE %1$s.ST_Y(location::%1$s.geometry) END))
        * cos(radians(CASE WHEN abs(%1$s.ST_X(location::%1$s.geometry)) < 1e-300 THEN 0
                           ELSE %1$s.ST_X(location::%1$s.geometry) END)),
        cos(radians(CASE WHEN abs(%1$s.ST_Y(location::%1$s.geometry)) < 1e-300 THEN 0
                         ELSE %1$s.ST_Y(location::%1$s.geometry) END))
        * sin(radians(CASE WHEN abs(%1$s.ST_X(location::%1$s.geometry)) < 1e-300 THEN 0
                           ELSE %1$s.ST_X(location::%1$s.geometry) END)),
        sin(radians(CASE WHEN abs(%1$s.ST_Y(location::%1$s.geometry)) < 1e-300 THEN 0
                         ELSE %1$s.ST_Y(location::%1$s.geometry) END)))
$body$
$function$, quote_ident(postgis));
END
$migration$;
"""

# 0008's definition.
BACKWARD = import_module("merchants.migrations.0008_unit_vector_underflow").FORWARD


class Migration(migrations.Migration):
    dependencies = [("merchants", "0014_open_bounds")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
