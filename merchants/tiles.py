"""Mapbox Vector Tiles of merchants and their delivery zones, built by PostGIS.

A layer is declared once (`TileLayer`): the rows it shows, each with its shape in Web
Mercator, the test that a row meets the tile (through a GiST index) and the attributes a
feature carries. `tile_statement` wraps any layer in the same statement: the rows meeting
the tile, clipped and encoded by `ST_AsMVTGeom` and `ST_AsMVT`, and the first instant at
which a feature's attributes change with no write (a shop opening), which bounds how long
the tile may be cached. A layer may also have its shapes drawn ahead, already clipped to
each tile by the same `ST_AsMVTGeom` call, up to a zoom (`drawn_rows_sql`): the tile
then only reads and encodes them.
"""

import functools
import math
from dataclasses import dataclass

from django.db import connections
from django.utils import timezone
from psycopg.pq import Format

from geomarket.answer_cache import Expiring
from geomarket.db.replicas import read_alias, replica_reads
from geomarket.sql import fetch_all
from merchants.selectors import _OPEN_BOUNDS_SQL, _OPEN_STATE_SQL, _open_period_sql

# The tile's grid, and the margin (in the grid's units) kept around it so that a symbol or
# an outline crossing the tile's edge is drawn whole on both sides.
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 20
# The zones' outlines are drawn ahead for every tile up to this zoom (migration 0022).
# It, EXTENT and BUFFER are the pieces' grid: changing one needs a migration that draws
# them again.
ZONES_DRAWN_MAX_ZOOM = 14
# Below this zoom a tile spans so much of the globe that its envelope, as a geography,
# has edges too long to stand for parallels: every row of a layer tested on a geography is
# read and clipped instead. The whole marketplace is a handful of cities, so such tiles
# stay small.
MIN_FILTERED_ZOOM = 6

# The tile's envelope in Web Mercator, and the same with its margin. Written out rather than
# taken from a CTE: as constants the planner folds them, estimates the rows from the
# column's statistics and reads a dense tile's rows by a bitmap scan in the heap's order;
# from a CTE the index is probed in its own order (about 10 % slower for a dense zones tile).
_TILE = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
_TILE_WITH_MARGIN = f"ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {BUFFER / EXTENT})"


@dataclass(frozen=True)
class TileLayer:
    name: str
    # `SELECT ... FROM ... WHERE ...` of the rows, each with the layer's attributes, its
    # shape in Web Mercator as `g` and `changes_at` (when its attributes next change with
    # no write, or NULL); `{covers}` is where `covers` goes.
    rows_sql: str
    # The condition that keeps the rows meeting the tile with its margin.
    covers: str
    attributes: tuple[str, ...]
    # Below this zoom `covers` is left out and every row is read.
    min_filtered_zoom: int = 0
    # Up to `drawn_max_zoom`, the rows of tile `%(z)s/%(x)s/%(y)s`, with the same columns
    # but `geom` for `g`: each shape as ST_AsMVTGeom draws it in that tile, never NULL.
    drawn_rows_sql: str | None = None
    drawn_max_zoom: int = -1
    # Whether the best plan of `rows_sql` depends on the tile, so that its values stay in
    # its text and it is planned each time: a dense zones tile reads its outlines by a
    # bitmap scan in the heap's order, and a generic plan, made without the envelope,
    # probes the index in its own order as the envelope from a CTE did (see `_TILE`).
    plan_per_tile: bool = False


_OPEN = _open_period_sql(now="%(now)s::timestamptz")

MERCHANTS = TileLayer(
    name="merchants",
    # A tile shows whether a shop is open, not when it next opens: no `opening_seen_at`.
    rows_sql=_OPEN_STATE_SQL.format(
        rows=f"""
SELECT m.id, m.name, {_OPEN["open_from"]} AS open_from, {_OPEN["open_until"]} AS open_until,
       NULL::timestamptz AS opening_seen_at,
       %(now)s::timestamptz AS shown_at, ST_Transform(m.location::geometry, 3857) AS g
FROM merchants_merchant m
CROSS JOIN LATERAL ({_OPEN_BOUNDS_SQL.format(m="m", now="%(now)s::timestamptz")}) kept
WHERE m.is_active AND {{covers}}"""  # noqa: S608 - fixed fragments only
    ),
    # The tile's box in WGS84: Web Mercator maps parallels and meridians to the tile's
    # sides, so this box is the tile's, and its long sides are densified so that, as a
    # geography, they follow the parallels rather than great circles.
    covers=f"m.location && ST_Segmentize(ST_Transform({_TILE_WITH_MARGIN}, 4326), 0.01)::geography",
    attributes=("id", "name", "open_now"),
    min_filtered_zoom=MIN_FILTERED_ZOOM,
)

# The zones of inactive merchants are left out as the zones not of an inactive merchant:
# the few inactive ids are hashed once a tile (from their own index, migration 0018), where
# a join would read each zone's merchant or every active merchant.
_OF_ACTIVE_MERCHANTS = "NOT IN (SELECT m.id FROM merchants_merchant m WHERE NOT m.is_active)"

ZONES = TileLayer(
    name="zones",
    # Each active zone's outline in Web Mercator with what the tile shows of it, kept by
    # triggers in a table of their own in spatial order (migration 0021).
    rows_sql=f"""
SELECT o.zone_id AS id, o.merchant_id, o.delivery_fee, NULL::timestamptz AS changes_at,
       o.outline AS g
FROM merchants_zone_tile_outline o
WHERE {{covers}} AND o.merchant_id {_OF_ACTIVE_MERCHANTS}""",  # noqa: S608
    covers=f"o.outline && {_TILE_WITH_MARGIN}",
    attributes=("id", "merchant_id", "delivery_fee"),
    plan_per_tile=True,
    # The same outlines clipped to each tile ahead, kept by triggers on the outlines
    # (migration 0022), read by the tile's key.
    drawn_rows_sql=f"""
SELECT p.zone_id AS id, p.merchant_id, p.delivery_fee, NULL::timestamptz AS changes_at,
       p.geom
FROM merchants_zone_tile_piece p
WHERE p.z = %(z)s AND p.x = %(x)s AND p.y = %(y)s AND p.merchant_id {_OF_ACTIVE_MERCHANTS}""",  # noqa: S608
    drawn_max_zoom=ZONES_DRAWN_MAX_ZOOM,
)

LAYERS = {layer.name: layer for layer in (MERCHANTS, ZONES)}


@functools.cache
def tile_statement(layer_name: str, *, filtered: bool, drawn: bool = False) -> str:
    """The tile of `layer_name` at `%(z)s/%(x)s/%(y)s` as of `%(now)s`: one row, the
    encoded tile (empty when no feature meets it) and the epoch of its first `changes_at`.
    Each feature's id is the row's, and `id` is among its attributes too: map libraries
    read one or the other. `drawn`: from the shapes drawn ahead (`drawn_rows_sql`)."""
    layer = LAYERS[layer_name]
    if drawn:
        drawn_rows = layer.drawn_rows_sql
    else:
        rows = layer.rows_sql.format(covers=layer.covers if filtered else "true")
        # `OFFSET 0` keeps `geom` computed once a row: flattened, ST_AsMVTGeom would run
        # again for the filter and for `f`.
        drawn_rows = f"""
    SELECT r.*, ST_AsMVTGeom(r.g, {_TILE}, {EXTENT}, {BUFFER}, true) AS geom
    FROM ({rows}) r
    OFFSET 0"""  # noqa: S608 - fixed fragments only
    attributes = ", ".join(f"t.{name}" for name in layer.attributes)
    # One pass over the drawn rows for both aggregates.
    return f"""
SELECT ST_AsMVT(f, '{layer.name}', {EXTENT}, 'geom', 'feature_id'),
       extract(epoch FROM min(t.changes_at))::float8
FROM ({drawn_rows}
) t
CROSS JOIN LATERAL (SELECT t.id AS feature_id, {attributes}, t.geom) f
WHERE t.geom IS NOT NULL
"""  # noqa: S608 - fixed fragments only


def tile_in_range(*, z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def tile_of(*, lat: float, lng: float, z: int) -> tuple[int, int]:
    """The `x, y` of the Web Mercator tile at zoom `z` holding the point, numbered as
    slippy maps number them (`ST_TileEnvelope`'s numbering)."""
    n = 2**z
    x = math.floor((lng + 180) / 360 * n)
    y = math.floor((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


@replica_reads
def tile(*, layer: str, z: int, x: int, y: int) -> Expiring:
    """The encoded tile (empty bytes when no feature meets it) and when it stops being
    true with no write (Unix time), None when nothing in it changes with the clock."""
    declared = LAYERS[layer]
    params = {"z": z, "x": x, "y": y, "now": timezone.now()}
    if z <= declared.drawn_max_zoom:
        statement = tile_statement(layer, filtered=True, drawn=True)
        ((body, changes_at),) = _fetch_prepared(statement, params)
    else:
        statement = tile_statement(layer, filtered=z >= declared.min_filtered_zoom)
        fetch = fetch_all if declared.plan_per_tile else _fetch_prepared
        ((body, changes_at),) = fetch(statement, params)
    return Expiring(bytes(body or b""), changes_at)


def _fetch_prepared(statement: str, params: dict) -> list[tuple]:
    """The rows of a statement whose values are bound on the server, so that the
    connection prepares it, and whose results come in binary. Planning a tile's statement
    each time, and the tile sent as hex (twice its size, encoded there, decoded here),
    cost about a millisecond (a zones tile drawn ahead on the bench city: 5.2 ms in
    text, 4.1 prepared and binary); one generic plan serves every tile of a layer whose
    rows are read the same way whatever the tile (`plan_per_tile`)."""
    with connections[read_alias()].prepared_cursor() as cursor:
        cursor.cursor.format = Format.BINARY
        cursor.execute(statement, params)
        return cursor.fetchall()
