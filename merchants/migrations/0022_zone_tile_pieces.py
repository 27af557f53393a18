from django.db import migrations

from merchants.tiles import BUFFER, EXTENT
from merchants.tiles import ZONES_DRAWN_MAX_ZOOM as MAX_ZOOM
from merchants.zone_triggers import zone_copy_triggers, zone_copy_triggers_drop

# A zones tile of the bench city at z12-z14 meets 400 to 6,000 zones, and clipping each
# outline to the tile (ST_AsMVTGeom: PostGIS's wagyu, a few microseconds a zone) was two
# thirds of the tile's time, done again for every tile served. What it gives for a zone
# and a tile depends on nothing else, so each active zone's outline is drawn here once,
# clipped to every tile it meets up to `MAX_ZOOM`, by the same call the tile would make:
# a tile reads its zones' pieces by its key, and ST_AsMVT only encodes them. A z14 tile
# is about six pieces a zone (a few points each), so the table is a few times the
# outlines' size.
#
# The pieces are kept by statement triggers on the outlines (migration 0021), which are
# themselves kept equal to the active zones: an outline written again (a zone redrawn, its
# fee or merchant changed) has its pieces drawn again.
#
# The grid is the tiles' (merchants/tiles.py): changing its extent or buffer, or the
# zooms drawn, needs a migration that draws the pieces again.
TABLE = "merchants_zone_tile_piece"
OUTLINES = "merchants_zone_tile_outline"

# Web Mercator's half-width, which ST_TileEnvelope's tiles divide.
HALF_WORLD = 20037508.342789244

# The tiles of each zoom whose envelope, with its buffer, meets the outline's box: those
# ST_AsMVTGeom may draw something in (the tile's own filter, `outline && envelope`).
# The planner takes each series of tiles for a thousand rows, so a statement drawing one
# zone looked costly enough to be compiled by JIT, on a connection where it is on: 0.3 s
# of compiling for a zone drawn in 2 ms. Not inlined (its SET), the function counts as
# the tens of rows it returns for a zone, and its own statement is never compiled.
PIECES_FUNCTION = f"""
CREATE FUNCTION {TABLE}s_of(outline geometry)
RETURNS TABLE (z smallint, x integer, y integer, geom geometry)
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 60 SET jit = off AS $$
    SELECT zoom::smallint, tx, ty, drawn.piece
    FROM generate_series(0, {MAX_ZOOM}) AS zoom
    CROSS JOIN LATERAL (
        SELECT {2 * HALF_WORLD}::float8 / (2 ^ zoom) AS side, 2 ^ zoom - 1 AS last,
               {BUFFER / EXTENT}::float8 AS margin
    ) AS grid
    CROSS JOIN LATERAL generate_series(
        greatest(0, ceil((ST_XMin(outline) + {HALF_WORLD}) / grid.side - 1 - grid.margin))::int,
        least(grid.last, floor((ST_XMax(outline) + {HALF_WORLD}) / grid.side + grid.margin))::int
    ) AS tx
    CROSS JOIN LATERAL generate_series(
        greatest(0, ceil(({HALF_WORLD} - ST_YMax(outline)) / grid.side - 1 - grid.margin))::int,
        least(grid.last, floor(({HALF_WORLD} - ST_YMin(outline)) / grid.side + grid.margin))::int
    ) AS ty
    CROSS JOIN LATERAL (
        SELECT ST_AsMVTGeom(outline, ST_TileEnvelope(zoom, tx, ty), {EXTENT}, {BUFFER}, true)
            AS piece
    ) AS drawn
    WHERE drawn.piece IS NOT NULL
$$"""  # noqa: S608 - fixed fragments only

PIECES_OF = f"""
    INSERT INTO {TABLE} (z, x, y, zone_id, merchant_id, delivery_fee, geom)
    SELECT p.z, p.x, p.y, o.zone_id, o.merchant_id, o.delivery_fee, p.geom
    FROM {{outlines}} AS o
    CROSS JOIN LATERAL {TABLE}s_of(o.outline) AS p
    ORDER BY p.z, p.x, p.y, o.zone_id"""  # noqa: S608 - fixed fragments only

TRIGGERS = zone_copy_triggers(
    name="pieces",
    table=TABLE,
    source=OUTLINES,
    source_key="zone_id",
    add=PIECES_OF.format(outlines="added_zones"),
    change=f"""DELETE FROM {TABLE} WHERE zone_id IN (SELECT zone_id FROM old_zones);
    {PIECES_OF.format(outlines="new_zones")}""",  # noqa: S608
)

FORWARD = f"""
{PIECES_FUNCTION};

CREATE TABLE {TABLE} (
    z smallint NOT NULL,
    x integer NOT NULL,
    y integer NOT NULL,
    zone_id bigint NOT NULL,
    merchant_id bigint NOT NULL,
    delivery_fee text NOT NULL,
    geom geometry NOT NULL
);

{PIECES_OF.format(outlines=OUTLINES)};

ALTER TABLE {TABLE} ADD PRIMARY KEY (z, x, y, zone_id);
CREATE INDEX {TABLE}_zone ON {TABLE} (zone_id);

{TRIGGERS}
ANALYZE {TABLE};
"""  # noqa: S608 - fixed fragments only

BACKWARD = f"""
{zone_copy_triggers_drop(name="pieces", source=OUTLINES)}
DROP TABLE {TABLE};
DROP FUNCTION {TABLE}s_of(geometry);
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0021_zone_tile_outlines")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
