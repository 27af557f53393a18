"""Unserved demand: where customers looked for shops or products and found none, for the
console's heat map.

A search that answers nothing (`merchants/delivering-to`, `products/nearby`) counts one
request in the cell of a grid of at least `CELL_M` metres that holds its point, per UTC
day, in a Redis hash that expires after `RETENTION_DAYS`. Only the cell and the count
are kept: no user, no address, no exact point. Answers served from a cache are not
counted again, so repeating a search within a cache's lifetime counts once.

The counts are analytics, not records: a Redis outage loses some and never fails or
slows a search (errors are swallowed).

The grid: rows of latitude `_ROW_DEG` high, the fewest metres a degree of latitude spans
anywhere on the WGS84 ellipsoid (at the equator) times `CELL_M`; each row cut into
columns of longitude wide enough for `CELL_M` metres at its poleward edge, from the
ellipsoid's equatorial radius, which no parallel's radius of curvature is below. So every
cell is at least `CELL_M` metres on each side, wherever it is.
"""

import logging
import math
from datetime import UTC, datetime, timedelta

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from geomarket.answer_cache import answer_prefix
from geomarket.lane import front_cache
from geomarket.shapes import INTEGER, POINT, Coordinates, Field, Shape

logger = logging.getLogger(__name__)

CELL_M = 250
RETENTION_DAYS = 30
_A = 6_378_137.0  # WGS84 semi-major axis
_E2 = 6.694_379_990_14e-3  # WGS84 first eccentricity squared
_ROW_DEG = CELL_M / (_A * (1 - _E2) * math.pi / 180)
_EMPTY = b'{"results":[]'


def cell_of(*, lat: float, lng: float) -> tuple[int, int]:
    row = math.floor(lat / _ROW_DEG)
    return row, math.floor((lng + 180) / _column_deg(row))


def _column_deg(row: int) -> float:
    poleward = min(90.0, max(abs(row * _ROW_DEG), abs((row + 1) * _ROW_DEG)))
    metres_per_deg = _A * math.cos(math.radians(poleward)) * math.pi / 180
    return 360.0 if metres_per_deg * 360 <= CELL_M else CELL_M / metres_per_deg


def cell_center(row: int, column: int) -> tuple[float, float]:
    """`(lat, lng)` of the cell's centre."""
    width = _column_deg(row)
    return (row + 0.5) * _ROW_DEG, min((column + 0.5) * width, 360.0) - 180


# A cell of the heat map: its centre, and how many searches there found nothing.
UNSERVED_CELL = Shape("UnservedCell", (Field("location", POINT), Field("requests", INTEGER)))


def _day_key(day) -> str:
    return f"{answer_prefix()}:demand:unserved:{day.isoformat()}"


def _today():
    return datetime.now(UTC).date()


def _command(lat: float, lng: float) -> tuple[str, str]:
    row, column = cell_of(lat=lat, lng=lng)
    return _day_key(_today()), f"{row}:{column}"


def unserved_record(*, body: bytes, lat: float, lng: float) -> None:
    """Count the search at `lat, lng` if its answer `body` holds no result."""
    if not body.startswith(_EMPTY):
        return
    key, field = _command(lat, lng)
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.hincrby(key, field, 1)
        pipe.expire(key, RETENTION_DAYS * 86400)
        pipe.execute()
    except RedisError as exc:
        logger.debug("unserved demand not counted: %r", exc)


async def unserved_record_async(*, body: bytes, lat: float, lng: float) -> None:
    """`unserved_record` on the event loop's own Redis connection."""
    if not body.startswith(_EMPTY):
        return
    key, field = _command(lat, lng)
    try:
        client = front_cache.redis_client()
        await client.execute("HINCRBY", key, field, 1)
        await client.execute("EXPIRE", key, RETENTION_DAYS * 86400)
    except (RedisError, OSError) as exc:
        logger.debug("unserved demand not counted: %r", exc)


def unserved_cells(*, most: int | None = None) -> list[dict]:
    """The cells with unserved searches in the last `RETENTION_DAYS` days (the `most`
    busiest, or all): their centre and how many, most first (`UNSERVED_CELL`)."""
    today = _today()
    days = [today - timedelta(days=back) for back in range(RETENTION_DAYS)]
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for day in days:
            pipe.hgetall(_day_key(day))
        counts_by_day = pipe.execute()
    except RedisError as exc:
        logger.warning("unserved demand unavailable: %r", exc)
        return []
    totals: dict[tuple[int, int], int] = {}
    for counts in counts_by_day:
        for field, count in counts.items():
            row, column = (int(part) for part in field.decode().split(":"))
            totals[row, column] = totals.get((row, column), 0) + int(count)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:most]
    return UNSERVED_CELL.render_rows(
        [(Coordinates(*reversed(cell_center(*cell))), requests) for cell, requests in ranked]
    )
