"""Mapbox Vector Tiles of merchants and their delivery zones, built by PostGIS.

A layer is declared once (`TileLayer`): the rows it shows, their geography column and
the attributes a feature carries. `tile_statement` wraps any layer in the same statement:
rows whose geography meets the tile (through its GiST index), projected to Web Mercator,
clipped and encoded by `ST_AsMVTGeom` and `ST_AsMVT`, and the first instant at which a
feature's attributes change with no write (a shop opening), which bounds how long the
tile may be cached.
"""

import functools
import math
from dataclasses import dataclass

from django.utils import timezone

from geomarket.answer_cache import Expiring
from geomarket.db.replicas import replica_reads
from geomarket.sql import fetch_all
from merchants.selectors import _OPEN_BOUNDS_SQL, _OPEN_STATE_SQL, _open_period_sql

# The tile's grid, and the margin (in the grid's units) kept around it so that a symbol or
# an outline crossing the tile's edge is drawn whole on both sides.
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 20
# Below this zoom a tile spans so much of the globe that its envelope, as a geography,
# has edges too long to stand for parallels: every row is read and clipped instead. The
# whole marketplace is a handful of cities, so such tiles stay small.
MIN_FILTERED_ZOOM = 6


@dataclass(frozen=True)
class TileLayer:
    name: str
    # `SELECT ... FROM ... WHERE ...` of the rows, each with the layer's attributes, its
    # geography as `g` and `changes_at` (when its attributes next change with no write, or
    # NULL); `{covers}` is the condition on `geography` that keeps the rows meeting the tile.
    rows_sql: str
    geography: str
    attributes: tuple[str, ...]


_OPEN = _open_period_sql(now="%(now)s::timestamptz")

MERCHANTS = TileLayer(
    name="merchants",
    rows_sql=_OPEN_STATE_SQL.format(
        rows=f"""
SELECT m.id, m.name, {_OPEN["open_from"]} AS open_from, {_OPEN["open_until"]} AS open_until,
       %(now)s::timestamptz AS shown_at, m.location AS g
FROM merchants_merchant m
CROSS JOIN LATERAL ({_OPEN_BOUNDS_SQL.format(m="m", now="%(now)s::timestamptz")}) kept
WHERE m.is_active AND {{covers}}"""  # noqa: S608 - fixed fragments only
    ),
    geography="m.location",
    attributes=("id", "name", "open_now"),
)

ZONES = TileLayer(
    name="zones",
    rows_sql="""
SELECT z.id, z.merchant_id, z.delivery_fee::text AS delivery_fee,
       NULL::timestamptz AS changes_at, z.area AS g
FROM merchants_deliveryzone z
JOIN merchants_merchant m ON m.id = z.merchant_id AND m.is_active
WHERE z.is_active AND {covers}""",
    geography="z.area",
    attributes=("id", "merchant_id", "delivery_fee"),
)

LAYERS = {layer.name: layer for layer in (MERCHANTS, ZONES)}


# The tile's envelope in WGS84 with its margin: Web Mercator maps parallels and meridians
# to the tile's sides, so this box is the tile's, and its long sides are densified so that,
# as a geography, they follow the parallels rather than great circles.
_BOX_4326 = f"""ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s,
    margin => {BUFFER / EXTENT}), 4326)"""
_COVERS = "{g} && ST_Segmentize(env.box, 0.01)::geography"


@functools.cache
def tile_statement(layer_name: str, *, filtered: bool) -> str:
    """The tile of `layer_name` at `%(z)s/%(x)s/%(y)s` as of `%(now)s`: one row, the
    encoded tile (empty when no feature meets it) and the epoch of its first `changes_at`.
    Each feature's id is the row's, and `id` is among its attributes too: map libraries
    read one or the other."""
    layer = LAYERS[layer_name]
    rows = layer.rows_sql.format(covers=_COVERS.format(g=layer.geography) if filtered else "true")
    attributes = ", ".join(f"t.{name}" for name in layer.attributes)
    return f"""
WITH env AS MATERIALIZED (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile, {_BOX_4326} AS box
),
shown AS MATERIALIZED (
    SELECT r.*, ST_AsMVTGeom(ST_Transform(r.g::geometry, 3857), env.tile, {EXTENT}, {BUFFER}, true)
        AS geom
    FROM env, LATERAL ({rows}) r
)
SELECT
    (SELECT ST_AsMVT(f, '{layer.name}', {EXTENT}, 'geom', 'feature_id')
     FROM (SELECT t.id AS feature_id, {attributes}, t.geom
           FROM shown t WHERE t.geom IS NOT NULL) f),
    (SELECT extract(epoch FROM min(t.changes_at))::float8 FROM shown t WHERE t.geom IS NOT NULL)
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
    statement = tile_statement(layer, filtered=z >= MIN_FILTERED_ZOOM)
    ((body, changes_at),) = fetch_all(statement, {"z": z, "x": x, "y": y, "now": timezone.now()})
    return Expiring(bytes(body or b""), changes_at)
